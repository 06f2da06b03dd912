//! `/graphql`: POST executes (single or batched requests); GET executes a query given in the
//! query string (as persisted-query clients and CDNs send it) and otherwise serves GraphiQL.

use std::collections::HashMap;

use async_graphql::{BatchRequest, BatchResponse, Response, ServerError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, FromRequestParts, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::SharedState;
use super::access::AccessSlot;
use super::auth::Authenticated;
use super::errors::{add_missing_codes, finish_response};
use crate::actor::acting_as;
use crate::domain::Caller;
use crate::graphql::ReadOnly;

/// Most operations one batched request may carry.
pub const MAX_BATCH_LEN: usize = 16;

/// `GET /graphql`: with `query` or `extensions` parameters, runs the query (mutations need
/// POST) for an authenticated caller; without them, serves GraphiQL.
pub async fn get(State(state): State<SharedState>, request: Request) -> axum::response::Response {
    let (mut parts, _) = request.into_parts();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let is_operation = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .is_ok_and(|Query(pairs)| pairs.contains_key("query") || pairs.contains_key("extensions"));
    if !is_operation {
        return super::graphiql::page().await;
    }
    let caller = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(Authenticated(caller)) => caller,
        Err(rejection) => return rejection,
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request.data(ReadOnly),
        Err(error) => {
            let message = format!("the query string is not a GraphQL request: {error}");
            return request_error(StatusCode::BAD_REQUEST, message);
        }
    };
    let slot = parts.extensions.get::<AccessSlot>().cloned();
    run(&state, caller, BatchRequest::Single(request), slot.as_ref()).await
}

/// Executes a GraphQL request of an authenticated caller, confined to the caller's workspace.
/// The body was already bounded by the router's body limit.
pub async fn execute(
    State(state): State<SharedState>,
    Authenticated(caller): Authenticated,
    slot: Option<Extension<AccessSlot>>,
    body: Result<Bytes, BytesRejection>,
) -> axum::response::Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return request_error(rejection.status(), rejection.body_text()),
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => {
            let message = format!("the request body is not a GraphQL request in JSON: {error}");
            return request_error(StatusCode::BAD_REQUEST, message);
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > MAX_BATCH_LEN
    {
        let message = format!(
            "a batch holds {} operations; at most {MAX_BATCH_LEN} are allowed",
            requests.len()
        );
        return request_error(StatusCode::BAD_REQUEST, message);
    }
    if let (Some(Extension(slot)), BatchRequest::Single(request)) = (&slot, &batch) {
        slot.operation(request.operation_name.as_deref().unwrap_or("-"));
    }
    run(
        &state,
        caller,
        batch,
        slot.as_ref().map(|Extension(slot)| slot),
    )
    .await
}

async fn run(
    state: &SharedState,
    caller: Caller,
    batch: BatchRequest,
    slot: Option<&AccessSlot>,
) -> axum::response::Response {
    let actor = caller.key_id.clone();
    let batch = crate::graphql::for_caller(batch, caller);
    let (mut response, label) =
        acting_as(&actor, state.gate.execute_batch(&state.schema, batch)).await;
    if let Some(slot) = slot {
        slot.label(label);
    }
    let responses: Vec<&mut Response> = match &mut response {
        BatchResponse::Single(single) => vec![single],
        BatchResponse::Batch(many) => many.iter_mut().collect(),
    };
    for single in responses {
        finish_response(single, &state.metrics);
    }
    Json(response).into_response()
}

/// A GraphQL-shaped error response for requests that never reached execution.
pub fn request_error(status: StatusCode, message: String) -> axum::response::Response {
    let mut response = Response::from_errors(vec![ServerError::new(message, None)]);
    add_missing_codes(&mut response);
    (status, Json(response)).into_response()
}
