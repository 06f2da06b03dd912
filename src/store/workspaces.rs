//! Workspace settings: `workspace_settings:[workspace]`. The identity secret is sealed at rest
//! when the store has a sealer (the service always gives it one).

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use surrealdb::types::{RecordId, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{WorkspaceId, WorkspaceSettings};

const SETTINGS_TABLE: &str = "workspace_settings";
/// Where the sealed identity secret belongs, for the sealer's associated data.
const SECRET_PLACE: &str = "identity-secret";

fn settings_key(workspace: &WorkspaceId) -> RecordId {
    RecordId::new(SETTINGS_TABLE, workspace.as_str().to_owned())
}

#[derive(Debug, SurrealValue)]
struct SettingsRecord {
    id: RecordId,
    workspace: String,
    identity_secret: Option<String>,
    /// Whether `identity_secret` is sealed.
    identity_secret_sealed: Option<bool>,
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
            Some(record) => {
                let secret = match (record.identity_secret, record.identity_secret_sealed) {
                    (Some(sealed), Some(true)) => {
                        let sealer = self.sealer().ok_or_else(|| {
                            StoreError::Corrupt(
                                "the identity secret is sealed and no key is loaded".to_owned(),
                            )
                        })?;
                        let secret = sealer.open_text(workspace, SECRET_PLACE, &sealed).map_err(
                            |error| StoreError::Corrupt(format!("identity secret: {error}")),
                        )?;
                        Some(SecretString::from(secret))
                    }
                    (secret, _) => secret.map(SecretString::from),
                };
                WorkspaceSettings {
                    workspace: workspace.clone(),
                    identity_secret: secret,
                    blocked_identity_values: record.blocked_identity_values,
                }
            }
        })
    }

    /// Replaces the workspace's settings.
    pub async fn save_workspace_settings(
        &self,
        settings: &WorkspaceSettings,
    ) -> Result<(), StoreError> {
        let secret = settings.identity_secret.as_ref().map(|s| s.expose_secret());
        let sealer = self.sealer();
        let identity_secret = match (secret, sealer) {
            (Some(secret), Some(sealer)) => Some(
                sealer
                    .seal_text(&settings.workspace, SECRET_PLACE, secret)
                    .map_err(StoreError::Backend)?,
            ),
            (secret, _) => secret.map(str::to_owned),
        };
        let record = SettingsRecord {
            id: settings_key(&settings.workspace),
            workspace: settings.workspace.as_str().to_owned(),
            identity_secret_sealed: Some(identity_secret.is_some() && sealer.is_some()),
            identity_secret,
            blocked_identity_values: settings.blocked_identity_values.clone(),
            updated_at: Utc::now(),
        };
        self.write_catalog_record(
            &settings.workspace,
            "UPSERT",
            settings_key(&settings.workspace),
            record,
        )
        .await
    }
}
