//! Every failure is a GraphQL error with `extensions.code`, and failed mutations write nothing.

use serde_json::json;

use crate::helpers::{CONTACT_FIELDS, TestApp};

const UPSERT: &str =
    "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
const UPDATE: &str = "mutation($id: ID!, $patch: ContactPatchInput!) { updateContact(input: { id: $id, patch: $patch }) { contact { id } } }";

#[tokio::test]
async fn missing_records_are_not_found() {
    let app = TestApp::spawn().await;
    let absent = "01JD0000000000000000000000";
    let cases = [
        (
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": absent }),
        ),
        ("{ contact(externalId: \"nobody\") { id } }", json!({})),
        (
            "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
            json!({ "id": absent }),
        ),
        (UPDATE, json!({ "id": absent, "patch": { "name": "x" } })),
    ];
    for (query, variables) in cases {
        let error = app.error(query, variables).await;
        assert_eq!(error["extensions"]["code"], "NOT_FOUND", "{query}: {error}");
    }
    let error = app
        .error(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": absent }),
        )
        .await;
    assert_eq!(
        error["message"],
        format!("contact `{absent}` does not exist")
    );
}

#[tokio::test]
async fn malformed_input_is_invalid_input_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            UPSERT,
            json!({ "input": { "externalId": "u1", "email": "not-an-email" } }),
            "email",
        ),
        (
            UPSERT,
            json!({ "input": { "externalId": "u1", "phone": "12" } }),
            "phone",
        ),
        (
            UPSERT,
            json!({ "input": { "externalId": "  " } }),
            "externalId",
        ),
        (
            UPSERT,
            json!({ "input": { "externalId": "u1", "name": "" } }),
            "name",
        ),
        (
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": "nope" }),
            "id",
        ),
        ("{ contact { id } }", json!({}), "by"),
        (
            "{ contacts(first: 101) { totalCount } }",
            json!({}),
            "first",
        ),
        ("{ contacts(first: -1) { totalCount } }", json!({}), "first"),
        (
            "{ contacts(after: \"bogus\") { totalCount } }",
            json!({}),
            "after",
        ),
    ];
    for (query, variables, field) in cases {
        let error = app.error(query, variables.clone()).await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{variables}: {error}"
        );
        assert_eq!(error["extensions"]["field"], field, "{variables}: {error}");
    }
    let error = app
        .error(
            UPSERT,
            json!({ "input": { "externalId": "u1", "email": "ada@" } }),
        )
        .await;
    assert_eq!(
        error["message"],
        "`ada@` is not a valid email address, e.g. `ada@example.com`"
    );
    assert_eq!(app.total_count().await, 0);
}

#[tokio::test]
async fn graphql_level_errors_carry_a_code_too() {
    let app = TestApp::spawn().await;
    for query in [
        "{ contacts { nope } }",
        "{ contacts(",
        "mutation { upsertContact(input: {}) { contact { id } } }",
    ] {
        let code = app.error_code(query, json!({})).await;
        assert_eq!(code, "INVALID_INPUT", "{query}");
    }
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_INPUT");
}

#[tokio::test]
async fn taken_external_ids_conflict_and_leave_the_contact_as_it_was() {
    let app = TestApp::spawn().await;
    app.upsert(json!({ "externalId": "taken" })).await;
    let other = app
        .upsert(json!({ "externalId": "mine", "name": "Bo" }))
        .await;
    let error = app
        .error(
            UPDATE,
            json!({ "id": other["id"], "patch": { "externalId": "taken", "name": "Changed" } }),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "CONFLICT");
    assert_eq!(
        error["message"],
        "external id `taken` already belongs to another contact"
    );
    assert_eq!(app.contact(other["id"].as_str().unwrap()).await, other);
}

#[tokio::test]
async fn a_failed_update_changes_nothing() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let contact = app
        .upsert(json!({ "externalId": "u1", "name": "Ada", "attributes": { "plan": "free" } }))
        .await;
    let patch = json!({ "name": "Changed", "attributes": { "plan": "pro", "unknown": 1 } });
    let error = app
        .error(UPDATE, json!({ "id": contact["id"], "patch": patch }))
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_ATTRIBUTE");
    let query = format!("query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}");
    assert_eq!(
        app.data(&query, json!({ "id": contact["id"] })).await["contact"],
        contact
    );
}

/// The messages a newcomer met name the field and the fix.
#[tokio::test]
async fn messages_name_the_field_and_the_fix() {
    let app = TestApp::spawn().await;
    let error = app
        .error(
            UPSERT,
            json!({ "input": { "externalId": "u-1", "lastSeenAt": "yesterday" } }),
        )
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("`lastSeenAt` of `"), "{message}");
    assert!(message.contains("\"2026-01-31T09:30:00Z\""), "{message}");
    assert_eq!(error["extensions"]["code"], "INVALID_INPUT");

    let error = app
        .error(
            UPSERT,
            json!({ "input": { "externalId": "u-1", "attributes": { "email": "ann@example.com" } } }),
        )
        .await;
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("`email` is a built-in field, not an attribute"),
        "{message}"
    );

    let validation = app
        .data(
            "query($t: String!) { validateSegment(text: $t) { valid errors { message hint } } }",
            json!({ "t": "lastSeenAt within 30d" }),
        )
        .await;
    let diagnostic = &validation["validateSegment"]["errors"][0];
    assert!(
        diagnostic["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `last_seen_at`?"),
        "{diagnostic}"
    );
    assert!(
        !diagnostic["hint"]
            .as_str()
            .unwrap()
            .contains("defineAttribute"),
        "{diagnostic}"
    );
    assert_eq!(app.total_count().await, 0, "nothing was written");
}
