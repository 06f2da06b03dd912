//! Reads import files row by row, in bounded memory: NDJSON (one JSON object a line) or CSV
//! (a header row of field and attribute names). A malformed record becomes a row error and
//! reading goes on with the next one.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json};

use super::report::{ImportFormat, RowError};
use crate::domain::ImportRow;

/// Longest NDJSON line or CSV record accepted, in bytes.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// A row that could not be read. A fatal failure ends the import (a bad CSV header, a CSV
/// record too long to find the next one); any other skips just that row.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadFailure {
    /// What is wrong, and where.
    pub error: RowError,
    /// Whether reading cannot go on.
    pub fatal: bool,
}

impl ReadFailure {
    fn row(line: u64, message: impl Into<String>) -> Self {
        Self {
            error: RowError::invalid(line, message),
            fatal: false,
        }
    }

    fn fatal(line: u64, message: impl Into<String>) -> Self {
        Self {
            error: RowError::invalid(line, message),
            fatal: true,
        }
    }
}

impl From<RowError> for ReadFailure {
    fn from(error: RowError) -> Self {
        Self {
            error,
            fatal: false,
        }
    }
}

/// Rows of an import, in order.
pub struct RowReader<R: Read> {
    format: Format<R>,
    /// Set after a fatal failure: nothing more is read.
    done: bool,
}

enum Format<R: Read> {
    Ndjson {
        reader: BufReader<R>,
        /// The line last read.
        line: u64,
    },
    Csv {
        reader: csv::Reader<RecordLimit<R>>,
        /// Bytes consumed by the parser up to the end of the last record read.
        record_end: Arc<AtomicU64>,
        /// Line numbers of byte offsets (the parser's own miscount CRLF files).
        lines: Arc<Mutex<LineCounter>>,
        /// The header row.
        headers: Option<csv::StringRecord>,
    },
}

impl<R: Read> RowReader<R> {
    /// Reads `input` as `format`.
    pub fn new(format: ImportFormat, input: R) -> Self {
        let format = match format {
            ImportFormat::Ndjson => Format::Ndjson {
                reader: BufReader::with_capacity(64 * 1024, input),
                line: 0,
            },
            ImportFormat::Csv => {
                let record_end = Arc::new(AtomicU64::new(0));
                let lines = Arc::new(Mutex::new(LineCounter::default()));
                let limited = RecordLimit {
                    inner: input,
                    read: 0,
                    record_end: Arc::clone(&record_end),
                    lines: Arc::clone(&lines),
                };
                Format::Csv {
                    reader: csv::ReaderBuilder::new()
                        .flexible(true)
                        .trim(csv::Trim::Headers)
                        .buffer_capacity(CSV_BUFFER_BYTES)
                        .from_reader(limited),
                    record_end,
                    lines,
                    headers: None,
                }
            }
        };
        Self {
            format,
            done: false,
        }
    }

    /// For CSV, reads the header row and checks its column names with `check` (duplicates are
    /// refused here); a problem is fatal. NDJSON has no header: always `Ok`.
    pub fn check_header(
        &mut self,
        check: impl FnOnce(&[&str]) -> Result<(), String>,
    ) -> Result<(), ReadFailure> {
        let Format::Csv {
            reader, headers, ..
        } = &mut self.format
        else {
            return Ok(());
        };
        let result = match reader.headers() {
            Ok(row) => {
                let names: Vec<&str> = row.iter().collect();
                check(&names).map(|()| row.clone())
            }
            Err(error) => Err(format!("bad header row: {}", csv_problem(&error))),
        };
        match result {
            Ok(row) => {
                *headers = Some(row);
                Ok(())
            }
            Err(message) => {
                self.done = true;
                Err(ReadFailure::fatal(1, message))
            }
        }
    }
}

impl<R: Read> Iterator for RowReader<R> {
    type Item = Result<ImportRow, ReadFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match &mut self.format {
            Format::Ndjson { reader, line } => next_ndjson(reader, line),
            Format::Csv {
                reader,
                record_end,
                lines,
                headers,
            } => next_csv(reader, record_end, lines, headers),
        };
        if matches!(&item, Some(Err(failure)) if failure.fatal) {
            self.done = true;
        }
        item
    }
}

fn next_ndjson<R: Read>(
    reader: &mut BufReader<R>,
    line: &mut u64,
) -> Option<Result<ImportRow, ReadFailure>> {
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        *line += 1;
        let read = reader
            .by_ref()
            .take(MAX_ROW_BYTES as u64 + 1)
            .read_until(b'\n', &mut buffer);
        match read {
            Ok(0) => return None,
            Ok(_) => {}
            Err(error) => {
                return Some(Err(ReadFailure::fatal(
                    *line,
                    format!("cannot read: {error}"),
                )));
            }
        }
        if buffer.len() > MAX_ROW_BYTES && buffer.last() != Some(&b'\n') {
            skip_rest_of_line(reader);
            return Some(Err(ReadFailure::row(
                *line,
                format!("line is longer than {MAX_ROW_BYTES} bytes"),
            )));
        }
        let bytes = match (*line, buffer.strip_prefix(BOM)) {
            (1, Some(rest)) => rest,
            _ => buffer.as_slice(),
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text.trim(),
            Err(error) => {
                return Some(Err(ReadFailure::row(
                    *line,
                    format!(
                        "line is not valid UTF-8 (bad byte at column {}); save the file as UTF-8",
                        error.valid_up_to() + 1
                    ),
                )));
            }
        };
        if text.is_empty() {
            continue;
        }
        return Some(match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(values)) => Ok(ImportRow {
                line: *line,
                values,
                text_cells: false,
            }),
            Ok(_) => Err(ReadFailure::row(*line, "a line must hold one JSON object")),
            Err(error) => Err(ReadFailure::row(*line, format!("not JSON: {error}"))),
        });
    }
}

fn skip_rest_of_line<R: Read>(reader: &mut BufReader<R>) {
    loop {
        let (done, used) = match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(available) => match available.iter().position(|b| *b == b'\n') {
                Some(at) => (true, at + 1),
                None => (false, available.len()),
            },
        };
        reader.consume(used);
        if done {
            return;
        }
    }
}

fn next_csv<R: Read>(
    reader: &mut csv::Reader<RecordLimit<R>>,
    record_end: &AtomicU64,
    lines: &Mutex<LineCounter>,
    headers: &mut Option<csv::StringRecord>,
) -> Option<Result<ImportRow, ReadFailure>> {
    let line_at = |byte: u64| {
        lines
            .lock()
            .map(|mut lines| lines.line_at(byte))
            .unwrap_or(0)
    };
    if headers.is_none() {
        match reader.headers() {
            Ok(row) => *headers = Some(row.clone()),
            Err(error) => {
                let message = format!("bad header row: {}", csv_problem(&error));
                return Some(Err(ReadFailure::fatal(1, message)));
            }
        }
    }
    let header = headers.as_ref()?;
    let mut record = csv::StringRecord::new();
    let read = reader.read_record(&mut record);
    record_end.store(reader.position().byte(), Ordering::Relaxed);
    match read {
        Ok(false) => None,
        Ok(true) => {
            let line = record
                .position()
                .map_or(0, |position| line_at(position.byte()));
            if record.len() != header.len() {
                return Some(Err(ReadFailure::row(
                    line,
                    format!(
                        "record has {} cells; the header names {}",
                        record.len(),
                        header.len()
                    ),
                )));
            }
            let values: Map<String, Json> = header
                .iter()
                .zip(record.iter())
                .map(|(name, cell)| (name.to_owned(), Json::String(cell.to_owned())))
                .collect();
            Some(Ok(ImportRow {
                line,
                values,
                text_cells: true,
            }))
        }
        Err(error) => {
            let line = error
                .position()
                .map_or(0, |position| line_at(position.byte()));
            let failure = match error.kind() {
                // The parser lost its place (a read failed or a record outgrew the limit): the
                // record it was reading starts where the last one ended.
                csv::ErrorKind::Io(_) => {
                    let start = record_end.load(Ordering::Relaxed);
                    ReadFailure::fatal(line_at(start), csv_problem(&error))
                }
                _ => ReadFailure::row(line, format!("bad CSV record: {}", csv_problem(&error))),
            };
            Some(Err(failure))
        }
    }
}

/// What went wrong in the CSV input, without the parser's internal positions.
fn csv_problem(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not valid UTF-8; save the file as UTF-8",
            err.field() + 1
        ),
        _ => error.to_string(),
    }
}

/// The UTF-8 byte order mark some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The CSV parser's buffer: how far it may read past the record it parses.
const CSV_BUFFER_BYTES: usize = 64 * 1024;

/// Counts lines by byte offset as the input passes: newlines read ahead wait in a queue until
/// a record starting after them is numbered, so memory stays bounded by the read-ahead.
#[derive(Default)]
struct LineCounter {
    /// Offsets of newlines read but not yet passed.
    pending: VecDeque<u64>,
    /// Newlines before the last offset asked about.
    passed: u64,
}

impl LineCounter {
    fn saw(&mut self, offset: u64, bytes: &[u8]) {
        let newlines = bytes.iter().enumerate().filter(|(_, byte)| **byte == b'\n');
        self.pending
            .extend(newlines.map(|(at, _)| offset + at as u64));
    }

    /// The 1-based line of a record starting at byte `offset` (offsets are asked in ascending
    /// order). A newline at `offset` itself counts: after `\r\n` the parser places the next
    /// record at the `\n`, which cannot start a record.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self
            .pending
            .front()
            .is_some_and(|newline| *newline <= offset)
        {
            self.pending.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}

/// The CSV input, refusing to hand the parser more than [`MAX_ROW_BYTES`] (plus its buffer)
/// past the end of the last whole record, so one huge record cannot take the memory.
struct RecordLimit<R> {
    inner: R,
    /// Bytes handed to the parser so far.
    read: u64,
    /// Where the last record read ended (set by [`next_csv`]).
    record_end: Arc<AtomicU64>,
    /// Newlines handed to the parser, for line numbers.
    lines: Arc<Mutex<LineCounter>>,
}

impl<R: Read> Read for RecordLimit<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let limit =
            self.record_end.load(Ordering::Relaxed) + (MAX_ROW_BYTES + CSV_BUFFER_BYTES) as u64;
        let room = limit.saturating_sub(self.read);
        if room == 0 {
            return Err(std::io::Error::other(format!(
                "a record is longer than {MAX_ROW_BYTES} bytes (an unclosed quote?); the import stops here"
            )));
        }
        let wanted = buffer
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        let count = self.inner.read(&mut buffer[..wanted])?;
        if let Ok(mut lines) = self.lines.lock() {
            lines.saw(self.read, &buffer[..count]);
        }
        self.read += count as u64;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: ImportFormat, text: &str) -> Vec<Result<ImportRow, ReadFailure>> {
        RowReader::new(format, text.as_bytes()).collect()
    }

    fn read_bytes(format: ImportFormat, bytes: &[u8]) -> Vec<Result<ImportRow, ReadFailure>> {
        RowReader::new(format, bytes).collect()
    }

    #[test]
    fn ndjson_rows_carry_line_numbers_and_bad_lines_are_errors() {
        let rows = read(
            ImportFormat::Ndjson,
            "{\"externalId\":\"u1\"}\n\n{oops\n[1]\n{\"externalId\":\"u2\"}",
        );
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].as_ref().unwrap().line, 1);
        assert_eq!(rows[1].as_ref().unwrap_err().error.line, 3);
        assert_eq!(rows[2].as_ref().unwrap_err().error.line, 4);
        assert_eq!(rows[3].as_ref().unwrap().values["externalId"], "u2");
    }

    #[test]
    fn overlong_lines_are_skipped_without_losing_the_next() {
        let long = format!(
            "{{\"a\":\"{}\"}}\n{{\"externalId\":\"u2\"}}\n",
            "x".repeat(MAX_ROW_BYTES)
        );
        let rows = read(ImportFormat::Ndjson, &long);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_err());
        assert_eq!(rows[1].as_ref().unwrap().line, 2);
    }

    #[test]
    fn csv_rows_map_headers_to_cells() {
        let rows = read(
            ImportFormat::Csv,
            "external_id, email,plan\nu1,a@example.com,pro\nu2,\"b@example.com\"\nu3,,\"free, for now\"\n",
        );
        assert_eq!(rows.len(), 3);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(first.line, 2);
        assert_eq!(first.values["email"], "a@example.com");
        assert!(first.text_cells);
        assert_eq!(rows[1].as_ref().unwrap_err().error.line, 3);
        assert_eq!(rows[2].as_ref().unwrap().values["plan"], "free, for now");
    }

    #[test]
    fn ndjson_refuses_invalid_utf8_per_row_and_skips_a_bom() {
        let mut input = b"\xEF\xBB\xBF{\"externalId\":\"u1\"}\n{\"name\":\"caf".to_vec();
        input.extend_from_slice(b"\xE9\"}\n{\"externalId\":\"u3\"}\n");
        let rows = read_bytes(ImportFormat::Ndjson, &input);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].as_ref().unwrap().values["externalId"], "u1");
        let failure = rows[1].as_ref().unwrap_err();
        assert_eq!(failure.error.line, 2);
        assert!(!failure.fatal);
        assert!(
            failure.error.message.contains("not valid UTF-8"),
            "{failure:?}"
        );
        assert_eq!(rows[2].as_ref().unwrap().line, 3);
    }

    #[test]
    fn csv_line_numbers_hold_for_crlf_and_invalid_utf8_fails_the_row() {
        let mut input = b"external_id,name\r\nu1,Ada\r\nu2,Caf".to_vec();
        input.extend_from_slice(b"\xE9\r\nu3,Bob\r\n");
        let rows = read_bytes(ImportFormat::Csv, &input);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0].as_ref().unwrap().line, 2);
        assert_eq!(rows[1].as_ref().unwrap_err().error.line, 3);
        assert_eq!(rows[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn a_bad_csv_header_is_fatal_once() {
        let input = "external_id,plna\nu1,x\nu2,y\n";
        let mut rows = RowReader::new(ImportFormat::Csv, input.as_bytes());
        let failure = rows
            .check_header(|names| Err(format!("unknown `{}`", names[1])))
            .unwrap_err();
        assert!(failure.fatal);
        assert_eq!(failure.error.line, 1);
        assert!(
            rows.next().is_none(),
            "nothing is read after a fatal failure"
        );
    }

    #[test]
    fn an_oversized_csv_record_stops_in_bounded_memory() {
        let mut input = String::from("external_id,name\nu1,\"");
        input.push_str(&"x".repeat(3 * MAX_ROW_BYTES));
        input.push_str("\"\nu2,b\n");
        let rows = read(ImportFormat::Csv, &input);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let failure = rows[0].as_ref().unwrap_err();
        assert!(failure.fatal);
        assert_eq!(failure.error.line, 2);
        assert!(failure.error.message.contains("longer than"), "{failure:?}");
    }
}
