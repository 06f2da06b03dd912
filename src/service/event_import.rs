//! Bulk events: NDJSON lines, each one `recordEvent` (idempotent by `eventId`), with the
//! contact import's row-error rules: a bad line is reported with its line number and code and
//! skipped, the rest are recorded; re-sending the same file records nothing twice.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::activity::{ActivityService, ActivitySubject, EventInput, Recorded};
use crate::domain::{ActivityId, Caller, EventName, event_properties};
use crate::service::error::ServiceError;
use crate::service::import::RowError;

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
        mut input: impl AsyncBufRead + Unpin,
    ) -> EventImportReport {
        let mut report = EventImportReport::default();
        let mut buffer = Vec::new();
        let mut line_number = 0u64;
        let mut parsed = Vec::new();
        loop {
            let line = match next_line(&mut input, &mut buffer).await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(error) => {
                    report.message = Some(format!("reading the input failed: {error}"));
                    break;
                }
            };
            line_number += 1;
            let text = match line {
                Line::Text(text) => text,
                Line::TooLong => {
                    report.rows += 1;
                    report.fail(RowError::invalid(
                        line_number,
                        format!("a line is at most {MAX_LINE_BYTES} bytes"),
                    ));
                    continue;
                }
                Line::NotUtf8 { column } => {
                    report.rows += 1;
                    report.fail(RowError::invalid(
                        line_number,
                        format!("line is not valid UTF-8 (bad byte at column {column}); save the file as UTF-8"),
                    ));
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            report.rows += 1;
            match parse_row(caller, line_number, &text) {
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

/// One line of the input as read.
#[derive(Debug, PartialEq)]
enum Line {
    /// Its text, without the line break.
    Text(String),
    /// Longer than [`MAX_LINE_BYTES`]: skipped to its end without being kept.
    TooLong,
    /// Not UTF-8; `column` is the first bad byte's (1-based).
    NotUtf8 { column: usize },
}

/// The next line of `input`, reading at most [`MAX_LINE_BYTES`] of it into memory (the rest of
/// a longer line is read and dropped); `None` at the end.
async fn next_line(
    input: &mut (impl AsyncBufRead + Unpin),
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Line>> {
    buffer.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    if (&mut *input).take(limit).read_until(b'\n', buffer).await? == 0 {
        return Ok(None);
    }
    if buffer.len() > MAX_LINE_BYTES && buffer.last() != Some(&b'\n') {
        loop {
            buffer.clear();
            let read = (&mut *input).take(limit).read_until(b'\n', buffer).await?;
            if read == 0 || buffer.last() == Some(&b'\n') {
                break;
            }
        }
        buffer.clear();
        return Ok(Some(Line::TooLong));
    }
    while matches!(buffer.last(), Some(b'\n' | b'\r')) {
        buffer.pop();
    }
    Ok(Some(match std::str::from_utf8(buffer) {
        Ok(text) => Line::Text(text.to_owned()),
        Err(error) => Line::NotUtf8 {
            column: error.valid_up_to() + 1,
        },
    }))
}

/// One line as an event to record, or why it cannot be.
fn parse_row(
    caller: &Caller,
    line: u64,
    text: &str,
) -> Result<(ActivitySubject, EventInput), RowError> {
    let service = |error: ServiceError| RowError::from_service(line, error);
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<Line> {
        let mut reader = tokio::io::BufReader::with_capacity(1024, input);
        let mut buffer = Vec::new();
        let mut lines = Vec::new();
        while let Some(line) = next_line(&mut reader, &mut buffer).await.unwrap() {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn long_and_broken_lines_are_reported_and_reading_goes_on() {
        let mut input = b"{\"a\":1}\r\n".to_vec();
        input.extend(vec![b'x'; 3 * MAX_LINE_BYTES]);
        input.extend(b"\n\xff\xfe bad\n");
        input.extend(vec![b'y'; MAX_LINE_BYTES]);
        input.extend(b"\nlast");
        let lines = lines_of(&input).await;
        assert_eq!(
            lines,
            [
                Line::Text("{\"a\":1}".to_owned()),
                Line::TooLong,
                Line::NotUtf8 { column: 1 },
                Line::Text("y".repeat(MAX_LINE_BYTES)),
                Line::Text("last".to_owned()),
            ]
        );
    }
}
