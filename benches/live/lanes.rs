//! Webhook lanes beside faulty endpoints: ten endpoints in three workspaces receive the ENTERs
//! of a paced stream of writes spread evenly over the workspaces. A run with every endpoint
//! healthy is the baseline; the faulty run replaces three of them with one that answers after
//! 12 s, one that answers 500 and one where nothing listens (connection refused). Reported for
//! each run: the healthy endpoints' latency from the write's request to the receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use tokio::net::TcpListener;

use super::{
    DRAIN, Receipts, define_live_segment, entered_contact, forget_earlier_endpoints, paced_writes,
    percentiles,
};
use crate::graphql;

/// How an endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Healthy,
    /// Answers 200 after 12 s (past the service's 10 s attempt timeout).
    Slow,
    /// Answers 500 at once.
    Failing,
    /// Nothing listens on its port.
    Dead,
}

/// The endpoints of each of the three workspaces in the faulty run: ten in all, seven healthy.
pub const FAULTY: [&[Endpoint]; 3] = [
    &[
        Endpoint::Healthy,
        Endpoint::Healthy,
        Endpoint::Slow,
        Endpoint::Failing,
    ],
    &[Endpoint::Healthy, Endpoint::Healthy, Endpoint::Dead],
    &[Endpoint::Healthy, Endpoint::Healthy, Endpoint::Healthy],
];

/// The same ten endpoints, all healthy: the baseline.
pub const ALL_HEALTHY: [&[Endpoint]; 3] = [
    &[Endpoint::Healthy; 4],
    &[Endpoint::Healthy; 3],
    &[Endpoint::Healthy; 3],
];

/// What one run measured.
pub struct LanesReport {
    /// Writes sent, over all workspaces.
    pub writes: usize,
    /// p50 and p99 (ms) from a write's request to its ENTER's receipt, over every healthy
    /// endpoint of the write's workspace.
    pub healthy: (f64, f64),
    /// Receipts at healthy endpoints, and how many were due.
    pub delivered: (usize, usize),
}

/// Starts a receiver answering as `kind`; its URL and, for a healthy one, its receipts.
async fn start_endpoint(kind: Endpoint) -> (String, Option<Receipts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let seen = Receipts::default();
    let router = match kind {
        Endpoint::Dead => {
            drop(listener);
            return (url, None);
        }
        Endpoint::Healthy => axum::Router::new()
            .route("/hooks", axum::routing::post(note_receipt))
            .with_state(Arc::clone(&seen)),
        Endpoint::Slow => axum::Router::new().route(
            "/hooks",
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_secs(12)).await;
                StatusCode::OK
            }),
        ),
        Endpoint::Failing => axum::Router::new().route(
            "/hooks",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        ),
    };
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, (kind == Endpoint::Healthy).then_some(seen))
}

/// Notes when an ENTER arrived (signatures are not checked here: `measure` in the parent
/// module does, and this bench times lanes).
async fn note_receipt(State(seen): State<Receipts>, body: String) -> StatusCode {
    let arrived = Instant::now();
    if let Some(contact) = entered_contact(&body) {
        seen.lock()
            .unwrap()
            .entry(contact.to_owned())
            .or_insert(arrived);
    }
    StatusCode::NO_CONTENT
}

/// Sends `rate` writes a second for `seconds`, spread over the workspaces of `clients` (one
/// admin client each), to the endpoints `layout` gives each workspace; deletes the endpoints
/// at the end.
pub async fn measure(
    clients: &[reqwest::Client; 3],
    base: &str,
    layout: [&[Endpoint]; 3],
    rate: usize,
    seconds: usize,
) -> LanesReport {
    // Healthy endpoints' receipts, by workspace.
    let mut healthy: Vec<Vec<Receipts>> = vec![Vec::new(); 3];
    for (workspace, client) in clients.iter().enumerate() {
        forget_earlier_endpoints(client, base).await;
        define_live_segment(client, base).await;
        for kind in layout[workspace] {
            let (url, seen) = start_endpoint(*kind).await;
            graphql(
                client,
                base,
                "mutation($url: String!) { createWebhook(input: { url: $url, events: [SEGMENT_MEMBERSHIP], segments: [\"live-flagged\"] }) { secret } }",
                json!({ "url": url }),
            )
            .await;
            healthy[workspace].extend(seen);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = paced_writes(clients, base, "lanes", rate, rate * seconds).await;
    let due_in = |workspace: usize| {
        sent.values()
            .filter(|write| write.client == workspace)
            .count()
    };
    let due: usize = (0..3).map(|w| due_in(w) * healthy[w].len()).sum();
    let deadline = Instant::now() + DRAIN;
    let received = |healthy: &[Vec<Receipts>]| -> usize {
        healthy
            .iter()
            .flatten()
            .map(|seen| seen.lock().unwrap().len())
            .sum()
    };
    while Instant::now() < deadline && received(&healthy) < due {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::with_capacity(due);
    for (workspace, endpoints) in healthy.iter().enumerate() {
        for seen in endpoints {
            let seen = seen.lock().unwrap();
            latencies.extend(
                sent.iter()
                    .filter(|(_, write)| write.client == workspace)
                    .filter_map(|(id, write)| {
                        seen.get(id).map(|arrived| arrived.duration_since(write.at))
                    }),
            );
        }
    }
    let delivered = latencies.len();
    for client in clients {
        forget_earlier_endpoints(client, base).await;
    }
    LanesReport {
        writes: rate * seconds,
        healthy: percentiles(latencies),
        delivered: (delivered, due),
    }
}
