//! Liveness and readiness probes, and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::Utc;
use tracing::warn;

use super::SharedState;

/// Liveness: the process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers. 503 otherwise, so a load balancer stops sending traffic.
pub async fn readyz(State(state): State<SharedState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}

/// Metrics in the OpenMetrics text format (Prometheus reads it); the index lag is measured at
/// each scrape.
pub async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
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
}
