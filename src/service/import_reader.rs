//! Reads import files row by row, in bounded memory: NDJSON (one JSON object a line) or CSV
//! (a header row of field and attribute names). A malformed record becomes a row error and
//! reading goes on with the next one.

use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value as Json};

use super::import::RowError;
use crate::domain::ImportRow;

/// Longest NDJSON line or CSV record accepted, in bytes.
pub const MAX_ROW_BYTES: usize = 1024 * 1024;

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

impl ImportFormat {
    /// Parses `ndjson`/`jsonl`/`json` or `csv` (a file extension or a format name).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" | "json" | "application/x-ndjson" => Some(Self::Ndjson),
            "csv" | "text/csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Rows of an import, in order.
pub enum RowReader<R: Read> {
    /// NDJSON input.
    Ndjson {
        /// The input.
        reader: BufReader<R>,
        /// The line last read.
        line: u64,
    },
    /// CSV input.
    Csv {
        /// The parser.
        reader: csv::Reader<R>,
        /// The header row.
        headers: Option<csv::StringRecord>,
    },
}

impl<R: Read> RowReader<R> {
    /// Reads `input` as `format`.
    pub fn new(format: ImportFormat, input: R) -> Self {
        match format {
            ImportFormat::Ndjson => Self::Ndjson {
                reader: BufReader::with_capacity(64 * 1024, input),
                line: 0,
            },
            ImportFormat::Csv => Self::Csv {
                reader: csv::ReaderBuilder::new()
                    .flexible(true)
                    .trim(csv::Trim::Headers)
                    .from_reader(input),
                headers: None,
            },
        }
    }
}

impl<R: Read> Iterator for RowReader<R> {
    type Item = Result<ImportRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Ndjson { reader, line } => next_ndjson(reader, line),
            Self::Csv { reader, headers } => next_csv(reader, headers),
        }
    }
}

fn next_ndjson<R: Read>(
    reader: &mut BufReader<R>,
    line: &mut u64,
) -> Option<Result<ImportRow, RowError>> {
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
                return Some(Err(RowError::invalid(
                    *line,
                    format!("cannot read: {error}"),
                )));
            }
        }
        if buffer.len() > MAX_ROW_BYTES && buffer.last() != Some(&b'\n') {
            skip_rest_of_line(reader);
            return Some(Err(RowError::invalid(
                *line,
                format!("line is longer than {MAX_ROW_BYTES} bytes"),
            )));
        }
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        return Some(match serde_json::from_str::<Json>(text) {
            Ok(Json::Object(values)) => Ok(ImportRow {
                line: *line,
                values,
                text_cells: false,
            }),
            Ok(_) => Err(RowError::invalid(*line, "a line must hold one JSON object")),
            Err(error) => Err(RowError::invalid(*line, format!("not JSON: {error}"))),
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
    reader: &mut csv::Reader<R>,
    headers: &mut Option<csv::StringRecord>,
) -> Option<Result<ImportRow, RowError>> {
    if headers.is_none() {
        match reader.headers() {
            Ok(row) => *headers = Some(row.clone()),
            Err(error) => {
                return Some(Err(RowError::invalid(
                    1,
                    format!("bad header row: {error}"),
                )));
            }
        }
    }
    let header = headers.as_ref()?;
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(false) => None,
        Ok(true) => {
            let line = record.position().map_or(0, |position| position.line());
            if record.as_slice().len() > MAX_ROW_BYTES {
                return Some(Err(RowError::invalid(line, "record is too long")));
            }
            if record.len() != header.len() {
                return Some(Err(RowError::invalid(
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
            let line = error.position().map_or(0, |position| position.line());
            Some(Err(RowError::invalid(
                line,
                format!("bad CSV record: {error}"),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(format: ImportFormat, text: &str) -> Vec<Result<ImportRow, RowError>> {
        RowReader::new(format, text.as_bytes()).collect()
    }

    #[test]
    fn ndjson_rows_carry_line_numbers_and_bad_lines_are_errors() {
        let rows = read(
            ImportFormat::Ndjson,
            "{\"externalId\":\"u1\"}\n\n{oops\n[1]\n{\"externalId\":\"u2\"}",
        );
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].as_ref().unwrap().line, 1);
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap_err().line, 4);
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
        assert_eq!(rows[1].as_ref().unwrap_err().line, 3);
        assert_eq!(rows[2].as_ref().unwrap().values["plan"], "free, for now");
    }
}
