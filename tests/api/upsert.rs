//! Upsert by external id: idempotent replays and concurrent writers.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn replaying_the_same_upsert_changes_nothing() {
    let app = TestApp::spawn().await;
    app.define_attribute("tags", "STRING_LIST").await;
    let input = json!({
        "externalId": "u1", "email": "ADA@example.com", "name": "Ada",
        "attributes": { "tags": ["b", "a"] }
    });
    let first = app.upsert(input.clone()).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let replay = app.upsert(input).await;
    assert_eq!(replay, first, "a replay must not even move updatedAt");
    assert_eq!(app.total_count().await, 1);

    let changed = app
        .upsert(json!({ "externalId": "u1", "name": "Ada L." }))
        .await;
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(
        changed["email"], "ada@example.com",
        "omitted fields are kept"
    );
    assert_eq!(changed["attributes"], json!({ "tags": ["b", "a"] }));
    assert!(changed["updatedAt"].as_str() > first["updatedAt"].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_of_one_external_id_create_exactly_one_contact() {
    let app = TestApp::spawn().await;
    let writers = (0..12).map(|n| {
        let app = &app;
        async move {
            app.upsert(json!({ "externalId": "same", "name": format!("writer {n}") }))
                .await
        }
    });
    let results = futures::future::join_all(writers).await;
    let ids: HashSet<String> = results
        .iter()
        .map(|contact| contact["id"].to_string())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every writer must land on the same contact: {ids:?}"
    );
    assert_eq!(app.total_count().await, 1);
    let stored = app.contact(results[0]["id"].as_str().unwrap()).await;
    let names: HashSet<String> = results.iter().map(|c| c["name"].to_string()).collect();
    assert!(
        names.contains(&stored["name"].to_string()),
        "the stored name is one writer's"
    );
}
