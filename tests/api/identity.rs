//! Identity linking: anonymous visitors, verified identify, guardrails, concurrency.

use std::collections::HashSet;

use qwry_contacts::domain::user_hash;
use serde_json::{Value, json};

use crate::helpers::{CONTACT_FIELDS, TestApp};

const SECRET: &str = "workspace-secret-0123456789";

/// The fields of a contact that identity tests look at.
const IDENTITY_FIELDS: &str = "id externalId email name phone attributes updatedAt lastSeenAt mergedFrom \
    identities { nodes { kind value provenance } }";

async fn app_with_secret() -> TestApp {
    let app = TestApp::spawn().await;
    let settings = app
        .data(
            // `setIdentitySecret` is deprecated for `setIdentityVerification`; it works one release more.
            "mutation($s: String!) { setIdentitySecret(secret: $s) { secretSet } }",
            json!({ "s": SECRET }),
        )
        .await;
    assert_eq!(settings["setIdentitySecret"]["secretSet"], true);
    app
}

async fn track(app: &TestApp, anonymous_id: &str, extra: Value) -> Value {
    let mut input = json!({ "anonymousId": anonymous_id });
    input
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let query = format!(
        "mutation($input: TrackVisitorInput!) {{ trackVisitor(input: $input) {{ contact {{ {IDENTITY_FIELDS} }} }} }}"
    );
    app.data(&query, json!({ "input": input })).await["trackVisitor"]["contact"].clone()
}

fn identify_query() -> String {
    format!(
        "mutation($input: IdentifyInput!) {{ identify(input: $input) {{ contact {{ {IDENTITY_FIELDS} }} }} }}"
    )
}

async fn identify(
    app: &TestApp,
    anonymous_id: Option<&str>,
    external_id: &str,
    traits: Value,
) -> Value {
    let input = json!({
        "anonymousId": anonymous_id, "externalId": external_id,
        "proof": { "userHash": user_hash(SECRET.as_bytes(), external_id) }, "traits": traits
    });
    app.data(&identify_query(), json!({ "input": input })).await["identify"]["contact"].clone()
}

fn identities(contact: &Value) -> HashSet<(String, String, String)> {
    contact["identities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["value"].as_str().unwrap().to_owned(),
                i["provenance"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(contact: &Value, kind: &str, value: &str, provenance: &str) -> bool {
    identities(contact).contains(&(kind.to_owned(), value.to_owned(), provenance.to_owned()))
}

async fn by_identity(app: &TestApp, kind: &str, value: &str) -> Value {
    let query =
        format!("query($i: IdentityInput!) {{ contact(identity: $i) {{ {IDENTITY_FIELDS} }} }}");
    app.data(&query, json!({ "i": { "kind": kind, "value": value } }))
        .await["contact"]
        .clone()
}

#[tokio::test]
async fn an_anonymous_visitor_becomes_the_identified_contact() {
    let app = app_with_secret().await;
    app.define_attribute("plan", "STRING").await;
    let visitor = track(&app, "anon-1", json!({ "name": "Visitor" })).await;
    assert!(visitor["externalId"].is_null());
    assert!(
        visitor["lastSeenAt"].is_string(),
        "tracking touches lastSeenAt"
    );
    assert!(has(&visitor, "ANONYMOUS_ID", "anon-1", "SELF_ASSERTED"));
    let again = track(&app, "anon-1", json!({})).await;
    assert_eq!(
        again["id"], visitor["id"],
        "tracking again touches the same contact"
    );

    let user = identify(
        &app,
        Some("anon-1"),
        "user-1",
        json!({ "email": "Ada@Example.com", "attributes": { "plan": "pro" } }),
    )
    .await;
    assert_eq!(
        user["id"], visitor["id"],
        "the visitor's contact becomes the user"
    );
    assert_eq!(user["externalId"], "user-1");
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Visitor");
    assert_eq!(user["attributes"], json!({ "plan": "pro" }));
    assert!(has(&user, "EXTERNAL_ID", "user-1", "VERIFIED"));
    assert!(has(&user, "ANONYMOUS_ID", "anon-1", "SELF_ASSERTED"));
    assert!(has(&user, "EMAIL", "ada@example.com", "SELF_ASSERTED"));
    assert_eq!(app.total_count().await, 1);
    assert_eq!(
        by_identity(&app, "EMAIL", "ADA@example.com").await["id"],
        user["id"]
    );
    assert_eq!(
        by_identity(&app, "ANONYMOUS_ID", "anon-1").await["id"],
        user["id"]
    );
}

#[tokio::test]
async fn identify_with_an_existing_user_merges_the_visitor_and_keeps_its_data() {
    let app = app_with_secret().await;
    app.define_attribute("tags", "STRING_LIST").await;
    app.define_attribute("last_topic", "STRING").await;
    let user = app
        .upsert(json!({ "externalId": "user-7", "name": "Grace", "attributes": { "tags": ["customer"] } }))
        .await;
    let visitor = track(
        &app,
        "anon-7",
        json!({ "phone": "+49 30 1234567", "attributes": { "tags": ["chat"], "last_topic": "billing" } }),
    )
    .await;
    let merged = identify(&app, Some("anon-7"), "user-7", json!({})).await;
    assert_eq!(merged["id"], user["id"], "the identified contact survives");
    assert_eq!(merged["name"], "Grace");
    assert_eq!(
        merged["phone"], "+49301234567",
        "the visitor's phone fills the gap"
    );
    assert_eq!(
        merged["attributes"]["last_topic"], "billing",
        "conversation data is kept"
    );
    assert_eq!(
        merged["attributes"]["tags"],
        json!(["customer", "chat"]),
        "lists union"
    );
    assert_eq!(merged["mergedFrom"], json!([visitor["id"]]));
    assert!(has(&merged, "ANONYMOUS_ID", "anon-7", "SELF_ASSERTED"));
    assert!(
        has(&merged, "EXTERNAL_ID", "user-7", "VERIFIED"),
        "the API claim was upgraded"
    );
    assert_eq!(app.total_count().await, 1);

    // The visitor's id keeps resolving to the survivor.
    let redirected = app.contact(visitor["id"].as_str().unwrap()).await;
    assert_eq!(redirected["id"], user["id"]);
    let history = app
        .data(
            "query($id: ID!) { contactHistory(id: $id) { nodes { reason cause actor survivorId absorbedId absorbedBefore { id name } } } }",
            json!({ "id": user["id"] }),
        )
        .await;
    let history = history["contactHistory"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["reason"], "identify");
    assert_eq!(history[0]["cause"], "IDENTIFY");
    assert_eq!(history[0]["absorbedId"], visitor["id"]);
    assert_eq!(history[0]["absorbedBefore"]["id"], visitor["id"]);
}

#[tokio::test]
async fn a_wrong_or_missing_hash_changes_nothing() {
    let app = app_with_secret().await;
    let visitor = track(&app, "anon-2", json!({})).await;
    let before = app.contact(visitor["id"].as_str().unwrap()).await;
    let input = |hash: Value| {
        json!({ "input": { "anonymousId": "anon-2", "externalId": "user-2", "userHash": hash,
                "traits": { "name": "Mallory" } } })
    };
    let wrong = user_hash(b"another-secret-entirely", "user-2");
    for hash in [json!(wrong), Value::Null, json!(""), json!("not hex")] {
        let error = app.error(&identify_query(), input(hash)).await;
        assert_eq!(
            error["extensions"]["code"], "IDENTITY_NOT_VERIFIED",
            "{error:#}"
        );
    }
    let hash_for_other_user = user_hash(SECRET.as_bytes(), "user-3");
    let code = app
        .error_code(&identify_query(), input(json!(hash_for_other_user)))
        .await;
    assert_eq!(code, "IDENTITY_NOT_VERIFIED");
    let after = app.contact(visitor["id"].as_str().unwrap()).await;
    assert_eq!(after, before);
    assert!(after["externalId"].is_null() && after["name"].is_null());
    assert_eq!(app.total_count().await, 1);
}

#[tokio::test]
async fn identify_without_a_secret_is_not_verified() {
    let app = TestApp::spawn().await;
    let input = json!({ "input": { "externalId": "u", "userHash": user_hash(b"whatever-secret-123", "u") } });
    assert_eq!(
        app.error_code(&identify_query(), input).await,
        "IDENTITY_NOT_VERIFIED"
    );
    assert_eq!(app.total_count().await, 0);
}

#[tokio::test]
async fn replaying_identify_is_a_no_op() {
    let app = app_with_secret().await;
    track(&app, "anon-3", json!({})).await;
    let first = identify(&app, Some("anon-3"), "user-3", json!({ "name": "Ada" })).await;
    let query = format!("query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} }} }}");
    let stored = app.data(&query, json!({ "id": first["id"] })).await;
    for _ in 0..2 {
        let replay = identify(&app, Some("anon-3"), "user-3", json!({ "name": "Ada" })).await;
        assert_eq!(replay, first);
    }
    assert_eq!(app.data(&query, json!({ "id": first["id"] })).await, stored);
    assert_eq!(app.total_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identifies_from_two_visitors_end_in_one_contact() {
    for round in 0..3 {
        let app = app_with_secret().await;
        let (a, b) = (format!("anon-a{round}"), format!("anon-b{round}"));
        track(&app, &a, json!({})).await;
        track(&app, &b, json!({})).await;
        let (first, second) = tokio::join!(
            identify(&app, Some(&a), "user-x", json!({})),
            identify(&app, Some(&b), "user-x", json!({})),
        );
        assert_eq!(
            first["id"], second["id"],
            "round {round}: both land on one contact"
        );
        assert_eq!(app.total_count().await, 1, "round {round}: no orphan");
        let user = by_identity(&app, "EXTERNAL_ID", "user-x").await;
        assert!(has(&user, "ANONYMOUS_ID", &a, "SELF_ASSERTED"), "{user:#}");
        assert!(has(&user, "ANONYMOUS_ID", &b, "SELF_ASSERTED"), "{user:#}");
        assert_eq!(
            by_identity(&app, "ANONYMOUS_ID", &a).await["id"],
            user["id"]
        );
        assert_eq!(
            by_identity(&app, "ANONYMOUS_ID", &b).await["id"],
            user["id"]
        );
    }
}

#[tokio::test]
async fn placeholder_identities_are_refused() {
    let app = app_with_secret().await;
    for placeholder in [
        "anonymous",
        "null",
        "undefined",
        "0",
        "[object Object]",
        " Guest ",
    ] {
        let query =
            "mutation($i: TrackVisitorInput!) { trackVisitor(input: $i) { contact { id } } }";
        let error = app
            .error(query, json!({ "i": { "anonymousId": placeholder } }))
            .await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_IDENTITY",
            "{placeholder:?}: {error:#}"
        );
        let input = json!({ "input": { "externalId": placeholder,
            "userHash": user_hash(SECRET.as_bytes(), placeholder.trim()) } });
        assert_eq!(
            app.error_code(&identify_query(), input).await,
            "INVALID_IDENTITY"
        );
        let upsert =
            "mutation($i: UpsertContactInput!) { upsertContact(input: $i) { contact { id } } }";
        assert_eq!(
            app.error_code(upsert, json!({ "i": { "externalId": placeholder } }))
                .await,
            "INVALID_IDENTITY",
            "{placeholder:?}"
        );
    }
    app.data(
        "mutation { setBlockedIdentityValues(input: { values: [\"test-user\"] }) { identitySettings { blockedValues } } }",
        json!({}),
    )
    .await;
    let input = json!({ "input": { "externalId": "Test-User",
        "userHash": user_hash(SECRET.as_bytes(), "Test-User") } });
    assert_eq!(
        app.error_code(&identify_query(), input).await,
        "INVALID_IDENTITY"
    );
    assert_eq!(app.total_count().await, 0, "nothing was created");
}

#[tokio::test]
async fn a_typed_in_email_never_merges_into_a_verified_customer() {
    let app = app_with_secret().await;
    identify(&app, None, "cust-1", json!({})).await;
    app.upsert(json!({ "externalId": "cust-1", "email": "ceo@bank.example" }))
        .await;
    let customer = by_identity(&app, "EXTERNAL_ID", "cust-1").await;
    assert!(has(&customer, "EMAIL", "ceo@bank.example", "API"));

    let visitor = track(&app, "anon-evil", json!({ "email": "CEO@bank.example" })).await;
    assert_ne!(visitor["id"], customer["id"], "the visitor stays apart");
    assert_eq!(
        visitor["email"], "ceo@bank.example",
        "the typed email is kept on the visitor"
    );
    assert!(!has(&visitor, "EMAIL", "ceo@bank.example", "SELF_ASSERTED"));
    assert_eq!(
        by_identity(&app, "EMAIL", "ceo@bank.example").await["id"],
        customer["id"]
    );
    assert_eq!(app.total_count().await, 2);
}

#[tokio::test]
async fn trusted_claims_of_one_email_link_automatically() {
    let app = app_with_secret().await;
    let lead = track(&app, "anon-lead", json!({})).await;
    // The business's backend records the lead's email: an API claim.
    app.data(
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { email: \"lead@example.com\" } }) { contact { id } } }",
        json!({ "id": lead["id"] }),
    )
    .await;
    let user = app
        .upsert(json!({ "externalId": "signup-1", "email": "lead@example.com" }))
        .await;
    let linked = by_identity(&app, "EMAIL", "lead@example.com").await;
    assert_eq!(linked["id"], user["id"]);
    assert_eq!(linked["mergedFrom"], json!([lead["id"]]));
    assert!(has(&linked, "ANONYMOUS_ID", "anon-lead", "SELF_ASSERTED"));
    assert_eq!(app.total_count().await, 1);
}

#[tokio::test]
async fn identify_takes_one_proof_and_still_reads_the_flat_fields() {
    let app = app_with_secret().await;
    let hash = user_hash(SECRET.as_bytes(), "user-9");
    // The flat `userHash` is deprecated for `proof: { userHash }`; it works one release more.
    let flat = json!({ "input": { "externalId": "user-9", "userHash": hash } });
    let contact = app.data(&identify_query(), flat).await["identify"]["contact"].clone();
    assert_eq!(contact["externalId"], "user-9");
    let both = json!({ "input": { "externalId": "user-9", "proof": { "userHash": hash }, "userHash": hash } });
    assert_eq!(
        app.error_code(&identify_query(), both).await,
        "INVALID_INPUT"
    );
    let two_proofs = json!({ "input": { "externalId": "user-9", "proof": { "userHash": hash, "identityToken": "x" } } });
    let refused = app.error(&identify_query(), two_proofs).await;
    assert!(
        refused["message"].as_str().unwrap().contains("oneOf")
            || refused["message"].as_str().unwrap().contains("exactly one"),
        "{refused}"
    );
}
