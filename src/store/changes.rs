//! The change log: every contact write records, in the same transaction, which contacts changed.
//! The indexer reads entries, indexes those contacts' current state, commits the index, and only
//! then acknowledges (deletes) the entries; a crash in between replays them, which is harmless
//! because applying "index the current state of contact X" twice gives the same index.

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};
use ulid::Ulid;

use super::{Store, StoreError};
use crate::domain::{ContactId, WorkspaceId};

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

    pub(super) fn id(&self) -> RecordId {
        self.id.clone()
    }

    fn into_change(self) -> Result<Change, StoreError> {
        let key = match &self.id.key {
            surrealdb::types::RecordIdKey::String(key) => key.clone(),
            other => return Err(StoreError::Corrupt(format!("change key {other:?}"))),
        };
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

impl Store {
    /// Up to `limit` unapplied entries, oldest first.
    pub async fn pending_changes(&self, limit: usize) -> Result<Vec<Change>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT * FROM {CHANGE_TABLE} ORDER BY id LIMIT $limit"
            ))
            .bind(("limit", i64::try_from(limit).unwrap_or(i64::MAX)))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ChangeRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records.into_iter().map(ChangeRecord::into_change).collect()
    }

    /// Deletes applied entries.
    pub async fn acknowledge_changes(&self, keys: &[String]) -> Result<(), StoreError> {
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

    /// How many entries of `workspace` (of every workspace: `None`) wait, and since when.
    pub async fn change_backlog(
        &self,
        workspace: Option<&WorkspaceId>,
    ) -> Result<Backlog, StoreError> {
        let scope = if workspace.is_some() {
            "WHERE workspace = $workspace"
        } else {
            ""
        };
        let mut response = self
            .db
            .query(format!(
                "RETURN count(SELECT VALUE id FROM {CHANGE_TABLE} {scope}); \
                 RETURN (SELECT VALUE created_at FROM {CHANGE_TABLE} {scope} ORDER BY id LIMIT 1)[0];"
            ))
            .bind((
                "workspace",
                workspace.map(|w| w.as_str().to_owned()).unwrap_or_default(),
            ))
            .await
            .map_err(StoreError::from_surreal)?;
        let pending: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        let oldest: Option<DateTime<Utc>> = response.take(1).map_err(StoreError::from_surreal)?;
        Ok(Backlog {
            pending: pending
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default(),
            oldest,
        })
    }
}
