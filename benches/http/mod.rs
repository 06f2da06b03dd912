//! Speaking to a service process over HTTP, shared by the benches that start one.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The admin key the benches start their services with (`ADMIN_API_KEY`).
pub const KEY: &str = "bench-admin-key-0123456789abcdef";

/// A client sending [`KEY`], keeping up to `idle_per_host` connections open.
pub fn client(idle_per_host: usize) -> reqwest::Client {
    client_with_key(KEY, idle_per_host)
}

/// A client sending `key`, keeping up to `idle_per_host` connections open.
pub fn client_with_key(key: &str, idle_per_host: usize) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(idle_per_host)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

/// The `data` of `query` on the service at `base`; panics on errors.
pub async fn graphql(client: &reqwest::Client, base: &str, query: &str, variables: Value) -> Value {
    let body: Value = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// Waits (at most a minute) until the service at `base` answers `/readyz` with 200.
pub async fn wait_until_ready(base: &str) {
    wait_until_ready_within(base, Duration::from_secs(60)).await;
}

/// Waits (at most `patience`) until the service at `base` answers `/readyz` with 200; how long
/// that took.
pub async fn wait_until_ready_within(base: &str, patience: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < patience {
        if let Ok(response) = reqwest::get(format!("{base}/readyz")).await
            && response.status() == 200
        {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} not ready within {patience:?}");
}

/// The `p` quantile of `sorted`, in milliseconds.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}
