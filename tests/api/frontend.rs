//! Frontend reads: a contact list whose nested fields load per page, type-ahead search, and
//! persisted queries.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const NESTED: &str = "id identities { kind value provenance } mergedFrom segments { slug }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_fields_of_a_page_equal_those_read_one_contact_at_a_time() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    for n in 0..12 {
        let plan = if n % 3 == 0 { "pro" } else { "free" };
        app.upsert(
            json!({ "externalId": format!("u{n:02}"), "email": format!("u{n}@example.com"),
                           "attributes": { "plan": plan } }),
        )
        .await;
    }
    // A merge, so that `mergedFrom` and moved identities show.
    let visitor = app
        .data(
            "mutation { trackVisitor(input: { anonymousId: \"visitor-1\" }) { id } }",
            json!({}),
        )
        .await["trackVisitor"]["id"]
        .clone();
    let survivor = app
        .data("{ contact(externalId: \"u03\") { id } }", json!({}))
        .await["contact"]["id"]
        .clone();
    app.data(
        "mutation($s: ID!, $a: ID!) { mergeContacts(survivorId: $s, absorbedId: $a) { id } }",
        json!({ "s": survivor, "a": visitor }),
    )
    .await;
    for slug in ["pros", "frees"] {
        let text = if slug == "pros" {
            "plan = \"pro\""
        } else {
            "plan = \"free\""
        };
        app.data(
            "mutation($slug: String!, $text: String!) { saveSegment(input: { slug: $slug, name: $slug, text: $text }) { slug } }",
            json!({ "slug": slug, "text": text }),
        )
        .await;
    }

    let page = app
        .data(
            &format!("{{ contacts(first: 100) {{ edges {{ node {{ {NESTED} }} }} }} }}"),
            json!({}),
        )
        .await;
    let nodes: Vec<Value> = page["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    assert_eq!(nodes.len(), 12);
    for node in &nodes {
        let one = app
            .data(
                &format!("query($id: ID!) {{ contact(id: $id) {{ {NESTED} }} }}"),
                json!({ "id": node["id"] }),
            )
            .await;
        assert_eq!(&one["contact"], node);
    }
    let merged = nodes.iter().find(|n| n["id"] == survivor).unwrap();
    assert_eq!(merged["mergedFrom"], json!([visitor]));
    assert_eq!(merged["segments"], json!([{ "slug": "pros" }]));
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_run_by_hash_over_post_and_get() {
    let app = TestApp::spawn().await;
    app.upsert(json!({ "externalId": "u-1", "name": "Ada" }))
        .await;
    let query = "query Named($id: String!) { contact(externalId: $id) { name } }";
    let hash = sha256_hex(query);
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let variables = json!({ "id": "u-1" });

    let unknown = app
        .post_json(json!({ "extensions": persisted, "variables": variables }))
        .await;
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    let registered = app
        .post_json(json!({ "query": query, "extensions": persisted, "variables": variables }))
        .await;
    assert_eq!(
        registered["data"]["contact"]["name"], "Ada",
        "{registered:#}"
    );
    let by_hash = app
        .post_json(json!({ "extensions": persisted, "variables": variables }))
        .await;
    assert_eq!(by_hash["data"]["contact"]["name"], "Ada", "{by_hash:#}");

    let url = reqwest::Url::parse_with_params(
        &app.url("/graphql"),
        &[
            ("extensions", persisted.to_string()),
            ("variables", variables.to_string()),
        ],
    )
    .unwrap();
    let got: Value = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["contact"]["name"], "Ada", "{got:#}");

    let wrong = json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex("other") } });
    let mismatch = app
        .post_json(json!({ "query": query, "extensions": wrong, "variables": variables }))
        .await;
    assert!(
        mismatch["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sha")
    );

    let mutation = "mutation { upsertContact(input: { externalId: \"u-2\" }) { id } }";
    let url =
        reqwest::Url::parse_with_params(&app.url("/graphql"), &[("query", mutation)]).unwrap();
    let refused: Value = app
        .client
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{refused:#}"
    );
    assert_eq!(app.total_count().await, 1, "the GET mutation wrote nothing");
}
