//! The values a text or string-list field holds in a workspace, with how many contacts hold
//! each: suggestions while a marketer types a literal, and the hint that a literal matches
//! nothing but differs only in case from a value that does.
//!
//! Values come from the term dictionary of the field's path (one per index segment, shared by
//! all workspaces), counted per workspace by a workspace-and-value query each. A dictionary walk
//! stops after [`SCAN_VALUES`] distinct values: all of a field with few values (plans,
//! countries, tags), the first ones in byte order of one with many (a longer prefix narrows
//! them).

use std::collections::BTreeSet;

use tantivy::Term;
use tantivy::collector::Count;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use super::{IndexError, SegmentIndex};
use crate::domain::WorkspaceId;

/// Most distinct values a dictionary walk looks at.
pub const SCAN_VALUES: usize = 2_000;

/// Which of the index's fields holds a path's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// Text (built-in text fields, string attributes).
    Text,
    /// The items of string lists.
    ListItem,
}

impl SegmentIndex {
    /// Up to `limit` values of the field at `path` in `workspace` that start with `prefix`
    /// (exactly, case included), most held first (then in byte order), each with the number of
    /// the workspace's contacts holding it.
    pub fn field_values(
        &self,
        workspace: &WorkspaceId,
        path: &str,
        kind: ValueKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, IndexError> {
        let field = self.value_field(kind);
        let start = value_term(field, path, prefix);
        let value_offset = value_term(field, path, "").serialized_value_bytes().len();
        let wanted = start.serialized_value_bytes().to_vec();
        let mut values = BTreeSet::new();
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            values_under(segment, field, &wanted, value_offset, |value| {
                values.insert(value.to_owned());
                values.len() < SCAN_VALUES
            })?;
        }
        let mut counted = self.counted(workspace, field, path, values)?;
        counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counted.truncate(limit);
        Ok(counted)
    }

    /// The values of the field at `path` that `workspace`'s contacts hold and that equal
    /// `value` ignoring case, `value` itself left out, with their counts (most held first).
    /// Empty when the field has more than [`SCAN_VALUES`] values to look through.
    pub fn case_variants(
        &self,
        workspace: &WorkspaceId,
        path: &str,
        kind: ValueKind,
        value: &str,
    ) -> Result<Vec<(String, u64)>, IndexError> {
        let field = self.value_field(kind);
        let wanted = value.to_lowercase();
        let start = value_term(field, path, "")
            .serialized_value_bytes()
            .to_vec();
        let mut variants = BTreeSet::new();
        let mut seen = 0usize;
        let searcher = self.reader.searcher();
        for segment in searcher.segment_readers() {
            values_under(segment, field, &start, start.len(), |candidate| {
                seen += 1;
                if candidate != value && candidate.to_lowercase() == wanted {
                    variants.insert(candidate.to_owned());
                }
                seen <= SCAN_VALUES
            })?;
            if seen > SCAN_VALUES {
                return Ok(Vec::new());
            }
        }
        let mut counted = self.counted(workspace, field, path, variants)?;
        counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(counted)
    }

    /// How many of `workspace`'s contacts hold `value` at `path`.
    pub fn value_count(
        &self,
        workspace: &WorkspaceId,
        path: &str,
        kind: ValueKind,
        value: &str,
    ) -> Result<u64, IndexError> {
        let field = self.value_field(kind);
        let query = self.holding(workspace, field, path, value);
        Ok(self.reader.searcher().search(&query, &Count)? as u64)
    }

    fn value_field(&self, kind: ValueKind) -> Field {
        match kind {
            ValueKind::Text => self.fields.text,
            ValueKind::ListItem => self.fields.list,
        }
    }

    /// `values` with their counts in `workspace`, those no contact of it holds left out.
    fn counted(
        &self,
        workspace: &WorkspaceId,
        field: Field,
        path: &str,
        values: BTreeSet<String>,
    ) -> Result<Vec<(String, u64)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut counted = Vec::new();
        for value in values {
            let count = searcher.search(&self.holding(workspace, field, path, &value), &Count)?;
            if count > 0 {
                counted.push((value, count as u64));
            }
        }
        Ok(counted)
    }

    /// The contacts of `workspace` holding `value` at `path`.
    fn holding(
        &self,
        workspace: &WorkspaceId,
        field: Field,
        path: &str,
        value: &str,
    ) -> BooleanQuery {
        let basic = IndexRecordOption::Basic;
        let workspace = Term::from_field_text(self.fields.workspace, workspace.as_str());
        let clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(TermQuery::new(workspace, basic))),
            (
                Occur::Must,
                Box::new(TermQuery::new(value_term(field, path, value), basic)),
            ),
        ];
        BooleanQuery::new(clauses)
    }
}

/// Walks the values of `segment`'s dictionary of `field` whose terms start with `prefix`
/// (values from byte `value_offset` of the term), in byte order, while `visit` says go on.
pub(super) fn values_under(
    segment: &tantivy::SegmentReader,
    field: Field,
    prefix: &[u8],
    value_offset: usize,
    mut visit: impl FnMut(&str) -> bool,
) -> Result<(), IndexError> {
    let inverted = segment.inverted_index(field)?;
    let mut terms = inverted
        .terms()
        .range()
        .ge(prefix)
        .into_stream()
        .map_err(|error| IndexError::Tantivy(error.into()))?;
    while terms.advance() {
        let key = terms.key();
        if !key.starts_with(prefix) {
            break;
        }
        if !visit(&String::from_utf8_lossy(&key[value_offset..])) {
            break;
        }
    }
    Ok(())
}

/// The term of `value` at `path` in the JSON field `field`.
pub(super) fn value_term(field: Field, path: &str, value: &str) -> Term {
    let mut term = Term::from_field_json_path(field, path, false);
    term.append_type_and_str(value);
    term
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{AttributeName, AttributeValue, Contact, ContactFields};
    use crate::index::{CommitPayload, IndexChange, PROJECTION_VERSION};

    fn contact(workspace: &str, plan: &str, tags: &[&str]) -> Contact {
        let mut fields = ContactFields::default();
        fields.attributes.insert(
            AttributeName::parse("plan").unwrap(),
            AttributeValue::String(plan.to_owned()),
        );
        fields.attributes.insert(
            AttributeName::parse("tags").unwrap(),
            AttributeValue::StringList(tags.iter().map(|t| (*t).to_owned()).collect()),
        );
        Contact::new(WorkspaceId::parse(workspace).unwrap(), fields, Utc::now())
    }

    #[test]
    fn values_are_counted_per_workspace_and_case_variants_found() {
        let index = SegmentIndex::open_in_ram().unwrap();
        let contacts = [
            contact("main", "pro", &["vip", "eu"]),
            contact("main", "pro", &["vip"]),
            contact("main", "Pro", &["beta"]),
            contact("main", "free", &[]),
            contact("other", "premium", &["VIP"]),
        ];
        let payload = CommitPayload {
            projection: PROJECTION_VERSION,
            built: true,
            last_change: None,
            watermark: None,
            committed_at: Utc::now(),
        };
        let changes: Vec<IndexChange> = contacts.iter().cloned().map(IndexChange::upsert).collect();
        index.apply(&changes, &payload).unwrap();
        let main = WorkspaceId::parse("main").unwrap();
        let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            pairs.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect()
        };
        assert_eq!(
            index
                .field_values(&main, "plan", ValueKind::Text, "", 10)
                .unwrap(),
            owned(&[("pro", 2), ("Pro", 1), ("free", 1)])
        );
        assert_eq!(
            index
                .field_values(&main, "plan", ValueKind::Text, "pr", 10)
                .unwrap(),
            owned(&[("pro", 2)]),
            "`premium` belongs to another workspace"
        );
        assert_eq!(
            index
                .field_values(&main, "tags", ValueKind::ListItem, "", 2)
                .unwrap(),
            owned(&[("vip", 2), ("beta", 1)])
        );
        assert_eq!(
            index
                .case_variants(&main, "plan", ValueKind::Text, "PRO")
                .unwrap(),
            owned(&[("pro", 2), ("Pro", 1)])
        );
        assert!(
            index
                .case_variants(&main, "tags", ValueKind::ListItem, "vip")
                .unwrap()
                .is_empty(),
            "`VIP` is another workspace's"
        );
        assert_eq!(
            index
                .value_count(&main, "tags", ValueKind::ListItem, "VIP")
                .unwrap(),
            0
        );
    }
}
