//! Frontend reads: a contact list whose nested fields load per page, type-ahead search, and
//! persisted queries.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const NESTED: &str = "id identities { nodes { kind value provenance } } mergedFrom segments { nodes { slug } } \
    conversations(first: 2) { nodes { id } pageInfo { hasNextPage } } events(first: 3, name: \"purchase\") { nodes { id } }";

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
            "mutation { trackVisitor(input: { anonymousId: \"visitor-1\" }) { contact { id } } }",
            json!({}),
        )
        .await["trackVisitor"]["contact"]["id"]
        .clone();
    let survivor = app
        .data("{ contact(externalId: \"u03\") { id } }", json!({}))
        .await["contact"]["id"]
        .clone();
    app.data(
        "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
        json!({ "s": survivor, "a": visitor }),
    )
    .await;
    // Activity on some contacts, so that the nested activity fields have pages to load.
    for n in 0..6 {
        for c in 0..n % 4 {
            app.data(
                "mutation($input: RecordConversationInput!) { recordConversation(input: $input) { outcome } }",
                json!({ "input": { "externalId": format!("u{n:02}"), "conversationId": format!("c{n}-{c}"),
                                   "startedAt": format!("2026-11-0{}T10:00:00Z", c + 1) } }),
            )
            .await;
        }
        let name = if n % 2 == 0 { "purchase" } else { "page.view" };
        app.data(
            "mutation($input: RecordEventInput!) { recordEvent(input: $input) { outcome } }",
            json!({ "input": { "externalId": format!("u{n:02}"), "name": name } }),
        )
        .await;
    }
    for slug in ["pros", "frees"] {
        let text = if slug == "pros" {
            "plan = \"pro\""
        } else {
            "plan = \"free\""
        };
        app.data(
            "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }",
            json!({ "slug": slug, "text": text }),
        )
        .await;
    }

    let page = app
        .data(
            &format!("{{ contacts(first: 20, consistency: LATEST) {{ edges {{ node {{ {NESTED} }} }} }} }}"),
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
    assert_eq!(merged["segments"]["nodes"], json!([{ "slug": "pros" }]));
    let busiest = nodes
        .iter()
        .find(|n| n["conversations"]["pageInfo"]["hasNextPage"] == true)
        .expect("a contact with more than 2 conversations");
    assert_eq!(
        busiest["conversations"]["nodes"].as_array().unwrap().len(),
        2
    );
    let purchases = nodes
        .iter()
        .filter(|n| !n["events"]["nodes"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(purchases, 3);
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

    // A second registered query: each hash runs its own query, not the last one kept.
    let other = "query Other($id: String!) { contact(externalId: $id) { externalId } }";
    let other_persisted =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(other) } });
    let registered = app
        .post_json(json!({ "query": other, "extensions": other_persisted, "variables": variables }))
        .await;
    assert_eq!(
        registered["data"]["contact"]["externalId"], "u-1",
        "{registered:#}"
    );
    for _ in 0..2 {
        let first = app
            .post_json(json!({ "extensions": persisted, "variables": variables }))
            .await;
        assert_eq!(
            first["data"]["contact"],
            json!({ "name": "Ada" }),
            "{first:#}"
        );
        let second = app
            .post_json(json!({ "extensions": other_persisted, "variables": variables }))
            .await;
        assert_eq!(
            second["data"]["contact"],
            json!({ "externalId": "u-1" }),
            "{second:#}"
        );
    }

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

    // The same text over POST first: a document kept from a POST is still refused over GET.
    let mutation =
        "mutation($e: String!) { upsertContact(input: { externalId: $e }) { contact { id } } }";
    let posted = app
        .post_json(json!({ "query": mutation, "variables": { "e": "u-2" } }))
        .await;
    assert!(posted["errors"].is_null(), "{posted:#}");
    let url = reqwest::Url::parse_with_params(
        &app.url("/graphql"),
        &[("query", mutation), ("variables", r#"{"e":"u-3"}"#)],
    )
    .unwrap();
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
    assert_eq!(app.total_count().await, 2, "the GET mutation wrote nothing");
}

/// The names (in order) of a search's results.
async fn found(
    app: &TestApp,
    key: Option<&str>,
    search: &str,
    segment: Option<&str>,
) -> Vec<String> {
    let query = "query($search: String!, $segment: String) { contacts(search: $search, segment: $segment, first: 20, consistency: LATEST) { totalCount edges { node { externalId } } } }";
    let variables = json!({ "search": search, "segment": segment });
    let data = match key {
        Some(key) => app.data_as(key, query, variables).await,
        None => app.data(query, variables).await,
    };
    let connection = &data["contacts"];
    let names: Vec<String> = connection["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            edge["node"]["externalId"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(connection["totalCount"], names.len(), "{search}");
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_ahead_search_by_prefix_infix_accents_and_one_typo() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let people = [
        ("anne", "Anne Dupont", "anne@example.com", "pro"),
        ("joanna", "Joanna Smith", "jo@example.com", "free"),
        ("zoe", "Zoë Ångström", "zoe@acme.io", "pro"),
        ("bob", "Bob Stone", "robert.annecy@example.com", "free"),
        ("chris", "Christopher Wren", "cw@example.com", "pro"),
    ];
    for (id, name, email, plan) in people {
        app.upsert(
            json!({ "externalId": id, "name": name, "email": email, "company": "Acme",
                           "attributes": { "plan": plan } }),
        )
        .await;
    }
    // Prefix ranks above infix: `ann` starts Anne's name, sits inside Joanna's and Bob's email.
    let ann = found(&app, None, "ann", None).await;
    assert_eq!(ann.first().map(String::as_str), Some("anne"), "{ann:?}");
    assert_eq!(ann.len(), 3, "{ann:?}");
    assert!(ann.contains(&"joanna".to_owned()) && ann.contains(&"bob".to_owned()));
    // Case and accents fold on both sides.
    assert_eq!(found(&app, None, "ANGSTROM", None).await, vec!["zoe"]);
    assert_eq!(found(&app, None, "zoë", None).await, vec!["zoe"]);
    // One typo in a word of five letters or more; none in shorter words.
    assert_eq!(found(&app, None, "christopjer", None).await, vec!["chris"]);
    assert!(found(&app, None, "bpb", None).await.is_empty());
    // Every word must match somewhere; a segment narrows the results.
    assert_eq!(found(&app, None, "anne dupont", None).await, vec!["anne"]);
    let pros = found(&app, None, "acme", Some("plan = \"pro\"")).await;
    assert_eq!(pros.len(), 3, "{pros:?}");
    assert!(!pros.contains(&"bob".to_owned()));

    // A key that may not read email does not match on email.
    let (names_only, _) = app
        .create_key(
            &["contacts:read"],
            json!({ "fields": ["name", "external_id"] }),
        )
        .await;
    let by_name = found(&app, Some(&names_only), "ann", None).await;
    assert_eq!(
        by_name.len(),
        2,
        "Anne and Joanna by name; Bob only by email: {by_name:?}"
    );
    assert!(
        found(&app, Some(&names_only), "acme.io", None)
            .await
            .is_empty()
    );

    // A write is searchable once indexed.
    app.upsert(json!({ "externalId": "new", "name": "Annabel Lee" }))
        .await;
    assert!(
        found(&app, None, "annab", None)
            .await
            .contains(&"new".to_owned())
    );

    // Pages of results continue by rank.
    let first = app
        .data("{ contacts(search: \"e\", first: 2) { edges { node { externalId } } pageInfo { hasNextPage endCursor } } }", json!({}))
        .await;
    let cursor = first["contacts"]["pageInfo"]["endCursor"].clone();
    assert_eq!(first["contacts"]["pageInfo"]["hasNextPage"], true);
    let next = app
        .data("query($after: String) { contacts(search: \"e\", first: 2, after: $after) { edges { node { externalId } } } }", json!({ "after": cursor }))
        .await;
    let page_one: Vec<&Value> = first["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let page_two: Vec<&Value> = next["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(page_two.iter().all(|edge| !page_one.contains(edge)));
    let empty = app
        .error("{ contacts(search: \"  \") { totalCount } }", json!({}))
        .await;
    assert_eq!(empty["extensions"]["code"], "INVALID_INPUT");
}
