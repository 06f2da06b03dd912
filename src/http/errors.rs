//! Errors of the plain HTTP endpoints, shaped like GraphQL errors (`errors[].extensions.code`)
//! so that clients handle both alike, and the finishing of GraphQL responses on every
//! transport (a code on every error).

use async_graphql::Response as GraphqlResponse;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::graphql::error::{
    REQUEST_ERROR_CODE, api_error, request_error_code, request_error_message,
};
use crate::service::{ErrorCode, ServiceError};
use crate::telemetry::Metrics;

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

/// A service error as the HTTP endpoints answer it: the one mapping GraphQL uses
/// ([`api_error`]: the same message, code and diagnostics in `extensions`; internal details
/// logged, not returned), with the status that fits its code.
pub fn error_response(error: ServiceError) -> Response {
    let code = error.code();
    let error = api_error(error);
    let body = json!({ "errors": [{ "message": error.message, "extensions": error.extensions }] });
    with_status(code, body)
}

/// `body` with the status that fits `code` (and a bearer challenge with a 401).
fn with_status(code: ErrorCode, body: serde_json::Value) -> Response {
    let mut response = (status_of(code), Json(body)).into_response();
    if code == ErrorCode::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// What every response gets before it leaves, whatever the transport: a code on every error
/// (those async-graphql raised itself included), and INTERNAL errors counted.
pub fn finish_response(response: &mut GraphqlResponse, metrics: &Metrics) {
    add_missing_codes(response);
    let internal = response.errors.iter().any(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from("INTERNAL"))
    });
    if internal {
        metrics.store_error();
    }
}

/// Gives errors raised by async-graphql itself (syntax, validation, coercion) a code too.
pub fn add_missing_codes(response: &mut GraphqlResponse) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            let code = request_error_code(&error.message).unwrap_or(REQUEST_ERROR_CODE);
            extensions.set("code", code.as_str());
            if let Some(message) = request_error_message(&error.message) {
                error.message = message;
            }
        }
    }
}
