//! Data written before a stop is there after a restart (the embedded store on disk), and the
//! index is rebuilt when it was written by an earlier version.

use qwry_contacts::index::{CommitPayload, PROJECTION_VERSION, SegmentIndex};
use serde_json::json;

use crate::helpers::TestApp;
use crate::test_store::durable_store;

#[tokio::test]
async fn contacts_and_attributes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = durable_store(dir.path());

    let app = TestApp::spawn_on(store.clone(), dir.path().to_owned()).await;
    app.define_attribute("plan", "STRING").await;
    let written = app
        .upsert(json!({ "externalId": "u1", "name": "Ada", "attributes": { "plan": "pro" } }))
        .await;
    app.stop().await;

    let restarted = TestApp::spawn_on(store, dir.path().to_owned()).await;
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

#[tokio::test]
async fn an_index_of_an_older_projection_is_rebuilt_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = durable_store(dir.path());
    let app = TestApp::spawn_on(store.clone(), dir.path().to_owned()).await;
    app.upsert(json!({ "externalId": "u1" })).await;
    assert_eq!(app.total_count().await, 1);
    app.stop().await;
    // An index of an earlier version: complete by its payload, but its documents lack what
    // this version indexes (here, nothing at all).
    {
        let index = SegmentIndex::open_in_dir(&dir.path().join("index")).unwrap();
        let payload = index.payload().unwrap().unwrap();
        assert_eq!(payload.projection, PROJECTION_VERSION);
        index
            .clear(&CommitPayload {
                projection: 1,
                ..payload
            })
            .unwrap();
    }
    let restarted = TestApp::spawn_on(store, dir.path().to_owned()).await;
    assert_eq!(restarted.total_count().await, 1);
    let never_talked = restarted
        .data(
            "{ contacts(segment: \"conversation_count = 0\", first: 0) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(never_talked["contacts"]["totalCount"], 1);
}
