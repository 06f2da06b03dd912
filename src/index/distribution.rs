//! How a segment's members spread over one field: the most held values of a text or
//! string-list field, or a histogram of a number or datetime field, computed on the index's
//! bit sets of the members (postings for values, fast columns for numbers and times).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use qwry_segment::Checked;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, TERMINATED, Term};

use super::bits::Bits;
use super::values::{SCAN_VALUES, ValueKind, value_term, values_under};
use super::{IndexError, SegmentIndex, compile, execute};
use crate::domain::WorkspaceId;

/// The kind of field a distribution is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpreadKind {
    /// Text or list items: the most held values.
    Values(ValueKind),
    /// Numbers: a histogram.
    Number,
    /// Datetimes: a histogram.
    Time,
}

/// One bar of a histogram: values in `[low, high)` (the last bar includes `high`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar<T> {
    /// Its lowest value.
    pub low: T,
    /// Its upper bound.
    pub high: T,
    /// How many members have a value in it.
    pub count: u64,
}

/// How members spread over a field.
#[derive(Debug, Clone, PartialEq)]
pub enum Spread {
    /// The most held values (each member counted once per value it holds) and how many
    /// values the list leaves out.
    Values {
        /// Value and members holding it, most held first.
        top: Vec<(String, u64)>,
        /// Members' values beyond the top (counted per value held).
        other: u64,
    },
    /// Equal-width bars from the smallest to the largest value.
    Numbers(Vec<Bar<f64>>),
    /// Equal-width bars from the earliest to the latest instant.
    Times(Vec<Bar<DateTime<Utc>>>),
}

/// A distribution with the members it is over.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Members of the segment.
    pub members: u64,
    /// Members without a value in the field.
    pub missing: u64,
    /// The spread of the others.
    pub spread: Spread,
}

impl SegmentIndex {
    /// How the members of `segment` (all of `workspace`'s contacts when `None`) at `now`
    /// spread over the field at `path`: the `limit` most held values, or `limit` bars.
    pub fn distribution(
        &self,
        workspace: &WorkspaceId,
        segment: Option<&Checked>,
        now: DateTime<Utc>,
        path: &str,
        kind: SpreadKind,
        limit: usize,
    ) -> Result<Distribution, IndexError> {
        let plan = match segment {
            Some(segment) => compile::plan_for(segment, workspace, now)?,
            None => compile::workspace_plan(workspace),
        };
        let searcher = self.reader.searcher();
        let matches = execute::matching(&plan, &searcher, &self.context())?;
        let readers = searcher.segment_readers();
        let members: u64 = matches.iter().map(Bits::count).sum();
        let mut holding = 0u64;
        for (reader, docs) in readers.iter().zip(&matches) {
            let present = Term::from_field_text(self.fields.present, path);
            holding += postings_in(reader, &present, docs)?;
        }
        let limit = limit.max(1);
        let spread = match kind {
            SpreadKind::Values(kind) => {
                let field = match kind {
                    ValueKind::Text => self.fields.text,
                    ValueKind::ListItem => self.fields.list,
                };
                let prefix = value_term(field, path, "")
                    .serialized_value_bytes()
                    .to_vec();
                let mut counts: HashMap<String, u64> = HashMap::new();
                for (reader, docs) in readers.iter().zip(&matches) {
                    let mut values = Vec::new();
                    values_under(reader, field, &prefix, prefix.len(), |value| {
                        values.push(value.to_owned());
                        values.len() < SCAN_VALUES
                    })?;
                    for value in values {
                        let count = postings_in(reader, &value_term(field, path, &value), docs)?;
                        if count > 0 {
                            *counts.entry(value).or_default() += count;
                        }
                    }
                }
                let mut top: Vec<(String, u64)> = counts.into_iter().collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                let other = top.iter().skip(limit).map(|(_, count)| count).sum();
                top.truncate(limit);
                Spread::Values { top, other }
            }
            SpreadKind::Number => {
                let mut values = Vec::new();
                for (reader, docs) in readers.iter().zip(&matches) {
                    if let Some(column) = reader
                        .fast_fields()
                        .column_opt::<f64>(&format!("number.{path}"))?
                    {
                        values.extend(docs.iter().filter_map(|doc| column.first(doc)));
                    }
                }
                Spread::Numbers(bars(&values, limit))
            }
            SpreadKind::Time => {
                let mut values = Vec::new();
                for (reader, docs) in readers.iter().zip(&matches) {
                    if let Some(column) = reader
                        .fast_fields()
                        .column_opt::<i64>(&format!("time.{path}"))?
                    {
                        values.extend(docs.iter().filter_map(|doc| column.first(doc)));
                    }
                }
                let as_f64: Vec<f64> = values.iter().map(|ns| *ns as f64).collect();
                let instant = |ns: f64| DateTime::from_timestamp_nanos(ns.round() as i64);
                Spread::Times(
                    bars(&as_f64, limit)
                        .into_iter()
                        .map(|bar| Bar {
                            low: instant(bar.low),
                            high: instant(bar.high),
                            count: bar.count,
                        })
                        .collect(),
                )
            }
        };
        Ok(Distribution {
            members,
            missing: members.saturating_sub(holding),
            spread,
        })
    }
}

/// How many documents of `docs` the postings of `term` hold.
fn postings_in(
    reader: &tantivy::SegmentReader,
    term: &Term,
    docs: &Bits,
) -> Result<u64, IndexError> {
    let inverted = reader.inverted_index(term.field())?;
    let postings = inverted
        .read_postings(term, IndexRecordOption::Basic)
        .map_err(|error| IndexError::Tantivy(error.into()))?;
    let Some(mut postings) = postings else {
        return Ok(0);
    };
    let mut count = 0;
    let mut doc = postings.doc();
    while doc != TERMINATED {
        if docs.contains(doc) {
            count += 1;
        }
        doc = postings.advance();
    }
    Ok(count)
}

/// `limit` equal-width bars from the smallest to the largest of `values` (one bar when they
/// are all equal; none when there are none).
fn bars(values: &[f64], limit: usize) -> Vec<Bar<f64>> {
    let (Some(low), Some(high)) = (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    if low == high {
        return vec![Bar {
            low,
            high,
            count: values.len() as u64,
        }];
    }
    let width = (high - low) / limit as f64;
    let mut counts = vec![0u64; limit];
    for value in values {
        let bar = (((value - low) / width) as usize).min(limit - 1);
        counts[bar] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(n, count)| Bar {
            low: low + width * n as f64,
            high: if n + 1 == limit {
                high
            } else {
                low + width * (n + 1) as f64
            },
            count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_cover_the_range_and_count_every_value() {
        let values = [0.0, 1.0, 2.5, 5.0, 9.9, 10.0];
        let four = bars(&values, 4);
        assert_eq!(four.len(), 4);
        assert_eq!((four[0].low, four[3].high), (0.0, 10.0));
        assert_eq!(
            four.iter().map(|bar| bar.count).collect::<Vec<_>>(),
            [2, 1, 1, 2]
        );
        assert_eq!(bars(&[3.0, 3.0], 5).len(), 1);
        assert!(bars(&[], 5).is_empty());
    }
}
