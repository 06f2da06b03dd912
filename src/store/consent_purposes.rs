//! Consent purposes (`consent_purpose:[workspace, name]`): catalogue records, so every instance
//! holds them in memory and a definition reaches the others within the catalogue's follow
//! interval.

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};

use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::{ConsentPurpose, PurposeName, WorkspaceId};

pub(super) const PURPOSE_TABLE: &str = "consent_purpose";

#[derive(Debug, SurrealValue)]
struct PurposeRecord {
    id: RecordId,
    workspace: String,
    name: String,
    description: String,
    created_at: DateTime<Utc>,
}

impl Store {
    /// Stores `purpose`, replacing the definition of the same name.
    pub async fn save_consent_purpose(&self, purpose: &ConsentPurpose) -> Result<(), StoreError> {
        let id = compound_key(
            PURPOSE_TABLE,
            &purpose.workspace,
            purpose.name.as_str().to_owned(),
        );
        let record = PurposeRecord {
            id: id.clone(),
            workspace: purpose.workspace.as_str().to_owned(),
            name: purpose.name.as_str().to_owned(),
            description: purpose.description.clone(),
            created_at: purpose.created_at,
        };
        self.write_catalog_record(&purpose.workspace, "UPSERT", id, record)
            .await
    }

    /// Every purpose of the workspace, by name.
    pub async fn consent_purposes(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<ConsentPurpose>, StoreError> {
        let records: Vec<PurposeRecord> = self
            .workspace_records(PURPOSE_TABLE, workspace, "name")
            .await?;
        Ok(records
            .into_iter()
            .map(|record| ConsentPurpose {
                workspace: WorkspaceId::from_trusted(record.workspace),
                name: PurposeName::from_trusted(record.name),
                description: record.description,
                created_at: record.created_at,
            })
            .collect())
    }
}
