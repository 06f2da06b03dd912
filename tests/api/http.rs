//! Plain HTTP surface: probes, GraphiQL, body limit, batches.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn probes_answer() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn get_graphql_serves_graphiql() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_code() {
    let app = TestApp::spawn().await;
    let padding = "x".repeat(qwry_contacts::http::MAX_BODY_BYTES + 1);
    let body = json!({ "query": "{ attributes { name } }", "variables": { "padding": padding } });
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
}

#[tokio::test]
async fn batches_execute_each_operation_and_are_capped() {
    let app = TestApp::spawn().await;
    let one = json!({ "query": "{ contacts { totalCount } }" });
    let answers = app.post_json(json!([one, one])).await;
    assert_eq!(
        answers,
        json!([
            { "data": { "contacts": { "totalCount": 0 } } },
            { "data": { "contacts": { "totalCount": 0 } } }
        ])
    );
    let too_many: Vec<Value> = (0..=qwry_contacts::http::MAX_BATCH_LEN)
        .map(|_| one.clone())
        .collect();
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}
