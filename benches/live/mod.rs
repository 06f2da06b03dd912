//! Event latency under a stream of writes: a paced writer creates contacts that enter the saved
//! segment `live-flagged` (`live_flag = true`) at a fixed rate, while a `segmentChanges`
//! subscription (graphql-transport-ws) and a signed webhook to a receiver on 127.0.0.1 report
//! each ENTER. Latency is measured from the moment the write's request was sent to the moment
//! the ENTER arrived (so it includes the write itself, whose own latency is reported beside
//! it). Every other saved segment of the run is evaluated on each write too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::graphql;

pub mod lanes;

/// Writes in flight at once, at most.
const IN_FLIGHT: usize = 64;
/// How long to wait, after the last write, for the last ENTERs.
const DRAIN: Duration = Duration::from_secs(15);

/// Receipt times by contact id.
type Receipts = Arc<Mutex<HashMap<String, Instant>>>;

/// What one run measured.
pub struct LiveReport {
    /// Writes sent.
    pub writes: usize,
    /// Writes per second achieved.
    pub rate: f64,
    /// p50 and p99 (ms) of the writes themselves.
    pub write: (f64, f64),
    /// p50, p99 (ms) from the write's request to a subscription's ENTER, over every
    /// subscription, and how many ENTERs the subscription that received fewest received.
    pub subscription: (f64, f64, usize),
    /// Subscriptions open during the run.
    pub subscriptions: usize,
    /// p50, p99 (ms) from the write's request to the webhook's receipt, and how many came.
    pub webhook: (f64, f64, usize),
    /// How long after the last write's answer the last ENTER reached the subscriptions and
    /// the webhook: the time the backlog took to drain.
    pub drained_after: (Duration, Duration),
}

/// Deletes the endpoints earlier runs left on a kept data dir: they point at receivers long
/// gone, and every ENTER would be enqueued and retried for each of them too. Their logs are
/// purged in the background; the caller waits for the server to settle after this.
pub async fn forget_earlier_endpoints(client: &reqwest::Client, base: &str) {
    let earlier = graphql(client, base, "{ webhooks { id } }", json!({})).await;
    for hook in earlier["webhooks"].as_array().into_iter().flatten() {
        graphql(
            client,
            base,
            "mutation($id: ID!) { deleteWebhook(input: { id: $id }) { deletedId } }",
            json!({ "id": hook["id"] }),
        )
        .await;
    }
}

struct Receiver {
    secret: Mutex<Option<String>>,
    seen: Receipts,
    forged: Mutex<usize>,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let secret = receiver.secret.lock().unwrap().clone();
    let verified = secret.is_some_and(|secret| {
        standardwebhooks::Webhook::new(&secret)
            .and_then(|hook| hook.verify(&body, &headers))
            .is_ok()
    });
    if !verified {
        *receiver.forged.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    if event["data"]["kind"] == "ENTER"
        && let Some(contact) = event["data"]["contactId"].as_str()
    {
        receiver
            .seen
            .lock()
            .unwrap()
            .entry(contact.to_owned())
            .or_insert(arrived);
    }
    StatusCode::NO_CONTENT
}

/// Defines the attribute `live_flag` and the saved segment `live-flagged` in the client's
/// workspace. Both exist already when the data directory is reused (`QWRY_BENCH_DIR`): then the
/// attribute's redefinition may be refused, which changes nothing.
async fn define_live_segment(client: &reqwest::Client, base: &str) {
    for setup in [
        "mutation { defineAttribute(input: { name: \"live_flag\", type: BOOL }) { attribute { name } } }",
        "mutation { upsertSegment(input: { slug: \"live-flagged\", name: \"live\", text: \"live_flag = true\" }) { segment { slug } } }",
    ] {
        client
            .post(format!("{base}/graphql"))
            .json(&json!({ "query": setup }))
            .send()
            .await
            .unwrap();
    }
}

/// ENTERs one subscription received: the hash of the contact id and when it arrived.
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

/// The hash a contact id is noted by (collisions among a run's ids are not a concern).
fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id)
}

/// The contact id of an ENTER in a `segmentChanges` frame, found without parsing the JSON (at
/// a thousand subscriptions this client reads a million frames a second).
fn entered_contact(frame: &str) -> Option<&str> {
    if !frame.contains("\"kind\":\"ENTER\"") {
        return None;
    }
    let marker = "\"contactId\":\"";
    let start = frame.find(marker)? + marker.len();
    let end = start + frame[start..].find('"')?;
    Some(&frame[start..end])
}

/// Opens `sockets` sockets, each following `segmentChanges(slug: "live-flagged")`
/// `per_socket` times, noting when each ENTER arrives on each subscription.
async fn subscribe(base: &str, key: &str, sockets: usize, per_socket: usize) -> Vec<Arrivals> {
    let mut all = Vec::with_capacity(sockets * per_socket);
    for _ in 0..sockets {
        let arrivals: Vec<Arrivals> = (0..per_socket).map(|_| Arrivals::default()).collect();
        subscribe_socket(base, key, arrivals.clone()).await;
        all.extend(arrivals);
    }
    all
}

/// One socket with a subscription for each of `arrivals`.
async fn subscribe_socket(base: &str, key: &str, arrivals: Vec<Arrivals>) {
    let mut request = format!("{}/graphql/ws", base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |message: Value| Message::Text(message.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {key}") } })))
        .await
        .unwrap();
    let query = "subscription { segmentChanges(slug: \"live-flagged\") { contactId kind } }";
    for id in 0..arrivals.len() {
        socket
            .send(send(
                json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": query } }),
            ))
            .await
            .unwrap();
    }
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let arrived = Instant::now();
            let Message::Text(text) = frame else { continue };
            if text.contains("\"type\":\"ping\"") {
                let _ = socket.send(send(json!({ "type": "pong" }))).await;
                continue;
            }
            let Some(contact) = entered_contact(&text) else {
                continue;
            };
            // `"id":"N"`: the subscription the frame belongs to.
            let subscription = text
                .split_once("\"id\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .and_then(|(id, _)| id.parse::<usize>().ok());
            if let Some(arrivals) = subscription.and_then(|n| arrivals.get(n)) {
                arrivals.lock().unwrap().push((id_hash(contact), arrived));
            }
        }
    });
}

/// One acknowledged write of [`paced_writes`].
struct Write {
    /// When its request was sent.
    at: Instant,
    /// How long the write took to answer.
    took: Duration,
    /// Which of the clients sent it.
    client: usize,
}

/// Sends `total` upserts at `rate` a second (at most [`IN_FLIGHT`] at once), the n-th through
/// `clients[n % clients.len()]`, each creating a contact (external id `{prefix}-{run}-{n}`, fresh
/// each run) that enters `live-flagged`; the acknowledged writes by contact id.
async fn paced_writes(
    clients: &[reqwest::Client],
    base: &str,
    prefix: &str,
    rate: usize,
    total: usize,
) -> HashMap<String, Write> {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let sent: Arc<Mutex<HashMap<String, Write>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    let request =
        "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
    for n in 0..total {
        ticks.tick().await;
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let which = n % clients.len();
        let (client, base, sent) = (clients[which].clone(), base.to_owned(), Arc::clone(&sent));
        let external_id = format!("{prefix}-{run}-{n:07}");
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let input = json!({ "externalId": external_id, "attributes": { "live_flag": true } });
            let data = graphql(&client, &base, request, json!({ "input": input })).await;
            let took = at.elapsed();
            drop(permit);
            if let Some(id) = data["upsertContact"]["contact"]["id"].as_str() {
                let write = Write {
                    at,
                    took,
                    client: which,
                };
                sent.lock().unwrap().insert(id.to_owned(), write);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    std::mem::take(&mut *sent.lock().unwrap())
}

/// How long after `since` the last of `arrivals` came (zero when all came before).
fn last_arrival(arrivals: impl Iterator<Item = Instant>, since: Instant) -> Duration {
    arrivals
        .map(|arrived| arrived.saturating_duration_since(since))
        .max()
        .unwrap_or_default()
}

fn percentiles(mut latencies: Vec<Duration>) -> (f64, f64) {
    if latencies.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    latencies.sort();
    let at = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99))
}

/// Sends `rate` writes a second for `seconds`, each creating a contact that enters
/// `live-flagged`, and measures how soon the subscriptions (`sockets` sockets of `per_socket`
/// each) and the webhook report it.
pub async fn measure(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    rate: usize,
    seconds: usize,
    (sockets, per_socket): (usize, usize),
) -> LiveReport {
    define_live_segment(client, base).await;
    let receiver = Arc::new(Receiver {
        secret: Mutex::new(None),
        seen: Receipts::default(),
        forged: Mutex::new(0),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(Arc::clone(&receiver));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let created = graphql(
        client,
        base,
        "mutation($url: String!) { createWebhook(input: { url: $url, events: [SEGMENT_MEMBERSHIP], segments: [\"live-flagged\"] }) { secret } }",
        json!({ "url": url }),
    )
    .await;
    *receiver.secret.lock().unwrap() = created["createWebhook"]["secret"]
        .as_str()
        .map(str::to_owned);
    let subscribed = subscribe(base, key, sockets, per_socket).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = rate * seconds;
    let started = Instant::now();
    let sent = paced_writes(std::slice::from_ref(client), base, "live", rate, total).await;
    let elapsed = started.elapsed();
    let writes_ended = Instant::now();
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let subscriptions_done = subscribed
            .iter()
            .all(|arrivals| arrivals.lock().unwrap().len() >= total);
        if subscriptions_done && receiver.seen.lock().unwrap().len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent_at: HashMap<u64, Instant> = sent
        .iter()
        .map(|(id, write)| (id_hash(id), write.at))
        .collect();
    let mut subscription_latencies = Vec::new();
    let mut fewest = usize::MAX;
    let mut last_on_a_subscription = None;
    for arrivals in &subscribed {
        let arrivals = arrivals.lock().unwrap();
        let mut received = std::collections::HashSet::new();
        for (contact, arrived) in arrivals.iter() {
            if let Some(at) = sent_at.get(contact)
                && received.insert(*contact)
            {
                subscription_latencies.push(arrived.duration_since(*at));
            }
        }
        fewest = fewest.min(received.len());
        last_on_a_subscription =
            last_on_a_subscription.max(arrivals.iter().map(|(_, at)| *at).max());
    }
    let (subscription_p50, subscription_p99) = percentiles(subscription_latencies);
    let subscriptions_drained = last_arrival(last_on_a_subscription.into_iter(), writes_ended);
    // Each lock is taken and let go in its own statement (the receipts are locked again below).
    let webhook_arrivals: Vec<Instant> = receiver.seen.lock().unwrap().values().copied().collect();
    let webhook_drained = last_arrival(webhook_arrivals.into_iter(), writes_ended);
    let latencies = |seen: &Receipts| {
        let seen = seen.lock().unwrap();
        let found: Vec<Duration> = sent
            .iter()
            .filter_map(|(id, write)| seen.get(id).map(|arrived| arrived.duration_since(write.at)))
            .collect();
        let count = found.len();
        let (p50, p99) = percentiles(found);
        (p50, p99, count)
    };
    assert_eq!(
        *receiver.forged.lock().unwrap(),
        0,
        "every delivery verifies"
    );
    LiveReport {
        writes: total,
        rate: total as f64 / elapsed.as_secs_f64(),
        write: percentiles(sent.values().map(|write| write.took).collect()),
        drained_after: (subscriptions_drained, webhook_drained),
        subscription: (subscription_p50, subscription_p99, fewest),
        subscriptions: subscribed.len(),
        webhook: latencies(&receiver.seen),
    }
}
