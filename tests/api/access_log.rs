//! Who read what: reads of a contact's personal fields are recorded per key, contact and hour,
//! readable by admins (`contactAccessLog`) and in `exportContactData`; a key that read only the
//! id is not recorded.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const LOG: &str =
    "query($id: ID!) { contactAccessLog(contactId: $id) { totalCount nodes { keyId hour } } }";

fn readers(log: &Value) -> Vec<String> {
    log["contactAccessLog"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["keyId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_read_is_recorded_once_per_key_and_hour_and_a_key_that_did_not_read_is_not() {
    let app = TestApp::spawn().await;
    let (reader, reader_id) = app.create_key(&["contacts:read"], json!(null)).await;
    let (onlooker, onlooker_id) = app.create_key(&["contacts:read"], json!(null)).await;
    let id = app
        .data(
            "mutation { upsertContact(input: { externalId: \"read-me\", email: \"read@example.com\" }) { contact { id } } }",
            json!({}),
        )
        .await["upsertContact"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    for _ in 0..3 {
        let read = app
            .data_as(
                &reader,
                "query($id: ID!) { contact(by: { id: $id }) { email } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(read["contact"]["email"], "read@example.com");
    }
    // The id alone is not personal data.
    app.data_as(
        &onlooker,
        "query($id: ID!) { contact(by: { id: $id }) { id } }",
        json!({ "id": id }),
    )
    .await;

    let log = app.data(LOG, json!({ "id": id })).await;
    let who = readers(&log);
    assert_eq!(
        who.iter().filter(|key| **key == reader_id).count(),
        1,
        "three reads in one hour, one entry: {log}"
    );
    assert!(!who.contains(&onlooker_id), "{log}");
    let hour = log["contactAccessLog"]["nodes"][0]["hour"]
        .as_str()
        .unwrap();
    assert!(hour.contains(":00:00"), "an hour, not an instant: {hour}");

    // The data subject export lists the readers too.
    let export = app
        .data(
            "query($id: ID!) { exportContactData(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    let listed: Vec<&str> = export["exportContactData"]["accessLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["keyId"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&reader_id.as_str()), "{export}");
    assert!(!listed.contains(&onlooker_id.as_str()), "{export}");

    // Only admins read the log.
    assert_eq!(
        app.error_code_as(&reader, LOG, json!({ "id": id })).await,
        "FORBIDDEN"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_export_stream_is_recorded_for_each_contact_it_sends() {
    let app = TestApp::spawn().await;
    let (exporter, exporter_id) = app.create_key(&["contacts:read"], json!(null)).await;
    let id = app
        .data(
            "mutation { upsertContact(input: { externalId: \"exported\" }) { contact { id } } }",
            json!({}),
        )
        .await["upsertContact"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines = app.get_text_as(&exporter, "/v1/contacts/export").await;
    assert!(lines.contains(&id), "{lines}");
    let log = app.data(LOG, json!({ "id": id })).await;
    assert!(readers(&log).contains(&exporter_id), "{log}");
    app.stop().await;
}
