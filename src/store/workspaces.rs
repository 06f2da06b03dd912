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
    /// The secret replaced by the last rotation, sealed like `identity_secret`.
    previous_identity_secret: Option<String>,
    public_keys_pem: Option<Vec<String>>,
    jwks_url: Option<String>,
    user_hash_disabled: Option<bool>,
    token_max_lifetime_secs: Option<i64>,
    verification_lifetime_secs: Option<i64>,
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
                let sealed = record.identity_secret_sealed == Some(true);
                let identity_secret = record
                    .identity_secret
                    .map(|secret| self.open_secret(workspace, secret, sealed))
                    .transpose()?;
                let previous_identity_secret = record
                    .previous_identity_secret
                    .map(|secret| self.open_secret(workspace, secret, sealed))
                    .transpose()?;
                let secs = |value: Option<i64>| value.and_then(|v| u64::try_from(v).ok());
                WorkspaceSettings {
                    workspace: workspace.clone(),
                    identity_secret,
                    blocked_identity_values: record.blocked_identity_values,
                    previous_identity_secret,
                    public_keys_pem: record.public_keys_pem.unwrap_or_default(),
                    jwks_url: record.jwks_url,
                    user_hash_disabled: record.user_hash_disabled.unwrap_or(false),
                    token_max_lifetime_secs: secs(record.token_max_lifetime_secs),
                    verification_lifetime_secs: secs(record.verification_lifetime_secs),
                }
            }
        })
    }

    /// Replaces the workspace's settings.
    pub async fn save_workspace_settings(
        &self,
        settings: &WorkspaceSettings,
    ) -> Result<(), StoreError> {
        let sealer = self.sealer();
        let seal = |secret: &SecretString| match sealer {
            Some(sealer) => sealer
                .seal_text(&settings.workspace, SECRET_PLACE, secret.expose_secret())
                .map_err(StoreError::Seal),
            None => Ok(secret.expose_secret().to_owned()),
        };
        let identity_secret = settings.identity_secret.as_ref().map(seal).transpose()?;
        let previous_identity_secret = settings
            .previous_identity_secret
            .as_ref()
            .map(seal)
            .transpose()?;
        let secs = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        let record = SettingsRecord {
            id: settings_key(&settings.workspace),
            workspace: settings.workspace.as_str().to_owned(),
            identity_secret_sealed: Some(sealer.is_some()),
            identity_secret,
            blocked_identity_values: settings.blocked_identity_values.clone(),
            previous_identity_secret,
            public_keys_pem: Some(settings.public_keys_pem.clone()),
            jwks_url: settings.jwks_url.clone(),
            user_hash_disabled: Some(settings.user_hash_disabled),
            token_max_lifetime_secs: secs(settings.token_max_lifetime_secs),
            verification_lifetime_secs: secs(settings.verification_lifetime_secs),
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

impl Store {
    /// A stored identity secret, opened when `sealed`.
    fn open_secret(
        &self,
        workspace: &WorkspaceId,
        stored: String,
        sealed: bool,
    ) -> Result<SecretString, StoreError> {
        if !sealed {
            return Ok(SecretString::from(stored));
        }
        let sealer = self.sealer().ok_or_else(|| {
            StoreError::Corrupt("the identity secret is sealed and no key is loaded".to_owned())
        })?;
        let secret = sealer
            .open_text(workspace, SECRET_PLACE, &stored)
            .map_err(|error| StoreError::Corrupt(format!("identity secret: {error}")))?;
        Ok(SecretString::from(secret))
    }
}
