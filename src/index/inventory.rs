//! What the index holds: its workspaces and how many live documents each has, for comparing the
//! index against the store (page by page, with [`SegmentIndex::workspace_members`]).

use std::collections::BTreeSet;

use tantivy::Term;
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;

use super::{IndexError, SegmentIndex};
use crate::domain::WorkspaceId;

impl SegmentIndex {
    /// How many live documents `workspace` has.
    pub fn documents_of(&self, workspace: &WorkspaceId) -> Result<u64, IndexError> {
        let term = Term::from_field_text(self.fields.workspace, workspace.as_str());
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let count = self.reader.searcher().search(&query, &Count)?;
        Ok(count as u64)
    }

    /// Every workspace with a live document, sorted (as the store orders its keys).
    pub fn workspaces(&self) -> Result<Vec<WorkspaceId>, IndexError> {
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
        // A term outlives its documents until the segment merges: keep workspaces with one.
        let mut live = Vec::new();
        for workspace in workspaces.into_iter().map(WorkspaceId::from_trusted) {
            if self.documents_of(&workspace)? > 0 {
                live.push(workspace);
            }
        }
        Ok(live)
    }
}
