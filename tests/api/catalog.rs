//! The catalogue held in memory: every change to keys, attributes and saved segments takes
//! effect on the very next request; and segment pages stay complete while contacts are written.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    app.upsert(json!({ "externalId": "u-1", "email": "ada@example.com", "name": "Ada" }))
        .await;
    let (key, id) = app
        .create_key(&["contacts:read", "segments:read"], json!({}))
        .await;
    let read = "{ contact(externalId: \"u-1\") { name email } }";
    assert_eq!(
        app.data_as(&key, read, json!({})).await["contact"]["email"],
        "ada@example.com"
    );

    let update = "mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { fieldPolicy { fields } scopes } } }";
    let narrowed = app
        .data(
            update,
            json!({ "input": { "id": id, "fieldPolicy": { "fields": ["name", "externalId"] } } }),
        )
        .await;
    assert_eq!(
        narrowed["updateApiKey"]["apiKey"]["fieldPolicy"]["fields"],
        json!(["externalId", "name"])
    );
    let seen = app.data_as(&key, read, json!({})).await;
    assert_eq!(seen["contact"], json!({ "name": "Ada", "email": null }));

    app.data(
        update,
        json!({ "input": { "id": id, "grantedScopes": ["SEGMENTS_READ"] } }),
    )
    .await;
    assert_eq!(app.error_code_as(&key, read, json!({})).await, "FORBIDDEN");

    app.data(
        "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }",
        json!({ "id": id }),
    )
    .await;
    let response = crate::helpers::client_with_key(&key)
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ indexStatus { built } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_and_segment_changes_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    // A newly declared attribute is writable and testable at once.
    app.define_attribute("plan", "STRING").await;
    app.upsert(json!({ "externalId": "u-1", "attributes": { "plan": "pro" } }))
        .await;
    app.upsert(json!({ "externalId": "u-2", "attributes": { "plan": "free" } }))
        .await;
    let redefine = "mutation { defineAttribute(input: { name: \"plan\", type: STRING, description: \"the plan\" }) { attribute { description } } }";
    app.data(redefine, json!({})).await;
    let listed = app
        .data("{ attributes { name description } }", json!({}))
        .await;
    assert_eq!(listed["attributes"][0]["description"], "the plan");

    let save = "mutation($text: String!) { upsertSegment(input: { slug: \"chosen\", name: \"Chosen\", text: $text }) { segment { text } } }";
    app.data(save, json!({ "text": "plan = \"pro\"" })).await;
    let count = "{ segment(slug: \"chosen\") { count members(first: 5) { edges { node { externalId } } } } contact(externalId: \"u-2\") { segments { nodes { slug } } } }";
    let before = app.latest(count).await;
    assert_eq!(before["segment"]["count"], 1);
    assert_eq!(before["contact"]["segments"]["nodes"], json!([]));

    app.data(save, json!({ "text": "plan = \"free\"" })).await;
    let after = app.data(count, json!({})).await;
    assert_eq!(after["segment"]["count"], 1);
    assert_eq!(
        after["segment"]["members"]["edges"][0]["node"]["externalId"],
        "u-2"
    );
    assert_eq!(
        after["contact"]["segments"]["nodes"],
        json!([{ "slug": "chosen" }])
    );
}

/// Pages of a segment whose members do not change, read while other contacts are written:
/// every member comes exactly once across the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_complete_while_contacts_are_written() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let stable: String = (0..450)
        .map(|n| format!("{{\"externalId\":\"m{n:04}\",\"plan\":\"pro\"}}\n"))
        .collect();
    assert_eq!(app.import("", stable).await["created"], 450);
    app.latest("{ contacts(segment: \"plan = \\\"pro\\\"\") { totalCount } }")
        .await;

    let writer = {
        let client = app.client.clone();
        let url = app.url("/graphql");
        tokio::spawn(async move {
            for n in 0..200 {
                let body = json!({
                    "query": "mutation($id: String!) { upsertContact(input: { externalId: $id, attributes: { plan: \"free\" } }) { contact { id } } }",
                    "variables": { "id": format!("w{n:04}") },
                });
                client.post(&url).json(&body).send().await.unwrap();
            }
        })
    };
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page: Value = app
            .data(
                "query($after: String) { contacts(segment: \"plan = \\\"pro\\\"\", first: 37, after: $after) { edges { node { externalId } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        let connection = &page["contacts"];
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["externalId"].as_str().unwrap().to_owned());
        }
        if !connection["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a member came twice");
    assert_eq!(seen.len(), 450, "a member was skipped");
}
