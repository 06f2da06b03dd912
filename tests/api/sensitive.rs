//! Sensitive attributes: encrypted at rest, shown only with `pii:read`, matched in segments only
//! exactly through a blind index, and never in plaintext in the store's or the index's files.

use std::path::Path;

use qwry_contacts::config::DatabaseUrl;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const SSN: &str = "078-05-1120";
const CONTROL: &str = "platinum-control-7781";
const IDENTITY_SECRET: &str = "identity-secret-5f1c2e9a";

/// Whether any file under `dir` contains `needle` (as raw bytes).
fn files_contain(dir: &Path, needle: &str) -> bool {
    !files_containing(dir, needle).is_empty()
}

/// The files under `dir` that contain `needle` (as raw bytes).
fn files_containing(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        {
            found.push(path);
        }
    }
    found
}

async fn define_sensitive(app: &TestApp, name: &str, value_type: &str) -> Value {
    app.graphql(
        "mutation($input: DefineAttributeInput!) { defineAttribute(input: $input) { attribute { name sensitive } } }",
        json!({ "input": { "name": name, "type": value_type, "sensitive": true } }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_values_are_sealed_shown_with_pii_read_and_matched_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::RocksDb(dir.path().join("rocksdb"));
    let app = TestApp::spawn_with(url.clone(), dir.path().to_owned()).await;
    let defined = define_sensitive(&app, "ssn", "STRING").await;
    assert_eq!(
        defined["data"]["defineAttribute"]["attribute"]["sensitive"],
        true
    );
    app.define_attribute("plan", "STRING").await;
    let ada = app
        .upsert(json!({ "externalId": "u-1", "attributes": { "ssn": SSN, "plan": CONTROL } }))
        .await;
    let id = ada["id"].as_str().unwrap().to_owned();
    assert_eq!(ada["attributes"]["ssn"], SSN, "the admin holds pii:read");
    let other = app
        .upsert(json!({ "externalId": "u-2", "attributes": { "ssn": "999-99-9999" } }))
        .await;

    // Replaying the same value is a no-op, although each sealing uses a fresh nonce.
    let replay = app
        .upsert(json!({ "externalId": "u-1", "attributes": { "ssn": SSN } }))
        .await;
    assert_eq!(replay["updatedAt"], ada["updatedAt"]);

    // Readable with pii:read only.
    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    let (officer, _) = app
        .create_key(&["contacts:read", "pii:read"], Value::Null)
        .await;
    let read = "query($id: ID!) { contact(id: $id) { attributes } }";
    let seen = app.data_as(&reader, read, json!({ "id": id })).await;
    assert_eq!(seen["contact"]["attributes"], json!({ "plan": CONTROL }));
    let seen = app.data_as(&officer, read, json!({ "id": id })).await;
    assert_eq!(seen["contact"]["attributes"]["ssn"], SSN);
    let export = app.get_text_as(&reader, "/v1/contacts/export").await;
    assert!(!export.contains(SSN), "{export}");
    assert!(
        app.get_text_as(&officer, "/v1/contacts/export")
            .await
            .contains(SSN)
    );

    // Segments match exactly (ignoring case and surrounding spaces), in both back ends.
    let shared = &app;
    let count = |text: &str| {
        let query =
            "query($s: String!) { contacts(segment: $s, consistency: LATEST) { totalCount } }";
        let variables = json!({ "s": text });
        async move { shared.graphql(query, variables).await }
    };
    let exact = count(&format!("ssn = \" {SSN} \"")).await;
    assert_eq!(exact["data"]["contacts"]["totalCount"], 1, "{exact:#}");
    let not = count(&format!("ssn != \"{SSN}\"")).await;
    assert_eq!(not["data"]["contacts"]["totalCount"], 1, "{not:#}");
    let listed = count(&format!("ssn in [\"{SSN}\", \"999-99-9999\"]")).await;
    assert_eq!(listed["data"]["contacts"]["totalCount"], 2);
    let substring = count("ssn contains \"078\"").await;
    assert_eq!(
        substring["errors"][0]["extensions"]["code"],
        "INVALID_SEGMENT"
    );
    assert_eq!(
        substring["errors"][0]["extensions"]["diagnostics"][0]["code"],
        "TYPE_MISMATCH"
    );
    app.data(
        "mutation($t: String!) { upsertSegment(input: { slug: \"flagged\", name: \"Flagged\", text: $t }) { segment { slug } } }",
        json!({ "t": format!("ssn = \"{SSN}\"") }),
    )
    .await;
    let segments = app
        .data(
            "query($id: ID!) { contact(id: $id) { segments { nodes { slug } } } explainMembership(contactId: $id, slug: \"flagged\") { matched nodes { value } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        segments["contact"]["segments"]["nodes"],
        json!([{ "slug": "flagged" }])
    );
    assert_eq!(segments["explainMembership"]["matched"], true);
    assert_eq!(
        segments["explainMembership"]["nodes"][0]["value"],
        "[sensitive]"
    );

    // A merge keeps snapshots of both contacts: sealed as well.
    app.data(
        "mutation($a: ID!, $b: ID!) { mergeContacts(input: { survivorId: $a, absorbedId: $b, strategy: { externalId: SURVIVOR } }) { merge { id } } }",
        json!({ "a": id, "b": other["id"] }),
    )
    .await;
    // The workspace's identity secret is sealed at rest too.
    app.data(
        "mutation($s: String!) { setIdentityVerification(input: { hmacSecret: $s }) { identitySettings { secretSet } } }",
        json!({ "s": IDENTITY_SECRET }),
    )
    .await;
    // While the service runs, every write is in RocksDB's write-ahead log as written (after
    // a stop, flushed into compressed tables, where a plain search proves less).
    let store = dir.path().join("rocksdb");
    assert!(
        files_contain(&store, CONTROL),
        "the store's files hold ordinary values in the clear, so the search below can find text"
    );
    let no_plaintext_at_rest = || {
        let leaks = files_containing(&store, SSN);
        assert!(leaks.is_empty(), "plaintext in the store: {leaks:?}");
        assert!(
            !files_contain(&dir.path().join("index"), SSN),
            "plaintext in the index"
        );
        assert!(!files_contain(&store, "999-99-9999"));
        assert!(!files_contain(&store, IDENTITY_SECRET));
    };
    no_plaintext_at_rest();
    app.stop().await;
    no_plaintext_at_rest();

    // The key file under DATA_DIR opens the values after a restart.
    let restarted = TestApp::spawn_with(url, dir.path().to_owned()).await;
    assert_eq!(restarted.contact(&id).await["attributes"]["ssn"], SSN);
    let hash = qwry_contacts::domain::user_hash(IDENTITY_SECRET.as_bytes(), "u-77");
    let identified = restarted
        .data(
            "mutation($h: String!) { identify(input: { anonymousId: \"visitor-77\", externalId: \"u-77\", userHash: $h }) { contact { externalId } } }",
            json!({ "h": hash }),
        )
        .await;
    assert_eq!(
        identified["identify"]["contact"]["externalId"], "u-77",
        "the sealed secret opens"
    );
    restarted.stop().await;
}

#[tokio::test]
async fn only_text_can_be_sensitive_and_sensitivity_is_fixed() {
    let app = TestApp::spawn().await;
    let number = define_sensitive(&app, "salary", "NUMBER").await;
    assert_eq!(number["errors"][0]["extensions"]["code"], "INVALID_INPUT");
    app.define_attribute("nickname", "STRING").await;
    let flipped = define_sensitive(&app, "nickname", "STRING").await;
    assert_eq!(flipped["errors"][0]["extensions"]["code"], "CONFLICT");
}
