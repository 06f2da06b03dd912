//! Errors of the plain HTTP endpoints, shaped like GraphQL errors (`errors[].extensions.code`)
//! so that clients handle both alike.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::{ErrorCode, ServiceError};

/// The HTTP status that fits an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A GraphQL-shaped error body with `code` and the status that fits it.
pub fn coded_error(code: ErrorCode, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut response = (status_of(code), Json(body)).into_response();
    if code == ErrorCode::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// [`coded_error`] for a service error; internal details are logged, not returned.
pub fn error_response(error: ServiceError) -> Response {
    let message = match &error {
        ServiceError::Internal(detail) => {
            tracing::error!(error = %detail, "request failed");
            "internal error; the failure was logged".to_owned()
        }
        other => other.to_string(),
    };
    coded_error(error.code(), &message)
}
