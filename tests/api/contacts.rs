//! Reading, listing, patching and deleting contacts.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{CONTACT_FIELDS, TestApp};

#[tokio::test]
async fn upserted_contact_reads_back_by_id_and_external_id_with_normalised_fields() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let created = app
        .upsert(json!({
            "externalId": " user-1 ", "email": " Ada@Example.COM", "name": "Ada Lovelace",
            "phone": "+44 20 7946 0958", "company": "Analytical Engines", "accountRef": "ACC-1",
            "lastSeenAt": "2026-11-01T10:00:00Z", "attributes": { "plan": "pro" }
        }))
        .await;
    assert_eq!(created["externalId"], "user-1");
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["phone"], "+442079460958");
    assert_eq!(created["accountRef"], "ACC-1");
    assert_eq!(created["attributes"], json!({ "plan": "pro" }));
    assert_eq!(created["lastSeenAt"], "2026-11-01T10:00:00+00:00");
    assert_eq!(created["createdAt"], created["updatedAt"]);

    let by_id = app.contact(created["id"].as_str().unwrap()).await;
    assert_eq!(by_id, created);
    let query = format!("{{ contact(externalId: \"user-1\") {{ {CONTACT_FIELDS} }} }}");
    assert_eq!(app.data(&query, json!({})).await["contact"], created);
}

#[tokio::test]
async fn contacts_page_in_stable_order_without_skips_or_repeats() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for n in 0..25 {
        created.push(app.upsert(json!({ "externalId": format!("u{n}") })).await["id"].clone());
    }
    let query = "query($after: String) { contacts(first: 10, after: $after, consistency: LATEST) {
        totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let page = app.data(query, json!({ "after": after })).await["contacts"].clone();
        assert_eq!(page["totalCount"], created.len());
        assert_eq!(page["pageInfo"]["hasPreviousPage"], !after.is_null());
        seen.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edge| edge["node"]["id"].clone()),
        );
        pages += 1;
        // A contact created mid-iteration sorts after everything seen so far.
        if pages == 1 {
            created.push(app.upsert(json!({ "externalId": "late" })).await["id"].clone());
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, created,
        "pages must list every contact once, in creation order"
    );
}

#[tokio::test]
async fn update_sets_given_fields_clears_nulls_and_keeps_the_rest() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("ltv", "NUMBER").await;
    let created = app
        .upsert(json!({
            "externalId": "u1", "email": "a@example.com", "name": "Ada", "company": "Acme",
            "attributes": { "plan": "free", "ltv": 10 }
        }))
        .await;
    let query = format!(
        "mutation($id: ID!, $patch: ContactPatchInput!) {{ updateContact(input: {{ id: $id, patch: $patch }}) {{ contact {{ {CONTACT_FIELDS} }} }} }}"
    );
    let patch =
        json!({ "name": "Ada L.", "company": null, "attributes": { "plan": "pro", "ltv": null } });
    let updated = app
        .data(&query, json!({ "id": created["id"], "patch": patch }))
        .await["updateContact"]["contact"]
        .clone();
    assert_eq!(updated["name"], "Ada L.");
    assert_eq!(updated["company"], Value::Null);
    assert_eq!(updated["email"], "a@example.com");
    assert_eq!(updated["externalId"], "u1");
    assert_eq!(updated["attributes"], json!({ "plan": "pro" }));
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(updated["updatedAt"].as_str() > created["updatedAt"].as_str());
    assert_eq!(app.contact(created["id"].as_str().unwrap()).await, updated);

    let anonymous = app
        .data(
            &query,
            json!({ "id": created["id"], "patch": { "externalId": null } }),
        )
        .await["updateContact"]["contact"]
        .clone();
    assert_eq!(anonymous["externalId"], Value::Null);
}

#[tokio::test]
async fn delete_removes_the_contact_entirely() {
    let app = TestApp::spawn().await;
    let id = app.upsert(json!({ "externalId": "gone" })).await["id"].clone();
    let deleted = app
        .data(
            "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(deleted["deleteContact"]["deletedId"], id);
    let query = "query($id: ID!) { contact(id: $id) { id } }";
    assert_eq!(
        app.error_code(query, json!({ "id": id })).await,
        "NOT_FOUND"
    );
    assert_eq!(app.total_count().await, 0);
    // The external id is free again: a new upsert creates a new contact.
    let again = app.upsert(json!({ "externalId": "gone" })).await["id"].clone();
    assert_ne!(again, id);
}

#[tokio::test]
async fn anonymous_contacts_do_not_collide_on_the_external_id_index() {
    let app = TestApp::spawn().await;
    let query = "mutation($id: ID!) { updateContact(input: { id: $id, patch: { externalId: null } }) { contact { id } } }";
    let mut ids = HashSet::new();
    for n in 0..3 {
        let id = app.upsert(json!({ "externalId": format!("tmp{n}") })).await["id"].clone();
        app.data(query, json!({ "id": id })).await;
        ids.insert(id.to_string());
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(app.total_count().await, 3);
}
