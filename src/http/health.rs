//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use tracing::warn;

use super::HttpState;

/// Liveness: the process is up and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers. 503 otherwise, so a load balancer stops sending traffic.
pub async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
        }
    }
}
