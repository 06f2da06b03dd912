//! Identity tokens: signed, expiring JWTs beside the HMAC user hash, verified claims, keys that
//! personalise only verified visitors, refusals with their reason, rotation and JWKS.
//!
//! The PEM keys in `tests/fixtures/identity` were made for these tests with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048` and
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`; they protect nothing.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use qwry_contacts::domain::user_hash;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const SECRET: &str = "workspace-secret-0123456789";
const NEXT_SECRET: &str = "next-workspace-secret-98765";
const RSA_PRIVATE: &str = include_str!("../fixtures/identity/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/identity/rsa_public.pem");
const RSA2_PRIVATE: &str = include_str!("../fixtures/identity/rsa2_private.pem");
const RSA2_PUBLIC: &str = include_str!("../fixtures/identity/rsa2_public.pem");
const EC_PRIVATE: &str = include_str!("../fixtures/identity/ec_private.pem");
const EC_PUBLIC: &str = include_str!("../fixtures/identity/ec_public.pem");

const CONTACT: &str = "id externalId email name company attributes verifiedFields \
    verification { method anonymousId verifiedAt }";

fn now() -> i64 {
    Utc::now().timestamp()
}

fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn rs256(private_pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key).unwrap()
}

/// A token with `alg: none` and no signature, built by hand (no library mints one).
fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

async fn app_with_secret() -> TestApp {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    set_verification(&app, json!({ "hmacSecret": SECRET })).await;
    app
}

async fn set_verification(app: &TestApp, input: Value) -> Value {
    app.data(
        "mutation($input: SetIdentityVerificationInput!) { setIdentityVerification(input: $input) { identitySettings { \
            secretSet previousSecretSet publicKeyCount jwksUrl allowUserHash \
            tokenMaxLifetimeSeconds verificationLifetimeSeconds } } }",
        json!({ "input": input }),
    )
    .await["setIdentityVerification"]["identitySettings"]
        .clone()
}

async fn track(app: &TestApp, anonymous_id: &str, fields: Value) -> Value {
    let mut input = json!({ "anonymousId": anonymous_id });
    input
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let query = format!(
        "mutation($input: TrackVisitorInput!) {{ trackVisitor(input: $input) {{ contact {{ {CONTACT} }} }} }}"
    );
    app.data(&query, json!({ "input": input })).await["trackVisitor"]["contact"].clone()
}

fn identify_query() -> String {
    format!(
        "mutation($input: IdentifyInput!) {{ identify(input: $input) {{ contact {{ {CONTACT} }} }} }}"
    )
}

/// `identify` with `input`; the whole response.
async fn identify_raw(app: &TestApp, input: Value) -> Value {
    app.graphql(&identify_query(), json!({ "input": input }))
        .await
}

async fn identify_token(app: &TestApp, anonymous_id: Option<&str>, token: &str) -> Value {
    let response = identify_raw(
        app,
        json!({ "anonymousId": anonymous_id, "identityToken": token }),
    )
    .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"]["identify"]["contact"].clone()
}

/// The code and reason of a refused `identify`.
async fn refusal(app: &TestApp, input: Value) -> (String, Option<String>) {
    let response = identify_raw(app, input).await;
    let extensions = &response["errors"][0]["extensions"];
    let code = extensions["code"]
        .as_str()
        .unwrap_or_else(|| panic!("identify was not refused: {response:#}"))
        .to_owned();
    (code, extensions["reason"].as_str().map(str::to_owned))
}

async fn by_anonymous_id(app: &TestApp, key: Option<&str>, anonymous_id: &str) -> Value {
    let query = format!(
        "query($v: String!) {{ contact(identity: {{kind: ANONYMOUS_ID, value: $v}}) {{ {CONTACT} \
         segments {{ nodes {{ slug }} }} identities {{ nodes {{ kind value }} }} }} }}"
    );
    let variables = json!({ "v": anonymous_id });
    match key {
        Some(key) => app.data_as(key, &query, variables).await["contact"].clone(),
        None => app.data(&query, variables).await["contact"].clone(),
    }
}

async fn contact_count(app: &TestApp) -> i64 {
    app.data(
        "{ contacts(first: 1, consistency: LATEST) { totalCount } }",
        json!({}),
    )
    .await["contacts"]["totalCount"]
        .as_i64()
        .unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    let mut list: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn an_hs256_token_links_the_visitor_and_its_claims_are_verified() {
    let app = app_with_secret().await;
    track(
        &app,
        "v-1",
        json!({ "name": "Typed Name", "company": "Typed Co" }),
    )
    .await;
    let token = hs256(
        SECRET,
        &json!({ "sub": "u-1", "exp": now() + 600, "iat": now(), "email": "Ada@Acme.test",
                 "name": "Ada Lovelace", "attributes": { "plan": "pro" } }),
    );
    // Traits beside the token are self-asserted and never beat a verified value.
    let response = identify_raw(
        &app,
        json!({ "anonymousId": "v-1", "identityToken": token,
                "traits": { "name": "Mallory", "company": "Widget Co" } }),
    )
    .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    let contact = &response["data"]["identify"]["contact"];
    assert_eq!(contact["externalId"], "u-1");
    assert_eq!(contact["email"], "ada@acme.test");
    assert_eq!(contact["name"], "Ada Lovelace");
    assert_eq!(contact["company"], "Widget Co");
    assert_eq!(contact["attributes"]["plan"], "pro");
    assert_eq!(
        strings(&contact["verifiedFields"]),
        ["email", "externalId", "name", "plan"]
    );
    assert_eq!(contact["verification"]["method"], "TOKEN");
    assert_eq!(contact["verification"]["anonymousId"], "v-1");
    assert_eq!(contact_count(&app).await, 1, "the visitor became the user");

    // The visitor's browser cannot overwrite verified values afterwards, by either path.
    let after_track = track(
        &app,
        "v-1",
        json!({ "name": "Eve", "attributes": { "plan": "free" } }),
    )
    .await;
    assert_eq!(after_track["name"], "Ada Lovelace");
    assert_eq!(after_track["attributes"]["plan"], "pro");
    let hashed = identify_raw(
        &app,
        json!({ "externalId": "u-1", "userHash": user_hash(SECRET.as_bytes(), "u-1"),
                "traits": { "email": "eve@evil.test", "company": "Evil" } }),
    )
    .await;
    let contact = &hashed["data"]["identify"]["contact"];
    assert_eq!(contact["email"], "ada@acme.test", "{hashed:#}");
    assert_eq!(contact["company"], "Evil");
    assert_eq!(contact["verification"]["method"], "USER_HASH");

    // The business's own API may still change a verified value; it is then no longer verified.
    let id = contact["id"].as_str().unwrap();
    let updated = app
        .data(
            &format!(
                "mutation($id: ID!) {{ updateContact(input: {{ id: $id, patch: {{ name: \"Ada King\" }} }}) {{ contact {{ {CONTACT} }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await["updateContact"]["contact"]
        .clone();
    assert_eq!(updated["name"], "Ada King");
    assert!(!strings(&updated["verifiedFields"]).contains(&"name".to_owned()));
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_registered_public_keys() {
    let app = app_with_secret().await;
    let settings =
        set_verification(&app, json!({ "publicKeysPem": [RSA_PUBLIC, EC_PUBLIC] })).await;
    assert_eq!(settings["publicKeyCount"], 2);
    let rs = rs256(
        RSA_PRIVATE,
        None,
        &json!({ "sub": "u-rs", "exp": now() + 300, "name": "Rsa" }),
    );
    let contact = identify_token(&app, Some("v-rs"), &rs).await;
    assert_eq!(contact["externalId"], "u-rs");
    assert_eq!(contact["name"], "Rsa");
    let es = es256(&json!({ "user_id": "u-es", "exp": now() + 300, "aud": "default" }));
    let contact = identify_token(&app, None, &es).await;
    assert_eq!(contact["externalId"], "u-es");
    assert_eq!(contact["verification"]["method"], "TOKEN");

    // A public key that is not a key is refused when registered.
    let code = app
        .error_code(
            "mutation { setIdentityVerification(input: { publicKeysPem: [\"not a key\"] }) { identitySettings { publicKeyCount } } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");
}

#[tokio::test]
async fn refused_tokens_say_why_and_change_nothing() {
    let app = app_with_secret().await;
    set_verification(&app, json!({ "publicKeysPem": [RSA_PUBLIC] })).await;
    track(&app, "v-r", json!({ "name": "Visitor" })).await;
    let before = contact_count(&app).await;
    let claims = |extra: Value| {
        let mut claims = json!({ "sub": "u-r", "exp": now() + 300, "email": "r@acme.test" });
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let without = |name: &str| {
        let mut claims = claims(json!({}));
        claims.as_object_mut().unwrap().remove(name);
        claims
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            hs256(SECRET, &claims(json!({ "exp": now() - 3600 }))),
            "EXPIRED",
        ),
        (
            "not yet valid",
            hs256(SECRET, &claims(json!({ "nbf": now() + 3600 }))),
            "NOT_YET_VALID",
        ),
        (
            "wrong secret",
            hs256("some-other-secret-0123456", &claims(json!({}))),
            "BAD_SIGNATURE",
        ),
        (
            "wrong audience",
            hs256(SECRET, &claims(json!({ "aud": "another-workspace" }))),
            "WRONG_AUDIENCE",
        ),
        (
            "missing sub",
            hs256(SECRET, &without("sub")),
            "MISSING_CLAIM",
        ),
        (
            "missing exp",
            hs256(SECRET, &without("exp")),
            "MISSING_CLAIM",
        ),
        (
            "too long lived",
            hs256(SECRET, &claims(json!({ "exp": now() + 30 * 86_400 }))),
            "LIFETIME_TOO_LONG",
        ),
        (
            "alg none",
            unsigned(&claims(json!({}))),
            "UNSUPPORTED_ALGORITHM",
        ),
        (
            // Algorithm confusion: the RSA public key used as an HMAC secret.
            "rs256 key as hs256 secret",
            hs256(RSA_PUBLIC, &claims(json!({}))),
            "BAD_SIGNATURE",
        ),
        (
            "unregistered rsa key",
            rs256(RSA2_PRIVATE, None, &claims(json!({}))),
            "BAD_SIGNATURE",
        ),
        (
            "tampered payload",
            {
                let token = hs256(SECRET, &claims(json!({})));
                let parts: Vec<&str> = token.split('.').collect();
                let forged = URL_SAFE_NO_PAD.encode(claims(json!({ "sub": "admin" })).to_string());
                format!("{}.{forged}.{}", parts[0], parts[2])
            },
            "BAD_SIGNATURE",
        ),
    ];
    for (name, token, reason) in &cases {
        let (code, got) = refusal(
            &app,
            json!({ "anonymousId": "v-r", "identityToken": token }),
        )
        .await;
        assert_eq!(code, "IDENTITY_NOT_VERIFIED", "{name}");
        assert_eq!(got.as_deref(), Some(*reason), "{name}");
    }
    let (code, _) = refusal(&app, json!({ "identityToken": "not-a-jwt" })).await;
    assert_eq!(code, "INVALID_INPUT");
    let (code, reason) = refusal(
        &app,
        json!({ "externalId": "someone-else", "identityToken": hs256(SECRET, &claims(json!({}))) }),
    )
    .await;
    assert_eq!(
        (code.as_str(), reason.as_deref()),
        ("IDENTITY_NOT_VERIFIED", Some("SUBJECT_MISMATCH"))
    );

    // Nothing changed: no contact created, the visitor still anonymous and unverified.
    assert_eq!(contact_count(&app).await, before);
    let visitor = by_anonymous_id(&app, None, "v-r").await;
    assert_eq!(visitor["externalId"], Value::Null);
    assert_eq!(visitor["email"], Value::Null);
    assert_eq!(visitor["verification"], Value::Null);

    // A token id is used once: the replay is refused and changes nothing more.
    let once = hs256(SECRET, &claims(json!({ "jti": "token-1" })));
    identify_token(&app, Some("v-r"), &once).await;
    let (code, reason) =
        refusal(&app, json!({ "anonymousId": "v-x", "identityToken": once })).await;
    assert_eq!(
        (code.as_str(), reason.as_deref()),
        ("IDENTITY_NOT_VERIFIED", Some("REPLAYED"))
    );
    let replayed_visitor = app
        .graphql(
            "{ contact(identity: {kind: ANONYMOUS_ID, value: \"v-x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        replayed_visitor["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn rotation_keeps_the_current_and_the_previous_secret_valid() {
    let app = app_with_secret().await;
    let settings = set_verification(&app, json!({ "hmacSecret": NEXT_SECRET })).await;
    assert_eq!(settings["previousSecretSet"], true);
    for (user, secret) in [("u-old", SECRET), ("u-new", NEXT_SECRET)] {
        let token = hs256(secret, &json!({ "sub": user, "exp": now() + 300 }));
        assert_eq!(identify_token(&app, None, &token).await["externalId"], user);
    }
    let hashed = identify_raw(
        &app,
        json!({ "externalId": "u-hash", "userHash": user_hash(SECRET.as_bytes(), "u-hash") }),
    )
    .await;
    assert!(hashed.get("errors").is_none(), "{hashed:#}");

    let settings = set_verification(&app, json!({ "retirePreviousSecret": true })).await;
    assert_eq!(settings["previousSecretSet"], false);
    let old = hs256(SECRET, &json!({ "sub": "u-old", "exp": now() + 300 }));
    let (_, reason) = refusal(&app, json!({ "identityToken": old })).await;
    assert_eq!(reason.as_deref(), Some("BAD_SIGNATURE"));

    // Two public keys at a time: both verify; a third is refused.
    set_verification(&app, json!({ "publicKeysPem": [RSA_PUBLIC, RSA2_PUBLIC] })).await;
    for (user, private) in [("u-k1", RSA_PRIVATE), ("u-k2", RSA2_PRIVATE)] {
        let token = rs256(private, None, &json!({ "sub": user, "exp": now() + 300 }));
        assert_eq!(identify_token(&app, None, &token).await["externalId"], user);
    }
    let code = app
        .error_code(
            "mutation($k: [String!]!) { setIdentityVerification(input: { publicKeysPem: $k }) { identitySettings { publicKeyCount } } }",
            json!({ "k": [RSA_PUBLIC, RSA2_PUBLIC, EC_PUBLIC] }),
        )
        .await;
    assert_eq!(code, "INVALID_INPUT");
}

#[tokio::test]
async fn a_workspace_can_refuse_the_user_hash() {
    let app = app_with_secret().await;
    let settings = set_verification(&app, json!({ "allowUserHash": false })).await;
    assert_eq!(settings["allowUserHash"], false);
    let (code, reason) = refusal(
        &app,
        json!({ "externalId": "u-1", "userHash": user_hash(SECRET.as_bytes(), "u-1") }),
    )
    .await;
    assert_eq!(
        (code.as_str(), reason.as_deref()),
        ("IDENTITY_NOT_VERIFIED", Some("USER_HASH_DISABLED"))
    );
    assert_eq!(contact_count(&app).await, 0);
    let token = hs256(SECRET, &json!({ "sub": "u-1", "exp": now() + 60 }));
    assert_eq!(
        identify_token(&app, None, &token).await["externalId"],
        "u-1"
    );
}

/// A workspace with an identity secret, a saved segment `pros` (`plan = "pro"`), and a
/// chatbot's key: it reads `name`, `email` and `plan`, and requires verified identities.
async fn app_with_chatbot_key() -> (TestApp, String) {
    let app = app_with_secret().await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    let (chatbot, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["name", "email"], "attributes": ["plan"], "requireVerifiedIdentity": true }),
        )
        .await;
    (app, chatbot)
}

#[tokio::test]
async fn a_key_requiring_verified_identity_personalises_only_verified_visitors() {
    let (app, chatbot) = app_with_chatbot_key().await;

    // Verified: the visitor linked by a token sees its approved fields and segments.
    track(&app, "v-ok", json!({ "name": "Typed" })).await;
    let token = hs256(
        SECRET,
        &json!({ "sub": "u-ok", "exp": now() + 300, "email": "ok@acme.test", "attributes": { "plan": "pro" } }),
    );
    identify_token(&app, Some("v-ok"), &token).await;
    let seen = by_anonymous_id(&app, Some(&chatbot), "v-ok").await;
    assert_eq!(seen["email"], "ok@acme.test");
    assert_eq!(seen["attributes"]["plan"], "pro");
    assert_eq!(seen["segments"]["nodes"], json!([{ "slug": "pros" }]));

    // Unverified: a visitor whose record the business enriched, but who never proved who it is.
    let visitor = track(&app, "v-no", json!({ "name": "Typed Name" })).await;
    let id = visitor["id"].as_str().unwrap();
    app.data(
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { email: \"no@acme.test\", attributes: { plan: \"pro\" } } }) { contact { id } } }",
        json!({ "id": id }),
    )
    .await;
    let seen = by_anonymous_id(&app, Some(&chatbot), "v-no").await;
    assert_eq!(seen["id"], id);
    assert_eq!(seen["name"], "Typed Name", "what the visitor itself sent");
    assert_eq!(seen["email"], Value::Null);
    assert_eq!(seen["attributes"], json!({}));
    assert_eq!(
        seen["segments"]["nodes"],
        json!([]),
        "segments see unverified values as absent"
    );
    assert_eq!(
        seen["identities"]["nodes"],
        json!([{ "kind": "ANONYMOUS_ID", "value": "v-no" }])
    );
    // A key without the requirement sees everything.
    let full = by_anonymous_id(&app, None, "v-no").await;
    assert_eq!(full["email"], "no@acme.test");

    // Expired: past the workspace's verification lifetime, the verified visitor is unverified.
    set_verification(&app, json!({ "verificationLifetimeSeconds": 1 })).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let seen = by_anonymous_id(&app, Some(&chatbot), "v-ok").await;
    assert_eq!(seen["email"], Value::Null);
    assert_eq!(seen["attributes"], json!({}));
    assert_eq!(seen["segments"]["nodes"], json!([]));
}

#[tokio::test]
async fn tokens_verify_with_keys_from_a_jwks_url() {
    // A JWKS on loopback over plain http: only with private targets allowed (development).
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    set_verification(&app, json!({ "hmacSecret": SECRET })).await;
    let encoding = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k2".to_owned());
    let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] }).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("http://127.0.0.1:{}/jwks.json", address.port());
    let settings = set_verification(&app, json!({ "jwksUrl": url })).await;
    assert_eq!(settings["jwksUrl"], url);

    let token = rs256(
        RSA2_PRIVATE,
        Some("k2"),
        &json!({ "sub": "u-jwks", "exp": now() + 300 }),
    );
    assert_eq!(
        identify_token(&app, None, &token).await["externalId"],
        "u-jwks"
    );
    let unknown = rs256(
        RSA_PRIVATE,
        Some("k1"),
        &json!({ "sub": "u-x", "exp": now() + 300 }),
    );
    let (_, reason) = refusal(&app, json!({ "identityToken": unknown })).await;
    assert_eq!(reason.as_deref(), Some("NO_KEY"));
}

/// Serves `routes` on 127.0.0.1; returns the base URL.
async fn serve_jwks(routes: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, routes).await });
    format!("http://{address}")
}

#[tokio::test]
async fn jwks_urls_must_be_https_and_public_and_their_fetches_are_bounded() {
    let app = app_with_secret().await;
    let set = "mutation($input: SetIdentityVerificationInput!) { setIdentityVerification(input: $input) { identitySettings { jwksUrl } } }";
    for url in [
        "http://127.0.0.1.example.com/jwks.json",
        "https://127.0.0.1@example.com/jwks.json",
        "http://localhostevil.example/jwks.json",
        "https://10.0.0.1/jwks.json",
        "https://[::1]/jwks.json",
        "https://169.254.169.254/latest",
        "https://localhost/jwks.json",
    ] {
        let code = app
            .error_code(set, json!({ "input": { "jwksUrl": url } }))
            .await;
        assert_eq!(code, "INVALID_INPUT", "{url} was accepted");
    }
    let accepted = app
        .data(
            set,
            json!({ "input": { "jwksUrl": "https://keys.example.com/jwks.json" } }),
        )
        .await;
    assert_eq!(
        accepted["setIdentityVerification"]["identitySettings"]["jwksUrl"],
        "https://keys.example.com/jwks.json"
    );
    app.stop().await;

    // With private targets allowed (so a loopback server can play the issuer): no redirect is
    // followed and no body over 1 MiB is read.
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    set_verification(&app, json!({ "hmacSecret": SECRET })).await;
    let encoding = EncodingKey::from_rsa_pem(RSA2_PRIVATE.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k2".to_owned());
    let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] }).unwrap();
    let padded = {
        let mut padded = jwks.clone();
        padded["padding"] = json!("x".repeat(2 * 1024 * 1024));
        padded
    };
    let base = serve_jwks(
        axum::Router::new()
            .route(
                "/moved",
                axum::routing::get(|| async { axum::response::Redirect::temporary("/jwks.json") }),
            )
            .route(
                "/jwks.json",
                axum::routing::get(move || {
                    let jwks = jwks.clone();
                    async move { axum::Json(jwks) }
                }),
            )
            .route(
                "/huge.json",
                axum::routing::get(move || {
                    let padded = padded.clone();
                    async move { axum::Json(padded) }
                }),
            ),
    )
    .await;
    let token = rs256(
        RSA2_PRIVATE,
        Some("k2"),
        &json!({ "sub": "u-jwks", "exp": now() + 300 }),
    );
    for (path, says) in [
        ("/moved", "redirects are not followed"),
        ("/huge.json", "larger than"),
    ] {
        set_verification(&app, json!({ "jwksUrl": format!("{base}{path}") })).await;
        let response = identify_raw(&app, json!({ "identityToken": token })).await;
        let error = &response["errors"][0];
        assert_eq!(error["extensions"]["reason"], "NO_KEY", "{response:#}");
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{path}: {response:#}"
        );
    }
    set_verification(&app, json!({ "jwksUrl": format!("{base}/jwks.json") })).await;
    assert_eq!(
        identify_token(&app, None, &token).await["externalId"],
        "u-jwks"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let app = app_with_secret().await;
    let ahead = hs256(
        SECRET,
        &json!({ "sub": "u-iat", "exp": now() + 300, "iat": now() + 365 * 24 * 3600 }),
    );
    let (code, reason) = refusal(&app, json!({ "identityToken": ahead })).await;
    assert_eq!(
        (code.as_str(), reason.as_deref()),
        ("IDENTITY_NOT_VERIFIED", Some("NOT_YET_VALID"))
    );
    let skewed = hs256(
        SECRET,
        &json!({ "sub": "u-iat", "exp": now() + 300, "iat": now() + 30 }),
    );
    assert_eq!(
        identify_token(&app, None, &skewed).await["externalId"],
        "u-iat"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_requiring_verified_identities_reads_no_more_by_any_other_path() {
    let (app, chatbot) = app_with_chatbot_key().await;
    let visitor = track(&app, "v-no", json!({ "name": "Typed Name" })).await;
    let id = visitor["id"].as_str().unwrap().to_owned();
    app.data(
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { email: \"no@acme.test\", attributes: { plan: \"pro\" } } }) { contact { id } } }",
        json!({ "id": id }),
    )
    .await;

    // The unverified lookup gives the id ...
    assert_eq!(
        by_anonymous_id(&app, Some(&chatbot), "v-no").await["id"],
        id.as_str()
    );
    // ... which opens nothing more, by id,
    let by_id = app
        .data_as(
            &chatbot,
            "query($id: ID!) { contact(id: $id) { name email attributes segments { nodes { slug } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        by_id["contact"],
        json!({ "name": "Typed Name", "email": null, "attributes": {}, "segments": { "nodes": [] } })
    );
    // in a search or list,
    let found = app
        .data_as(
            &chatbot,
            "{ contacts(first: 10, consistency: LATEST) { edges { node { id email attributes } } } }",
            json!({}),
        )
        .await;
    let listed = found["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["node"]["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(listed["node"]["email"], Value::Null, "{found}");
    assert_eq!(listed["node"]["attributes"], json!({}), "{found}");
    // in matchSegments and explanations,
    let matched = app
        .data_as(
            &chatbot,
            "query($id: ID!) { matchSegments(contactId: $id, slugs: [\"pros\"]) { slugs } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(matched["matchSegments"]["slugs"], json!([]));
    // and in the bulk export.
    let export = app.get_text_as(&chatbot, "/v1/contacts/export").await;
    let line: Value = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|line| line["id"] == id.as_str())
        .expect("exported");
    assert_eq!(line["email"], Value::Null, "{line}");

    // Once a token verifies the visitor, its lookup shows the approved fields.
    let token = hs256(SECRET, &json!({ "sub": "u-no", "exp": now() + 300 }));
    identify_token(&app, Some("v-no"), &token).await;
    let verified = by_anonymous_id(&app, Some(&chatbot), "v-no").await;
    assert_eq!(verified["email"], "no@acme.test");
    app.stop().await;
}
