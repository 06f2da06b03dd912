//! The live side: ENTER/EXIT of saved segments over a WebSocket subscription (graphql-transport-ws)
//! and in the durable `segmentChanges` feed, for writes, merges, deletions, edits and time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{ADMIN_KEY, TestApp};

pub(crate) const SAVE: &str = "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }";
pub(crate) const MEMBERSHIP: &str = "subscription($slug: String!, $after: String) { segmentChanges(slug: $slug, after: $after) { cursor slug contactId kind at cause } }";
const FEED: &str = "query($slug: String!, $first: Int!, $after: String) { segmentChanges(slug: $slug, first: $first, after: $after) { edges { cursor node { contactId kind at cause } } pageInfo { hasNextPage endCursor } } }";

/// How long a test waits for one message.
const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A graphql-transport-ws client.
pub(crate) struct Subscriber {
    pub(crate) socket: Socket,
}

impl Subscriber {
    /// Connects to `/graphql/ws` without sending anything.
    pub(crate) async fn open(app: &TestApp) -> Self {
        let (socket, response) = Self::try_open(app).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    /// Connects to `/graphql/ws`, or the error (an HTTP answer refusing the upgrade).
    pub(crate) async fn try_open(
        app: &TestApp,
    ) -> Result<
        (
            Socket,
            tokio_tungstenite::tungstenite::handshake::client::Response,
        ),
        tokio_tungstenite::tungstenite::Error,
    > {
        let mut request = format!("ws://{}/graphql/ws", app.address)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        tokio_tungstenite::connect_async(request).await
    }

    /// Connects and initialises with `key`; expects the acknowledgement.
    pub(crate) async fn connect(app: &TestApp, key: &str) -> Self {
        let mut subscriber = Self::open(app).await;
        subscriber
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {key}") } }))
            .await;
        assert_eq!(subscriber.message().await["type"], "connection_ack");
        subscriber
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// Starts operation `id`.
    pub(crate) async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next protocol message (pings answered).
    pub(crate) async fn message(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .unwrap();
            match frame {
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if message["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return message;
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next `segmentChanges` entry.
    pub(crate) async fn entry(&mut self) -> Value {
        let message = self.message().await;
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"]["errors"].is_null(), "{message}");
        message["payload"]["data"]["segmentChanges"].clone()
    }

    /// Asserts nothing arrives for `quiet`.
    pub(crate) async fn silent_for(&mut self, quiet: Duration) {
        if let Ok(frame) = tokio::time::timeout(quiet, self.socket.next()).await {
            panic!("unexpected message: {frame:?}");
        }
    }

    /// The close code the server ends the connection with.
    pub(crate) async fn close_code(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(15), self.socket.next())
                .await
                .expect("closed in time");
            match frame {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Err(error)) => panic!("socket error: {error}"),
                Some(Ok(_)) => {}
            }
        }
    }
}

async fn app_with_segments(segments: &[(&str, &str)]) -> TestApp {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("trial_at", "DATETIME").await;
    for (slug, text) in segments {
        app.data(SAVE, json!({ "slug": slug, "text": text })).await;
    }
    app
}

fn id_of(contact: &Value) -> String {
    contact["id"].as_str().unwrap().to_owned()
}

/// The whole feed of `slug`, page by page.
async fn whole_feed(app: &TestApp, slug: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .data(FEED, json!({ "slug": slug, "first": 2, "after": after }))
            .await["segmentChanges"]
            .clone();
        entries.extend(page["edges"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] == false {
            return entries;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// A write's ENTER leaves before the index commits the write: with the index's commit delay at
/// 8 s, the subscriber has the ENTER while the index status still counts the write pending and
/// a segment count (which reads the index) does not see it yet; `LATEST` commits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enter_arrives_before_the_index_commits_the_write() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.index_commit_delay = Duration::from_secs(8);
    })
    .await;
    app.define_attribute("plan", "STRING").await;
    app.data(SAVE, json!({ "slug": "pros", "text": "plan = \"pro\"" }))
        .await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("1", MEMBERSHIP, json!({ "slug": "pros" }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    let ann = id_of(
        &app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro" } }))
            .await,
    );
    let entered = subscriber.entry().await;
    let waited = sent.elapsed();
    assert_eq!(
        (entered["contactId"].clone(), entered["kind"].clone()),
        (json!(ann), json!("ENTER"))
    );
    let status = app
        .data("{ indexStatus { pendingChanges } }", json!({}))
        .await;
    let count = |consistency: &str| {
        format!(
            "{{ contacts(segment: \"plan = \\\"pro\\\"\", first: 0, consistency: {consistency}) {{ totalCount }} }}"
        )
    };
    let indexed = app.data(&count("DEFAULT"), json!({})).await;
    assert!(
        waited < Duration::from_secs(4),
        "the ENTER took {waited:?}, no less than half the commit delay"
    );
    assert!(
        status["indexStatus"]["pendingChanges"].as_u64().unwrap() >= 1,
        "the index had not committed the write when its ENTER arrived: {status}"
    );
    assert_eq!(
        indexed["contacts"]["totalCount"], 0,
        "the index does not have the write yet"
    );
    let latest = app.data(&count("LATEST"), json!({})).await;
    assert_eq!(latest["contacts"]["totalCount"], 1);
    subscriber.silent_for(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_enter_and_exit_for_writes_merges_and_deletions() {
    let app = app_with_segments(&[("pros", "plan = \"pro\"")]).await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("1", MEMBERSHIP, json!({ "slug": "pros" }))
        .await;
    // Subscribed from now: give the server a moment to take its starting cursor.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let ann = id_of(
        &app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro" } }))
            .await,
    );
    let entered = subscriber.entry().await;
    assert_eq!(entered["contactId"], ann);
    assert_eq!(entered["kind"], "ENTER");
    assert_eq!(entered["cause"], "CONTACT_CHANGED");
    assert_eq!(entered["slug"], "pros");

    // A write that keeps her a member records nothing; one that takes her out records EXIT.
    app.upsert(json!({ "externalId": "ann", "name": "Ann" }))
        .await;
    app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "free" } }))
        .await;
    let left = subscriber.entry().await;
    assert_eq!(
        (left["contactId"].clone(), left["kind"].clone()),
        (json!(ann), json!("EXIT"))
    );

    // A merge: the absorbed member leaves (removed), the survivor stays out (its plan wins).
    let bob = id_of(
        &app.upsert(json!({ "externalId": "bob", "attributes": { "plan": "pro" } }))
            .await,
    );
    assert_eq!(subscriber.entry().await["contactId"], bob);
    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a, strategy: { externalId: SURVIVOR } }) { merge { id } } }",
            json!({ "s": ann, "a": bob }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    let absorbed = subscriber.entry().await;
    assert_eq!(absorbed["contactId"], bob);
    assert_eq!(absorbed["kind"], "EXIT");
    assert_eq!(absorbed["cause"], "CONTACT_REMOVED");

    // Undoing it brings Bob back.
    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merge }),
    )
    .await;
    let back = subscriber.entry().await;
    assert_eq!(
        (back["contactId"].clone(), back["kind"].clone()),
        (json!(bob), json!("ENTER"))
    );

    // Deleting a member records its EXIT.
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": bob }),
    )
    .await;
    let deleted = subscriber.entry().await;
    assert_eq!(deleted["contactId"], bob);
    assert_eq!(deleted["kind"], "EXIT");
    assert_eq!(deleted["cause"], "CONTACT_REMOVED");
    subscriber.silent_for(Duration::from_millis(500)).await;

    // The feed holds the same entries, in the same order.
    let feed: Vec<(Value, Value)> = whole_feed(&app, "pros")
        .await
        .iter()
        .map(|edge| {
            (
                edge["node"]["contactId"].clone(),
                edge["node"]["kind"].clone(),
            )
        })
        .collect();
    let expected: Vec<(Value, Value)> = [
        (&ann, "ENTER"),
        (&ann, "EXIT"),
        (&bob, "ENTER"),
        (&bob, "EXIT"),
        (&bob, "ENTER"),
        (&bob, "EXIT"),
    ]
    .iter()
    .map(|(id, kind)| (json!(id), json!(kind)))
    .collect();
    assert_eq!(feed, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_relative_segments_change_at_the_exact_moment() {
    let app = app_with_segments(&[("fresh-trials", "trial_at within 3s")]).await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("t", MEMBERSHIP, json!({ "slug": "fresh-trials" }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started: DateTime<Utc> = Utc::now();
    let carl = id_of(
        &app.upsert(
            json!({ "externalId": "carl", "attributes": { "trial_at": started.to_rfc3339() } }),
        )
        .await,
    );
    let entered = subscriber.entry().await;
    assert_eq!(
        (entered["contactId"].clone(), entered["kind"].clone()),
        (json!(carl), json!("ENTER"))
    );

    let left = subscriber.entry().await;
    let received = Utc::now();
    assert_eq!(left["contactId"], carl);
    assert_eq!(left["kind"], "EXIT");
    assert_eq!(left["cause"], "TIME");
    let at: DateTime<Utc> = left["at"].as_str().unwrap().parse().unwrap();
    let exact = started + chrono::TimeDelta::seconds(3);
    assert!(
        (at - exact).abs() < chrono::TimeDelta::milliseconds(2),
        "recorded at {at}, the condition flipped at {exact}"
    );
    assert!(
        received - exact < chrono::TimeDelta::seconds(1),
        "delivered {} ms after the moment",
        (received - exact).num_milliseconds()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_segment_records_the_difference_of_its_members() {
    let app = app_with_segments(&[("pros", "plan = \"pro\"")]).await;
    let ann = id_of(
        &app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro" } }))
            .await,
    );
    let bob = id_of(
        &app.upsert(json!({ "externalId": "bob", "attributes": { "plan": "free" } }))
            .await,
    );
    let cid = id_of(
        &app.upsert(json!({ "externalId": "cid", "attributes": { "plan": "pro" } }))
            .await,
    );
    app.latest("{ contacts(first: 1) { totalCount } }").await;
    let before = whole_feed(&app, "pros").await.len();

    app.data(SAVE, json!({ "slug": "pros", "text": "plan in [\"free\", \"pro\"] and not external_id = \"cid\"" }))
        .await;
    let deadline = Instant::now() + PATIENCE;
    let edited = loop {
        let feed = whole_feed(&app, "pros").await;
        let edited: Vec<Value> = feed[before..]
            .iter()
            .map(|edge| edge["node"].clone())
            .collect();
        if !edited.is_empty() || Instant::now() > deadline {
            break edited;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut changes: Vec<(String, String, String)> = edited
        .iter()
        .map(|node| {
            (
                node["contactId"].as_str().unwrap().to_owned(),
                node["kind"].as_str().unwrap().to_owned(),
                node["cause"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    changes.sort();
    let mut expected = vec![
        (bob.clone(), "ENTER".to_owned(), "SEGMENT_EDITED".to_owned()),
        (cid.clone(), "EXIT".to_owned(), "SEGMENT_EDITED".to_owned()),
    ];
    expected.sort();
    assert_eq!(changes, expected, "ann ({ann}) stays and records nothing");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_survives_a_restart_and_a_subscriber_resumes_from_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::test_store::durable_store(dir.path());
    let index_dir = dir.path().join("data");
    let app = TestApp::spawn_on(store.clone(), index_dir.clone()).await;
    app.define_attribute("plan", "STRING").await;
    app.data(SAVE, json!({ "slug": "pros", "text": "plan = \"pro\"" }))
        .await;
    // Each write searchable before the next: writes within one indexer step record their net
    // change only.
    for (external_id, plan) in [("a", "pro"), ("b", "pro"), ("a", "free")] {
        app.upsert(json!({ "externalId": external_id, "attributes": { "plan": plan } }))
            .await;
        app.latest("{ contacts(first: 1) { totalCount } }").await;
    }
    let before = whole_feed(&app, "pros").await;
    assert_eq!(before.len(), 3);
    app.stop().await;

    let app = TestApp::spawn_on(store, index_dir).await;
    assert_eq!(
        whole_feed(&app, "pros").await,
        before,
        "the same feed after a restart"
    );

    // A subscriber that saw the first entry resumes after it: the rest first, then live.
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    let first_cursor = before[0]["cursor"].clone();
    subscriber
        .subscribe(
            "r",
            MEMBERSHIP,
            json!({ "slug": "pros", "after": first_cursor }),
        )
        .await;
    for edge in &before[1..] {
        let entry = subscriber.entry().await;
        assert_eq!(entry["cursor"], edge["cursor"]);
        assert_eq!(entry["kind"], edge["node"]["kind"]);
    }
    let c = id_of(
        &app.upsert(json!({ "externalId": "c", "attributes": { "plan": "pro" } }))
            .await,
    );
    let live = subscriber.entry().await;
    assert_eq!(
        (live["contactId"].clone(), live["kind"].clone()),
        (json!(c), json!("ENTER"))
    );

    let after = whole_feed(&app, "pros").await;
    assert_eq!(after[..3], before[..], "what came before is unchanged");
    assert_eq!(after.len(), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_without_a_valid_key_or_init_are_closed_with_protocol_codes() {
    let app = app_with_segments(&[("pros", "plan = \"pro\"")]).await;

    let mut wrong_key = Subscriber::open(&app).await;
    wrong_key
        .send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer qwry_wrong" } }))
        .await;
    assert_eq!(wrong_key.close_code().await, 4403);

    let mut no_key = Subscriber::open(&app).await;
    no_key.send(json!({ "type": "connection_init" })).await;
    assert_eq!(no_key.close_code().await, 4403);

    let started = Instant::now();
    let mut silent = Subscriber::open(&app).await;
    assert_eq!(silent.close_code().await, 4408);
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed after the 10 s grace"
    );

    // Scopes apply as on queries: a key without contacts:read may not follow members.
    let (segments_only, _) = app.create_key(&["segments:read"], json!(null)).await;
    let mut limited = Subscriber::connect(&app, &segments_only).await;
    limited
        .subscribe("x", MEMBERSHIP, json!({ "slug": "pros" }))
        .await;
    let refused = limited.message().await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    // An unknown segment is NOT_FOUND, on the subscription and on the feed.
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("y", MEMBERSHIP, json!({ "slug": "nope" }))
        .await;
    let unknown = subscriber.message().await;
    assert_eq!(
        unknown["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{unknown}"
    );
    assert_eq!(
        app.error_code(FEED, json!({ "slug": "nope", "first": 10 }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(
            FEED,
            json!({ "slug": "pros", "first": 10, "after": "not-a-cursor" })
        )
        .await,
        "INVALID_INPUT"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_window_enters_on_the_event_and_exits_when_it_ages_out() {
    let app = TestApp::spawn().await;
    app.data(
        SAVE,
        json!({ "slug": "buyers", "text": "event \"purchase\" within 3s" }),
    )
    .await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    subscriber
        .subscribe("1", MEMBERSHIP, json!({ "slug": "buyers" }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ann = id_of(&app.upsert(json!({ "externalId": "ann" })).await);
    let at: DateTime<Utc> = Utc::now();
    app.data(
        "mutation($input: RecordEventInput!) { recordEvent(input: $input) { outcome } }",
        json!({ "input": { "contactId": ann, "name": "purchase", "at": at.to_rfc3339() } }),
    )
    .await;
    let entered = subscriber.entry().await;
    assert_eq!(
        (
            entered["contactId"].clone(),
            entered["kind"].clone(),
            entered["cause"].clone()
        ),
        (json!(ann), json!("ENTER"), json!("CONTACT_CHANGED"))
    );
    let left = subscriber.entry().await;
    assert_eq!(
        (left["kind"].clone(), left["cause"].clone()),
        (json!("EXIT"), json!("TIME"))
    );
    let exit_at: DateTime<Utc> = left["at"].as_str().unwrap().parse().unwrap();
    let expected = at + chrono::TimeDelta::seconds(3);
    assert!(
        (exit_at - expected).num_milliseconds().abs() <= 1,
        "the exit is recorded at the moment the event ages out: {exit_at} vs {expected}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscriptions_each_receive_every_entry() {
    const SOCKETS: usize = 100;
    const SEGMENTS: usize = 10;
    const CONTACTS: usize = 20;
    let slugs: Vec<String> = (0..SEGMENTS).map(|n| format!("pros-{n}")).collect();
    let segments: Vec<(&str, &str)> = slugs
        .iter()
        .map(|slug| (slug.as_str(), "plan = \"pro\""))
        .collect();
    let app = app_with_segments(&segments).await;
    let mut subscribers = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
        for slug in &slugs {
            subscriber
                .subscribe(slug, MEMBERSHIP, json!({ "slug": slug }))
                .await;
        }
        subscribers.push(subscriber);
    }
    // Every subscription has started once each socket answers a query sent after them.
    for subscriber in &mut subscribers {
        subscriber
            .subscribe("ready", "{ indexStatus { built } }", json!({}))
            .await;
        loop {
            let message = subscriber.message().await;
            if message["id"] == "ready" && message["type"] == "complete" {
                break;
            }
        }
    }

    let mut written = Vec::new();
    for n in 0..CONTACTS {
        let contact = app
            .upsert(json!({ "externalId": format!("many-{n}"), "attributes": { "plan": "pro" } }))
            .await;
        written.push(id_of(&contact));
    }
    written.sort();
    let received = futures::future::join_all(subscribers.iter_mut().map(|subscriber| async {
        let mut seen: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for _ in 0..SEGMENTS * CONTACTS {
            let message = subscriber.message().await;
            assert_eq!(message["type"], "next", "{message}");
            let entry = &message["payload"]["data"]["segmentChanges"];
            assert_eq!(entry["kind"], "ENTER", "{message}");
            seen.entry(entry["slug"].as_str().unwrap().to_owned())
                .or_default()
                .push(entry["contactId"].as_str().unwrap().to_owned());
        }
        subscriber.silent_for(Duration::from_millis(300)).await;
        seen
    }))
    .await;
    for seen in received {
        assert_eq!(seen.len(), SEGMENTS);
        for (slug, mut contacts) in seen {
            contacts.sort();
            assert_eq!(contacts, written, "segment {slug}");
        }
    }
    app.stop().await;
}

/// `segmentMembership` is deprecated for `segmentChanges` (the query's name); it follows the
/// same feed one release more. The feed's `totalCount` counts every entry kept, and an empty
/// page keeps the `after` it was given as its `endCursor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_subscription_name_still_follows_and_the_feed_counts_itself() {
    let app = app_with_segments(&[("pros", "plan = \"pro\"")]).await;
    let mut subscriber = Subscriber::connect(&app, ADMIN_KEY).await;
    let old = "subscription($slug: String!) { segmentMembership(slug: $slug) { contactId kind } }";
    subscriber
        .subscribe("1", old, json!({ "slug": "pros" }))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ann = id_of(
        &app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro" } }))
            .await,
    );
    let message = subscriber.message().await;
    assert_eq!(message["type"], "next", "{message}");
    let entry = &message["payload"]["data"]["segmentMembership"];
    assert_eq!(
        (entry["contactId"].as_str(), entry["kind"].as_str()),
        (Some(ann.as_str()), Some("ENTER"))
    );

    app.upsert(json!({ "externalId": "bob", "attributes": { "plan": "pro" } }))
        .await;
    let counted = "query($after: String, $first: Int) { segmentChanges(slug: \"pros\", first: $first, after: $after) { totalCount edges { cursor } pageInfo { hasNextPage endCursor } } }";
    let deadline = Instant::now() + PATIENCE;
    loop {
        // `totalCount` is read after the page, so it may count an entry the page just missed.
        let page = app.data(counted, json!({ "first": 1 })).await["segmentChanges"].clone();
        if page["totalCount"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed never held 2 entries: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = app.data(counted, json!({ "first": 1 })).await["segmentChanges"].clone();
    assert_eq!(first["totalCount"], 2);
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{first}");
    let rest = app
        .data(
            counted,
            json!({ "first": 5, "after": first["pageInfo"]["endCursor"] }),
        )
        .await["segmentChanges"]
        .clone();
    assert_eq!(rest["edges"].as_array().unwrap().len(), 1);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        rest["totalCount"], 2,
        "the count is of the whole feed, not the page"
    );
    let end = rest["pageInfo"]["endCursor"].clone();
    assert_eq!(end, rest["edges"][0]["cursor"]);
    let empty =
        app.data(counted, json!({ "first": 5, "after": end })).await["segmentChanges"].clone();
    assert_eq!(empty["edges"], json!([]));
    assert_eq!(
        empty["pageInfo"]["endCursor"], end,
        "a poller keeps its place"
    );
    app.stop().await;
}

/// A saved segment's days: how many entered and left each day (from the counts kept with the
/// feed) and its size at each day's end, worked back from now; nothing before it was saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_history_counts_each_day_from_the_feed() {
    let app = app_with_segments(&[("pros", "plan = \"pro\"")]).await;
    let query =
        "{ segment(slug: \"pros\") { count history(days: 3) { day members entered exited } } }";
    let today_reaches = |entered: u64, exited: u64| {
        let app = &app;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let segment = app.data(query, json!({})).await["segment"].clone();
                let days = segment["history"].as_array().unwrap().clone();
                if days[2]["entered"] == entered && days[2]["exited"] == exited {
                    break days;
                }
                assert!(std::time::Instant::now() < deadline, "{segment}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    for name in ["ann", "bob", "cy"] {
        app.upsert(json!({ "externalId": name, "attributes": { "plan": "pro" } }))
            .await;
    }
    // A contact that enters and leaves within one indexer step records nothing (docs/live.md):
    // cy's ENTER is recorded before it leaves.
    today_reaches(3, 0).await;
    app.upsert(json!({ "externalId": "cy", "attributes": { "plan": "free" } }))
        .await;
    let history = today_reaches(3, 1).await;
    let today = chrono::Utc::now().date_naive();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["day"], today.to_string());
    assert_eq!(history[2]["members"], 2);
    assert_eq!(
        history[1]["members"],
        Value::Null,
        "saved today: {history:?}"
    );
    assert_eq!(
        (
            history[1]["entered"].as_u64(),
            history[1]["exited"].as_u64()
        ),
        (Some(0), Some(0))
    );
}
