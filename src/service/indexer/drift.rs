//! Whether the store and the index hold the same contacts: both read in (workspace, id) order a
//! page at a time and merged, so that a check's memory is a few pages whatever the store holds.

use std::collections::VecDeque;
use std::sync::Arc;

use super::IndexerError;
use crate::domain::{ContactId, WorkspaceId};
use crate::index::SegmentIndex;
use crate::store::Store;

type ContactKey = (WorkspaceId, ContactId);

/// Differences between the store and the index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// Contacts in the store.
    pub stored: u64,
    /// Documents in the index.
    pub indexed: u64,
    /// Contacts without a document.
    pub missing: u64,
    /// Documents without a contact.
    pub stale: u64,
    /// A sample of the missing ones.
    pub missing_sample: Vec<ContactKey>,
    /// A sample of the stale ones.
    pub stale_sample: Vec<ContactKey>,
}

impl Drift {
    /// Whether store and index hold the same contacts.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.stale == 0
    }

    fn note_missing(&mut self, id: ContactKey, sample: usize) {
        self.missing += 1;
        if self.missing_sample.len() < sample {
            self.missing_sample.push(id);
        }
    }

    fn note_stale(&mut self, id: ContactKey, sample: usize) {
        self.stale += 1;
        if self.stale_sample.len() < sample {
            self.stale_sample.push(id);
        }
    }
}

/// The store's contact keys, a page at a time.
struct StoredKeys<'a> {
    store: &'a Store,
    size: usize,
    page: VecDeque<ContactKey>,
    after: Option<ContactKey>,
    done: bool,
}

impl StoredKeys<'_> {
    async fn front(&mut self) -> Result<Option<&ContactKey>, IndexerError> {
        if self.page.is_empty() && !self.done {
            let after = self.after.as_ref().map(|(workspace, id)| (workspace, id));
            let page = self.store.contact_keys_page(after, self.size).await?;
            self.done = page.len() < self.size;
            self.after = page.last().cloned();
            self.page.extend(page);
        }
        Ok(self.page.front())
    }
}

/// The index's documents, a page of one workspace at a time, workspaces in key order.
struct IndexedKeys {
    index: Arc<SegmentIndex>,
    size: usize,
    workspaces: VecDeque<WorkspaceId>,
    page: VecDeque<ContactKey>,
    after: Option<ContactId>,
}

impl IndexedKeys {
    async fn front(&mut self) -> Result<Option<&ContactKey>, IndexerError> {
        while self.page.is_empty() {
            let Some(workspace) = self.workspaces.front().cloned() else {
                break;
            };
            let (index, after, size) = (Arc::clone(&self.index), self.after, self.size);
            let scoped = workspace.clone();
            let members = tokio::task::spawn_blocking(move || {
                index.workspace_members(&scoped, after.as_ref(), size)
            })
            .await
            .map_err(IndexerError::Task)??;
            self.after = members.ids.last().copied();
            if !members.has_more {
                self.workspaces.pop_front();
                self.after = None;
            }
            self.page
                .extend(members.ids.into_iter().map(|id| (workspace.clone(), id)));
        }
        Ok(self.page.front())
    }
}

/// Merges the store's keys with the index's documents (both ascending), reading `page` keys
/// from each at a time.
pub(super) async fn compare(
    store: &Store,
    index: &Arc<SegmentIndex>,
    sample: usize,
    page: usize,
) -> Result<Drift, IndexerError> {
    let workspaces = {
        let index = Arc::clone(index);
        tokio::task::spawn_blocking(move || index.workspaces())
            .await
            .map_err(IndexerError::Task)??
    };
    let mut stored = StoredKeys {
        store,
        size: page,
        page: VecDeque::new(),
        after: None,
        done: false,
    };
    let mut indexed = IndexedKeys {
        index: Arc::clone(index),
        size: page,
        workspaces: workspaces.into(),
        page: VecDeque::new(),
        after: None,
    };
    let mut drift = Drift::default();
    loop {
        let order = match (stored.front().await?, indexed.front().await?) {
            (None, None) => break,
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        if order.is_le()
            && let Some(key) = stored.page.pop_front()
        {
            drift.stored += 1;
            if order.is_lt() {
                drift.note_missing(key, sample);
            }
        }
        if order.is_ge()
            && let Some(key) = indexed.page.pop_front()
        {
            drift.indexed += 1;
            if order.is_gt() {
                drift.note_stale(key, sample);
            }
        }
    }
    Ok(drift)
}
