//! Authentication of API requests: `Authorization: Bearer <key>` becomes a [`Caller`], after
//! the key's rate limit admitted the request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;

use super::SharedState;
use super::access::AccessSlot;
use super::errors::error_response;
use super::rate_limit::{Admission, whole_seconds};
use crate::domain::{Caller, Scope};
use crate::service::ServiceError;

/// The caller of an authenticated request. Rejects with 401 (UNAUTHENTICATED) without a valid
/// key and 429 (RATE_LIMITED, `Retry-After`) over the key's rate.
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// The caller, whatever its scopes (the use case checks them).
    pub fn caller(self) -> Caller {
        self.0
    }

    /// The caller, or FORBIDDEN (403) when it lacks `scope`.
    pub fn require(self, scope: Scope) -> Result<Caller, ServiceError> {
        ServiceError::require_scope(&self.0, scope)?;
        Ok(self.0)
    }
}

impl FromRequestParts<SharedState> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        let address = client_address(&parts.headers, peer, state.client_address_header.as_deref());
        let guard = state.address_guard.as_deref().zip(address);
        if let Some((guard, address)) = guard
            && let Some(wait) = guard.refused(address)
        {
            state.metrics.rate_limited("address");
            return Err(rate_limited(
                wait,
                "this address sent too many unknown API keys",
            ));
        }
        let authenticated = match bearer_token(parts) {
            Ok(token) => state.services.keys.authenticate(token),
            Err(message) => Err(ServiceError::Unauthenticated(message.to_owned())),
        };
        let caller = match authenticated {
            Ok(caller) => caller,
            Err(error) => {
                if let Some((guard, address)) = guard {
                    guard.failed(address);
                }
                return Err(error_response(error));
            }
        };
        if let Some(slot) = parts.extensions.get::<AccessSlot>() {
            slot.key(&caller.key_id);
        }
        let admission = state.rate_limit.admit(&caller.key_id, caller.rate);
        if let (Some(slot), Admission::Admitted(rate) | Admission::Refused(rate, _)) =
            (parts.extensions.get::<AccessSlot>(), admission)
        {
            slot.rate(rate);
        }
        if let Admission::Refused(_, wait) = admission {
            state.metrics.rate_limited("key");
            return Err(rate_limited(wait, "this API key is over its rate limit"));
        }
        Ok(Self(caller))
    }
}

/// 429 RATE_LIMITED with `Retry-After` in whole seconds (at least 1).
pub(super) fn rate_limited(wait: Duration, reason: &str) -> Response {
    let seconds = whole_seconds(wait).max(1);
    let mut response = error_response(ServiceError::RateLimited(format!(
        "{reason}; retry in {seconds} s"
    )));
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The client's address: the first address in the trusted proxy header when one is
/// configured and present, else the connection's `peer` address.
pub(super) fn client_address(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    proxy_header: Option<&str>,
) -> Option<IpAddr> {
    let forwarded = proxy_header
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok());
    forwarded.or(peer)
}

fn bearer_token(parts: &Parts) -> Result<&str, &'static str> {
    bearer_of(&parts.headers)
}

/// The token of an `Authorization: Bearer <token>` header, or why there is none.
pub(super) fn bearer_of(headers: &HeaderMap) -> Result<&str, &'static str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or("send an API key: `Authorization: Bearer <key>`")?;
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not readable text")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("the Authorization header must be `Bearer <key>`")?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err("the Authorization header must be `Bearer <key>`");
    }
    Ok(token)
}
