//! Authentication of API requests: `Authorization: Bearer <key>` becomes a [`Caller`], after
//! the key's rate limit admitted the request.

use axum::extract::FromRequestParts;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::Response;

use super::HttpState;
use super::errors::{coded_error, error_response};
use crate::domain::{Caller, Scope};
use crate::service::{ErrorCode, ServiceError};

/// The caller of an authenticated request. Rejects with 401 (UNAUTHENTICATED) without a valid
/// key and 429 (RATE_LIMITED, `Retry-After`) over the key's rate.
pub struct Authenticated(pub Caller);

impl Authenticated {
    /// The caller, or FORBIDDEN (403) when it lacks `scope`.
    pub fn require(self, scope: Scope) -> Result<Caller, ServiceError> {
        ServiceError::require_scope(&self.0, scope)?;
        Ok(self.0)
    }
}

impl FromRequestParts<HttpState> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .map_err(|message| coded_error(ErrorCode::Unauthenticated, message))?;
        let caller = state
            .services
            .keys
            .authenticate(token)
            .await
            .map_err(error_response)?;
        if let Some(limit) = &state.rate_limit
            && let Err(wait) = limit.admit(&caller.key_id)
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = error_response(ServiceError::RateLimited(format!(
                "this API key is over its rate limit; retry in {seconds} s"
            )));
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Err(response);
        }
        Ok(Self(caller))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, &'static str> {
    let value = parts
        .headers
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
