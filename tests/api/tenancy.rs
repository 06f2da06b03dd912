//! Workspaces: a key of one workspace cannot reach another's records by any path; every
//! attempt answers exactly as if the record did not exist.

use std::process::Command;

use qwry_contacts::config::DatabaseUrl;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Creates a key with the CLI (`qwry-contacts keys create`) in a store that is not open.
pub(crate) fn cli_key(data_dir: &std::path::Path, workspace: &str, scopes: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .args([
            "keys",
            "create",
            "--name",
            "tenant test",
            "--scopes",
            scopes,
        ])
        .args(["--workspace", workspace])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cross_workspace_attempt_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let other = cli_key(dir.path(), "other", "admin");
    assert!(other.starts_with("qwry_"));
    let app = TestApp::spawn_with(
        DatabaseUrl::RocksDb(dir.path().join("rocksdb")),
        dir.path().into(),
    )
    .await;

    // The default workspace (the test admin key) holds a contact, an attribute, a segment.
    app.define_attribute("plan", "STRING").await;
    let ours = app
        .upsert(json!({ "externalId": "u-1", "email": "ada@example.com", "attributes": { "plan": "pro" } }))
        .await;
    let our_id = ours["id"].as_str().unwrap().to_owned();
    let twin = app.upsert(json!({ "externalId": "u-2" })).await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;

    // The other workspace has a contact of its own.
    let theirs = app
        .data_as(
            &other,
            "mutation { upsertContact(input: { externalId: \"t-1\" }) { contact { id } } }",
            json!({}),
        )
        .await["upsertContact"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let id = json!({ "id": our_id });
    let attempts: [(&str, Value); 11] = [
        ("query($id: ID!) { contact(id: $id) { id } }", id.clone()),
        (
            "query($id: ID!) { contact(by: { id: $id }) { id } }",
            id.clone(),
        ),
        ("query($id: ID!) { node(id: $id) { id } }", id.clone()),
        ("{ contact(externalId: \"u-1\") { id } }", json!({})),
        (
            "{ contact(identity: { kind: EMAIL, value: \"ada@example.com\" }) { id } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { updateContact(input: { id: $id, patch: { name: \"x\" } }) { contact { id } } }",
            id.clone(),
        ),
        (
            "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
            id.clone(),
        ),
        ("{ segment(slug: \"pros\") { slug } }", json!({})),
        (
            "query($id: ID!) { explainMembership(contactId: $id, segment: \"external_id exists\") { matched } }",
            id.clone(),
        ),
        (
            "mutation($a: ID!, $b: ID!) { mergeContacts(input: { survivorId: $a, absorbedId: $b }) { merge { id } } }",
            json!({ "a": theirs, "b": our_id }),
        ),
        (
            "query($a: ID!, $b: ID!) { previewMerge(survivorId: $a, absorbedId: $b) { survivorId } }",
            json!({ "a": our_id, "b": theirs }),
        ),
    ];
    for (query, variables) in attempts {
        assert_eq!(
            app.error_code_as(&other, query, variables).await,
            "NOT_FOUND",
            "{query}"
        );
    }
    let listed = app
        .data_as(&other, "{ contacts(consistency: LATEST) { totalCount edges { node { id } } } segments { nodes { slug } } attributes { name } }", json!({}))
        .await;
    assert_eq!(listed["contacts"]["totalCount"], 1);
    assert_eq!(
        listed["contacts"]["edges"][0]["node"]["id"],
        theirs.as_str()
    );
    assert_eq!(listed["segments"]["nodes"], json!([]));
    assert_eq!(listed["attributes"], json!([]));
    assert_eq!(
        app.error_code_as(
            &other,
            "{ contacts(segment: \"in segment \\\"pros\\\"\") { totalCount } }",
            json!({})
        )
        .await,
        "INVALID_SEGMENT",
        "their segment does not exist here"
    );
    let count = app
        .data_as(
            &other,
            "{ contacts(segment: \"external_id exists\", consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        count["contacts"]["totalCount"], 1,
        "the index is confined too"
    );

    // An import keyed by email creates its own contact; an export shows only its own.
    let import = app
        .import_as(
            &other,
            "?matchBy=email",
            "{\"email\":\"ada@example.com\",\"name\":\"Not Ada\"}\n",
        )
        .await;
    assert_eq!(import["created"], 1, "{import:#}");
    let export = app.get_text_as(&other, "/v1/contacts/export").await;
    assert_eq!(export.lines().count(), 2, "{export}");
    assert!(!export.contains(&our_id));

    // Nothing of ours moved.
    let still = app.contact(&our_id).await;
    assert_eq!(still["email"], "ada@example.com");
    assert!(still["name"].is_null());
    assert_eq!(app.total_count().await, 2);
    assert!(twin["id"].is_string());
    app.stop().await;
}
