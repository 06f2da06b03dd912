//! Lists that grow are connections of one shape: `edges { cursor node } nodes pageInfo
//! { hasNextPage endCursor } totalCount`, paged forward with `first` (default 20, at most
//! 100) and `after`, each list refusing another's cursors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Every page of `field` (a root list taking `first` and `after`), `first` at a time, as the
/// nodes' `key` values; asserts every page's shape on the way.
async fn every_page(
    app: &TestApp,
    field: &str,
    selection: &str,
    key: &str,
    first: u32,
) -> Vec<String> {
    let query = format!(
        "query($first: Int, $after: String) {{ list: {field}(first: $first, after: $after) {{ \
         totalCount nodes {{ {selection} }} edges {{ cursor node {{ {selection} }} }} \
         pageInfo {{ hasNextPage endCursor }} }} }}"
    );
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut total = None;
    loop {
        let page = app
            .data(&query, json!({ "first": first, "after": after }))
            .await["list"]
            .clone();
        let nodes = page["nodes"].as_array().unwrap();
        let edges = page["edges"].as_array().unwrap();
        assert!(nodes.len() <= first as usize, "{page}");
        assert_eq!(nodes.len(), edges.len());
        for (node, edge) in nodes.iter().zip(edges) {
            assert_eq!(node, &edge["node"], "nodes and edges hold the same items");
        }
        let count = page["totalCount"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(count),
            count,
            "the total holds across pages"
        );
        seen.extend(
            nodes
                .iter()
                .map(|node| node[key].as_str().unwrap().to_owned()),
        );
        if let Some(last) = edges.last() {
            assert_eq!(page["pageInfo"]["endCursor"], last["cursor"]);
        }
        if page["pageInfo"]["hasNextPage"] == false {
            assert_eq!(seen.len() as u64, count, "the pages hold the whole list");
            return seen;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn root_lists_page_forward_by_cursor_and_count_the_whole_list() {
    let app = TestApp::spawn().await;
    for name in ["a", "b", "c"] {
        app.create_key(&["contacts:read"], json!(null)).await;
        app.data(
            "mutation($slug: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: \"email exists\" }) { segment { slug } } }",
            json!({ "slug": format!("s-{name}") }),
        )
        .await;
    }
    let keys = every_page(&app, "apiKeys", "id createdAt", "id", 2).await;
    assert_eq!(keys.len(), 4, "the admin key and three more");
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        4,
        "no key twice"
    );
    let segments = every_page(&app, "segments", "slug", "slug", 2).await;
    assert_eq!(segments, ["s-a", "s-b", "s-c"], "by slug");

    // A page resumes after its cursor's item even when an item before it went away.
    let first_two = app
        .data(
            "{ segments(first: 2) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await["segments"]["pageInfo"]["endCursor"]
        .clone();
    app.data(
        "mutation { deleteSegment(input: { slug: \"s-a\" }) { deletedSlug } }",
        json!({}),
    )
    .await;
    let rest = app
        .data(
            "query($after: String) { segments(after: $after) { nodes { slug } totalCount } }",
            json!({ "after": first_two }),
        )
        .await;
    assert_eq!(rest["segments"]["nodes"], json!([{ "slug": "s-c" }]));
    assert_eq!(rest["segments"]["totalCount"], 2);

    // A page after the last item is empty and keeps its `after` as its end cursor.
    let last = app
        .data("{ segments { pageInfo { endCursor } } }", json!({}))
        .await["segments"]["pageInfo"]["endCursor"]
        .clone();
    let beyond = app
        .data(
            "query($after: String) { segments(after: $after) { nodes { slug } pageInfo { hasNextPage endCursor } } }",
            json!({ "after": last }),
        )
        .await["segments"]
        .clone();
    assert_eq!(beyond["nodes"], json!([]));
    assert_eq!(beyond["pageInfo"]["hasNextPage"], false);
    assert_eq!(beyond["pageInfo"]["endCursor"], last);
}

#[tokio::test]
async fn a_page_size_out_of_range_or_a_foreign_cursor_is_invalid_input() {
    let app = TestApp::spawn().await;
    let key_cursor = app
        .data("{ apiKeys(first: 1) { edges { cursor } } }", json!({}))
        .await["apiKeys"]["edges"][0]["cursor"]
        .clone();
    let refused = [
        ("{ apiKeys(first: 101) { totalCount } }", json!({})),
        ("{ segments(first: -1) { totalCount } }", json!({})),
        (
            "query($a: String) { segments(after: $a) { totalCount } }",
            json!({ "a": key_cursor }),
        ),
        (
            "{ apiKeys(after: \"not a cursor\") { totalCount } }",
            json!({}),
        ),
        ("{ contacts(first: 101) { totalCount } }", json!({})),
    ];
    for (query, variables) in refused {
        let error = app.error(query, variables).await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{query}: {error}"
        );
    }
    // `first` may be left out (20) or given as null (20 as well).
    let page = app
        .data(
            "query($first: Int) { apiKeys(first: $first) { totalCount nodes { id } } }",
            json!({ "first": null }),
        )
        .await;
    assert_eq!(page["apiKeys"]["totalCount"], 1);
}

#[tokio::test]
async fn a_contacts_nested_lists_are_connections_too() {
    let app = TestApp::spawn().await;
    let ada = app
        .upsert(json!({ "externalId": "ada", "email": "ada@example.com", "phone": "+14155550100" }))
        .await;
    let id = ada["id"].as_str().unwrap();
    let query = "query($id: ID!, $after: String) { contact(by: { id: $id }) { identities(first: 2, after: $after) { totalCount nodes { kind value } pageInfo { hasNextPage endCursor } } } }";
    let first = app.data(query, json!({ "id": id })).await["contact"]["identities"].clone();
    assert_eq!(first["totalCount"], 3);
    assert_eq!(first["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let rest = app
        .data(
            query,
            json!({ "id": id, "after": first["pageInfo"]["endCursor"] }),
        )
        .await["contact"]["identities"]
        .clone();
    assert_eq!(rest["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let kinds: BTreeSet<String> = first["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["nodes"].as_array().unwrap())
        .map(|node| node["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds.len(), 3, "each identity once: {kinds:?}");

    // A merge's history pages the same way.
    let bob = app.track_visitor("v-bob").await;
    let merged = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id movedIdentities { totalCount nodes { value } } } } }",
            json!({ "s": id, "a": bob["id"] }),
        )
        .await["mergeContacts"]["merge"]
        .clone();
    assert_eq!(merged["movedIdentities"]["totalCount"], 1);
    let history = app
        .data(
            "query($id: ID!) { contactHistory(id: $id, first: 1) { totalCount nodes { id } pageInfo { hasNextPage } } }",
            json!({ "id": id }),
        )
        .await["contactHistory"]
        .clone();
    assert_eq!(history["totalCount"], 1);
    assert_eq!(history["nodes"][0]["id"], merged["id"]);
    assert_eq!(history["pageInfo"]["hasNextPage"], false);
}
