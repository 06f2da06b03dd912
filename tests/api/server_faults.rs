//! Faults of the SurrealDB server under running service instances (issue 42): the server
//! SIGKILLed during writes and restarted, a connection that stalls, a service instance
//! SIGKILLed beside another, and SIGTERM while the server is gone. The server is the
//! workspace's `surreal-test-server`, on disk (RocksDB, the engine the service embeds by
//! default) where it must come back with its data.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qwry_contacts::config::{DatabaseUrl, StoreSettings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::TestApp;
use crate::process::Service;
use crate::test_store::{free_port, server_database, start_server_on};

/// How long a call to the server may take in these tests (`STORE_TIMEOUT_MS`).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How soon after the server's return every instance must serve again.
const BACK_WITHIN: Duration = Duration::from_secs(5);
const UPSERT: &str =
    "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
const SAVE_PROS: &str = "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }";

/// A server process, killed and reaped when dropped.
struct Server(std::process::Child);

impl Server {
    fn start(bind: &str, storage: &str) -> Self {
        Self(start_server_on(bind, &[storage]))
    }

    /// SIGKILL, as a crash or an OOM killer would.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Settings of a store on the server at `bind`, database `database`.
fn store_at(bind: &str, database: &str) -> StoreSettings {
    let mut store = StoreSettings::new(DatabaseUrl::parse(&format!("ws://{bind}")).unwrap());
    store.username = Some("root".to_owned());
    store.password = Some("root".into());
    store.database = database.to_owned();
    store.call_timeout = CALL_TIMEOUT;
    store
}

/// `rocksdb://` storage under `dir`, kept across restarts of the server.
fn disk_storage(dir: &Path) -> String {
    format!("rocksdb://{}", dir.join("data").display())
}

/// One upsert of `external_id` as a pro through the GraphQL endpoint at `graphql`; the
/// answer's body, or `None` when no answer (or no JSON) came within `patience`.
async fn upsert_at(graphql: &str, external_id: &str, patience: Duration) -> Option<Value> {
    let input = json!({ "input": { "externalId": external_id, "attributes": { "plan": "pro" } } });
    let response = crate::helpers::client_with_key(crate::helpers::ADMIN_KEY)
        .post(graphql)
        .timeout(patience)
        .json(&json!({ "query": UPSERT, "variables": input }))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

async fn upsert(app: &TestApp, external_id: &str, patience: Duration) -> Option<Value> {
    upsert_at(&app.url("/graphql"), external_id, patience).await
}

fn acknowledged(answer: &Option<Value>) -> bool {
    answer
        .as_ref()
        .is_some_and(|body| body["errors"].is_null() && body["data"]["upsertContact"].is_object())
}

/// Writes `prefix-N` through the endpoint `graphql` until `stop` turns true; returns the
/// external ids acknowledged and the error codes seen, each with how long its request took.
async fn write_until(
    graphql: String,
    prefix: &str,
    stop: watch::Receiver<bool>,
) -> (Vec<String>, Vec<(String, Duration)>) {
    let mut acked = Vec::new();
    let mut failures = Vec::new();
    for n in 0.. {
        if *stop.borrow() {
            break;
        }
        let external_id = format!("{prefix}-{n}");
        let started = Instant::now();
        let answer = upsert_at(&graphql, &external_id, Duration::from_secs(30)).await;
        if acknowledged(&answer) {
            acked.push(external_id);
        } else {
            let code = answer
                .as_ref()
                .and_then(|body| body["errors"][0]["extensions"]["code"].as_str())
                .unwrap_or("NO ANSWER")
                .to_owned();
            failures.push((code, started.elapsed()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (acked, failures)
}

/// Polls until `app` answers an upsert, within [`BACK_WITHIN`] of `since`.
async fn serves_again(app: &TestApp, name: &str, since: Instant) {
    for n in 0.. {
        if acknowledged(&upsert(app, &format!("{name}-back-{n}"), BACK_WITHIN).await) {
            return;
        }
        assert!(
            since.elapsed() < BACK_WITHIN,
            "{name} does not serve {BACK_WITHIN:?} after the server returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The external ids of the pros `app` finds in its index, once it has applied every write
/// (a segment export waits for that).
async fn pros_in_index(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = app
        .export("?segment=plan%20%3D%20%22pro%22")
        .await
        .iter()
        .map(|line| line["externalId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn readyz(app: &TestApp) -> u16 {
    reqwest::Client::new()
        .get(app.url("/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_requests_fast_and_both_instances_serve_again_when_it_returns() {
    let data = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let storage = disk_storage(data.path());
    let mut server = Server::start(&bind, &storage);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = TestApp::spawn_on(store_at(&bind, "faults"), dirs[0].path().to_owned()).await;
    a.define_attribute("plan", "STRING").await;
    let b = TestApp::spawn_on(store_at(&bind, "faults"), dirs[1].path().to_owned()).await;

    // Both instances write while the server is SIGKILLed, stays down 3 s, and comes back.
    let (stop, stopped) = watch::channel(false);
    let writers = tokio::spawn({
        let (a, b) = (a.url("/graphql"), b.url("/graphql"));
        async move {
            tokio::join!(
                write_until(a, "a", stopped.clone()),
                write_until(b, "b", stopped)
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill();

    // While it is down: not ready, and a write fails with a code, well within the request timeout.
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while readyz(app).await != 503 {
            assert!(Instant::now() < deadline, "/readyz does not say 503");
        }
        let started = Instant::now();
        let answer = upsert(app, "while-down", Duration::from_secs(30)).await;
        let waited = started.elapsed();
        let body = answer.expect("an answer while the server is down");
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
            "{body}"
        );
        assert!(waited < CALL_TIMEOUT * 3, "the write took {waited:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let _server = Server::start(&bind, &storage);
    let returned = Instant::now();
    serves_again(&a, "a", returned).await;
    serves_again(&b, "b", returned).await;
    assert_eq!(readyz(&a).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    let ((acked_a, failed_a), (acked_b, failed_b)) = writers.await.unwrap();
    for (code, took) in failed_a.iter().chain(&failed_b) {
        assert_eq!(code, "UNAVAILABLE", "a write failed otherwise");
        assert!(*took < CALL_TIMEOUT * 3, "a failed write took {took:?}");
    }
    assert!(
        !failed_a.is_empty() && !failed_b.is_empty(),
        "the writers never met the dead server"
    );

    // Nothing acknowledged is lost, and both indexes converge on the store.
    let truth = pros_in_index(&a).await;
    for external_id in acked_a.iter().chain(&acked_b) {
        assert!(
            truth.binary_search(external_id).is_ok(),
            "acknowledged `{external_id}` is gone"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pros_in_index(&b).await != truth {
        assert!(Instant::now() < deadline, "b's index does not converge");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// A TCP proxy that forwards while `flowing` is true and holds every byte while it is false
/// (the connections stay open: a stalled link, not a closed one).
struct StallingProxy {
    bind: String,
    flowing: watch::Sender<bool>,
}

impl StallingProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bind = listener.local_addr().unwrap().to_string();
        let (flowing, _) = watch::channel(true);
        let gate = flowing.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, gate.subscribe()));
                tokio::spawn(pipe(server_read, client_write, gate.subscribe()));
            }
        });
        Self { bind, flowing }
    }

    fn stall(&self) {
        self.flowing.send_replace(false);
    }

    fn flow(&self) {
        self.flowing.send_replace(true);
    }
}

/// Copies `from` to `to`, holding what it read while the gate is closed.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if gate.wait_for(|open| *open).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if gate.wait_for(|open| *open).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_times_requests_out_with_a_code_and_recovers_when_it_flows() {
    let data = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let _server = Server::start(&bind, &disk_storage(data.path()));
    let proxy = StallingProxy::start(bind).await;
    let index = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_on(store_at(&proxy.bind, "stall"), index.path().to_owned()).await;
    app.define_attribute("plan", "STRING").await;
    assert!(acknowledged(
        &upsert(&app, "before", CALL_TIMEOUT * 3).await
    ));

    proxy.stall();
    let started = Instant::now();
    let body = upsert(&app, "stalled", Duration::from_secs(30))
        .await
        .expect("an answer while the link stalls");
    let waited = started.elapsed();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert!(
        waited >= CALL_TIMEOUT && waited < CALL_TIMEOUT * 3,
        "the stalled write took {waited:?}"
    );
    assert_eq!(readyz(&app).await, 503);

    proxy.flow();
    let flowing = Instant::now();
    serves_again(&app, "after", flowing).await;
    assert_eq!(readyz(&app).await, 200);
    let pros = pros_in_index(&app).await;
    assert!(pros.contains(&"before".to_owned()), "{pros:?}");
    app.stop().await;
}

/// Environment of a service process on the database `store` of the server at `url`.
fn remote_env(store: &StoreSettings) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", store.url.endpoint()),
        ("SURREAL_USER", "root".to_owned()),
        ("SURREAL_PASS", "root".to_owned()),
        ("SURREAL_DB", store.database.clone()),
        ("STORE_TIMEOUT_MS", CALL_TIMEOUT.as_millis().to_string()),
    ]
}

async fn start_process(dir: &Path, env: &[(&'static str, String)]) -> Service {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Service::start_with(dir, &env, Stdio::null()).await
}

/// Every entry of `slug`'s membership feed, read through `service`, page by page.
async fn whole_feed(service: &Service, slug: &str) -> Vec<Value> {
    let query = "query($slug: String!, $after: String) { segmentChanges(slug: $slug, first: 100, after: $after) { nodes { contactId kind } pageInfo { hasNextPage endCursor } } }";
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = service
            .graphql(query, json!({ "slug": slug, "after": after }))
            .await["data"]["segmentChanges"]
            .clone();
        nodes.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// The lease an instance holds runs out this long after it stops renewing it (`LEASE_TERM`).
const LEASE_TERM: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_leaves_the_other_serving_and_every_change_fed_once() {
    let store = server_database();
    // The server stays up here: the default store timeout, so that a slow machine's calls are
    // not cut short.
    let mut env = remote_env(&store);
    env.retain(|(name, _)| *name != "STORE_TIMEOUT_MS");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    // The first instance takes the leases (membership feed, webhook dispatch).
    let first = start_process(dirs[0].path(), &env).await;
    let second = start_process(dirs[1].path(), &env).await;
    first
        .graphql(
            "mutation { defineAttribute(input: { name: \"plan\", type: STRING }) { attribute { name } } }",
            json!({}),
        )
        .await;
    first.graphql(SAVE_PROS, json!({})).await;

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let write = |service: &Service, external_id: String| {
        let (base, acked) = (service.base.clone(), Arc::clone(&acked));
        async move {
            let answer = crate::helpers::client_with_key(crate::helpers::ADMIN_KEY)
                .post(format!("{base}/graphql"))
                .timeout(Duration::from_secs(10))
                .json(&json!({ "query": UPSERT, "variables": { "input": { "externalId": external_id, "attributes": { "plan": "pro" } } } }))
                .send()
                .await;
            let body: Option<Value> = match answer {
                Ok(response) => response.json().await.ok(),
                Err(_) => None,
            };
            if acknowledged(&body) {
                acked.lock().unwrap().push(external_id);
            }
        }
    };
    for n in 0..40 {
        write(&first, format!("before-{n}")).await;
        write(&second, format!("second-{n}")).await;
    }
    let killed = Instant::now();
    first.kill();
    // The other instance keeps serving, every write of it acknowledged.
    for n in 0..40 {
        let before = acked.lock().unwrap().len();
        write(&second, format!("after-{n}")).await;
        assert_eq!(
            acked.lock().unwrap().len(),
            before + 1,
            "the second instance refused a write"
        );
    }

    // Every acknowledged write enters `pros` exactly once in the feed, once the second
    // instance has taken the lease over.
    let mut wanted = acked.lock().unwrap().clone();
    wanted.sort();
    let ids_by_external: std::collections::HashMap<String, String> = second
        .export()
        .await
        .iter()
        .map(|line| {
            (
                line["id"].as_str().unwrap().to_owned(),
                line["externalId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let deadline = killed + LEASE_TERM + Duration::from_secs(5);
    let entered = loop {
        let mut entered: Vec<String> = whole_feed(&second, "pros")
            .await
            .iter()
            .filter(|node| node["kind"] == "ENTER")
            .map(|node| ids_by_external[node["contactId"].as_str().unwrap()].clone())
            .collect();
        entered.sort();
        if wanted.iter().all(|id| entered.binary_search(id).is_ok()) {
            break entered;
        }
        assert!(
            Instant::now() < deadline,
            "the feed lacks entries {:?} after the lease term",
            wanted
                .iter()
                .filter(|id| entered.binary_search(id).is_err())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut once = entered.clone();
    once.dedup();
    assert_eq!(once, entered, "a change was fed twice");
    eprintln!(
        "the second instance fed every change {:?} after the first was killed",
        killed.elapsed()
    );
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_an_instance_whose_server_is_gone_within_10_s() {
    let data = tempfile::tempdir().unwrap();
    let bind = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start(&bind, &disk_storage(data.path()));
    let dir = tempfile::tempdir().unwrap();
    // With the default store timeout (10 s): the stop must not wait on the server for it.
    let mut env = remote_env(&store_at(&bind, "gone"));
    env.retain(|(name, _)| *name != "STORE_TIMEOUT_MS");
    let service = start_process(dir.path(), &env).await;
    service
        .graphql(UPSERT, json!({ "input": { "externalId": "ada" } }))
        .await;
    server.kill();
    let started = Instant::now();
    service.terminate_within(Duration::from_secs(10));
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
}
