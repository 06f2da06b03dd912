//! Checked segment -> private plan -> `simplify()` -> leaves as tantivy `Query` objects.
//!
//! Every plan is confined to one workspace here, once. No query text is ever formatted for
//! tantivy's query parser: terms and ranges are built from typed values. The executor
//! (`execute.rs`) evaluates leaves with tantivy and combines them as bit sets.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use qwry_segment::{Checked, Field, Test, TimePoint};
use tantivy::Term;
use tantivy::fastfield::FastValue;
use tantivy::query::{
    AutomatonWeight, EnableScoring, FuzzyTermQuery, Query, RangeQuery, TermQuery, TermSetQuery,
    Weight,
};
use tantivy::schema::IndexRecordOption;

use super::automaton::{TextAutomaton, TextMatch};
use super::document::time_key;
use super::record::field_path;
use super::schema::IndexFields;
use crate::domain::WorkspaceId;

/// A segment refers to a saved segment that the caller did not expand.
#[derive(Debug, thiserror::Error)]
#[error("segment reference `{0}` was not expanded before compiling")]
pub struct UnexpandedReference(pub String);

/// The plan: the checked tree with fields resolved to index paths and `now` resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Plan {
    All,
    Nothing,
    Leaf(Leaf),
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
}

/// A test tantivy answers directly.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Leaf {
    Workspace(String),
    Present(String),
    TextIn(String, Vec<String>),
    TextMatch(String, TextMatch, String),
    NumberRange(String, Bound<f64>, Bound<f64>),
    /// Bounds in ns; `relative` when a bound came from `now`, so the result changes over time.
    TimeRange {
        path: String,
        low: Bound<i64>,
        high: Bound<i64>,
        relative: bool,
    },
    Flag(String, bool),
    ListAny(String, Vec<String>),
    /// A folded search word in a searchable field.
    Search(String, SearchMode, String),
}

/// How a search word matches a field's folded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchMode {
    /// One of its words is exactly the query word.
    Word,
    /// The whole value starts with the query word.
    ValuePrefix,
    /// One of its words starts with the query word.
    Prefix,
    /// The whole value contains the query word.
    Infix,
    /// One of its words is one edit (or a swap of neighbours) away.
    Fuzzy,
}

/// The confined, simplified plan of `segment` for `workspace`, with `now` fixing relative times.
pub(super) fn plan_for(
    segment: &Checked,
    workspace: &WorkspaceId,
    now: DateTime<Utc>,
) -> Result<Plan, UnexpandedReference> {
    let confined = Plan::And(vec![
        Plan::Leaf(Leaf::Workspace(workspace.as_str().to_owned())),
        plan(segment, now)?,
    ]);
    Ok(confined.simplify())
}

/// The plan of every contact of `workspace`.
pub(super) fn workspace_plan(workspace: &WorkspaceId) -> Plan {
    Plan::Leaf(Leaf::Workspace(workspace.as_str().to_owned()))
}

fn plan(segment: &Checked, now: DateTime<Utc>) -> Result<Plan, UnexpandedReference> {
    let all = |operands: &[Checked]| {
        operands
            .iter()
            .map(|o| plan(o, now))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match segment {
        Checked::And(operands) => Plan::And(all(operands)?),
        Checked::Or(operands) => Plan::Or(all(operands)?),
        Checked::Not(operand) => Plan::Not(Box::new(plan(operand, now)?)),
        Checked::InSegment(slug) => return Err(UnexpandedReference(slug.clone())),
        Checked::Test(field, test) => test_plan(field, test, now),
    })
}

fn test_plan(field: &Field, test: &Test, now: DateTime<Utc>) -> Plan {
    let path = field_path(field);
    let leaf = match test {
        Test::Exists => Leaf::Present(path),
        Test::TextIn(values) => Leaf::TextIn(path, values.clone()),
        Test::TextContains(needle) => Leaf::TextMatch(path, TextMatch::Contains, needle.clone()),
        Test::TextStartsWith(needle) => {
            Leaf::TextMatch(path, TextMatch::StartsWith, needle.clone())
        }
        Test::TextEndsWith(needle) => Leaf::TextMatch(path, TextMatch::EndsWith, needle.clone()),
        Test::NumberIn(values) => {
            let exact = |v: &f64| {
                Plan::Leaf(Leaf::NumberRange(
                    path.clone(),
                    Bound::Included(*v),
                    Bound::Included(*v),
                ))
            };
            return Plan::Or(values.iter().map(exact).collect());
        }
        Test::NumberRange(low, high) => Leaf::NumberRange(path, *low, *high),
        Test::BoolIs(flag) => Leaf::Flag(path, *flag),
        Test::TimeRange(low, high) => {
            let nanos = |bound: &Bound<TimePoint>| bound.map(|point| time_key(point.resolve(now)));
            let is_relative = |bound: &Bound<TimePoint>| {
                matches!(
                    bound,
                    Bound::Included(TimePoint::Now(_)) | Bound::Excluded(TimePoint::Now(_))
                )
            };
            Leaf::TimeRange {
                path,
                low: nanos(low),
                high: nanos(high),
                relative: is_relative(low) || is_relative(high),
            }
        }
        Test::ListHasAny(items) => Leaf::ListAny(path, items.clone()),
        Test::ListHasAll(items) => {
            let one = |item: &String| Plan::Leaf(Leaf::ListAny(path.clone(), vec![item.clone()]));
            return Plan::And(items.iter().map(one).collect());
        }
    };
    Plan::Leaf(leaf)
}

impl Plan {
    /// Flattens nested `and`/`or`, folds constants and double negations, and drops empty tests.
    fn simplify(self) -> Plan {
        match self {
            Plan::And(operands) => {
                let mut flat = Vec::new();
                for operand in operands.into_iter().map(Plan::simplify) {
                    match operand {
                        Plan::All => {}
                        Plan::Nothing => return Plan::Nothing,
                        Plan::And(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                match flat.len() {
                    0 => Plan::All,
                    1 => flat.remove(0),
                    _ => Plan::And(flat),
                }
            }
            Plan::Or(operands) => {
                let mut flat = Vec::new();
                for operand in operands.into_iter().map(Plan::simplify) {
                    match operand {
                        Plan::Nothing => {}
                        Plan::All => return Plan::All,
                        Plan::Or(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                match flat.len() {
                    0 => Plan::Nothing,
                    1 => flat.remove(0),
                    _ => Plan::Or(flat),
                }
            }
            Plan::Not(operand) => match operand.simplify() {
                Plan::All => Plan::Nothing,
                Plan::Nothing => Plan::All,
                Plan::Not(inner) => *inner,
                other => Plan::Not(Box::new(other)),
            },
            Plan::Leaf(Leaf::TextIn(_, values) | Leaf::ListAny(_, values)) if values.is_empty() => {
                Plan::Nothing
            }
            leaf => leaf,
        }
    }
}

/// The term of `path` in a JSON field (paths never hold dots; see [`field_path`]).
fn json_term(field: tantivy::schema::Field, path: &str) -> Term {
    Term::from_field_json_path(field, path, false)
}

fn text_term(field: tantivy::schema::Field, path: &str, value: &str) -> Term {
    let mut term = json_term(field, path);
    term.append_type_and_str(value);
    term
}

/// The tantivy query answering `leaf`.
pub(super) fn leaf_query(leaf: &Leaf, fields: &IndexFields) -> Box<dyn Query> {
    let basic = IndexRecordOption::Basic;
    match leaf {
        Leaf::Workspace(workspace) => Box::new(TermQuery::new(
            Term::from_field_text(fields.workspace, workspace),
            basic,
        )),
        Leaf::Present(path) => Box::new(TermQuery::new(
            Term::from_field_text(fields.present, path),
            basic,
        )),
        Leaf::TextIn(path, values) => terms_query(
            values
                .iter()
                .map(|v| text_term(fields.text, path, v))
                .collect(),
        ),
        Leaf::ListAny(path, items) => terms_query(
            items
                .iter()
                .map(|v| text_term(fields.list, path, v))
                .collect(),
        ),
        Leaf::Flag(path, flag) => {
            let mut term = json_term(fields.flag, path);
            term.append_type_and_fast_value(*flag);
            Box::new(TermQuery::new(term, basic))
        }
        Leaf::NumberRange(path, low, high) => fast_range(fields.number, path, low, high),
        Leaf::TimeRange {
            path, low, high, ..
        } => fast_range(fields.time, path, low, high),
        Leaf::Search(path, mode, word) => search_query(fields, path, *mode, word),
        Leaf::TextMatch(path, mode, needle) => {
            let prefix = text_term(fields.text_lower, path, "")
                .serialized_value_bytes()
                .to_vec();
            Box::new(TextMatchQuery {
                field: fields.text_lower,
                automaton: TextAutomaton::new(prefix, needle, *mode),
            })
        }
    }
}

/// The query of one search word in one field.
fn search_query(fields: &IndexFields, path: &str, mode: SearchMode, word: &str) -> Box<dyn Query> {
    let automaton = |field, text_mode| -> Box<dyn Query> {
        let prefix = text_term(field, path, "").serialized_value_bytes().to_vec();
        Box::new(TextMatchQuery {
            field,
            automaton: TextAutomaton::new(prefix, word, text_mode),
        })
    };
    match mode {
        SearchMode::Word => Box::new(TermQuery::new(
            text_term(fields.search_words, path, word),
            IndexRecordOption::Basic,
        )),
        SearchMode::ValuePrefix => automaton(fields.search, TextMatch::StartsWith),
        SearchMode::Prefix => automaton(fields.search_words, TextMatch::StartsWith),
        SearchMode::Infix => automaton(fields.search, TextMatch::Contains),
        SearchMode::Fuzzy => Box::new(FuzzyTermQuery::new(
            text_term(fields.search_words, path, word),
            1,
            true,
        )),
    }
}

/// A range over the fast column of `path` in a JSON field.
fn fast_range<T: FastValue + Copy>(
    field: tantivy::schema::Field,
    path: &str,
    low: &Bound<T>,
    high: &Bound<T>,
) -> Box<dyn Query> {
    let bound = |value: &T| {
        let mut term = json_term(field, path);
        term.append_type_and_fast_value(*value);
        term
    };
    Box::new(RangeQuery::new(
        low.as_ref().map(bound),
        high.as_ref().map(bound),
    ))
}

fn terms_query(mut terms: Vec<Term>) -> Box<dyn Query> {
    if terms.len() == 1 {
        Box::new(TermQuery::new(terms.remove(0), IndexRecordOption::Basic))
    } else {
        Box::new(TermSetQuery::new(terms))
    }
}

/// Runs a [`TextAutomaton`] over a field's term dictionary.
#[derive(Debug, Clone)]
struct TextMatchQuery {
    field: tantivy::schema::Field,
    automaton: TextAutomaton,
}

impl Query for TextMatchQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(AutomatonWeight::new(
            self.field,
            self.automaton.clone(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(path: &str) -> Plan {
        Plan::Leaf(Leaf::Present(path.to_owned()))
    }

    #[test]
    fn simplify_flattens_and_folds() {
        let nested = Plan::And(vec![
            leaf("a"),
            Plan::And(vec![leaf("b"), Plan::All]),
            Plan::Not(Box::new(Plan::Not(Box::new(leaf("c"))))),
        ]);
        assert_eq!(
            nested.simplify(),
            Plan::And(vec![leaf("a"), leaf("b"), leaf("c")])
        );
        assert_eq!(Plan::Or(vec![leaf("a"), Plan::All]).simplify(), Plan::All);
        assert_eq!(
            Plan::And(vec![leaf("a"), Plan::Or(vec![])]).simplify(),
            Plan::Nothing
        );
        assert_eq!(Plan::Not(Box::new(Plan::Nothing)).simplify(), Plan::All);
        assert_eq!(
            Plan::Leaf(Leaf::TextIn("p".into(), vec![])).simplify(),
            Plan::Nothing
        );
    }
}
