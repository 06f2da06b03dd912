//! Attribute definitions: the per-workspace registry.

use super::records::{ATTRIBUTE_TABLE, AttributeRecord};
use super::{Store, StoreError};
use crate::domain::{AttributeDefinition, WorkspaceId};

impl Store {
    /// Every attribute the workspace has declared, by name.
    pub async fn attribute_definitions(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<AttributeDefinition>, StoreError> {
        let records: Vec<AttributeRecord> = self
            .workspace_records(ATTRIBUTE_TABLE, workspace, "name")
            .await?;
        records
            .into_iter()
            .map(AttributeRecord::into_definition)
            .collect()
    }

    /// Stores a new definition; if the name was declared meanwhile, [`StoreError::WriteConflict`].
    pub async fn insert_attribute_definition(
        &self,
        definition: &AttributeDefinition,
    ) -> Result<(), StoreError> {
        self.write_definition("CREATE", definition)
            .await
            .map_err(|error| match error {
                StoreError::AlreadyExists(_) => StoreError::WriteConflict,
                other => other,
            })
    }

    /// Replaces a stored definition (the caller has checked that its type is unchanged).
    pub async fn replace_attribute_definition(
        &self,
        definition: &AttributeDefinition,
    ) -> Result<(), StoreError> {
        self.write_definition("UPSERT", definition).await
    }

    async fn write_definition(
        &self,
        statement: &'static str,
        definition: &AttributeDefinition,
    ) -> Result<(), StoreError> {
        let record = AttributeRecord::from_definition(definition);
        self.write_catalog_record(&definition.workspace, statement, record.id.clone(), record)
            .await
    }
}
