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
