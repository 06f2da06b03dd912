//! The catalogue's version records: `catalog_version:[workspace]` counts the changes to a
//! workspace's keys, attribute registry, settings and saved segments. Every such write bumps it
//! in the same transaction, so an instance that holds the catalogue in memory knows, by reading
//! the versions alone, which workspaces changed since it loaded them.

use surrealdb::types::{RecordId, SurrealValue, Value};

use super::{Store, StoreError};
use crate::domain::WorkspaceId;

const CATALOG_VERSION_TABLE: &str = "catalog_version";
/// Tables whose records make up a workspace's catalogue.
const CATALOG_TABLES: [&str; 6] = [
    "api_key",
    "consent_purpose",
    "attribute",
    "segment",
    "workspace_settings",
    "webhook",
];
/// How often a catalogue write is retried when another write of the same workspace's
/// catalogue committed first (both bump the same version record).
const CONFLICT_RETRIES: u64 = 8;

fn version_key(workspace: &WorkspaceId) -> RecordId {
    RecordId::new(CATALOG_VERSION_TABLE, workspace.as_str().to_owned())
}

#[derive(Debug, SurrealValue)]
struct VersionRecord {
    workspace: String,
    version: i64,
}

#[derive(Debug, SurrealValue)]
struct WorkspaceRow {
    workspace: Option<String>,
}

/// Statements of one catalogue write and their parameters, run in one transaction together
/// with the bump of the workspace's catalogue version.
pub(super) struct CatalogWrite {
    workspace: WorkspaceId,
    statements: Vec<String>,
    params: Vec<(String, Value)>,
}

impl CatalogWrite {
    /// An empty write to `workspace`'s catalogue.
    pub(super) fn new(workspace: &WorkspaceId) -> Self {
        Self {
            workspace: workspace.clone(),
            statements: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Binds `value` to a fresh parameter; returns its name (`$c0`, ...).
    pub(super) fn bind(&mut self, value: impl SurrealValue) -> String {
        let name = format!("c{}", self.params.len());
        self.params.push((name.clone(), value.into_value()));
        format!("${name}")
    }

    /// Adds one statement (without the trailing `;`).
    pub(super) fn statement(&mut self, statement: String) {
        self.statements.push(statement);
    }
}

impl Store {
    /// Commits `write` with the bump of its workspace's catalogue version, retrying when a
    /// concurrent catalogue write of the same workspace committed first. A statement's own
    /// failure is returned as [`StoreError::Backend`] with SurrealDB's message.
    pub(super) async fn commit_catalog(&self, write: CatalogWrite) -> Result<(), StoreError> {
        let conflict = |error: &StoreError| matches!(error, StoreError::WriteConflict);
        super::retrying_conflicts(
            CONFLICT_RETRIES,
            std::time::Duration::from_millis(2),
            conflict,
            || self.try_commit_catalog(&write),
        )
        .await
    }

    async fn try_commit_catalog(&self, write: &CatalogWrite) -> Result<(), StoreError> {
        let text = format!(
            "BEGIN TRANSACTION; {}; UPSERT $catalog_version SET workspace = $catalog_workspace, \
             version = (version ?? 0) + 1 RETURN NONE; COMMIT TRANSACTION;",
            write.statements.join("; ")
        );
        let mut query = self
            .db
            .query(text)
            .bind(("catalog_version", version_key(&write.workspace)))
            .bind(("catalog_workspace", write.workspace.as_str().to_owned()));
        for param in &write.params {
            query = query.bind(param.clone());
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let errors: Vec<surrealdb::Error> = response.take_errors().into_values().collect();
        if errors.is_empty() {
            return Ok(());
        }
        let cause = super::cause_of(&errors);
        Err(StoreError::classify(cause))
    }

    /// The catalogue version of every workspace that ever changed its catalogue.
    pub async fn catalog_versions(&self) -> Result<Vec<(WorkspaceId, u64)>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT workspace, version FROM {CATALOG_VERSION_TABLE}"
            ))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<VersionRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(records
            .into_iter()
            .map(|record| {
                let version = u64::try_from(record.version).unwrap_or(0);
                (WorkspaceId::from_trusted(record.workspace), version)
            })
            .collect())
    }

    /// The catalogue version of `workspace` (0 when it never changed).
    pub async fn catalog_version(&self, workspace: &WorkspaceId) -> Result<u64, StoreError> {
        let record: Option<VersionRecord> = self
            .db
            .select(version_key(workspace))
            .await
            .map_err(StoreError::from_surreal)?;
        Ok(record.map_or(0, |record| u64::try_from(record.version).unwrap_or(0)))
    }

    /// Every workspace holding any catalogue record, including stores written before
    /// catalogue versions existed.
    pub async fn catalog_workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let mut names: std::collections::BTreeSet<String> = self
            .catalog_versions()
            .await?
            .into_iter()
            .map(|(workspace, _)| workspace.as_str().to_owned())
            .collect();
        for table in CATALOG_TABLES {
            let mut response = self
                .db
                .query(format!("SELECT workspace FROM {table} GROUP BY workspace"))
                .await
                .map_err(StoreError::from_surreal)?;
            let found: Vec<WorkspaceRow> = response.take(0).map_err(StoreError::from_surreal)?;
            names.extend(found.into_iter().filter_map(|row| row.workspace));
        }
        Ok(names.into_iter().map(WorkspaceId::from_trusted).collect())
    }
}
