//! Bulk events: NDJSON lines, each one `recordEvent` (idempotent by `eventId`), with the
//! contact import's row-error rules: a bad line is reported with its line number and code and
//! skipped, the rest are recorded; re-sending the same file records nothing twice.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::activity::{ActivityService, ActivitySubject, EventInput, Recorded};
use super::{RowError, ServiceError};
use crate::domain::{ActivityId, Caller, EventName, event_properties};

/// Longest accepted line.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Row errors kept in a report.
const MAX_REPORTED: usize = 100;
/// Rows recorded at once.
const IN_FLIGHT: usize = 16;

/// One line of an events import (the fields of `recordEvent`'s input).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventRow {
    contact_id: Option<String>,
    external_id: Option<String>,
    anonymous_id: Option<String>,
    event_id: Option<String>,
    name: String,
    at: Option<chrono::DateTime<chrono::Utc>>,
    properties: Option<Value>,
}

/// What an events import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventImportReport {
    /// Lines read (blank lines are skipped and not counted).
    pub rows: u64,
    /// Events recorded.
    pub created: u64,
    /// Events already recorded under their `eventId`.
    pub unchanged: u64,
    /// Lines not recorded.
    pub failed: u64,
    /// The first 100 failures, by line.
    pub errors: Vec<RowError>,
    /// Set when the input itself could not be read to its end.
    pub message: Option<String>,
}

impl EventImportReport {
    fn fail(&mut self, error: RowError) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(error);
        }
    }
}

impl ActivityService {
    /// Records every event of the NDJSON `input` as `caller`.
    pub async fn import_events(
        &self,
        caller: &Caller,
        input: impl AsyncBufRead + Unpin,
    ) -> EventImportReport {
        let mut report = EventImportReport::default();
        let mut lines = input.lines();
        let mut line_number = 0u64;
        let mut parsed = Vec::new();
        loop {
            let line = match lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(error) => {
                    report.message = Some(format!("reading the input failed: {error}"));
                    break;
                }
            };
            line_number += 1;
            if line.trim().is_empty() {
                continue;
            }
            report.rows += 1;
            match parse_row(caller, line_number, &line) {
                Ok(row) => parsed.push((line_number, row)),
                Err(error) => report.fail(error),
            }
            if parsed.len() >= IN_FLIGHT * 8 {
                self.record_rows(caller, std::mem::take(&mut parsed), &mut report)
                    .await;
            }
        }
        self.record_rows(caller, parsed, &mut report).await;
        report.errors.sort_by_key(|error| error.line);
        report
    }

    async fn record_rows(
        &self,
        caller: &Caller,
        rows: Vec<(u64, (ActivitySubject, EventInput))>,
        report: &mut EventImportReport,
    ) {
        let outcomes: Vec<(u64, Result<Recorded, ServiceError>)> = futures_util::stream::iter(rows)
            .map(|(line, (subject, event))| async move {
                let recorded = self
                    .record_event(&caller.workspace, &subject, event)
                    .await
                    .map(|(_, recorded)| recorded);
                (line, recorded)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (line, outcome) in outcomes {
            match outcome {
                Ok(Recorded::Created | Recorded::Updated) => report.created += 1,
                Ok(Recorded::Unchanged) => report.unchanged += 1,
                Err(error) => report.fail(RowError::from_service(line, error)),
            }
        }
    }
}

/// One line as an event to record, or why it cannot be.
fn parse_row(
    caller: &Caller,
    line: u64,
    text: &str,
) -> Result<(ActivitySubject, EventInput), RowError> {
    let service = |error: ServiceError| RowError::from_service(line, error);
    if text.len() > MAX_LINE_BYTES {
        return Err(RowError::invalid(
            line,
            format!("a line is at most {MAX_LINE_BYTES} bytes"),
        ));
    }
    let row: EventRow = serde_json::from_str(text)
        .map_err(|error| RowError::invalid(line, format!("not an event object: {error}")))?;
    let subject = ActivitySubject::named_by(
        caller,
        row.contact_id.as_deref(),
        row.external_id.as_deref(),
        row.anonymous_id.as_deref(),
    )
    .map_err(service)?;
    let event = EventInput {
        id: row
            .event_id
            .as_deref()
            .map(|id| ActivityId::parse("eventId", id))
            .transpose()
            .map_err(|error| service(error.into()))?,
        name: EventName::parse(&row.name).map_err(|error| service(error.into()))?,
        at: row.at,
        properties: event_properties(row.properties).map_err(|error| service(error.into()))?,
    };
    Ok((subject, event))
}
