//! `instance_lag`: two service processes over one SurrealDB server, each with its own index.
//! Writes go to instance A at a steady rate; the bench measures how long after A acknowledged a
//! write it is in a segment result on instance B (and, as the baseline of the same run, on A
//! itself). Reports p50, p99 and max.
//!
//! Server: the workspace's SurrealDB test server (`target/debug/surreal-test-server`, which
//! `cargo test --workspace` builds; its engine crates are optimised in the dev profile; or
//! `QWRY_SURREAL_SERVER`) in memory. Services: `target/release/qwry-contacts` (or
//! `QWRY_SERVER_BIN`). Data: `QWRY_BENCH_CONTACTS` contacts (default 2,000) imported on A
//! first; then `QWRY_BENCH_WRITES` writes (default 300) at `QWRY_BENCH_RATE` a second
//! (default 20), each setting a number attribute `seq` that a segment `seq = n` finds.
//! Run: `cargo test --workspace --no-run && cargo build --release && cargo bench --bench instance_lag`.

mod http;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use http::{KEY, client, graphql, percentile, wait_until_ready};

/// How often a watcher asks an instance whether the write is in its results.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Longest wait for one write to show.
const WATCH_AT_MOST: Duration = Duration::from_secs(30);

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

fn binary(variable: &str, default: &str, hint: &str) -> PathBuf {
    let path = std::env::var(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(default));
    assert!(
        path.exists(),
        "no binary at {}: {hint} (or set {variable})",
        path.display()
    );
    path
}

fn start_surrealdb() -> (Process, String) {
    let server = binary(
        "QWRY_SURREAL_SERVER",
        "target/debug/surreal-test-server",
        "run `cargo test --workspace --no-run` first",
    );
    let bind = format!("127.0.0.1:{}", free_port());
    let child = Command::new(server)
        .args(["start", "--bind", &bind, "--user", "root", "--pass", "root"])
        // As docs/operations.md asks of a server (SurrealDB 3.3.5 range scans and LIMIT).
        .args(["--planner-strategy", "compute-only"])
        .args(["--log", "warn", "--no-banner", "memory"])
        .stdout(Stdio::null())
        .spawn()
        .expect("the SurrealDB server starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&bind).is_err() {
        assert!(Instant::now() < deadline, "SurrealDB never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Process(child), format!("ws://{bind}"))
}

fn start_service(database_url: &str, dir: &std::path::Path) -> (Process, String) {
    let service = binary(
        "QWRY_SERVER_BIN",
        "target/release/qwry-contacts",
        "run `cargo build --release` first",
    );
    let port = free_port();
    let child = Command::new(service)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", dir)
        .env("DATABASE_URL", database_url)
        .env("SURREAL_USER", "root")
        .env("SURREAL_PASS", "root")
        .env("ADMIN_API_KEY", KEY)
        .env(
            "ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("RATE_LIMIT_PER_SECOND", "0")
        .env("AUTH_FAILURES_PER_SECOND", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("the service starts");
    (Process(child), format!("http://127.0.0.1:{port}"))
}

/// How long after `since` the contact with `seq = n` is in `base`'s segment results.
async fn visible_after(
    client: reqwest::Client,
    base: String,
    n: usize,
    since: Instant,
) -> Duration {
    let query = format!("{{ contacts(segment: \"seq = {n}\", first: 0) {{ totalCount }} }}");
    loop {
        let data = graphql(&client, &base, &query, json!({})).await;
        if data["contacts"]["totalCount"] == 1 {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < WATCH_AT_MOST,
            "write {n} never showed on {base}"
        );
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

fn summary(name: &str, mut lags: Vec<Duration>) -> f64 {
    lags.sort();
    let p99 = percentile(&lags, 0.99);
    println!(
        "{name:<34} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   ({} writes)",
        percentile(&lags, 0.5),
        p99,
        lags.last().unwrap().as_secs_f64() * 1e3,
        lags.len()
    );
    p99
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let contacts = setting("QWRY_BENCH_CONTACTS", 2_000);
    let writes = setting("QWRY_BENCH_WRITES", 300);
    let rate = setting("QWRY_BENCH_RATE", 20).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (_surreal, url) = start_surrealdb();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (_a, a) = start_service(&url, dir_a.path());
        wait_until_ready(&a).await;
        let (_b, b) = start_service(&url, dir_b.path());
        wait_until_ready(&b).await;
        let client = client(usize::MAX);
        graphql(
            &client,
            &a,
            "mutation { defineAttribute(input: { name: \"seq\", type: NUMBER }) { attribute { name } } }",
            json!({}),
        )
        .await;
        let rows: String = (0..contacts)
            .map(|n| format!("{{\"externalId\":\"base-{n}\",\"attributes\":{{\"seq\":-{n}}}}}\n"))
            .collect();
        let imported = client
            .post(format!("{a}/v1/contacts/import"))
            .body(rows)
            .send()
            .await
            .unwrap();
        assert!(imported.status().is_success());
        // Both indexes hold the import before measuring.
        for base in [&a, &b] {
            let query = "{ contacts(segment: \"seq <= 0\", first: 0) { totalCount } }";
            let deadline = Instant::now() + Duration::from_secs(120);
            while graphql(&client, base, query, json!({})).await["contacts"]["totalCount"]
                != contacts
            {
                assert!(Instant::now() < deadline, "{base} never indexed the import");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        println!(
            "two instances over one SurrealDB server (in memory, ws://), {contacts} contacts, {writes} writes at {rate}/s to A"
        );
        let mut on_a = Vec::new();
        let mut on_b = Vec::new();
        let every = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        for n in 1..=writes {
            let due = started + every * (n as u32 - 1);
            tokio::time::sleep_until(due.into()).await;
            graphql(
                &client,
                &a,
                "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }",
                json!({ "input": { "externalId": format!("w{n}"), "attributes": { "seq": n } } }),
            )
            .await;
            let acknowledged = Instant::now();
            on_a.push(tokio::spawn(visible_after(client.clone(), a.clone(), n, acknowledged)));
            on_b.push(tokio::spawn(visible_after(client.clone(), b.clone(), n, acknowledged)));
        }
        let mut lags_a = Vec::new();
        for task in on_a {
            lags_a.push(task.await.unwrap());
        }
        let mut lags_b = Vec::new();
        for task in on_b {
            lags_b.push(task.await.unwrap());
        }
        let own = summary("in A's results (same instance)", lags_a);
        let other = summary("in B's results (other instance)", lags_b);
        println!("p99 other / same instance: {:.2}x", other / own);
    });
}
