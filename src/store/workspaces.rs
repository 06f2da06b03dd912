//! Workspace settings: `workspace_settings:[workspace]`.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use surrealdb::types::{RecordId, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{WorkspaceId, WorkspaceSettings};

const SETTINGS_TABLE: &str = "workspace_settings";

fn settings_key(workspace: &WorkspaceId) -> RecordId {
    RecordId::new(SETTINGS_TABLE, workspace.as_str().to_owned())
}

#[derive(Debug, SurrealValue)]
struct SettingsRecord {
    id: RecordId,
    workspace: String,
    identity_secret: Option<String>,
    blocked_identity_values: Vec<String>,
    updated_at: DateTime<Utc>,
}

impl Store {
    /// The workspace's settings (defaults if it never saved any).
    pub async fn workspace_settings(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<WorkspaceSettings, StoreError> {
        let record: Option<SettingsRecord> = self
            .db
            .select(settings_key(workspace))
            .await
            .map_err(StoreError::from_surreal)?;
        Ok(match record {
            None => WorkspaceSettings {
                workspace: workspace.clone(),
                ..WorkspaceSettings::default()
            },
            Some(record) => WorkspaceSettings {
                workspace: workspace.clone(),
                identity_secret: record.identity_secret.map(SecretString::from),
                blocked_identity_values: record.blocked_identity_values,
            },
        })
    }

    /// Replaces the workspace's settings.
    pub async fn save_workspace_settings(
        &self,
        settings: &WorkspaceSettings,
    ) -> Result<(), StoreError> {
        let record = SettingsRecord {
            id: settings_key(&settings.workspace),
            workspace: settings.workspace.as_str().to_owned(),
            identity_secret: settings
                .identity_secret
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned()),
            blocked_identity_values: settings.blocked_identity_values.clone(),
            updated_at: Utc::now(),
        };
        self.write_record("UPSERT", settings_key(&settings.workspace), record)
            .await
    }
}
