//! The HTTP surface: routes, body limits, timeouts and tracing.

mod access;
mod auth;
mod bulk;
mod console;
mod cors;
mod embedded;
mod errors;
mod graphiql;
mod graphql;
mod guides;
mod health;
mod rate_limit;
mod security_headers;
mod socket;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::AllowedOrigins;
use crate::graphql::{ApiSchema, RequestGate};
use crate::service::Services;
use crate::store::Store;
use crate::telemetry::Metrics;

pub use graphql::MAX_BATCH_LEN;
pub use rate_limit::{AddressGuard, KeyRateLimit};
pub use socket::{SocketLimits, SocketSeats};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handlers share, behind one [`Arc`] ([`SharedState`]): axum clones the state for
/// every request and every layer, and cloning each service's handles there cost a third of a
/// point read's CPU (atomic counters bouncing between cores).
pub struct HttpState {
    /// The GraphQL schema, with the services inside.
    pub schema: ApiSchema,
    /// Persisted queries and shape limits, checked before the schema runs a request.
    pub gate: Arc<RequestGate>,
    /// The store, for readiness checks.
    pub store: Store,
    /// The use cases, for authentication and the bulk streams.
    pub services: Services,
    /// Requests per API key (a key's own rate, or the default; see [`KeyRateLimit`]).
    pub rate_limit: Arc<KeyRateLimit>,
    /// Failed authentications per client address; `None` when unlimited.
    pub address_guard: Option<Arc<AddressGuard>>,
    /// The header naming the client address behind a proxy (lower case), if trusted.
    pub client_address_header: Option<Arc<str>>,
    /// What the service measures, served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The bearer token `/metrics` accepts besides admin keys (`METRICS_TOKEN`).
    pub metrics_token: Option<secrecy::SecretString>,
    /// Caps on sockets per key and subscriptions per socket.
    pub socket_limits: SocketLimits,
    /// The sockets each key holds open.
    pub sockets: Arc<SocketSeats>,
}

/// The state as the handlers receive it.
pub type SharedState = Arc<HttpState>;

/// All routes of the service. `POST /graphql`, the socket and the bulk streams need an API key
/// (see [`auth::Authenticated`]), `/metrics` an admin key or `METRICS_TOKEN`; the console,
/// GraphiQL and the health checks do not. The API has a body limit
/// and a timeout; the bulk streams read and write in bounded memory for as long as they take.
/// Browser apps of `allowed_origins` may call all of them (CORS).
pub fn router(state: HttpState, allowed_origins: &AllowedOrigins) -> Router {
    let state: SharedState = Arc::new(state);
    let logged = axum::middleware::from_fn_with_state(state.clone(), access::access_log);
    let api = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::execute))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route_layer(logged.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let pages = Router::new()
        .route("/", get(console::page))
        .route("/console/{name}", get(console::asset))
        .route("/favicon.ico", get(console::favicon))
        .route("/graphiql/", get(graphiql::page))
        .route("/graphiql/{name}", get(graphiql::asset))
        .route("/llms.txt", get(guides::index))
        .route("/docs/{name}", get(guides::guide))
        .layer(CompressionLayer::new());
    let bulk = Router::new()
        .route("/v1/contacts/import", post(bulk::import))
        .route("/v1/events/import", post(bulk::import_events))
        .route("/v1/contacts/export", get(bulk::export))
        .route("/graphql/ws", get(socket::upgrade))
        .route_layer(logged);
    let [nosniff, no_frames, policy, referrer] = security_headers::layers();
    let routes = api
        .merge(bulk)
        .merge(pages)
        .with_state(state)
        .layer(nosniff)
        .layer(no_frames)
        .layer(policy)
        .layer(referrer)
        .layer(TraceLayer::new_for_http());
    match cors::layer(allowed_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}
