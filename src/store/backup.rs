//! Backups: the whole database (every workspace) as one SurrealQL file, written by SurrealDB's
//! own export and read back by its import. Sensitive values and identity secrets stay sealed
//! as stored, and API keys stay hashed, so a backup opens nothing by itself; restoring one
//! needs the same `ENCRYPTION_KEY` to read those values again.

use std::path::Path;

use super::{Store, StoreError};

/// Tables that hold what a workspace wrote; a store with a record in any of them is not empty.
const DATA_TABLES: [&str; 8] = [
    "contact",
    "consent_purpose",
    "webhook",
    "attribute",
    "segment",
    "api_key",
    "workspace_settings",
    "merge_audit",
];

impl Store {
    /// Writes every workspace's records and the schema to `path`.
    pub async fn backup(&self, path: &Path) -> Result<(), StoreError> {
        self.db
            .export_to(path)
            .await
            .map_err(|error| StoreError::Backup(Box::new(error)))
    }

    /// Loads the backup at `path` into this store, which must hold no data yet (so that a
    /// restore never mixes two histories).
    pub async fn restore(&self, path: &Path) -> Result<(), StoreError> {
        if let Some(table) = self.first_table_with_records(&DATA_TABLES).await? {
            return Err(StoreError::RestoreIntoData {
                table: table.to_owned(),
            });
        }
        // The backup's own version record (none before versions were kept) replaces this
        // store's, and the data is migrated from it.
        self.forget_schema_version().await?;
        self.db
            .import_from(path)
            .await
            .map_err(|error| StoreError::Restore(Box::new(error)))?;
        self.migrate(super::MigrationLimits::default()).await?;
        Ok(())
    }

    /// The first of `tables` that holds a record.
    pub(super) async fn first_table_with_records(
        &self,
        tables: &[&'static str],
    ) -> Result<Option<&'static str>, StoreError> {
        for &table in tables {
            let mut response = self
                .db
                .query(format!("SELECT VALUE id FROM {table} LIMIT 1"))
                .await
                .map_err(StoreError::from_surreal)?;
            let ids: Vec<surrealdb::types::RecordId> =
                response.take(0).map_err(StoreError::from_surreal)?;
            if !ids.is_empty() {
                return Ok(Some(table));
            }
        }
        Ok(None)
    }
}
