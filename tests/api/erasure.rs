//! Erasure that stays erased: `eraseContacts` removes the person, suppresses their identifiers
//! as keyed hashes, refuses later writes naming them (API, import rows, `identify`, visits) with
//! SUPPRESSED until `unsuppressIdentifiers`, and leaves a receipt without personal data.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::TestApp;

const ERASE: &str = "mutation($input: EraseContactsInput!) { eraseContacts(input: $input) { receipt { id erasedAt erasedBy requestedCount erasedCount suppressedHashes } } }";
const UNSUPPRESS: &str = "mutation($input: UnsuppressIdentifiersInput!) { unsuppressIdentifiers(input: $input) { unsuppressedCount } }";
const SECRET: &str = "erasure-test-secret-0123456789";

async fn erase(app: &TestApp, input: Value) -> Value {
    app.data(ERASE, json!({ "input": input })).await["eraseContacts"]["receipt"].clone()
}

fn upsert_query() -> &'static str {
    "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }"
}

#[tokio::test]
async fn an_erased_person_is_gone_and_stays_out_until_an_admin_lifts_the_suppression() {
    let app = TestApp::spawn().await;
    set_secret(&app).await;
    let ada = app
        .upsert(json!({ "externalId": "ext-ada", "email": "ada@example.com", "phone": "+442071838750", "name": "Ada" }))
        .await;
    app.track_visitor("visitor-ada").await;
    // The visitor becomes Ada: her anonymous id is one of her identifiers now.
    app.data(
        "mutation($input: IdentifyInput!) { identify(input: $input) { contact { id } } }",
        json!({ "input": { "anonymousId": "visitor-ada", "externalId": "ext-ada",
            "userHash": qwry_contacts::domain::user_hash(SECRET.as_bytes(), "ext-ada") } }),
    )
    .await;
    let bob = app
        .upsert(json!({ "externalId": "ext-bob", "email": "bob@example.com" }))
        .await;

    let receipt = erase(&app, json!({ "emails": ["ADA@example.com"] })).await;
    assert_eq!(receipt["requestedCount"], 1);
    assert_eq!(receipt["erasedCount"], 1);
    let hashes = receipt["suppressedHashes"].as_array().unwrap();
    assert!(
        hashes.len() >= 3,
        "email, phone and external id at least: {receipt}"
    );
    let text = receipt.to_string();
    for personal in [
        "ada@example.com",
        "ext-ada",
        "+442071838750",
        "visitor-ada",
        "Ada",
    ] {
        assert!(
            !text.contains(personal),
            "the receipt holds `{personal}`: {text}"
        );
    }

    // Gone: by id, by identity, from the index.
    let by_id = app
        .graphql(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": ada["id"] }),
        )
        .await;
    assert_eq!(by_id["data"]["contact"], Value::Null, "{by_id}");
    assert_eq!(app.total_count().await, 1);

    // Every way back is refused, naming the kind of identifier only.
    for input in [
        json!({ "externalId": "ext-ada" }),
        json!({ "externalId": "ext-new", "email": "ada@example.com" }),
        json!({ "externalId": "ext-new", "phone": "+44 20 7183 8750" }),
    ] {
        let error = app.error(upsert_query(), json!({ "input": input })).await;
        assert_eq!(error["extensions"]["code"], "SUPPRESSED", "{error}");
        assert!(
            !error["message"].as_str().unwrap().contains("ada@"),
            "{error}"
        );
    }
    let update = app
        .error(
            "mutation($input: UpdateContactInput!) { updateContact(input: $input) { contact { id } } }",
            json!({ "input": { "id": bob["id"], "patch": { "email": "ada@example.com" } } }),
        )
        .await;
    assert_eq!(update["extensions"]["code"], "SUPPRESSED", "{update}");
    let visit = app
        .error(
            "mutation { trackVisitor(input: { anonymousId: \"visitor-ada\" }) { contact { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(visit["extensions"]["code"], "SUPPRESSED", "{visit}");

    // An import: the suppressed rows fail one by one, the others land.
    let report = app
        .import(
            "",
            "{\"externalId\":\"ext-ada\",\"name\":\"Ada again\"}\n\
             {\"externalId\":\"ext-carol\",\"email\":\"ada@example.com\"}\n\
             {\"externalId\":\"ext-dan\",\"email\":\"dan@example.com\"}\n",
        )
        .await;
    assert_eq!(report["created"], 1, "{report:#}");
    assert_eq!(
        crate::bulk::row_errors(&report),
        vec![(1, "SUPPRESSED"), (2, "SUPPRESSED")],
        "{report:#}"
    );

    // An admin lifts the suppression of the external id: it is accepted again, the email not.
    let lifted = app
        .data(
            UNSUPPRESS,
            json!({ "input": { "externalIds": ["ext-ada"] } }),
        )
        .await;
    assert_eq!(lifted["unsuppressIdentifiers"]["unsuppressedCount"], 1);
    app.upsert(json!({ "externalId": "ext-ada" })).await;
    let still = app
        .error(
            upsert_query(),
            json!({ "input": { "externalId": "ext-ada", "email": "ada@example.com" } }),
        )
        .await;
    assert_eq!(still["extensions"]["code"], "SUPPRESSED");

    // The receipt is kept for admins.
    let receipts = app
        .data(
            "{ erasureReceipts { totalCount nodes { id erasedCount suppressedHashes } } }",
            json!({}),
        )
        .await;
    assert_eq!(receipts["erasureReceipts"]["totalCount"], 1);
    assert_eq!(receipts["erasureReceipts"]["nodes"][0]["id"], receipt["id"]);
    app.stop().await;
}

async fn set_secret(app: &TestApp) {
    app.data(
        "mutation($input: SetIdentityVerificationInput!) { setIdentityVerification(input: $input) { identitySettings { secretSet } } }",
        json!({ "input": { "hmacSecret": SECRET } }),
    )
    .await;
}

#[tokio::test]
async fn a_suppressed_identity_token_is_refused() {
    let app = TestApp::spawn().await;
    set_secret(&app).await;
    erase(&app, json!({ "externalIds": ["user-77"] })).await;
    let claims = json!({ "sub": "user-77", "exp": Utc::now().timestamp() + 300 });
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let refused = app
        .error(
            "mutation($input: IdentifyInput!) { identify(input: $input) { contact { id } } }",
            json!({ "input": { "anonymousId": "visitor-77", "identityToken": token } }),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "SUPPRESSED", "{refused}");
    assert_eq!(app.total_count().await, 0, "nothing was written");
    app.stop().await;
}

#[tokio::test]
async fn thousands_of_people_are_erased_in_one_call_and_bad_input_erases_nobody() {
    let app = TestApp::spawn().await;
    let lines: String = (0..200)
        .map(|n| format!("{{\"externalId\":\"bulk-{n}\",\"email\":\"p{n}@example.com\"}}\n"))
        .collect();
    assert_eq!(app.import("", lines).await["created"], 200);

    // One malformed email: the whole call is refused, nobody is erased.
    let bad = app
        .error(
            ERASE,
            json!({ "input": { "externalIds": ["bulk-0"], "emails": ["not an email"] } }),
        )
        .await;
    assert_eq!(bad["extensions"]["code"], "INVALID_INPUT", "{bad}");
    assert_eq!(app.total_count().await, 200);

    // 5,000 emails in one call: the 200 that exist are erased, every one is suppressed.
    let emails: Vec<String> = (0..5_000).map(|n| format!("p{n}@example.com")).collect();
    let receipt = erase(&app, json!({ "emails": emails })).await;
    assert_eq!(receipt["requestedCount"], 5_000);
    assert_eq!(receipt["erasedCount"], 200);
    assert_eq!(app.total_count().await, 0);
    let again = app
        .error(
            upsert_query(),
            json!({ "input": { "externalId": "bulk-1" } }),
        )
        .await;
    assert_eq!(again["extensions"]["code"], "SUPPRESSED");
    let never_seen = app
        .error(
            upsert_query(),
            json!({ "input": { "externalId": "fresh", "email": "p4999@example.com" } }),
        )
        .await;
    assert_eq!(never_seen["extensions"]["code"], "SUPPRESSED");
    app.stop().await;
}

#[tokio::test]
async fn only_admin_keys_erase_lift_or_read_receipts() {
    let app = TestApp::spawn().await;
    let (writer, _) = app
        .create_key(&["contacts:read", "contacts:write"], json!(null))
        .await;
    for (query, variables) in [
        (ERASE, json!({ "input": { "emails": ["a@example.com"] } })),
        (
            UNSUPPRESS,
            json!({ "input": { "emails": ["a@example.com"] } }),
        ),
        ("{ erasureReceipts { totalCount } }", json!({})),
    ] {
        assert_eq!(
            app.error_code_as(&writer, query, variables).await,
            "FORBIDDEN",
            "{query}"
        );
    }
    app.stop().await;
}
