//! Liveness and readiness probes, and metrics.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::SharedState;
use super::auth::{Authenticated, bearer_of};
use super::errors::error_response;
use crate::domain::Scope;

/// Liveness: the process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Longest a readiness probe waits for the store.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Readiness: the store answers within [`READY_WITHIN`]. 503 otherwise, so a load balancer
/// stops sending traffic.
pub async fn readyz(State(state): State<SharedState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READY_WITHIN, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(error)) => {
            warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
        Err(_) => {
            warn!("readiness check failed: the store did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

/// Metrics in the OpenMetrics text format (Prometheus reads it); the index lag is measured at
/// each scrape. Who may read them: a scraper sending `METRICS_TOKEN` as its bearer token, or
/// an admin API key (they name routes and operations, which is not for every client).
pub async fn metrics(State(state): State<SharedState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let scraper = state.metrics_token.as_ref().is_some_and(|token| {
        bearer_of(&parts.headers).is_ok_and(|sent| same_secret(sent, token.expose_secret()))
    });
    if !scraper {
        let admin = match Authenticated::from_request_parts(&mut parts, &state).await {
            Ok(authenticated) => authenticated.require(Scope::Admin),
            Err(rejection) => return rejection,
        };
        if let Err(refusal) = admin {
            return error_response(refusal);
        }
    }
    match state.services.segments.backlog().await {
        Ok(backlog) => {
            let seconds = backlog
                .oldest
                .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1e3)
                .unwrap_or(0.0);
            state.metrics.index_lag(seconds, backlog.pending);
        }
        Err(error) => warn!(%error, "cannot measure the index lag"),
    }
    let sources = state.services.segments.index_state_sources();
    state
        .metrics
        .index_states(sources.from_payload as u64, sources.read_back as u64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Whether two secrets are equal, compared through their SHA-256 so that the time taken says
/// nothing about how much of a guess was right.
fn same_secret(sent: &str, expected: &str) -> bool {
    Sha256::digest(sent.as_bytes()) == Sha256::digest(expected.as_bytes())
}
