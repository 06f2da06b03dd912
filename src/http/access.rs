//! One access-log line per request (method, route, status, duration, API key id, GraphQL
//! operation; never a key or a value) and the request metrics, from one middleware.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::info;

use super::SharedState;
use super::rate_limit::{RateState, whole_seconds};

/// What the handler learns about a request for its log line: who acted, which operation.
#[derive(Debug, Clone, Default)]
pub struct AccessNote {
    /// The id of the API key that authenticated the request.
    pub key_id: Option<String>,
    /// The GraphQL operation name (logged; chosen by the client).
    pub operation: Option<String>,
    /// The operation as metrics label it: its type and first root field, drawn from the
    /// schema so that label values stay few and reveal nothing a client chose.
    pub label: Option<String>,
    /// Where the key stands against its rate limit, told in the answer's headers.
    pub rate: Option<RateState>,
}

/// The note of the request in flight, filled in by the extractor and the handlers.
#[derive(Debug, Clone, Default)]
pub struct AccessSlot(Arc<Mutex<AccessNote>>);

impl AccessSlot {
    /// Records the acting key.
    pub fn key(&self, key_id: &str) {
        self.update(|note| note.key_id = Some(key_id.to_owned()));
    }

    /// Records the GraphQL operation name.
    pub fn operation(&self, name: &str) {
        self.update(|note| note.operation = Some(name.to_owned()));
    }

    /// Records where the key stands against its rate limit.
    pub fn rate(&self, rate: RateState) {
        self.update(|note| note.rate = Some(rate));
    }

    /// Records the operation's metrics label.
    pub fn label(&self, label: String) {
        self.update(|note| note.label = Some(label));
    }

    fn update(&self, change: impl FnOnce(&mut AccessNote)) {
        change(
            &mut self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    fn note(&self) -> AccessNote {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Says where the key stands against its rate limit, as the IETF httpapi draft (RateLimit
/// header fields for HTTP) spells it: the policy is the key's burst (`q`) over the seconds it
/// takes to earn it back at its rate (`w`), so `q / w` is the sustained rate; `RateLimit` has
/// the requests it may still make at once (`r`) and the seconds until the whole burst is
/// available again (`t`).
fn tell_rate(headers: &mut HeaderMap, rate: RateState) {
    let window = u64::from(rate.rate.burst).div_ceil(u64::from(rate.rate.per_second.max(1)));
    let policy = format!("\"key\";q={};w={window}", rate.rate.burst);
    let state = format!(
        "\"key\";r={};t={}",
        rate.remaining,
        whole_seconds(rate.full_in)
    );
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// Logs and measures the request once it is answered.
pub async fn access_log(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "-".to_owned(), |path| path.as_str().to_owned());
    let slot = AccessSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    let note = slot.note();
    if let Some(rate) = note.rate {
        tell_rate(response.headers_mut(), rate);
    }
    let operation = note.operation.as_deref().unwrap_or("-");
    let label = note.label.as_deref().unwrap_or("-");
    state.metrics.request(&route, label, status, took);
    info!(
        target: "access",
        method = %method,
        route = %route,
        status,
        duration_ms = took.as_secs_f64() * 1e3,
        key_id = note.key_id.as_deref().unwrap_or("-"),
        operation,
        "request"
    );
    response
}
