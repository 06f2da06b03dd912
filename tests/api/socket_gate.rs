//! The socket (`/graphql/ws`) behind the same gate as HTTP: document limits on every operation,
//! the key's rate limit and audit actor, caps on sockets and subscriptions, throttled failed
//! logins, bounded frames before the key is known, and a key's changes reaching its open
//! sockets (revoked: closed with 4403; narrowed: the next message).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::hardening::doubling_fragments;
use crate::helpers::{ADMIN_KEY, TestApp};
use crate::live::Subscriber;

const CHANGED: &str =
    "subscription($id: ID!) { contactChanged(id: $id) { id name email attributes } }";

/// A socket of `key` subscribed (as operation `c`) to `contact`'s changes, started once the
/// write that made the contact is searchable (so that write sends nothing).
async fn watching(app: &TestApp, key: &str, contact: &Value) -> Subscriber {
    app.latest("{ indexStatus { built } }").await;
    let mut subscriber = Subscriber::connect(app, key).await;
    subscriber
        .subscribe("c", CHANGED, json!({ "id": contact["id"] }))
        .await;
    subscriber.silent_for(Duration::from_millis(200)).await;
    subscriber
}

/// The first error code of a response.
fn refusal_code_of(message: &Value) -> String {
    message["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {message}"))
        .to_owned()
}

/// The first error code of the response refusing operation `id` (which then completes).
async fn refusal_code(subscriber: &mut Subscriber, id: &str) -> String {
    let message = subscriber.message().await;
    assert_eq!(message["id"], id, "{message}");
    let code = message["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code: {message}"))
        .to_owned();
    let done = subscriber.message().await;
    assert_eq!(
        (done["type"].as_str(), done["id"].as_str()),
        (Some("complete"), Some(id))
    );
    code
}

/// The `data` of the response to query `query` sent over the socket as operation `id`.
async fn socket_query(subscriber: &mut Subscriber, id: &str, query: &str) -> Value {
    subscriber.subscribe(id, query, json!({})).await;
    let message = subscriber.message().await;
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    let done = subscriber.message().await;
    assert_eq!(done["type"], "complete", "{done}");
    message["payload"]["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_operation_passes_the_request_gate() {
    let app = TestApp::spawn().await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;

    // The fan-out that cost seconds of CPU and gigabytes before the gate: refused at once.
    let started = Instant::now();
    subscriber
        .subscribe(
            "fan",
            &doubling_fragments(
                23,
                "subscription",
                "Subscription",
                "contactChanged(id: \"x\") { id }",
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        refusal_code(&mut subscriber, "fan").await,
        "QUERY_TOO_COMPLEX"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let aliases: String = (0..5_000)
        .map(|n| format!("a{n}: indexStatus {{ built }} "))
        .collect();
    subscriber
        .subscribe("aliases", &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(
        refusal_code(&mut subscriber, "aliases").await,
        "QUERY_TOO_COMPLEX"
    );

    let deep = format!("{{ {} leaf {} }}", "nested { ".repeat(13), "}".repeat(13));
    subscriber.subscribe("deep", &deep, json!({})).await;
    assert_eq!(
        refusal_code(&mut subscriber, "deep").await,
        "QUERY_TOO_COMPLEX"
    );

    // The schema's complexity limit holds here too: 100 pages of 100 contacts with fields.
    let pages: String = (0..20)
        .map(|n| format!("p{n}: contacts(first: 100) {{ edges {{ node {{ id name email }} }} }} "))
        .collect();
    subscriber
        .subscribe("complex", &format!("{{ {pages} }}"), json!({}))
        .await;
    assert_eq!(
        refusal_code(&mut subscriber, "complex").await,
        "QUERY_TOO_COMPLEX"
    );

    // Persisted queries go through the same gate.
    subscriber
        .send(json!({ "id": "apq", "type": "subscribe", "payload": {
            "query": "",
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": "0".repeat(64) } }
        } }))
        .await;
    assert_eq!(
        refusal_code(&mut subscriber, "apq").await,
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // And a plain query still runs.
    let data = socket_query(&mut subscriber, "ok", "{ indexStatus { built } }").await;
    assert_eq!(data["indexStatus"]["built"], true);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_loses_its_sockets_within_a_second() {
    let app = TestApp::spawn().await;
    let contact = app
        .upsert(json!({ "externalId": "u-1", "email": "a@example.com" }))
        .await;
    let (secret, key_id) = app.create_key(&["contacts:read"], Value::Null).await;
    let mut subscriber = watching(&app, &secret, &contact).await;

    let revoked_at = Instant::now();
    app.data(
        "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id } } }",
        json!({ "id": key_id }),
    )
    .await;
    assert_eq!(subscriber.close_code().await, 4403);
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "closed after {:?}",
        revoked_at.elapsed()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_key_applies_to_the_next_message_and_query() {
    let app = TestApp::spawn().await;
    let contact = app
        .upsert(json!({ "externalId": "u-1", "email": "a@example.com", "name": "Ada" }))
        .await;
    let (secret, key_id) = app
        .create_key(&["contacts:read", "segments:read"], Value::Null)
        .await;
    let mut subscriber = watching(&app, &secret, &contact).await;

    app.upsert(json!({ "externalId": "u-1", "name": "Ada L" }))
        .await;
    let first = subscriber.message().await;
    assert_eq!(
        first["payload"]["data"]["contactChanged"]["email"],
        "a@example.com"
    );

    // The policy narrows to `name`: the next message no longer shows the email.
    app.data(
        "mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { id } } }",
        json!({ "input": { "id": key_id, "fieldPolicy": { "fields": ["name"] } } }),
    )
    .await;
    app.upsert(json!({ "externalId": "u-1", "name": "Ada Lovelace" }))
        .await;
    let second = subscriber.message().await;
    let seen = &second["payload"]["data"]["contactChanged"];
    assert_eq!(seen["name"], "Ada Lovelace", "{second}");
    assert!(
        seen["email"].is_null(),
        "the narrowed policy applies: {second}"
    );

    // A query on the same socket runs under the narrowed policy too.
    let query = format!(
        "{{ contact(id: \"{}\") {{ email name }} }}",
        contact["id"].as_str().unwrap()
    );
    let data = socket_query(&mut subscriber, "q", &query).await;
    assert!(data["contact"]["email"].is_null(), "{data}");

    // Losing `contacts:read` ends the subscription with FORBIDDEN at its next message.
    app.data(
        "mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { id } } }",
        json!({ "input": { "id": key_id, "grantedScopes": ["SEGMENTS_READ"] } }),
    )
    .await;
    app.upsert(json!({ "externalId": "u-1", "name": "A. Lovelace" }))
        .await;
    let refused = subscriber.message().await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    assert_eq!(subscriber.message().await["type"], "complete");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_made_sensitive_after_connecting_stays_masked() {
    let app = TestApp::spawn().await;
    let contact = app.upsert(json!({ "externalId": "u-1" })).await;
    let (secret, _) = app.create_key(&["contacts:read"], Value::Null).await;
    let mut subscriber = watching(&app, &secret, &contact).await;
    // A first message, read while the workspace had no sensitive attribute.
    app.upsert(json!({ "externalId": "u-1", "name": "Ada" }))
        .await;
    let first = subscriber.message().await;
    assert_eq!(
        first["payload"]["data"]["contactChanged"]["name"], "Ada",
        "{first}"
    );

    // Declared after the socket connected and read, then written.
    app.data(
        "mutation { defineAttribute(input: { name: \"ssn\", type: STRING, sensitive: true }) { attribute { name } } }",
        json!({}),
    )
    .await;
    app.upsert(json!({ "externalId": "u-1", "attributes": { "ssn": "078-05-1120" } }))
        .await;
    let message = subscriber.message().await;
    let attributes = &message["payload"]["data"]["contactChanged"]["attributes"];
    assert!(
        attributes.get("ssn").is_none(),
        "a key without pii:read saw it: {message}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_get_the_rate_limit_caps_and_audit_actor_of_http() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.rate_limit_per_second = 5;
        settings.api.rate_limit_burst = 5;
        settings.api.max_sockets_per_key = 2;
        settings.api.max_subscriptions_per_socket = 2;
    })
    .await;
    let (secret, key_id) = app
        .create_key(&["contacts:read", "contacts:write"], Value::Null)
        .await;

    // Writes over the socket are recorded as the key's.
    let mut first = Subscriber::connect(&app, &secret).await;
    let written = socket_query(
        &mut first,
        "w",
        "mutation { upsertContact(input: { externalId: \"s-1\" }) { contact { id updatedBy createdBy } } }",
    )
    .await;
    assert_eq!(
        written["upsertContact"]["contact"]["updatedBy"],
        key_id.as_str()
    );
    assert_eq!(
        written["upsertContact"]["contact"]["createdBy"],
        key_id.as_str()
    );
    let id = written["upsertContact"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Two subscriptions per socket: of three started at once, one is refused (which one
    // depends on the order the server first polls them), and a completed one frees its place.
    app.latest("{ indexStatus { built } }").await;
    let mut open: Vec<String> = ["s1", "s2", "s3"].map(str::to_owned).to_vec();
    for name in &open {
        first.subscribe(name, CHANGED, json!({ "id": id })).await;
    }
    let refused = first.message().await;
    let refused_id = refused["id"].as_str().unwrap().to_owned();
    assert_eq!(refusal_code_of(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(
        first.message().await,
        json!({ "type": "complete", "id": refused_id })
    );
    open.retain(|name| *name != refused_id);
    first
        .send(json!({ "id": open[0], "type": "complete" }))
        .await;
    first.subscribe("s4", CHANGED, json!({ "id": id })).await;
    open[0] = "s4".to_owned();
    // Past the burst the rate allows five a second: wait for the write's turn.
    tokio::time::sleep(Duration::from_millis(600)).await;
    first
        .subscribe(
            "w2",
            "mutation { upsertContact(input: { externalId: \"s-1\", name: \"Changed\" }) { contact { id } } }",
            json!({}),
        )
        .await;
    let mut heard = std::collections::HashSet::new();
    while heard.len() < 2 {
        let message = first.message().await;
        if message["type"] == "next" && open.iter().any(|name| message["id"] == name.as_str()) {
            assert!(message["payload"]["errors"].is_null(), "{message}");
            heard.insert(message["id"].as_str().unwrap().to_owned());
        }
    }

    // Two sockets per key; the third is closed with 4429.
    let _second = Subscriber::connect(&app, &secret).await;
    let mut third = Subscriber::open(&app).await;
    third
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {secret}") } }))
        .await;
    assert_eq!(third.close_code().await, 4429);

    // The key's rate limit counts socket operations: a burst of 20 queries is cut.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 0..20 {
        first
            .subscribe(
                &format!("q{n}"),
                "{ contacts(first: 1) { totalCount } }",
                json!({}),
            )
            .await;
    }
    let mut limited = 0;
    let mut answered = 0;
    while answered < 20 {
        let message = first.message().await;
        if message["type"] != "next" {
            continue;
        }
        answered += 1;
        if message["payload"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED" {
            limited += 1;
        }
    }
    assert!(limited >= 10, "only {limited} of 20 were limited");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_logins_are_throttled_and_large_inits_refused() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.auth_failures_per_second = 1;
        settings.api.auth_failures_burst = 3;
    })
    .await;

    // A connection_init larger than 16 KiB is refused before the key is looked at.
    let mut large = Subscriber::open(&app).await;
    large
        .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer x", "pad": "x".repeat(64 * 1024) } }))
        .await;
    assert_eq!(large.close_code().await, 4400);

    // A frame over the body limit ends the socket before it is read whole.
    let mut huge = Subscriber::open(&app).await;
    let _ = huge
        .socket
        .send(Message::Text("x".repeat(2 * 1024 * 1024).into()))
        .await;
    let ended = tokio::time::timeout(Duration::from_secs(5), huge.socket.next()).await;
    assert!(
        matches!(ended, Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_))))),
        "{ended:?}"
    );

    // Bad keys: 4403 each, until the address is throttled; then the upgrade itself is 429.
    let mut refused_upgrade = false;
    for _ in 0..10 {
        match Subscriber::try_open(&app).await {
            Ok((socket, _)) => {
                let mut subscriber = Subscriber { socket };
                subscriber
                    .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer qwry_wrong" } }))
                    .await;
                assert_eq!(subscriber.close_code().await, 4403);
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429);
                assert!(response.headers().contains_key("retry-after"));
                refused_upgrade = true;
                break;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(refused_upgrade, "bad logins were never throttled");
    app.stop().await;
}
