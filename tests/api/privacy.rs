//! Data subject requests and the audit of writers: everything held about a contact in one
//! export, deletion that leaves nothing behind, and the acting key recorded on every write.

use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn every_write_records_the_acting_key() {
    let app = TestApp::spawn().await;
    let admin_key = app.data("{ apiKeys { nodes { id } } }", json!({})).await["apiKeys"]["nodes"]
        [0]["id"]
        .clone();
    let (writer, writer_id) = app.create_key(&["contacts:write"], Value::Null).await;
    let created = app
        .data(
            "mutation { upsertContact(input: { externalId: \"u-1\" }) { contact { id createdBy updatedBy } } }",
            json!({}),
        )
        .await["upsertContact"]["contact"]
        .clone();
    assert_eq!(created["createdBy"], admin_key);
    assert_eq!(created["updatedBy"], admin_key);
    let changed = app
        .data_as(
            &writer,
            "mutation { upsertContact(input: { externalId: \"u-1\", name: \"Ada\" }) { contact { createdBy updatedBy } } }",
            json!({}),
        )
        .await["upsertContact"]["contact"]
        .clone();
    assert_eq!(changed["createdBy"], admin_key);
    assert_eq!(changed["updatedBy"], writer_id.as_str());
    let stored = app
        .data(
            "query($id: ID!) { contact(id: $id) { createdBy updatedBy } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(
        stored["contact"], changed,
        "what the answer said is what was stored"
    );

    // Imports record their key too.
    let report = app
        .import_as(&writer, "", "{\"externalId\":\"u-2\"}\n")
        .await;
    assert_eq!(report["created"], 1, "{report:#}");
    let imported = app
        .data("{ contact(externalId: \"u-2\") { createdBy } }", json!({}))
        .await;
    assert_eq!(imported["contact"]["createdBy"], writer_id.as_str());
}

#[tokio::test]
async fn a_data_subject_export_holds_everything_and_deletion_leaves_nothing() {
    let app = TestApp::spawn().await;
    app.data(
        "mutation { defineAttribute(input: { name: \"ssn\", type: STRING, sensitive: true }) { attribute { name } } }",
        json!({}),
    )
    .await;
    app.define_attribute("plan", "STRING").await;
    let ada = app
        .upsert(json!({
            "externalId": "u-1", "email": "ada@example.com",
            "attributes": { "ssn": "078-05-1120", "plan": "pro" }
        }))
        .await;
    let lead = app
        .upsert(json!({ "externalId": "lead-9", "name": "Ada L." }))
        .await;
    let id = ada["id"].as_str().unwrap().to_owned();
    app.data(
        "mutation($a: ID!, $b: ID!) { mergeContacts(input: { survivorId: $a, absorbedId: $b, strategy: { externalId: SURVIVOR } }) { merge { id } } }",
        json!({ "a": id, "b": lead["id"] }),
    )
    .await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;

    let export_query = "query($id: ID!) { exportContactData(id: $id) }";
    let document = app.data(export_query, json!({ "id": id })).await["exportContactData"].clone();
    assert_eq!(document["contact"]["email"], "ada@example.com");
    assert_eq!(
        document["contact"]["name"], "Ada L.",
        "filled from the merged lead"
    );
    assert_eq!(document["contact"]["attributes"]["ssn"], "078-05-1120");
    let identities: Vec<&str> = document["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    for held in ["u-1", "lead-9", "ada@example.com"] {
        assert!(identities.contains(&held), "{held} in {identities:?}");
    }
    assert_eq!(document["mergedFrom"], json!([lead["id"]]));
    assert_eq!(
        document["merges"][0]["absorbedBefore"]["externalId"],
        "lead-9"
    );
    assert_eq!(document["segments"], json!(["pros"]));
    // The absorbed id resolves to the same person.
    let via_alias =
        app.data(export_query, json!({ "id": lead["id"] })).await["exportContactData"].clone();
    assert_eq!(via_alias["contact"]["id"], id.as_str());

    let (reader, _) = app
        .create_key(&["contacts:read", "pii:read"], Value::Null)
        .await;
    assert_eq!(
        app.error_code_as(&reader, export_query, json!({ "id": id }))
            .await,
        "FORBIDDEN"
    );

    // Deletion purges the contact, its identities, aliases, merge snapshots and index entry.
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": id }),
    )
    .await;
    for gone in [id.as_str(), lead["id"].as_str().unwrap()] {
        assert_eq!(
            app.error_code(export_query, json!({ "id": gone })).await,
            "NOT_FOUND"
        );
    }
    for identity in [
        "{ contact(identity: { kind: EMAIL, value: \"ada@example.com\" }) { id } }",
        "{ contact(externalId: \"lead-9\") { id } }",
    ] {
        assert_eq!(app.error_code(identity, json!({})).await, "NOT_FOUND");
    }
    let history = app
        .graphql(
            "query($id: ID!) { contactHistory(id: $id) { nodes { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(
        history["data"].is_null() || history["data"]["contactHistory"]["nodes"] == json!([]),
        "{history:#}"
    );
    let counted = app
        .data(
            "{ contacts(segment: \"plan exists\", consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(counted["contacts"]["totalCount"], 0);
}
