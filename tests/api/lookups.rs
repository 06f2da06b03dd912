//! "Exactly one of" arguments are `@oneOf` inputs: `contact(by:)`, `matchSegments(contact:)`,
//! the `contact` of activity writes; and `node(id:)` finds a record by its id alone, checked
//! as its own field checks it.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_contact_is_found_by_exactly_one_key() {
    let app = TestApp::spawn().await;
    let ada = app
        .upsert(json!({ "externalId": "ada", "email": "ada@example.com" }))
        .await;
    let id = ada["id"].as_str().unwrap();
    let found = [
        json!({ "id": id }),
        json!({ "externalId": "ada" }),
        json!({ "identity": { "kind": "EMAIL", "value": "ADA@example.com" } }),
    ];
    let query = "query($by: ContactLookupInput!) { contact(by: $by) { id } }";
    for by in found {
        let contact = app.data(query, json!({ "by": by })).await;
        assert_eq!(contact["contact"]["id"], id, "{by}");
    }
    // The separate arguments are deprecated for `by`; they work one release more.
    let old = app
        .data("{ contact(externalId: \"ada\") { id } }", json!({}))
        .await;
    assert_eq!(old["contact"]["id"], id);

    // Two keys in `by` break its @oneOf rule; `by` beside a separate argument, or nothing, is
    // INVALID_INPUT.
    let two = app
        .error(query, json!({ "by": { "id": id, "externalId": "ada" } }))
        .await;
    assert!(
        two["message"].as_str().unwrap().contains("exactly one"),
        "{two}"
    );
    for query in [
        "{ contact(by: { externalId: \"ada\" }, externalId: \"ada\") { id } }",
        "{ contact { id } }",
    ] {
        assert_eq!(
            app.error_code(query, json!({})).await,
            "INVALID_INPUT",
            "{query}"
        );
    }

    let matched = app
        .data(
            "{ matchSegments(contact: { externalId: \"ada\" }) { contactId } }",
            json!({}),
        )
        .await;
    assert_eq!(matched["matchSegments"]["contactId"], id);
}

#[tokio::test]
async fn an_activity_write_names_its_contact_once() {
    let app = TestApp::spawn().await;
    let ada = app.upsert(json!({ "externalId": "ada" })).await;
    let record = "mutation($input: RecordEventInput!) { recordEvent(input: $input) { event { contactId } } }";
    let by_contact = app
        .data(
            record,
            json!({ "input": { "contact": { "externalId": "ada" }, "name": "login" } }),
        )
        .await;
    assert_eq!(by_contact["recordEvent"]["event"]["contactId"], ada["id"]);
    // The flat fields are deprecated for `contact`; they work one release more.
    let flat = app
        .data(
            record,
            json!({ "input": { "externalId": "ada", "name": "login" } }),
        )
        .await;
    assert_eq!(flat["recordEvent"]["event"]["contactId"], ada["id"]);
    let both = json!({ "input": { "contact": { "externalId": "ada" }, "externalId": "ada", "name": "login" } });
    assert_eq!(app.error_code(record, both).await, "INVALID_INPUT");
    let visitor = app
        .data(
            "mutation { recordConversation(input: { contact: { anonymousId: \"v-1\" }, conversationId: \"c-1\", startedAt: \"2026-11-30T10:00:00Z\" }) { conversation { contactId } } }",
            json!({}),
        )
        .await;
    assert!(visitor["recordConversation"]["conversation"]["contactId"].is_string());
}

#[tokio::test]
async fn node_finds_each_record_by_its_id_as_its_own_field_would() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let ada = app
        .upsert(json!({ "externalId": "ada", "email": "ada@example.com", "name": "Ada" }))
        .await;
    let bob = app.track_visitor("v-bob").await;
    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": ada["id"], "a": bob["id"] }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    let (reader, reader_id) = app
        .create_key(&["contacts:read"], json!({ "fields": ["name"] }))
        .await;
    let hook = app
        .data(
            "mutation { createWebhook(input: { url: \"http://127.0.0.1:9/hook\", events: [CONTACT_CHANGED] }) { webhook { id } } }",
            json!({}),
        )
        .await["createWebhook"]["webhook"]["id"]
        .clone();

    let node = "query($id: ID!) { node(id: $id) { __typename id \
        ... on Contact { externalId name email } ... on Merge { survivorId } \
        ... on ApiKey { name } ... on Webhook { url } } }";
    let cases = [
        (ada["id"].clone(), "Contact"),
        (merge.clone(), "Merge"),
        (json!(reader_id), "ApiKey"),
        (hook.clone(), "Webhook"),
    ];
    for (id, typename) in cases {
        let found = app.data(node, json!({ "id": id })).await["node"].clone();
        assert_eq!(found["__typename"], typename, "{found}");
        assert_eq!(found["id"], id, "{found}");
    }
    // The absorbed contact's id resolves to the survivor, as `contact(by: { id })` does.
    let absorbed = app.data(node, json!({ "id": bob["id"] })).await["node"].clone();
    assert_eq!(absorbed["id"], ada["id"]);

    // A reader sees a contact through its field policy, and no key or endpoint.
    let seen = app.data_as(&reader, node, json!({ "id": ada["id"] })).await["node"].clone();
    assert_eq!(
        (seen["name"].as_str(), seen["email"].as_str()),
        (Some("Ada"), None)
    );
    assert!(seen["externalId"].is_null());
    for id in [json!(reader_id), hook] {
        assert_eq!(
            app.error_code_as(&reader, node, json!({ "id": id })).await,
            "FORBIDDEN"
        );
    }
    for id in [
        "01JD0000000000000000000000",
        "key_01JD0000000000000000000000",
        "wh_nope",
        "nope",
    ] {
        assert_eq!(
            app.error_code(node, json!({ "id": id })).await,
            "NOT_FOUND",
            "{id}"
        );
    }
}
