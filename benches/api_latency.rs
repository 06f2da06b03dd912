//! `api_latency`: the real service, started as a process, driven over real HTTP with keep-alive
//! connections, as a routing engine or a frontend would. Reports p50/p99 latency per request
//! kind (counts, pages, search with 20 saved segments; routing reads with 50), and requests/s
//! for `contact(id:)` with 16 concurrent connections; then the console's segment editor, as
//! the request it sends on every keystroke while a 5-clause segment is typed; last, the live
//! side: ENTER latency to a subscription and to a signed webhook under a stream of writes
//! (`QWRY_BENCH_LIVE_RATE`, default 1,000 a second, for 20 s; see `benches/live`);
//! `QWRY_BENCH_SUBSCRIPTIONS=1000` follows the ENTERs on that many subscriptions (ten to a
//! socket, rounded up to tens) instead of one; `QWRY_BENCH_LANES=1` measures webhook lanes
//! instead (ten endpoints in three workspaces, all healthy, then with a slow, a failing and a
//! dead one; see `benches/live/lanes.rs`);
//! `QWRY_BENCH_LIVE_ONLY=1` measures the live side alone, `QWRY_BENCH_THROUGHPUT_ONLY=1` the
//! `contact(id:)` throughput alone (to compare server settings, e.g. the access log's
//! `ACCESS_LOG_RETENTION_DAYS=0` against its default: the server inherits the environment);
//! `contact(id:)` reads the first `QWRY_BENCH_IDS` contacts in turn (default 100).
//! The server's memory (resident and peak) and its data on disk are printed after the load,
//! with the time from its start to ready. `QWRY_BENCH_OPERATIONS=1` adds the operator's side
//! at the end: a restart on the kept data (time to ready, memory once idle), then `backup`,
//! `check`, `reindex` and `restore`, each with its time and peak memory (the 10M table in
//! BENCHMARKS.md).
//!
//! Data: `QWRY_BENCH_CONTACTS` contacts (default 20000) from `benches/data` (20 attributes,
//! seed 42 + chunk), imported through `POST /v1/contacts/import`, then indexed.
//! Server: the binary at `QWRY_SERVER_BIN` (default `target/release/qwry-contacts`; build it
//! with `cargo build --release`), so that two builds can be compared in one run; its store is
//! RocksDB, or SurrealKV with `QWRY_BENCH_STORE=surrealkv`. With `QWRY_BENCH_DIR=<dir>` the
//! server keeps its data there, and a later run with the same size and directory skips the load
//! (3 minutes at 1M), so that several builds can be measured on the same data.
//! Before measuring, the bench waits (at most [`SETTLE_AT_MOST`]) until the server is idle, so
//! that the index merges the load leaves behind do not land in the read figures; it prints how
//! long it waited.
//! Run: `cargo build --release && cargo bench --bench api_latency`.

// Shared with the other benches; this one uses the generator, not the catalogue.
#[allow(dead_code)]
mod data;
mod footprint;
// Shared with `instance_lag`, which waits for readiness with the default patience.
#[allow(dead_code)]
mod http;
mod live;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qwry_contacts::domain::WorkspaceId;
use qwry_contacts::service::contact_json;
use qwry_segment::FieldType;
use serde_json::{Value, json};

use http::{KEY, client, graphql, percentile, wait_until_ready_within};

/// Sequential requests per latency measurement.
const SEQUENTIAL: usize = 2_000;
/// Longest time spent sampling one request kind.
const PER_KIND: Duration = Duration::from_secs(30);
/// Fewest samples of a request kind, however slow.
const MIN_SAMPLES: usize = 10;
/// Concurrent connections for the throughput measurement.
const CONNECTIONS: usize = 16;
/// How long the throughput measurement runs.
const THROUGHPUT_FOR: Duration = Duration::from_secs(10);

/// Writes per second of the live measurement (`QWRY_BENCH_LIVE_RATE` overrides).
const LIVE_RATE_DEFAULT: usize = 1_000;
/// How long the live measurement writes.
const LIVE_SECONDS: usize = 20;

/// Longest wait for a server to answer `/readyz` after its start (the target at 10M is 30 s).
const READY_AT_MOST: Duration = Duration::from_secs(600);

/// Longest wait for the server to go idle after the load.
const SETTLE_AT_MOST: Duration = Duration::from_secs(300);
/// CPU share of one core under which the server counts as idle.
const IDLE_SHARE: f64 = 0.05;

struct Server {
    child: Child,
    base: String,
    /// Where the data lives (removed at the end unless `QWRY_BENCH_DIR` named it).
    dir: DataDir,
}

enum DataDir {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataDir {
    fn path(&self) -> &std::path::Path {
        match self {
            Self::Temporary(dir) => dir.path(),
            Self::Kept(path) => path,
        }
    }

    /// The file marking that `size` contacts were loaded here.
    fn loaded_marker(&self, size: usize) -> PathBuf {
        self.path().join(format!("bench-loaded-{size}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary: `QWRY_SERVER_BIN`, or the release build.
fn server_binary() -> PathBuf {
    let binary = std::env::var("QWRY_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("target/release/qwry-contacts"));
    assert!(
        binary.exists(),
        "no server binary at {}: run `cargo build --release` first (or set QWRY_SERVER_BIN)",
        binary.display()
    );
    binary
}

/// The store's URL under `dir`: RocksDB, or SurrealKV with `QWRY_BENCH_STORE=surrealkv` (to
/// compare the two engines in one run).
fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("QWRY_BENCH_STORE").as_deref() {
        Ok("surrealkv") => format!("surrealkv://{}", dir.join("store").display()),
        _ => format!("rocksdb://{}", dir.join("rocksdb").display()),
    }
}

/// The binary with the environment of a service (or a command of it) on the data in `dir`.
fn service_command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(server_binary());
    command.env_clear();
    // `CONTACT_CACHE_MB=0` measures the server without its contact cache.
    if let Ok(megabytes) = std::env::var("CONTACT_CACHE_MB") {
        command.env("CONTACT_CACHE_MB", megabytes);
    }
    command
        .env("DATA_DIR", dir)
        .env("DATABASE_URL", database_url(dir))
        .env("ADMIN_API_KEY", KEY)
        .env(
            "RUST_LOG",
            std::env::var("QWRY_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null());
    command
}

/// The bench's data directory: `QWRY_BENCH_DIR`, or a temporary one.
fn data_dir() -> DataDir {
    match std::env::var("QWRY_BENCH_DIR") {
        Ok(path) => {
            std::fs::create_dir_all(&path).unwrap();
            DataDir::Kept(PathBuf::from(path))
        }
        Err(_) => DataDir::Temporary(tempfile::tempdir().unwrap()),
    }
}

/// An admin key of `workspace`, made with the CLI on the data in `dir` (no server running).
fn create_admin_key(dir: &std::path::Path, workspace: &str) -> String {
    let output = service_command(dir)
        .args(["keys", "create", "--name", "bench", "--scopes", "admin"])
        .args(["--workspace", workspace])
        .stdout(Stdio::piped())
        .output()
        .expect("the CLI runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn start_server_in(dir: DataDir) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = service_command(dir.path())
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env("AUTH_FAILURES_PER_SECOND", "0")
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .spawn()
        .expect("server starts");
    eprintln!(
        "server: {} on {}",
        server_binary().display(),
        database_url(dir.path())
    );
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

impl Server {
    /// Stops the server as an orchestrator would (SIGTERM), waiting for it to exit; its data
    /// directory, which it gives back.
    fn stop(mut self) -> DataDir {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, DataDir::Kept(PathBuf::new()));
        drop(self);
        dir
    }
}

/// The raw response to `request` (a serialized GraphQL request), read to its last byte but not
/// parsed: the latencies measured are the server's and the network's, not the time this client
/// spends building a JSON tree of the answer (a third of a millisecond for a page of 100
/// contacts with 20 attributes).
async fn graphql_bytes(client: &reqwest::Client, base: &str, request: &[u8]) -> impl AsRef<[u8]> {
    let response = client
        .post(format!("{base}/graphql"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(request.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn type_name(field: FieldType) -> &'static str {
    match field {
        FieldType::String => "STRING",
        FieldType::Number => "NUMBER",
        FieldType::Bool => "BOOL",
        FieldType::Datetime => "DATETIME",
        FieldType::StringList => "STRING_LIST",
    }
}

/// Imports `size` generated contacts, 50,000 per request.
async fn load(client: &reqwest::Client, base: &str, size: usize) {
    for (name, field) in data::ATTRIBUTES {
        graphql(
            client,
            base,
            "mutation($input: DefineAttributeInput!) { defineAttribute(input: $input) { attribute { name } } }",
            json!({ "input": { "name": name, "type": type_name(*field) } }),
        )
        .await;
    }
    let workspace = WorkspaceId::default();
    let started = Instant::now();
    let chunk = 50_000;
    for (index, first) in (0..size).step_by(chunk).enumerate() {
        let count = chunk.min(size - first);
        let contacts = data::contacts(&workspace, count, 42 + index as u64);
        let mut body = String::with_capacity(count * 800);
        for (offset, contact) in contacts.iter().enumerate() {
            let mut line = contact_json(contact);
            let object = line.as_object_mut().unwrap();
            object.remove("id");
            object.insert(
                "externalId".into(),
                format!("ext-{:07}", first + offset).into(),
            );
            body.push_str(&line.to_string());
            body.push('\n');
        }
        let report: Value = client
            .post(format!("{base}/v1/contacts/import"))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(report["created"], count, "{report}");
    }
    graphql(
        client,
        base,
        "{ contacts(segment: \"created_at exists\", first: 0, consistency: LATEST) { totalCount } }",
        json!({}),
    )
    .await;
    eprintln!("loaded {size} contacts in {:.1?}", started.elapsed());
}

/// CPU time (user + system) the process `pid` has used, in clock ticks (Linux `/proc`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// Waits until the server used less than [`IDLE_SHARE`] of a core for a whole second (the
/// index merges after a load take minutes at 1M), at most [`SETTLE_AT_MOST`].
async fn settle(pid: u32) {
    let started = Instant::now();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let Some(mut last) = cpu_ticks(pid) else {
        return;
    };
    while started.elapsed() < SETTLE_AT_MOST {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(now) = cpu_ticks(pid) else {
            return;
        };
        let share = (now - last) as f64 / ticks_per_second;
        last = now;
        if share < IDLE_SHARE {
            break;
        }
    }
    eprintln!("server idle after {:.1?}", started.elapsed());
}

/// Whether the server answers `query` without errors (older builds lack some fields).
async fn supported(client: &reqwest::Client, base: &str, query: &str) -> bool {
    let body: Value = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.get("errors").is_none()
}

/// p50 and p99 (ms) of `SEQUENTIAL` requests of `query`, one after the other on one connection,
/// and how many ran: a slow kind stops after `PER_KIND` (at least `MIN_SAMPLES` requests), so
/// that an old build whose requests take seconds can still be measured.
async fn sequential(client: &reqwest::Client, base: &str, query: &str) -> (f64, f64, usize) {
    let request = serde_json::to_vec(&json!({ "query": query })).unwrap();
    let warm_until = Instant::now() + PER_KIND / 10;
    for _ in 0..50 {
        graphql(client, base, query, json!({})).await;
        if Instant::now() > warm_until {
            break;
        }
    }
    let deadline = Instant::now() + PER_KIND;
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    while latencies.len() < SEQUENTIAL
        && (latencies.len() < MIN_SAMPLES || Instant::now() < deadline)
    {
        let started = Instant::now();
        let body = graphql_bytes(client, base, &request).await;
        latencies.push(started.elapsed());
        assert!(
            !contains(body.as_ref(), b"\"errors\""),
            "{}",
            String::from_utf8_lossy(body.as_ref())
        );
    }
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.len(),
    )
}

/// Prints a table row (p50, p99, samples) for each named request, `n/a` where the server
/// does not support it.
async fn report(client: &reqwest::Client, base: &str, requests: &[(&str, &str)]) {
    for (name, query) in requests {
        if !supported(client, base, query).await {
            println!("| {name} | n/a | n/a | 0 |");
            continue;
        }
        let (p50, p99, n) = sequential(client, base, query).await;
        println!("| {name} | {p50:.3} | {p99:.3} | {n} |");
    }
}

/// The segment a marketer types in the console's editor, one keystroke at a time.
const TYPED_SEGMENT: &str = "plan = \"pro\" and ltv >= 100 and (country in [\"DE\", \"FR\"] or tags has any [\"vip\", \"beta\"]) and last_seen_at within 30d and newsletter = true";
/// How many times the segment is typed.
const TYPINGS: usize = 5;

/// p50, p99 and max (ms) of the console editor's request for each keystroke of
/// [`TYPED_SEGMENT`] (every prefix, valid or not): validation with spans and hints, and the
/// exact count when it is valid. Returns also how many prefixes were valid.
async fn keystrokes(client: &reqwest::Client, base: &str) -> (f64, f64, f64, usize, usize) {
    let query = "query($text: String!) { validateSegment(text: $text) { valid canonical estimatedCount problems: errors { message code start end hint } } }";
    let prefixes: Vec<&str> = TYPED_SEGMENT
        .char_indices()
        .map(|(at, c)| &TYPED_SEGMENT[..at + c.len_utf8()])
        .collect();
    let mut latencies = Vec::with_capacity(prefixes.len() * TYPINGS);
    let mut valid = 0;
    for typing in 0..=TYPINGS {
        for prefix in &prefixes {
            let request =
                serde_json::to_vec(&json!({ "query": query, "variables": { "text": prefix } }))
                    .unwrap();
            let started = Instant::now();
            let body = graphql_bytes(client, base, &request).await;
            let took = started.elapsed();
            assert!(
                !contains(body.as_ref(), b"\"errors\""),
                "{}",
                String::from_utf8_lossy(body.as_ref())
            );
            if typing > 0 {
                // The first typing warms up.
                latencies.push(took);
                valid += usize::from(contains(body.as_ref(), b"\"valid\":true"));
            }
        }
    }
    latencies.sort();
    let max = latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        max,
        latencies.len(),
        valid / TYPINGS,
    )
}

/// Requests/s, p50 and p99 (ms) of `contact(id:)` over `ids`, `CONNECTIONS` at once.
async fn contact_by_id(base: &str, ids: Arc<Vec<String>>) -> (f64, f64, f64) {
    let deadline = Instant::now() + THROUGHPUT_FOR;
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|task| {
            let ids = Arc::clone(&ids);
            let base = base.to_owned();
            tokio::spawn(async move {
                let client = client(CONNECTIONS);
                let mut latencies = Vec::new();
                let mut n = task;
                while Instant::now() < deadline {
                    let id = &ids[n % ids.len()];
                    n += CONNECTIONS;
                    let request = serde_json::to_vec(&json!({
                        "query": "query($id: ID!) { contact(id: $id) { id email name attributes } }",
                        "variables": { "id": id },
                    }))
                    .unwrap();
                    let started = Instant::now();
                    let body = graphql_bytes(&client, &base, &request).await;
                    latencies.push(started.elapsed());
                    assert!(!contains(body.as_ref(), b"\"errors\""));
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    let rate = all.len() as f64 / THROUGHPUT_FOR.as_secs_f64();
    (rate, percentile(&all, 0.5), percentile(&all, 0.99))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than that is not supported.
    let size: usize = std::env::var("QWRY_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // Only the live side (the reads are skipped; the saved segments are still saved).
    let live_only = std::env::var("QWRY_BENCH_LIVE_ONLY").is_ok_and(|value| value == "1");
    let throughput_only =
        std::env::var("QWRY_BENCH_THROUGHPUT_ONLY").is_ok_and(|value| value == "1");
    // `QWRY_BENCH_SUBSCRIPTIONS=1000`: that many subscriptions, ten to a socket (rounded up).
    let subscriptions = match std::env::var("QWRY_BENCH_SUBSCRIPTIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) if n > 1 => (n.div_ceil(10), 10.min(n)),
        _ => (1, 1),
    };
    let live_rate: usize = std::env::var("QWRY_BENCH_LIVE_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LIVE_RATE_DEFAULT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let operations = std::env::var("QWRY_BENCH_OPERATIONS").is_ok_and(|value| value == "1");
    let lanes = std::env::var("QWRY_BENCH_LANES").is_ok_and(|value| value == "1");
    let dir = data_dir();
    // The lanes' other two workspaces, each with an admin key.
    let lane_keys = lanes.then(|| {
        [
            create_admin_key(dir.path(), "bench-lanes-b"),
            create_admin_key(dir.path(), "bench-lanes-c"),
        ]
    });
    let server = start_server_in(dir);
    let server = runtime.block_on(async {
        let base = server.base.clone();
        let ready_after = wait_until_ready_within(&base, READY_AT_MOST).await;
        eprintln!("ready {ready_after:.1?} after start");
        let client = client(CONNECTIONS);
        let marker = server.dir.loaded_marker(size);
        if marker.exists() {
            eprintln!("reusing the {size} contacts loaded in {}", server.dir.path().display());
        } else {
            load(&client, &base, size).await;
            std::fs::write(&marker, b"").unwrap();
        }
        live::forget_earlier_endpoints(&client, &base).await;
        settle(server.child.id()).await;
        report_footprint(&server, size);
        // The contacts `contact(id:)` reads, in turn: the first `QWRY_BENCH_IDS` (default 100).
        let wanted: usize = std::env::var("QWRY_BENCH_IDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let mut ids: Vec<String> = Vec::with_capacity(wanted);
        let mut after = serde_json::Value::Null;
        while ids.len() < wanted {
            let page = graphql(
                &client,
                &base,
                "query($after: String) { contacts(first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
            ids.extend(
                page["contacts"]["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|edge| edge["node"]["id"].as_str().unwrap().to_owned()),
            );
            if page["contacts"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = page["contacts"]["pageInfo"]["endCursor"].clone();
        }
        ids.truncate(wanted);

        // Saved segments, so that `Contact.segments` has 20 to evaluate.
        for n in 0..20 {
            let text = match n % 4 {
                0 => format!("ltv >= {}", n * 250),
                1 => format!("orders > {n} and plan = \"pro\""),
                2 => format!("tags has \"vip\" or company_size < {}", n * 100),
                _ => format!("last_seen_at within {}d", n + 1),
            };
            graphql(
                &client,
                &base,
                "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }",
                json!({ "slug": format!("s{n:02}"), "text": text }),
            )
            .await;
        }
        let requests = [
            ("count, one term", "{ contacts(segment: \"plan = \\\"pro\\\"\", first: 0) { totalCount } }"),
            ("count, 5 clauses", "{ contacts(segment: \"plan = \\\"pro\\\" and ltv >= 100 and (country in [\\\"DE\\\", \\\"FR\\\"] or tags has any [\\\"vip\\\", \\\"beta\\\"]) and last_seen_at within 30d and newsletter = true\", first: 0) { totalCount } }"),
            ("count, within 30d", "{ contacts(segment: \"last_seen_at within 30d\", first: 0) { totalCount } }"),
            ("first page of 100 ids", "{ contacts(segment: \"plan = \\\"pro\\\"\", first: 100) { edges { node { id } } } }"),
            ("page of 100: email, attributes", "{ contacts(first: 100) { edges { node { id email attributes } } } }"),
            ("page of 100: identities, segments (20 saved)", "{ contacts(first: 100) { edges { node { id email identities { nodes { kind value } } segments { nodes { slug } } } } } }"),
            ("search, one person (`edsger.1234`)", "{ contacts(search: \"edsger.1234\", first: 10) { totalCount edges { node { id name email } } } }"),
            ("search, a common name (`grace`)", "{ contacts(search: \"grace\", first: 10) { totalCount edges { node { id name email } } } }"),
            ("members of a segment by `plan` (top values)", "{ segmentDistribution(segment: \"ltv >= 100\", field: \"plan\") { members missing values { value count } } }"),
            ("members of a segment by `ltv` (10 bars)", "{ segmentDistribution(segment: \"plan = \\\"pro\\\"\", field: \"ltv\") { members bars { low high count } } }"),
            ("a saved segment's last 30 days (`history`)", "{ segment(slug: \"s01\") { history(days: 30) { day members entered exited } } }"),
            ("values of `country` (suggestions)", "{ fieldValues(field: \"country\", prefix: \"D\") { value count } }"),
        ];
        println!("| request ({size} contacts) | p50 ms | p99 ms | requests |");
        println!("| --- | ---: | ---: | ---: |");
        if let Some([key_b, key_c]) = &lane_keys {
            let clients = [
                client.clone(),
                http::client_with_key(key_b, CONNECTIONS),
                http::client_with_key(key_c, CONNECTIONS),
            ];
            measure_lanes(&clients, &base, live_rate).await;
            return server;
        }
        if throughput_only {
            let (rate, p50, p99) = contact_by_id(&base, Arc::new(ids)).await;
            println!(
                "| contact(id:), {CONNECTIONS} connections: {rate:.0} requests/s | {p50:.3} | {p99:.3} | |"
            );
            return server;
        }
        if !live_only {
            report(&client, &base, &requests).await;
        }
        // 30 more saved segments, so that routing reads check 50.
        for n in 20..50 {
            let text = match n % 5 {
                0 => format!("ltv >= {} and plan = \"pro\"", n * 100),
                1 => format!("orders between {} and {}", n / 5, n),
                2 => format!("country in [\"DE\", \"FR\"] and company_size > {n}"),
                3 => format!("in segment \"s{:02}\" and newsletter = true", n % 20),
                _ => format!("last_seen_at within {}d or tags has \"beta\"", n - 10),
            };
            graphql(
                &client,
                &base,
                "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }",
                json!({ "slug": format!("s{n:02}"), "text": text }),
            )
            .await;
        }
        let routing = [
            ("matchSegments, all 50 saved", "{ matchSegments(externalId: \"ext-0000042\") { slugs } }"),
            ("matchSegments, 5 slugs", "{ matchSegments(externalId: \"ext-0000042\", slugs: [\"s01\", \"s07\", \"s23\", \"s38\", \"s44\"]) { results { nodes { slug member } } } }"),
            ("best 10 of a segment by ltv", "{ contacts(segment: \"plan = \\\"pro\\\"\", orderBy: { field: \"ltv\", direction: DESC }, first: 10) { edges { node { id } } } }"),
        ];
        if !live_only {
            report(&client, &base, &routing).await;
            let (p50, p99, max, n, valid) = keystrokes(&client, &base).await;
            println!(
                "| console editor, each keystroke of a 5-clause segment ({} prefixes, {valid} valid): validation and count, max {max:.3} ms | {p50:.3} | {p99:.3} | {n} |",
                n / TYPINGS
            );
            let (rate, p50, p99) = contact_by_id(&base, Arc::new(ids)).await;
            println!(
                "| contact(id:), {CONNECTIONS} connections: {rate:.0} requests/s | {p50:.3} | {p99:.3} | |"
            );
        }
        // The live side last: it writes (new contacts entering a saved segment), with the 50
        // saved segments above evaluated on every write.
        let live = live::measure(&client, &base, KEY, live_rate, LIVE_SECONDS, subscriptions).await;
        println!(
            "| live: {} writes at {:.0}/s (asked {live_rate}/s), each a new contact entering a saved segment (51 saved): the write | {:.3} | {:.3} | {} |",
            live.writes, live.rate, live.write.0, live.write.1, live.writes
        );
        println!(
            "| live: from the write's request to the ENTER on each of {} `segmentChanges` subscriptions (the last column: ENTERs received by the subscription that received fewest) | {:.3} | {:.3} | {} |",
            live.subscriptions, live.subscription.0, live.subscription.1, live.subscription.2
        );
        println!(
            "| live: from the write's request to the signed webhook's receipt on 127.0.0.1 | {:.3} | {:.3} | {} |",
            live.webhook.0, live.webhook.1, live.webhook.2
        );
        println!(
            "| live: the last ENTER after the last write's answer, to the subscriptions / the webhook: {:.2?} / {:.2?} | | | |",
            live.drained_after.0, live.drained_after.1
        );
        server
    });
    if operations {
        measure_operations(&runtime, server, size);
    }
}

/// Webhook lanes: the all-healthy layout and the faulty one, alternated twice.
async fn measure_lanes(clients: &[reqwest::Client; 3], base: &str, rate: usize) {
    for round in 0..2 {
        for (name, layout) in [
            ("all healthy", live::lanes::ALL_HEALTHY),
            ("a slow, a failing and a dead one", live::lanes::FAULTY),
        ] {
            let report = live::lanes::measure(clients, base, layout, rate, LIVE_SECONDS).await;
            println!(
                "| lanes, round {}: ten endpoints in three workspaces, {name}: {} writes at {rate}/s, from the write's request to a healthy endpoint's receipt ({} of {} delivered) | {:.3} | {:.3} | {} |",
                round + 1,
                report.writes,
                report.delivered.0,
                report.delivered.1,
                report.healthy.0,
                report.healthy.1,
                report.delivered.0
            );
        }
    }
}

/// Prints the server's memory now and at its peak, and its data's size on disk.
fn report_footprint(server: &Server, contacts: usize) {
    if let Some((rss, peak)) = footprint::memory_mib(server.child.id()) {
        println!("| memory: resident now {rss:.0} MiB, peak {peak:.0} MiB | | | |");
    }
    footprint::report_disk(server.dir.path(), contacts);
}

/// The operator's side on the data just measured (`QWRY_BENCH_OPERATIONS=1`): a restart on
/// the kept data (time to ready, memory once idle), then `backup`, `check`, `reindex` and
/// `restore` (into a new directory), each with its time and peak memory.
fn measure_operations(runtime: &tokio::runtime::Runtime, server: Server, size: usize) {
    let dir = server.stop();
    let server = start_server_in(dir);
    runtime.block_on(async {
        let ready_after = wait_until_ready_within(&server.base, READY_AT_MOST).await;
        println!("| restart on the kept data: ready after {ready_after:.1?} | | | |");
        settle(server.child.id()).await;
    });
    report_footprint(&server, size);
    let dir = server.stop();
    // The backup file and the store it is restored into, removed however the steps end.
    let scratch = tempfile::tempdir_in(dir.path()).unwrap();
    let backup_file = scratch.path().join("backup.json");
    let restored = scratch.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    let command = |dir: &std::path::Path, args: &[&std::ffi::OsStr]| {
        let mut command = service_command(dir);
        command.args(args);
        command
    };
    let steps = [
        (
            "backup",
            command(dir.path(), &["backup".as_ref(), backup_file.as_ref()]),
        ),
        ("check", command(dir.path(), &["check".as_ref()])),
        ("reindex", command(dir.path(), &["reindex".as_ref()])),
        (
            "restore (into an empty store)",
            command(&restored, &["restore".as_ref(), backup_file.as_ref()]),
        ),
    ];
    for (name, mut command) in steps {
        let cost = footprint::run_measured(&mut command);
        assert!(cost.succeeded, "`{name}` failed");
        println!(
            "| `{name}`: {:.1} s, peak memory {:.0} MiB | | | |",
            cost.took.as_secs_f64(),
            cost.peak_mib
        );
        if name == "backup" {
            let bytes = footprint::disk_bytes(&backup_file);
            println!(
                "| backup file: {:.0} MiB | | | |",
                bytes as f64 / 1_048_576.0
            );
        }
    }
}
