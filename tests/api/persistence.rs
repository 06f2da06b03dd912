//! Data written before a stop is there after a restart (embedded SurrealKV on disk).

use qwry_contacts::config::DatabaseUrl;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn contacts_and_attributes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::SurrealKv(dir.path().join("store"));

    let app = TestApp::spawn_with(url.clone(), dir.path().to_owned()).await;
    app.define_attribute("plan", "STRING").await;
    let written = app
        .upsert(json!({ "externalId": "u1", "name": "Ada", "attributes": { "plan": "pro" } }))
        .await;
    app.stop().await;

    let restarted = TestApp::spawn_with(url, dir.path().to_owned()).await;
    assert_eq!(
        restarted.contact(written["id"].as_str().unwrap()).await,
        written
    );
    let attributes = restarted
        .data("{ attributes { name type } }", json!({}))
        .await;
    assert_eq!(
        attributes["attributes"],
        json!([{ "name": "plan", "type": "STRING" }])
    );
    // The unique index survived too: the same external id is still one contact.
    restarted
        .upsert(json!({ "externalId": "u1", "name": "Ada" }))
        .await;
    assert_eq!(restarted.total_count().await, 1);
}
