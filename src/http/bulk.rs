//! Bulk streams: `POST /v1/contacts/import` (NDJSON or CSV in, report out),
//! `POST /v1/events/import` (NDJSON in, report out) and
//! `GET /v1/contacts/export` (NDJSON out), both in bounded memory and without the API's timeout.

use std::io;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::SharedState;
use super::auth::Authenticated;
use super::errors::error_response;
use crate::actor::acting_as;
use crate::domain::{ContactId, Scope};
use crate::service::{
    ActivitySubject, ImportFormat, ImportOptions, MatchBy, ServiceError, contact_json,
};

/// Query parameters of an import.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportParams {
    /// `ndjson` (default) or `csv`; else taken from the content type.
    format: Option<String>,
    /// `externalId` (default), `email` or `phone`.
    match_by: Option<String>,
    /// Count what would happen without writing.
    #[serde(default)]
    dry_run: bool,
}

/// Query parameters of an export.
#[derive(Debug, Deserialize)]
pub struct ExportParams {
    /// Segment text; all contacts without it.
    segment: Option<String>,
    /// Resume after this contact id (the last one received).
    after: Option<String>,
}

/// Streams the request body into an import job; answers with the job's final report.
pub async fn import(
    State(state): State<SharedState>,
    authenticated: Authenticated,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let caller = match authenticated.require(Scope::ContactsWrite) {
        Ok(caller) => caller,
        Err(refusal) => return error_response(refusal),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or(value));
    let format = match (&params.format, content_type) {
        (Some(raw), _) => ImportFormat::parse(raw),
        (None, Some(content_type)) => {
            Some(ImportFormat::parse(content_type).unwrap_or(ImportFormat::Ndjson))
        }
        (None, None) => Some(ImportFormat::Ndjson),
    };
    let Some(format) = format else {
        return error_response(ServiceError::invalid(
            "format",
            "`format` must be `ndjson` or `csv`",
        ));
    };
    let match_by = match params
        .match_by
        .as_deref()
        .map(|raw| (raw, MatchBy::parse(raw)))
    {
        None => MatchBy::ExternalId,
        Some((_, Some(match_by))) => match_by,
        Some((other, None)) => {
            return error_response(ServiceError::invalid(
                "matchBy",
                format!("`matchBy` is `{other}`; use `externalId`, `email` or `phone`"),
            ));
        }
    };
    let options = ImportOptions {
        format,
        match_by,
        dry_run: params.dry_run,
    };
    let stream = body.into_data_stream().map_err(io::Error::other);
    let input = SyncIoBridge::new(StreamReader::new(stream));
    let imports = &state.services.imports;
    let workspace = &caller.workspace;
    let job = imports.begin(workspace, options);
    let report = acting_as(&caller.key_id, imports.run(workspace, &job, options, input)).await;
    Json(report).into_response()
}

/// Records the events of an NDJSON body (one `recordEvent` input per line); answers with a
/// report of what was recorded and the lines that were not.
pub async fn import_events(
    State(state): State<SharedState>,
    authenticated: Authenticated,
    body: Body,
) -> Response {
    let caller = authenticated.caller();
    if let Err(refusal) = ActivitySubject::require_recorder(&caller) {
        return error_response(refusal);
    }
    let stream = body.into_data_stream().map_err(io::Error::other);
    let input = StreamReader::new(stream);
    let activity = &state.services.activity;
    let report = acting_as(&caller.key_id, activity.import_events(&caller, input)).await;
    Json(report).into_response()
}

/// Streams contacts (or a segment's members) as NDJSON, ascending by id.
pub async fn export(
    State(state): State<SharedState>,
    authenticated: Authenticated,
    Query(params): Query<ExportParams>,
) -> Response {
    let caller = match authenticated.require(Scope::ContactsRead) {
        Ok(caller) => caller,
        Err(refusal) => return error_response(refusal),
    };
    if params.segment.is_some()
        && let Err(refusal) = ServiceError::require_scope(&caller, Scope::SegmentsRead)
    {
        return error_response(refusal);
    }
    let after = match params.after.as_deref().map(ContactId::parse).transpose() {
        Ok(after) => after,
        Err(error) => return error_response(error.into()),
    };
    let exports = state.services.exports.clone();
    let segment = match exports.resolve(&caller, params.segment.as_deref()) {
        Ok(resolved) => resolved.map(Arc::new),
        Err(error) => return error_response(error),
    };
    let pages = futures_util::stream::try_unfold((after, false), move |(after, finished)| {
        let exports = exports.clone();
        let caller = caller.clone();
        let segment = segment.clone();
        async move {
            if finished {
                return Ok::<_, io::Error>(None);
            }
            let (contacts, has_more) = exports
                .page(&caller, segment.as_deref(), after)
                .await
                .map_err(|error| io::Error::other(error.to_string()))?;
            let last = contacts.last().map(|contact| contact.id).or(after);
            let mut lines = Vec::with_capacity(contacts.len() * 256);
            for contact in &contacts {
                serde_json::to_writer(&mut lines, &contact_json(contact))
                    .map_err(io::Error::other)?;
                lines.push(b'\n');
            }
            Ok(Some((Bytes::from(lines), (last, !has_more))))
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response()
}
