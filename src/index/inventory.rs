//! What the index holds: every (workspace, contact id) with a live document, for comparing the
//! index against the store.

use std::collections::BTreeSet;

use tantivy::Term;
use tantivy::collector::{Count, DocSetCollector};
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;

use super::{IndexError, SegmentIndex};
use crate::domain::{ContactId, WorkspaceId};

impl SegmentIndex {
    /// How many live documents `workspace` has.
    pub fn documents_of(&self, workspace: &WorkspaceId) -> Result<u64, IndexError> {
        let term = Term::from_field_text(self.fields.workspace, workspace.as_str());
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let count = self.reader.searcher().search(&query, &Count)?;
        Ok(count as u64)
    }

    /// Every live document's workspace and contact id, sorted.
    pub fn documents(&self) -> Result<Vec<(WorkspaceId, ContactId)>, IndexError> {
        let searcher = self.reader.searcher();
        let mut workspaces = BTreeSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.workspace)?;
            let mut terms = inverted
                .terms()
                .stream()
                .map_err(|error| IndexError::Tantivy(error.into()))?;
            while terms.advance() {
                workspaces.insert(String::from_utf8_lossy(terms.key()).into_owned());
            }
        }
        let mut documents = Vec::new();
        for workspace in workspaces {
            let term = Term::from_field_text(self.fields.workspace, &workspace);
            let query = TermQuery::new(term, IndexRecordOption::Basic);
            let addresses = searcher.search(&query, &DocSetCollector)?;
            let workspace = WorkspaceId::from_trusted(workspace);
            for address in addresses {
                let segment = searcher.segment_reader(address.segment_ord);
                let hi = segment.fast_fields().u64("id_hi")?;
                let lo = segment.fast_fields().u64("id_lo")?;
                if let (Some(hi), Some(lo)) = (hi.first(address.doc_id), lo.first(address.doc_id)) {
                    let id = ContactId::from_u128((u128::from(hi) << 64) | u128::from(lo));
                    documents.push((workspace.clone(), id));
                }
            }
        }
        documents.sort();
        Ok(documents)
    }
}
