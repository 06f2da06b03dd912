//! The suppression list (`suppressed:[workspace, hash]`: identifiers of erased people, kept as
//! keyed hashes, never in plain text) and the erasure receipts (`erasure_receipt:[workspace,
//! id]`: what an erasure did, without personal data).

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};

use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::{ContactId, WorkspaceId};

const SUPPRESSED_TABLE: &str = "suppressed";
const RECEIPT_TABLE: &str = "erasure_receipt";
const ERASED_TABLE: &str = "erased_contact";

#[derive(Debug, Clone, SurrealValue)]
struct ErasedRecord {
    workspace: String,
    contact: String,
    at: DateTime<Utc>,
}

#[derive(Debug, Clone, SurrealValue)]
struct SuppressedRecord {
    workspace: String,
    hash: String,
    kind: String,
    at: DateTime<Utc>,
    by: String,
}

/// What one erasure did, without personal data.
#[derive(Debug, Clone, PartialEq, SurrealValue)]
pub struct ErasureReceipt {
    /// Its own id (a ULID: receipts sort by time).
    pub receipt: String,
    /// The workspace.
    pub workspace: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The id of the API key that asked.
    pub by: String,
    /// How many identifiers the request named.
    pub requested: u64,
    /// How many contacts were removed.
    pub erased: u64,
    /// The keyed hashes of the identifiers now suppressed.
    pub suppressed: Vec<String>,
}

impl Store {
    /// Adds `(hash, kind)` pairs to the workspace's suppression list (again: no change).
    pub async fn suppress(
        &self,
        workspace: &WorkspaceId,
        entries: &[(String, &'static str)],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let records: Vec<(RecordId, SuppressedRecord)> = entries
            .iter()
            .map(|(hash, kind)| {
                let record = SuppressedRecord {
                    workspace: workspace.as_str().to_owned(),
                    hash: hash.clone(),
                    kind: (*kind).to_owned(),
                    at,
                    by: by.to_owned(),
                };
                (
                    compound_key(SUPPRESSED_TABLE, workspace, hash.clone()),
                    record,
                )
            })
            .collect();
        self.upsert_each(&records).await
    }

    /// Removes `hashes` from the workspace's suppression list; how many were on it.
    pub async fn unsuppress(
        &self,
        workspace: &WorkspaceId,
        hashes: &[String],
    ) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query("(DELETE $ids RETURN BEFORE).len()")
            .bind(("ids", suppression_ids(workspace, hashes)))
            .await
            .map_err(StoreError::from_surreal)?;
        let removed: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(removed.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Which of `hashes` are on the workspace's suppression list (one read by key).
    pub async fn suppressed_among(
        &self,
        workspace: &WorkspaceId,
        hashes: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let mut response = self
            .db
            .query("SELECT VALUE hash FROM $ids")
            .bind(("ids", suppression_ids(workspace, hashes)))
            .await
            .map_err(StoreError::from_surreal)?;
        response.take(0).map_err(StoreError::from_surreal)
    }

    /// Marks `contacts` as erased (not merely deleted), before they are removed: the
    /// membership engine tells the endpoints that want erasures when it sees them go.
    pub async fn mark_erased(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let records: Vec<(RecordId, ErasedRecord)> = contacts
            .iter()
            .map(|id| {
                let record = ErasedRecord {
                    workspace: workspace.as_str().to_owned(),
                    contact: id.to_string(),
                    at,
                };
                (
                    compound_key(ERASED_TABLE, workspace, id.to_string()),
                    record,
                )
            })
            .collect();
        self.upsert_each(&records).await
    }

    /// Which of `contacts` were marked erased.
    pub async fn erased_among(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<Vec<ContactId>, StoreError> {
        let ids: Vec<RecordId> = contacts
            .iter()
            .map(|id| compound_key(ERASED_TABLE, workspace, id.to_string()))
            .collect();
        let mut response = self
            .db
            .query("SELECT VALUE contact FROM $ids")
            .bind(("ids", ids))
            .await
            .map_err(StoreError::from_surreal)?;
        let found: Vec<String> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(found
            .iter()
            .filter_map(|raw| ContactId::parse(raw).ok())
            .collect())
    }

    /// Forgets erasure marks older than `before` (their contacts' removal was followed long
    /// ago); returns how many.
    pub async fn prune_erased_marks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_before(ERASED_TABLE, "at", before).await
    }

    /// Keeps `receipt`.
    pub async fn record_erasure_receipt(&self, receipt: ErasureReceipt) -> Result<(), StoreError> {
        let workspace = WorkspaceId::from_trusted(receipt.workspace.clone());
        let key = compound_key(RECEIPT_TABLE, &workspace, receipt.receipt.clone());
        self.db
            .query("CREATE $key CONTENT $receipt RETURN NONE")
            .bind(("key", key))
            .bind(("receipt", receipt))
            .await
            .and_then(|response| response.check())
            .map_err(StoreError::from_surreal)?;
        Ok(())
    }

    /// The workspace's erasure receipts, newest first.
    pub async fn erasure_receipts(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<ErasureReceipt>, StoreError> {
        let mut response = self
            .db
            .query("SELECT * OMIT id FROM erasure_receipt WHERE workspace = $workspace ORDER BY at DESC")
            .bind(("workspace", workspace.as_str().to_owned()))
            .await
            .map_err(StoreError::from_surreal)?;
        response.take(0).map_err(StoreError::from_surreal)
    }
}

/// `suppressed:[workspace, hash]` for each of `hashes`.
fn suppression_ids(workspace: &WorkspaceId, hashes: &[String]) -> Vec<RecordId> {
    hashes
        .iter()
        .map(|hash| compound_key(SUPPRESSED_TABLE, workspace, hash.clone()))
        .collect()
}
