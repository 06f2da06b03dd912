//! The change log: every contact write records, in the same transaction, which contacts changed,
//! under a ULID key taken just before the transaction is sent. Readers (the indexer) follow it
//! by key range from a watermark (see `service::change_cursor`) and delete what they applied in
//! the background; applying "index the current state of contact X" twice gives the same index,
//! so whatever a crash leaves unsure is simply applied again.

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};
use ulid::Ulid;

use super::{Store, StoreError};
use crate::domain::{Contact, ContactId, WorkspaceId};

pub(super) const CHANGE_TABLE: &str = "change";

/// A change-log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Time-ordered key (a ULID).
    pub key: String,
    /// The workspace of the contacts.
    pub workspace: WorkspaceId,
    /// Contacts whose index documents must be refreshed.
    pub contacts: Vec<ContactId>,
    /// When the change was committed (approximately: when its transaction began).
    pub created_at: DateTime<Utc>,
    /// Whether its membership changes are already in the feed (a replay after a crash).
    pub fed: bool,
}

/// How far the indexer is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Entries not yet applied.
    pub pending: u64,
    /// Contacts those entries name (a contact in several entries counts once per entry).
    pub pending_contacts: u64,
    /// When the oldest of them was written.
    pub oldest: Option<DateTime<Utc>>,
}

#[derive(Debug, SurrealValue)]
pub(super) struct ChangeRecord {
    id: RecordId,
    workspace: String,
    contacts: Vec<String>,
    created_at: DateTime<Utc>,
    fed: Option<bool>,
}

impl ChangeRecord {
    /// A new entry for `contacts` of `workspace`.
    pub(super) fn new(workspace: &WorkspaceId, contacts: &[ContactId]) -> Self {
        Self {
            id: RecordId::new(CHANGE_TABLE, Ulid::new().to_string()),
            workspace: workspace.as_str().to_owned(),
            contacts: contacts.iter().map(ToString::to_string).collect(),
            created_at: Utc::now(),
            fed: None,
        }
    }

    /// Tests: this entry keyed at `at` instead.
    #[cfg(test)]
    pub(super) fn keyed_at(mut self, at: DateTime<Utc>) -> Self {
        self.id = RecordId::new(CHANGE_TABLE, Ulid::from_datetime(at.into()).to_string());
        self
    }

    pub(super) fn id(&self) -> RecordId {
        self.id.clone()
    }

    /// The entry's key (a ULID string, as [`Self::new`] makes it).
    pub(super) fn key(&self) -> Result<String, StoreError> {
        match &self.id.key {
            surrealdb::types::RecordIdKey::String(key) => Ok(key.clone()),
            other => Err(StoreError::Corrupt(format!("change key {other:?}"))),
        }
    }

    fn into_change(self) -> Result<Change, StoreError> {
        let key = self.key()?;
        let contacts = self
            .contacts
            .iter()
            .map(|id| ContactId::parse(id).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Change {
            key,
            workspace: WorkspaceId::from_trusted(self.workspace),
            contacts,
            created_at: self.created_at,
            fed: self.fed.unwrap_or(false),
        })
    }
}

/// The change-log key of the moment `at`: every entry written later sorts after it.
pub fn change_key_at(at: DateTime<Utc>) -> String {
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or_default();
    Ulid::from_parts(millis, 0).to_string()
}

/// `key` as the key part of a record-id literal, when it is a ULID (the only keys the log
/// holds); keys come from the log or from an index's commit payload, so anything else is
/// corruption.
fn key_literal(key: &str) -> Result<String, StoreError> {
    Ulid::from_string(key)
        .map(|ulid| format!("⟨{ulid}⟩"))
        .map_err(|_| StoreError::Corrupt(format!("change-log key `{key}`")))
}

impl Store {
    /// Up to `limit` entries with keys from `from` on (all of them: `None`), in key order.
    pub async fn changes_from(
        &self,
        from: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let range = match from {
            Some(key) => format!("{CHANGE_TABLE}:{}..", key_literal(key)?),
            None => CHANGE_TABLE.to_owned(),
        };
        self.read_changes(&range, limit).await
    }

    /// Up to `limit` entries with keys before `before`, in key order.
    pub async fn changes_before(
        &self,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let range = format!("{CHANGE_TABLE}:..{}", key_literal(before)?);
        self.read_changes(&range, limit).await
    }

    /// Up to `limit` entries with keys from `from` up to (not including) `before`, in key
    /// order.
    pub async fn changes_between(
        &self,
        from: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let range = format!(
            "{CHANGE_TABLE}:{}..{}",
            key_literal(from)?,
            key_literal(before)?
        );
        self.read_changes(&range, limit).await
    }

    async fn read_changes(&self, range: &str, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mut response = self
            .db
            .query(format!("SELECT * FROM {range} ORDER BY id LIMIT $limit"))
            .bind(("limit", super::limit_value(limit)))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ChangeRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records.into_iter().map(ChangeRecord::into_change).collect()
    }

    /// Takes the contact states this process committed with the entry `key`, if still kept
    /// (see [`super::change_payloads`]).
    pub fn take_change_payload(&self, key: &str) -> Option<Vec<Contact>> {
        self.payloads.take(key)
    }

    /// Drops the kept contact states of entries keyed before `key`.
    pub fn forget_change_payloads_before(&self, key: &str) {
        self.payloads.forget_before(key);
    }

    /// Deletes entries every reader has applied.
    pub async fn delete_changes(&self, keys: &[String]) -> Result<(), StoreError> {
        let ids: Vec<RecordId> = keys
            .iter()
            .map(|key| RecordId::new(CHANGE_TABLE, key.clone()))
            .collect();
        self.db
            .query("DELETE $ids RETURN NONE")
            .bind(("ids", ids))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}
