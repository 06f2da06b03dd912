//! Contact records: point reads, keyset pages, counts and revision-checked writes.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange, SurrealValue};

use super::records::{CONTACT_TABLE, ContactRecord, contact_key, contact_key_parts};
use super::{Store, StoreError};
use crate::domain::{Contact, ContactId, WorkspaceId};

/// Sorts after every ULID (Crockford base32 is `0-9A-Z`): the exclusive end of a workspace's range.
const AFTER_ALL_IDS: &str = "~";

/// One page of contacts in id order, and whether more follow.
#[derive(Debug)]
pub struct ContactPage {
    /// The contacts, ascending by id.
    pub contacts: Vec<Contact>,
    /// Whether contacts exist after the last one.
    pub has_more: bool,
}

/// `contact:[ws, after]>..[ws, '~']`: the workspace's contacts after a cursor, in key order.
fn workspace_range(workspace: &WorkspaceId, after: Option<&ContactId>) -> RecordId {
    let bound =
        |local: String| RecordIdKey::Array(Array::from(vec![workspace.as_str().to_owned(), local]));
    let start = match after {
        Some(id) => Bound::Excluded(bound(id.to_string())),
        None => Bound::Included(bound(String::new())),
    };
    let end = Bound::Excluded(bound(AFTER_ALL_IDS.to_owned()));
    RecordId::new(
        CONTACT_TABLE,
        RecordIdKey::Range(Box::new(RecordIdKeyRange { start, end })),
    )
}

impl Store {
    /// The contact with `id` in `workspace` (from memory when it has not changed since it was
    /// last read).
    pub async fn contact(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        if let Some(contact) = self.cache.contact(workspace, id) {
            return Ok(Some(Arc::unwrap_or_clone(contact)));
        }
        let ticket = self.cache.ticket(id);
        let record: Option<ContactRecord> = self
            .db
            .select(contact_key(workspace, id))
            .await
            .map_err(StoreError::from_surreal)?;
        let contact = record.map(ContactRecord::into_contact).transpose()?;
        if let Some(contact) = &contact {
            self.cache.keep_contact(ticket, contact);
        }
        Ok(contact)
    }

    /// Up to `limit` contacts after `after`, ascending by id: a key-range scan, stable under writes.
    pub async fn contact_page(
        &self,
        workspace: &WorkspaceId,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let mut response = self
            .db
            .query("SELECT * FROM $range LIMIT $limit")
            .bind(("range", workspace_range(workspace, after)))
            .bind(("limit", super::limit_value(limit.saturating_add(1))))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ContactRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        let has_more = records.len() > limit;
        let contacts = records
            .into_iter()
            .take(limit)
            .map(ContactRecord::into_contact)
            .collect::<Result<_, _>>()?;
        Ok(ContactPage { contacts, has_more })
    }

    /// How many contacts the workspace holds.
    pub async fn count_contacts(&self, workspace: &WorkspaceId) -> Result<u64, StoreError> {
        self.count_in_workspace(workspace, None).await
    }

    /// Counts the workspace's contacts, optionally filtered by a fixed SurrealQL condition
    /// (`'static`, so that no request data can reach the statement).
    async fn count_in_workspace(
        &self,
        workspace: &WorkspaceId,
        condition: Option<&'static str>,
    ) -> Result<u64, StoreError> {
        let filter = condition.map(|c| format!(" WHERE {c}")).unwrap_or_default();
        let mut response = self
            .db
            .query(format!("RETURN count(SELECT VALUE id FROM $range{filter})"))
            .bind(("range", workspace_range(workspace, None)))
            .await
            .map_err(StoreError::from_surreal)?;
        let count: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or_default())
    }

    /// The contacts of `workspace` with these ids, in the order given; absent ones are skipped.
    /// Those unchanged since they were last read come from memory (shared, not copied), the
    /// others in one read.
    pub async fn contacts_by_ids(
        &self,
        workspace: &WorkspaceId,
        ids: &[ContactId],
    ) -> Result<Vec<Arc<Contact>>, StoreError> {
        let (mut found, missed) = self
            .cache
            .split(ids, |id| self.cache.contact(workspace, id));
        if !missed.is_empty() {
            let missed_ids: Vec<ContactId> = missed.iter().map(|(id, _)| *id).collect();
            for contact in self.fresh_contacts_by_ids(workspace, &missed_ids).await? {
                found.insert(contact.id, Arc::new(contact));
            }
            for (id, ticket) in missed {
                if let Some(contact) = found.get(&id) {
                    self.cache.keep_shared_contact(ticket, contact);
                }
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Drops what memory keeps of `ids`, so that the next read goes to the store: for changes
    /// that other instances committed, learnt from the change log.
    pub fn forget_contacts(&self, ids: &[ContactId]) {
        self.cache.forget(ids);
    }

    /// [`Store::contacts_by_ids`] read from the store, never from memory (for the indexer,
    /// which follows changes other instances made, and for writes that compare).
    pub async fn fresh_contacts_by_ids(
        &self,
        workspace: &WorkspaceId,
        ids: &[ContactId],
    ) -> Result<Vec<Contact>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<RecordId> = ids.iter().map(|id| contact_key(workspace, id)).collect();
        let mut response = self
            .db
            .query("SELECT * FROM $keys")
            .bind(("keys", keys))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ContactRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        let mut found: HashMap<ContactId, Contact> = records
            .into_iter()
            .map(|record| record.into_contact().map(|contact| (contact.id, contact)))
            .collect::<Result<_, _>>()?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Up to `limit` contacts of every workspace after `after`, in key order (for rebuilds).
    pub async fn all_contacts_after(
        &self,
        after: Option<(&WorkspaceId, &ContactId)>,
        limit: usize,
    ) -> Result<Vec<Contact>, StoreError> {
        let after = after.map(|(workspace, id)| contact_key(workspace, id));
        let records: Vec<ContactRecord> =
            self.contact_rows_after("*", after.as_ref(), limit).await?;
        records
            .into_iter()
            .map(ContactRecord::into_contact)
            .collect()
    }

    /// Up to `limit` contacts' workspace and id (every workspace) after `after`, in key order
    /// (for consistency checks).
    pub async fn contact_keys_page(
        &self,
        after: Option<(&WorkspaceId, &ContactId)>,
        limit: usize,
    ) -> Result<Vec<(WorkspaceId, ContactId)>, StoreError> {
        let after = after.map(|(workspace, id)| contact_key(workspace, id));
        let ids: Vec<RecordId> = self
            .contact_rows_after("VALUE id", after.as_ref(), limit)
            .await?;
        ids.iter().map(contact_key_parts).collect()
    }

    /// `SELECT {projection}` of up to `limit` contacts (every workspace) after `after`, in
    /// key order.
    pub(super) async fn contact_rows_after<T: SurrealValue>(
        &self,
        projection: &'static str,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        let range = RecordIdKeyRange {
            start: after.map_or(Bound::Unbounded, |key| Bound::Excluded(key.key.clone())),
            end: Bound::Unbounded,
        };
        let mut response = self
            .db
            .query(format!("SELECT {projection} FROM $range LIMIT $limit"))
            .bind((
                "range",
                RecordId::new(CONTACT_TABLE, RecordIdKey::Range(Box::new(range))),
            ))
            .bind(("limit", super::limit_value(limit)))
            .await
            .map_err(StoreError::from_surreal)?;
        response.take(0).map_err(StoreError::from_surreal)
    }

    /// Whether the datastore stops a page of a record-id range at its `LIMIT`: its plan for
    /// [`Self::contact_rows_after`]'s statement iterates the range (SurrealDB's compute
    /// executor), rather than reading all of it first (3.3.5's streaming executor, see
    /// [`super::connection::capabilities`]). A server started without
    /// `--planner-strategy compute-only` answers `false`.
    pub async fn range_pages_stop_at_their_limit(&self) -> Result<bool, StoreError> {
        let range = RecordIdKeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        };
        let mut response = self
            .db
            .query("SELECT VALUE id FROM $range LIMIT 1 EXPLAIN")
            .bind((
                "range",
                RecordId::new(CONTACT_TABLE, RecordIdKey::Range(Box::new(range))),
            ))
            .await
            .map_err(StoreError::from_surreal)?;
        let plan: surrealdb::types::Value = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(format!("{plan:?}").contains("Iterate Range"))
    }

    /// Counts a workspace's contacts matching a fixed SurrealQL condition: the baseline of the
    /// `segment_query` benchmark. The condition is `'static` so that no request data can reach it.
    #[doc(hidden)]
    pub async fn count_where_for_benchmarks(
        &self,
        workspace: &WorkspaceId,
        condition: &'static str,
    ) -> Result<u64, StoreError> {
        self.count_in_workspace(workspace, Some(condition)).await
    }
}
