//! Who read whom: `contact_access:[workspace, contact, hour, key]`, one record per API key,
//! contact and hour in which the key read the contact's personal fields (not one per request).

use chrono::{DateTime, Utc};
use std::ops::Bound;

use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{ContactId, WorkspaceId};

const ACCESS_TABLE: &str = "contact_access";

/// One key's reads of one contact within one hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash, SurrealValue)]
pub struct ContactAccess {
    /// The workspace.
    pub workspace: String,
    /// The contact read.
    pub contact: String,
    /// The id of the API key that read it.
    pub key: String,
    /// The start of the hour in which it read.
    pub hour: DateTime<Utc>,
}

impl ContactAccess {
    fn record_id(&self) -> RecordId {
        let parts = vec![
            self.workspace.clone(),
            self.contact.clone(),
            self.hour.timestamp().to_string(),
            self.key.clone(),
        ];
        RecordId::new(ACCESS_TABLE, RecordIdKey::Array(Array::from(parts)))
    }
}

impl Store {
    /// Records `accesses` (again: no change).
    pub async fn record_accesses(&self, accesses: &[ContactAccess]) -> Result<(), StoreError> {
        let records: Vec<(RecordId, ContactAccess)> = accesses
            .iter()
            .map(|access| (access.record_id(), access.clone()))
            .collect();
        self.upsert_each(&records).await
    }

    /// Who read `contact`, newest hour first (a range of its own keys: no scan).
    pub async fn accesses_of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<ContactAccess>, StoreError> {
        let bound = |last: &str| {
            let parts = vec![
                workspace.as_str().to_owned(),
                contact.to_string(),
                last.to_owned(),
            ];
            RecordIdKey::Array(Array::from(parts))
        };
        // Hours are written as decimal seconds, which sort below `~`.
        let range = RecordId::new(
            ACCESS_TABLE,
            RecordIdKey::Range(Box::new(RecordIdKeyRange {
                start: Bound::Included(bound("")),
                end: Bound::Excluded(bound("~")),
            })),
        );
        let mut response = self
            .db
            .query("SELECT * OMIT id FROM $range ORDER BY hour DESC")
            .bind(("range", range))
            .await
            .map_err(StoreError::from_surreal)?;
        response.take(0).map_err(StoreError::from_surreal)
    }

    /// Forgets accesses of hours before `before`; returns how many.
    pub async fn prune_accesses(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_before(ACCESS_TABLE, "hour", before).await
    }
}
