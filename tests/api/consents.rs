//! Consent per purpose: a workspace declares purposes (`defineConsentPurpose`, admin); a
//! contact's latest statement per purpose is set with `setConsents`, import rows (`consents`)
//! and identity tokens' `consents` claim, read as `Contact.consents` and in the exports, and
//! tested in segments (`consent "purpose"`, `{ consent: { purpose } }`); a grant enters and a
//! withdrawal leaves such segments at once, with cause CONSENT in the feed.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp};
use crate::live::{MEMBERSHIP, SAVE, Subscriber};

const DEFINE: &str = "mutation($name: String!, $description: String!) { defineConsentPurpose(input: { name: $name, description: $description }) { purpose { name description createdAt } } }";
const SET: &str = "mutation($input: SetConsentsInput!) { setConsents(input: $input) { changed contact { id consents { purpose status granted at source provenance recordedBy } } } }";
const CONSENTS: &str = "query($id: ID!) { contact(id: $id) { consents { purpose status granted source provenance recordedBy } } }";
const SECRET: &str = "consent-test-secret-0123456789";

async fn define(app: &TestApp, name: &str) -> Value {
    app.data(
        DEFINE,
        json!({ "name": name, "description": format!("{name} from us") }),
    )
    .await["defineConsentPurpose"]["purpose"]
        .clone()
}

async fn set(app: &TestApp, id: &str, consents: Value) -> Value {
    app.data(
        SET,
        json!({ "input": { "contactId": id, "consents": consents, "source": "signup_form" } }),
    )
    .await["setConsents"]
        .clone()
}

fn id_of(contact: &Value) -> String {
    contact["id"].as_str().unwrap().to_owned()
}

async fn count(app: &TestApp, text: &str) -> u64 {
    app.data(
        "query($t: String!) { contacts(segment: $t, first: 0, consistency: LATEST) { totalCount } }",
        json!({ "t": text }),
    )
    .await["contacts"]["totalCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn purposes_are_declared_and_statements_read_back_with_their_origin() {
    let app = TestApp::spawn().await;
    let purpose = define(&app, "marketing_email").await;
    assert_eq!(purpose["name"], "marketing_email");
    // Declaring again updates the description and keeps the purpose.
    let redefined = app
        .data(
            DEFINE,
            json!({ "name": "marketing_email", "description": "Our newsletter" }),
        )
        .await["defineConsentPurpose"]["purpose"]
        .clone();
    assert_eq!(redefined["description"], "Our newsletter");
    assert_eq!(redefined["createdAt"], purpose["createdAt"]);
    let listed = app
        .data("{ consentPurposes { name description } }", json!({}))
        .await;
    assert_eq!(
        listed["consentPurposes"],
        json!([{ "name": "marketing_email", "description": "Our newsletter" }])
    );
    for bad in ["Marketing", "sms-text", ""] {
        let error = app
            .error(DEFINE, json!({ "name": bad, "description": "x" }))
            .await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{bad}: {error}"
        );
    }

    let ada = id_of(&app.upsert(json!({ "externalId": "ada" })).await);
    let granted = set(
        &app,
        &ada,
        json!([{ "purpose": "marketing_email", "granted": true }]),
    )
    .await;
    assert_eq!(granted["changed"], json!(["marketing_email"]));
    let consent = &granted["contact"]["consents"][0];
    assert_eq!(consent["purpose"], "marketing_email");
    assert_eq!(consent["status"], "GRANTED");
    assert_eq!(consent["granted"], true);
    assert_eq!(consent["source"], "signup_form");
    assert_eq!(consent["provenance"], "API");
    assert!(
        consent["recordedBy"]
            .as_str()
            .is_some_and(|by| !by.is_empty())
    );

    // Repeating the statement changes nothing, and keeps the first record's time.
    let repeated = set(
        &app,
        &ada,
        json!([{ "purpose": "marketing_email", "granted": true }]),
    )
    .await;
    assert_eq!(repeated["changed"], json!([]));
    assert_eq!(repeated["contact"]["consents"][0]["at"], consent["at"]);

    // Undeclared purposes, repeated purposes and unknown contacts are refused, writing nothing.
    for (consents, code) in [
        (
            json!([{ "purpose": "sms", "granted": true }]),
            "INVALID_INPUT",
        ),
        (
            json!([{ "purpose": "marketing_email", "granted": false }, { "purpose": "marketing_email", "granted": true }]),
            "INVALID_INPUT",
        ),
    ] {
        let error = app
            .error(
                SET,
                json!({ "input": { "contactId": ada, "consents": consents } }),
            )
            .await;
        assert_eq!(error["extensions"]["code"], code, "{error}");
    }
    let missing = app
        .error(
            SET,
            json!({ "input": { "contactId": "01JAAAAAAAAAAAAAAAAAAAAAAA", "consents": [] } }),
        )
        .await;
    assert_eq!(missing["extensions"]["code"], "NOT_FOUND", "{missing}");
    let read = app.data(CONSENTS, json!({ "id": ada })).await;
    assert_eq!(
        read["contact"]["consents"][0]["status"], "GRANTED",
        "{read}"
    );

    // The data subject export and the bulk export carry them; the export imports back as is.
    let export = app
        .data(
            "query($id: ID!) { exportContactData(id: $id) }",
            json!({ "id": ada }),
        )
        .await;
    let exported = &export["exportContactData"]["contact"]["consents"]["marketing_email"];
    assert_eq!(exported["granted"], true, "{export}");
    assert_eq!(exported["source"], "signup_form");
    assert_eq!(exported["provenance"], "api");
    let lines = app.export("").await;
    assert_eq!(lines[0]["consents"]["marketing_email"]["granted"], true);
    let line = format!("{}\n", lines[0]);
    let report = app.import("", line).await;
    assert_eq!(report["unchanged"], 1, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_enters_and_a_withdrawal_leaves_at_once_with_cause_consent() {
    let app = TestApp::spawn().await;
    define(&app, "marketing_email").await;
    app.data(
        SAVE,
        json!({ "slug": "mailable", "text": "consent \"marketing_email\"" }),
    )
    .await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("1", MEMBERSHIP, json!({ "slug": "mailable" }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ada = id_of(&app.upsert(json!({ "externalId": "ada" })).await);
    app.upsert(json!({ "externalId": "bob" })).await;

    set(
        &app,
        &ada,
        json!([{ "purpose": "marketing_email", "granted": true }]),
    )
    .await;
    let entered = subscriber.entry().await;
    assert_eq!(
        (&entered["contactId"], &entered["kind"], &entered["cause"]),
        (&json!(ada), &json!("ENTER"), &json!("CONSENT")),
        "{entered}"
    );
    // Bob never said anything: he is not a member, and `not consent` counts him.
    assert_eq!(count(&app, "consent \"marketing_email\"").await, 1);
    assert_eq!(count(&app, "not consent \"marketing_email\"").await, 1);

    // Another write to her keeps her in and records nothing.
    app.upsert(json!({ "externalId": "ada", "name": "Ada" }))
        .await;
    set(
        &app,
        &ada,
        json!([{ "purpose": "marketing_email", "granted": false }]),
    )
    .await;
    let left = subscriber.entry().await;
    assert_eq!(
        (&left["contactId"], &left["kind"], &left["cause"]),
        (&json!(ada), &json!("EXIT"), &json!("CONSENT")),
        "{left}"
    );
    assert_eq!(count(&app, "consent \"marketing_email\"").await, 0);
    let read = app.data(CONSENTS, json!({ "id": ada })).await;
    assert_eq!(read["contact"]["consents"][0]["status"], "WITHDRAWN");

    // The structured input says the same: Ada withdrew and Bob never said.
    let tree = app
        .data(
            "query($w: SegmentExprInput!) { contacts(where: $w, consistency: LATEST) { totalCount } }",
            json!({ "w": { "not": { "consent": { "purpose": "marketing_email" } } } }),
        )
        .await;
    assert_eq!(tree["contacts"]["totalCount"], 2, "{tree}");

    // An undeclared purpose is a typed error with a span on the name.
    let invalid = app
        .data(
            "query($t: String!) { validateSegment(text: $t) { valid errors { errorCode start end message } } }",
            json!({ "t": "consent \"marketing_emial\"" }),
        )
        .await;
    let error = &invalid["validateSegment"]["errors"][0];
    assert_eq!(error["errorCode"], "UNKNOWN_PURPOSE", "{invalid}");
    assert_eq!(
        (error["start"].as_u64(), error["end"].as_u64()),
        (Some(8), Some(25))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `marketing_email`?")
    );
}

#[tokio::test]
async fn import_rows_and_identity_tokens_state_consents() {
    let app = TestApp::spawn().await;
    define(&app, "marketing_email").await;
    define(&app, "sms").await;
    let report = app
        .import(
            "",
            "{\"externalId\":\"ada\",\"consents\":{\"marketing_email\":true,\"sms\":false}}\n\
             {\"externalId\":\"bob\",\"consents\":{\"fax\":true}}\n\
             {\"externalId\":\"cy\",\"consents\":{\"sms\":\"granted\"}}\n",
        )
        .await;
    assert_eq!(report["created"], 2, "{report:#}");
    assert_eq!(
        crate::bulk::row_errors(&report),
        vec![(2, "INVALID_INPUT")],
        "{report:#}"
    );
    assert_eq!(count(&app, "consent \"marketing_email\"").await, 1);
    assert_eq!(count(&app, "consent \"sms\"").await, 1);

    // A CSV cell states them as `purpose=true; purpose=false`; a re-sent row changes nothing.
    let csv = "externalId,consents\nada,marketing_email=false; sms=true\n";
    let report = app.import("?format=csv", csv).await;
    assert_eq!(report["updated"], 1, "{report:#}");
    assert_eq!(app.import("?format=csv", csv).await["unchanged"], 1);
    assert_eq!(count(&app, "consent \"marketing_email\"").await, 0);
    assert_eq!(count(&app, "consent \"sms\"").await, 2);
    let ada = app
        .data("{ contacts(segment: \"external_id = \\\"ada\\\"\", first: 1, consistency: LATEST) { edges { node { consents { purpose granted provenance } } } } }", json!({}))
        .await;
    let consents = &ada["contacts"]["edges"][0]["node"]["consents"];
    assert_eq!(
        consents,
        &json!([
            { "purpose": "marketing_email", "granted": false, "provenance": "IMPORTED" },
            { "purpose": "sms", "granted": true, "provenance": "IMPORTED" },
        ])
    );

    // An identity token's claim states consents as verified; an undeclared one refuses it.
    app.data(
        "mutation($input: SetIdentityVerificationInput!) { setIdentityVerification(input: $input) { identitySettings { secretSet } } }",
        json!({ "input": { "hmacSecret": SECRET } }),
    )
    .await;
    let token = |consents: Value| {
        let claims =
            json!({ "sub": "dee", "exp": Utc::now().timestamp() + 300, "consents": consents });
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let identify = "mutation($input: IdentifyInput!) { identify(input: $input) { contact { consents { purpose granted provenance } } } }";
    let refused = app
        .error(
            identify,
            json!({ "input": { "identityToken": token(json!({ "fax": true })) } }),
        )
        .await;
    assert_eq!(refused["extensions"]["code"], "INVALID_INPUT", "{refused}");
    let identified = app
        .data(
            identify,
            json!({ "input": { "identityToken": token(json!({ "marketing_email": true })) } }),
        )
        .await;
    assert_eq!(
        identified["identify"]["contact"]["consents"],
        json!([{ "purpose": "marketing_email", "granted": true, "provenance": "VERIFIED" }])
    );
    assert_eq!(count(&app, "consent \"marketing_email\"").await, 1);
}

#[tokio::test]
async fn only_keys_that_may_read_consents_see_or_test_them() {
    let app = TestApp::spawn().await;
    define(&app, "sms").await;
    let ada = id_of(
        &app.upsert(json!({ "externalId": "ada", "email": "ada@example.com" }))
            .await,
    );
    set(&app, &ada, json!([{ "purpose": "sms", "granted": true }])).await;

    let (limited, _) = app
        .create_key(
            &["contacts:read", "contacts:write", "segments:read"],
            json!({ "fields": ["email"] }),
        )
        .await;
    let read = app.data_as(&limited, CONSENTS, json!({ "id": ada })).await;
    assert_eq!(read["contact"]["consents"], json!([]), "{read}");
    let tested = app
        .graphql_as(
            &limited,
            "{ contacts(segment: \"consent \\\"sms\\\"\", first: 0) { totalCount } }",
            json!({}),
        )
        .await;
    let error = &tested["errors"][0]["extensions"];
    assert_eq!(error["code"], "FORBIDDEN", "{tested}");
    assert_eq!(
        error["diagnostics"][0]["code"], "FIELD_NOT_APPROVED",
        "{tested}"
    );
    // The export leaves them out for that key.
    let (exporter, _) = app
        .create_key(&["contacts:read"], json!({ "fields": ["email"] }))
        .await;
    let text = app.get_text_as(&exporter, "/v1/contacts/export").await;
    assert!(!text.contains("consents"), "{text}");

    // Declaring purposes needs admin; stating consents needs contacts:write.
    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    assert_eq!(
        app.error_code_as(
            &reader,
            DEFINE,
            json!({ "name": "fax", "description": "x" })
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.error_code_as(
            &reader,
            SET,
            json!({ "input": { "contactId": ada, "consents": [{ "purpose": "sms", "granted": false }] } })
        )
        .await,
        "FORBIDDEN"
    );
    let still = app.data(CONSENTS, json!({ "id": ada })).await;
    assert_eq!(still["contact"]["consents"][0]["granted"], true);
}

#[tokio::test]
async fn a_merge_keeps_the_later_statement_and_an_unmerge_gives_each_its_own_back() {
    let app = TestApp::spawn().await;
    define(&app, "sms").await;
    define(&app, "marketing_email").await;
    let ada = id_of(&app.upsert(json!({ "externalId": "ada" })).await);
    let visitor = id_of(&app.track_visitor("visitor-ada").await);
    set(&app, &ada, json!([{ "purpose": "sms", "granted": true }, { "purpose": "marketing_email", "granted": true }])).await;
    // Later, the visitor withdrew sms.
    set(
        &app,
        &visitor,
        json!([{ "purpose": "sms", "granted": false }]),
    )
    .await;

    let merged = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": ada, "a": visitor }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    let states = |read: &Value| -> Vec<(String, bool)> {
        read["contact"]["consents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["purpose"].as_str().unwrap().to_owned(),
                    c["granted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let after = app.data(CONSENTS, json!({ "id": ada })).await;
    assert_eq!(
        states(&after),
        [
            ("marketing_email".to_owned(), true),
            ("sms".to_owned(), false)
        ]
    );
    assert_eq!(count(&app, "consent \"sms\"").await, 0);

    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merged }),
    )
    .await;
    let ada_again = app.data(CONSENTS, json!({ "id": ada })).await;
    assert_eq!(
        states(&ada_again),
        [
            ("marketing_email".to_owned(), true),
            ("sms".to_owned(), true)
        ]
    );
    let visitor_again = app.data(CONSENTS, json!({ "id": visitor })).await;
    assert_eq!(states(&visitor_again), [("sms".to_owned(), false)]);
    assert_eq!(count(&app, "consent \"sms\"").await, 1);
}
