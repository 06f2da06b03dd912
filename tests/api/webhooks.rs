//! Signed webhooks: a receiver on 127.0.0.1 verifies every delivery with the Standard Webhooks
//! reference library, sees each contact's messages in order, gets retries after 503 with
//! `Retry-After`, still gets what was undelivered when the service is killed with SIGKILL and
//! restarted, and an endpoint answering 410 is disabled. Bad URLs, private targets and unknown
//! segments are refused with coded errors.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::TestApp;
use crate::process::Service;

const SAVE: &str = "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }";
const DEFINE: &str =
    "mutation { defineAttribute(input: { name: \"plan\", type: STRING }) { attribute { name } } }";
const UPSERT: &str =
    "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
const CREATE: &str = "mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { secret webhook { id url events segments } } }";
const DELIVERIES: &str = "query($id: ID!) { webhookDeliveries(webhookId: $id, first: 100) { edges { node { id eventType status attempts lastStatus contactId body payload } } pageInfo { hasNextPage } } }";
const FEED: &str = "query($slug: String!) { segmentChanges(slug: $slug, first: 100) { edges { cursor node { contactId kind } } } }";

/// How the receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Ok,
    /// 503 with `Retry-After: 1`.
    Unavailable,
    Gone,
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// The verified deliveries in arrival order: (webhook-id, body).
    verified: Vec<(String, Value)>,
    /// Requests whose signature did not verify.
    forged: usize,
    /// Requests answered 503.
    refused: usize,
}

struct Receiver {
    secret: Mutex<Option<String>>,
    answer: Mutex<Answer>,
    /// A contact whose next message is answered 503 once, whatever `answer` says.
    refused_contact: Mutex<Option<String>>,
    seen: Mutex<Seen>,
}

impl Receiver {
    /// Listens on 127.0.0.1; returns its URL.
    async fn start(answer: Answer) -> (Arc<Self>, String) {
        let receiver = Arc::new(Self {
            secret: Mutex::new(None),
            answer: Mutex::new(answer),
            refused_contact: Mutex::new(None),
            seen: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(Arc::clone(&receiver));
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn trust(&self, secret: &str) {
        *self.secret.lock().unwrap() = Some(secret.to_owned());
    }

    /// The verified bodies, once per webhook-id (deliveries are at least once).
    fn distinct(&self) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        let mut ids = HashSet::new();
        seen.verified
            .iter()
            .filter(|(id, _)| ids.insert(id.clone()))
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Waits until `done` holds of the distinct bodies.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let bodies = self.distinct();
            if done(&bodies) {
                return bodies;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {bodies:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut answer = *receiver.answer.lock().unwrap();
    let secret = receiver.secret.lock().unwrap().clone();
    let refused_contact = receiver.refused_contact.lock().unwrap().clone();
    let mut seen = receiver.seen.lock().unwrap();
    let verified = secret.is_some_and(|secret| {
        standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .verify(&body, &headers)
            .is_ok()
    });
    if !verified {
        seen.forged += 1;
        return (StatusCode::UNAUTHORIZED, HeaderMap::new());
    }
    let event: Value = serde_json::from_slice(&body).unwrap();
    if refused_contact.is_some_and(|refused| event["data"]["contactId"] == refused.as_str()) {
        *receiver.refused_contact.lock().unwrap() = None;
        answer = Answer::Unavailable;
    }
    match answer {
        Answer::Ok => {
            let id = headers["webhook-id"].to_str().unwrap().to_owned();
            seen.verified.push((id, event));
            (StatusCode::NO_CONTENT, HeaderMap::new())
        }
        Answer::Unavailable => {
            seen.refused += 1;
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", "1".parse().unwrap());
            (StatusCode::SERVICE_UNAVAILABLE, headers)
        }
        Answer::Gone => (StatusCode::GONE, HeaderMap::new()),
    }
}

/// The membership kinds each contact's verified messages carry, in arrival order.
fn kinds_by_contact(bodies: &[Value]) -> HashMap<String, Vec<String>> {
    let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
    for body in bodies.iter().filter(|b| b["type"] == "segment.membership") {
        let contact = body["data"]["contactId"].as_str().unwrap().to_owned();
        kinds
            .entry(contact)
            .or_default()
            .push(body["data"]["kind"].as_str().unwrap().to_owned());
    }
    kinds
}

/// Upserts a contact and waits until the feed of `pros` holds `feed_len` entries (a write's
/// membership change is recorded when the index applies it; writes within one indexer step
/// record their net change only, so the test spaces them).
async fn upsert(service: &Service, external_id: &str, plan: &str, feed_len: usize) -> String {
    let answer = service
        .graphql(
            UPSERT,
            json!({ "input": { "externalId": external_id, "attributes": { "plan": plan } } }),
        )
        .await;
    let id = answer["data"]["upsertContact"]["contact"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("upsert failed: {answer}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries: usize = feed_by_contact(service, "pros")
            .await
            .values()
            .map(Vec::len)
            .sum();
        if entries >= feed_len {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "the feed did not reach {feed_len} entries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The feed's kinds per contact.
async fn feed_by_contact(service: &Service, slug: &str) -> HashMap<String, Vec<String>> {
    let feed = service.graphql(FEED, json!({ "slug": slug })).await;
    let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
    for edge in feed["data"]["segmentChanges"]["edges"].as_array().unwrap() {
        kinds
            .entry(edge["node"]["contactId"].as_str().unwrap().to_owned())
            .or_default()
            .push(edge["node"]["kind"].as_str().unwrap().to_owned());
    }
    kinds
}

#[tokio::test]
async fn deliveries_are_signed_ordered_retried_and_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let private = [("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")];
    let service = Service::start_with(dir.path(), &private, Stdio::inherit()).await;
    let (receiver, url) = Receiver::start(Answer::Unavailable).await;
    service.graphql(DEFINE, json!({})).await;
    service
        .graphql(SAVE, json!({ "slug": "pros", "text": "plan = \"pro\"" }))
        .await;
    let created = service
        .graphql(
            CREATE,
            json!({ "input": { "url": url, "events": ["SEGMENT_MEMBERSHIP", "CONTACT_CHANGED"], "segments": ["pros"] } }),
        )
        .await;
    let created = &created["data"]["createWebhook"];
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    let hook = created["webhook"]["id"].as_str().unwrap().to_owned();
    receiver.trust(secret);

    // While the receiver answers 503, each contact's queue waits at its head.
    let ada = upsert(&service, "ada", "pro", 1).await;
    upsert(&service, "ada", "free", 2).await;
    upsert(&service, "ada", "pro", 3).await;
    let bob = upsert(&service, "bob", "pro", 4).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.seen.lock().unwrap().refused < 2 {
        assert!(Instant::now() < deadline, "no attempt reached the receiver");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = service.graphql(DELIVERIES, json!({ "id": hook })).await;
    let nodes = log["data"]["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        nodes.iter().any(|edge| edge["node"]["status"] == "PENDING"
            && edge["node"]["attempts"].as_i64() >= Some(1)
            && edge["node"]["lastStatus"] == 503),
        "a refused delivery is pending with its attempt logged: {log}"
    );

    // Then they arrive (retried after the 5 s backoff), in order per contact.
    receiver.answer(Answer::Ok);
    let bodies = receiver
        .wait_for("ada's three membership changes and bob's", |bodies| {
            let kinds = kinds_by_contact(bodies);
            kinds.get(&ada).map(Vec::len) == Some(3) && kinds.get(&bob).map(Vec::len) == Some(1)
        })
        .await;
    let kinds = kinds_by_contact(&bodies);
    assert_eq!(kinds[&ada], ["ENTER", "EXIT", "ENTER"]);
    let changed: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["type"] == "contact.changed" && b["data"]["contactId"] == ada.as_str())
        .collect();
    assert!(!changed.is_empty(), "contact.changed arrives too");

    // Undelivered messages survive SIGKILL: enqueue while the receiver refuses, kill, restart.
    receiver.answer(Answer::Unavailable);
    let cy = upsert(&service, "cy", "pro", 5).await;
    upsert(&service, "cy", "free", 6).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = service.graphql(DELIVERIES, json!({ "id": hook })).await;
        let pending_for_cy = log["data"]["webhookDeliveries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|edge| {
                edge["node"]["contactId"] == cy.as_str() && edge["node"]["status"] == "PENDING"
            })
            .count();
        if pending_for_cy >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cy's deliveries were not enqueued: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let feed_before = feed_by_contact(&service, "pros").await;
    service.kill();
    receiver.answer(Answer::Ok);
    let service = Service::start_with(dir.path(), &private, Stdio::inherit()).await;
    let bodies = receiver
        .wait_for("cy's membership changes after the restart", |bodies| {
            kinds_by_contact(bodies).get(&cy).map(Vec::len) == Some(2)
        })
        .await;
    assert_eq!(kinds_by_contact(&bodies)[&cy], ["ENTER", "EXIT"]);

    // Every message the receiver accepted verified; the feed kept its history across the kill,
    // and each contact's webhook messages match its feed entries.
    assert_eq!(receiver.seen.lock().unwrap().forged, 0);
    let feed_after = feed_by_contact(&service, "pros").await;
    assert_eq!(
        feed_after, feed_before,
        "nothing was written since, so the feed is unchanged"
    );
    assert_eq!(kinds_by_contact(&bodies), feed_after);
    service.kill();
}

/// Creates an endpoint at `url` for contact changes, trusted by `receiver`; returns its id.
async fn contact_changes_hook(app: &TestApp, receiver: &Receiver, url: &str) -> String {
    hook_for(app, receiver, url, "CONTACT_CHANGED").await
}

/// Creates an endpoint at `url` for `event`, trusted by `receiver`; returns its id.
async fn hook_for(app: &TestApp, receiver: &Receiver, url: &str, event: &str) -> String {
    let created = app
        .data(
            CREATE,
            json!({ "input": { "url": url, "events": [event] } }),
        )
        .await;
    receiver.trust(created["createWebhook"]["secret"].as_str().unwrap());
    created["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_refused_contact_waits_for_its_retry_while_the_others_go_on() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let (receiver, url) = Receiver::start(Answer::Ok).await;
    let stuck = app.upsert(json!({ "externalId": "stuck" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    *receiver.refused_contact.lock().unwrap() = Some(stuck.clone());
    contact_changes_hook(&app, &receiver, &url).await;
    let changed = |bodies: &[Value], contact: &str| {
        bodies
            .iter()
            .filter(|body| body["data"]["contactId"] == contact)
            .count()
    };

    // The stuck contact's first message is refused once (its retry comes 5 s later); its
    // second waits behind it, while the other contacts' messages go on.
    app.upsert(json!({ "externalId": "stuck", "name": "One" }))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.seen.lock().unwrap().refused == 0 {
        assert!(Instant::now() < deadline, "the stuck message was not tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.upsert(json!({ "externalId": "stuck", "name": "Two" }))
        .await;
    let mut others = Vec::new();
    for n in 0..5 {
        let contact = app
            .upsert(json!({ "externalId": format!("free-{n}") }))
            .await;
        others.push(contact["id"].as_str().unwrap().to_owned());
    }
    receiver
        .wait_for("every contact's messages", |bodies| {
            others.iter().all(|other| changed(bodies, other) == 1) && changed(bodies, &stuck) == 2
        })
        .await;
    let (arrivals, forged) = {
        let seen = receiver.seen.lock().unwrap();
        let arrivals: Vec<(String, String)> = seen
            .verified
            .iter()
            .map(|(id, body)| {
                (
                    id.clone(),
                    body["data"]["contactId"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (arrivals, seen.forged)
    };
    let first_of = |contact: &str| arrivals.iter().position(|(_, of)| of == contact).unwrap();
    let first_other = others.iter().map(|other| first_of(other)).min().unwrap();
    assert!(
        first_other < first_of(&stuck),
        "the others went on while the stuck contact waited: {arrivals:?}"
    );
    let stuck_ids: Vec<String> = arrivals
        .iter()
        .filter(|(_, of)| *of == stuck)
        .map(|(id, _)| id.clone())
        .collect();
    let mut ordered = stuck_ids.clone();
    ordered.sort();
    assert_eq!(stuck_ids, ordered, "message ids (ULIDs) arrive in order");
    assert_eq!(forged, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let (receiver, url) = Receiver::start(Answer::Gone).await;
    let hook = contact_changes_hook(&app, &receiver, &url).await;
    app.upsert(json!({ "externalId": "gone-1" })).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let hooks = app
            .data("{ webhooks { id disabledAt disabledReason } }", json!({}))
            .await;
        let hook_now = &hooks["webhooks"][0];
        if !hook_now["disabledAt"].is_null() {
            assert!(hook_now["disabledReason"].as_str().unwrap().contains("410"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the endpoint was not disabled: {hooks}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = app.data(DELIVERIES, json!({ "id": hook })).await;
    let first = &log["webhookDeliveries"]["edges"][0]["node"];
    assert_eq!(first["status"], "FAILED");
    // `body` is the JSON sent, as a value; the deprecated `payload` the same as text.
    assert!(first["body"].is_object(), "{first}");
    let sent: Value = serde_json::from_str(first["payload"].as_str().unwrap()).unwrap();
    assert_eq!(first["body"], sent);
    assert_eq!(first["lastStatus"], 410);
    app.stop().await;
}

#[tokio::test]
async fn test_webhook_rotation_and_deletion() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let (receiver, url) = Receiver::start(Answer::Ok).await;
    let hook = hook_for(&app, &receiver, &url, "SEGMENT_MEMBERSHIP").await;
    let test = "mutation($id: ID!) { testWebhook(input: { id: $id }) { delivery { status eventType messageType lastStatus } } }";
    let sent = app.data(test, json!({ "id": hook })).await;
    assert_eq!(
        sent["testWebhook"]["delivery"]["status"], "DELIVERED",
        "{sent}"
    );
    assert_eq!(
        sent["testWebhook"]["delivery"]["messageType"], "WEBHOOK_TEST",
        "{sent}"
    );
    assert_eq!(
        sent["testWebhook"]["delivery"]["eventType"], "webhook.test",
        "deprecated, still there"
    );
    assert_eq!(receiver.distinct()[0]["type"], "webhook.test");

    // After rotation the old secret no longer verifies: the receiver refuses, the test fails.
    let rotate = "mutation($id: ID!) { rotateWebhookSecret(input: { id: $id }) { secret } }";
    let rotated = app.data(rotate, json!({ "id": hook })).await;
    let new_secret = rotated["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(new_secret.starts_with("whsec_"));
    let sent = app.data(test, json!({ "id": hook })).await;
    assert_eq!(
        sent["testWebhook"]["delivery"]["status"], "FAILED",
        "{sent}"
    );
    assert_eq!(sent["testWebhook"]["delivery"]["lastStatus"], 401);
    receiver.trust(&new_secret);
    let sent = app.data(test, json!({ "id": hook })).await;
    assert_eq!(
        sent["testWebhook"]["delivery"]["status"], "DELIVERED",
        "{sent}"
    );
    let log = app.data(DELIVERIES, json!({ "id": hook })).await;
    assert_eq!(
        log["webhookDeliveries"]["edges"].as_array().unwrap().len(),
        3
    );

    let delete = "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }";
    let deleted = app.data(delete, json!({ "id": hook })).await;
    assert_eq!(deleted["deleteWebhook"]["deletedId"], hook);
    assert_eq!(
        app.data("{ webhooks { id } }", json!({})).await["webhooks"],
        json!([])
    );
    assert_eq!(
        app.error_code(delete, json!({ "id": hook })).await,
        "NOT_FOUND"
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_targets_and_unknown_segments_are_refused_with_codes() {
    let app = TestApp::spawn().await;
    let create = |url: &str, segments: Value| json!({ "input": { "url": url, "events": ["SEGMENT_MEMBERSHIP"], "segments": segments } });
    for url in [
        "not a url",
        "ftp://hooks.example.com/",
        "http://127.0.0.1:9/hooks",
        "http://169.254.169.254/latest",
        "http://localhost/hooks",
        "http://[::1]/hooks",
    ] {
        let error = app.error(CREATE, create(url, json!([]))).await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{url}: {error}"
        );
        assert_eq!(error["extensions"]["field"], "url", "{url}: {error}");
    }
    let unknown = app
        .error(
            CREATE,
            create("https://hooks.example.com/in", json!(["nope"])),
        )
        .await;
    assert_eq!(unknown["extensions"]["code"], "NOT_FOUND", "{unknown}");
    let no_events = app
        .error(
            CREATE,
            json!({ "input": { "url": "https://hooks.example.com/in", "events": [] } }),
        )
        .await;
    assert_eq!(no_events["extensions"]["code"], "INVALID_INPUT");
    let created = app
        .data(CREATE, create("https://hooks.example.com/in", json!([])))
        .await;
    assert_eq!(
        created["createWebhook"]["webhook"]["url"],
        "https://hooks.example.com/in"
    );

    // Only admin keys manage webhooks.
    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    let listed = app
        .error_code_as(&reader, "{ webhooks { id } }", json!({}))
        .await;
    assert_eq!(listed, "FORBIDDEN");
    app.stop().await;
}

/// A receiver that answers every delivery 503 with `Retry-After: value` and counts them.
async fn refusing_receiver(retry_after: &'static str) -> (Arc<Mutex<usize>>, String) {
    let hits = Arc::new(Mutex::new(0usize));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let counted = Arc::clone(&hits);
    let router = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counted = Arc::clone(&counted);
            async move {
                *counted.lock().unwrap() += 1;
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", retry_after)],
                    "later",
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (hits, url)
}

#[tokio::test]
async fn a_hostile_retry_after_delays_no_other_endpoint() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let (hostile_hits, hostile_url) = refusing_receiver("99999999999999999").await;
    let hostile = app
        .data(
            CREATE,
            json!({ "input": { "url": hostile_url, "events": ["CONTACT_CHANGED"] } }),
        )
        .await["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (receiver, url) = Receiver::start(Answer::Ok).await;
    contact_changes_hook(&app, &receiver, &url).await;

    let first = app.upsert(json!({ "externalId": "h-1" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while *hostile_hits.lock().unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the hostile endpoint was never tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The dispatcher lived through the answer: later writes still reach the good endpoint.
    let second = app.upsert(json!({ "externalId": "h-2" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    receiver
        .wait_for("both contacts' messages", |bodies| {
            [&first, &second]
                .iter()
                .all(|id| bodies.iter().any(|body| body["data"]["contactId"] == **id))
        })
        .await;

    // The hostile endpoint's delivery waits, with the wait clamped to a day.
    let log = app
        .data(
            "query($id: ID!) { webhookDeliveries(webhookId: $id, first: 10) { edges { node { contactId status lastStatus nextAttemptAt } } } }",
            json!({ "id": hostile }),
        )
        .await;
    let delivery = log["webhookDeliveries"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| &edge["node"])
        .find(|node| node["contactId"] == first.as_str())
        .unwrap_or_else(|| panic!("no delivery of the first contact: {log}"));
    assert_eq!(delivery["status"], "PENDING", "{log}");
    assert_eq!(delivery["lastStatus"], 503, "{log}");
    let at = delivery["nextAttemptAt"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap();
    let wait = at - chrono::Utc::now();
    assert!(
        wait > chrono::TimeDelta::hours(23) && wait <= chrono::TimeDelta::hours(24),
        "{wait}"
    );
    app.stop().await;
}

#[tokio::test]
async fn targets_that_are_not_globally_reachable_are_refused() {
    let app = TestApp::spawn().await;
    for url in [
        "http://[::127.0.0.1]/hooks",
        "http://[fec0::1]/hooks",
        "http://[64:ff9b::7f00:1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[2001:db8::1]/hooks",
        "http://192.0.0.8/hooks",
        "http://198.18.0.1/hooks",
        "http://2130706433/hooks",
    ] {
        let code = app
            .error_code(
                CREATE,
                json!({ "input": { "url": url, "events": ["CONTACT_CHANGED"] } }),
            )
            .await;
        assert_eq!(code, "INVALID_INPUT", "{url} was accepted");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_slow_endpoint_delays_no_other() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    // An endpoint that holds every request past the 10 s attempt timeout, created first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let slow_hits = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&slow_hits);
    let router = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move || {
            let counted = Arc::clone(&counted);
            async move {
                *counted.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_secs(12)).await;
                StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    app.data(
        CREATE,
        json!({ "input": { "url": slow_url, "events": ["CONTACT_CHANGED"] } }),
    )
    .await;
    let (receiver, url) = Receiver::start(Answer::Ok).await;
    contact_changes_hook(&app, &receiver, &url).await;

    for n in 0..3 {
        let written = Instant::now();
        let id = app
            .upsert(json!({ "externalId": format!("lane-{n}") }))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        receiver
            .wait_for("the fast endpoint's message", |bodies| {
                bodies
                    .iter()
                    .any(|body| body["data"]["contactId"] == id.as_str())
            })
            .await;
        assert!(
            written.elapsed() < Duration::from_secs(3),
            "message {n} took {:?} beside a slow endpoint",
            written.elapsed()
        );
    }
    assert!(
        *slow_hits.lock().unwrap() >= 1,
        "the slow endpoint was tried"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_erasure_is_told_to_the_endpoints_that_want_erasures_and_a_delete_is_not() {
    let app =
        TestApp::spawn_adjusted(|settings| settings.api.webhook_allow_private_targets = true).await;
    let (receiver, url) = Receiver::start(Answer::Ok).await;
    let hook = hook_for(&app, &receiver, &url, "CONTACT_ERASED").await;
    let erased = app
        .upsert(json!({ "externalId": "to-erase", "email": "gone@example.com" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = app.upsert(json!({ "externalId": "to-delete" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": deleted }),
    )
    .await;
    app.data(
        "mutation { eraseContacts(input: { externalIds: [\"to-erase\"] }) { receipt { erasedCount } } }",
        json!({}),
    )
    .await;
    let bodies = receiver
        .wait_for("the erasure", |bodies| !bodies.is_empty())
        .await;
    assert_eq!(bodies[0]["type"], "contact.erased", "{bodies:#?}");
    assert_eq!(bodies[0]["data"], json!({ "contactId": erased }));
    // Nothing else comes: the plain delete is not an erasure, and writes are not asked for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.distinct().len(), 1, "{:#?}", receiver.distinct());
    let log = app
        .data(
            "query($id: ID!) { webhookDeliveries(webhookId: $id) { nodes { messageType } } }",
            json!({ "id": hook }),
        )
        .await;
    assert_eq!(
        log["webhookDeliveries"]["nodes"][0]["messageType"],
        "CONTACT_ERASED"
    );
    app.stop().await;
}
