//! API keys: creation (the secret is shown once and only its SHA-256 is stored), listing,
//! revocation, and authentication of a bearer token into a [`Caller`] from the in-memory
//! catalogue (no store read per request, none for unknown keys either).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tracing::info;

use super::catalog_cache::Catalogs;
use crate::domain::{
    ApiKey, ApiKeyId, Caller, FieldPolicy, KeyRate, Scopes, WorkspaceId, parse_key_name,
};
use crate::service::error::{InternalError, ServiceError};
use crate::store::Store;

/// Prefix of every generated secret, so that leaked keys are easy to scan for.
pub const SECRET_PREFIX: &str = "qwry_";
/// Shortest secret accepted from the environment (`ADMIN_API_KEY`).
pub const MIN_SECRET_LEN: usize = 24;
/// Who created the key `ADMIN_API_KEY` names.
const BOOTSTRAP_ACTOR: &str = "bootstrap";

/// What `update` changes in a key; `None` keeps that part.
#[derive(Debug, Default)]
pub struct KeyChange {
    /// A new name.
    pub name: Option<String>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// A new field policy.
    pub policy: Option<FieldPolicy>,
    /// A new request rate of its own.
    pub rate: Option<KeyRate>,
}

/// What a new key is given.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// Human name.
    pub name: &'a str,
    /// What it may do.
    pub scopes: Scopes,
    /// What it may read.
    pub policy: FieldPolicy,
    /// Its own request rate (`None`: the server's default).
    pub rate: Option<KeyRate>,
}

/// A new key with its secret, which is never shown again.
#[derive(Debug)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The bearer token.
    pub secret: SecretString,
}

/// API key use cases.
#[derive(Clone)]
pub struct KeyService {
    store: Store,
    catalogs: Catalogs,
}

impl KeyService {
    /// Keys written to `store`, read from the in-memory `catalogs`.
    pub fn new(store: Store, catalogs: Catalogs) -> Self {
        Self { store, catalogs }
    }

    /// Creates a key in `workspace`; the secret is returned once.
    pub async fn create(
        &self,
        workspace: &WorkspaceId,
        new: NewKey<'_>,
        created_by: &str,
    ) -> Result<CreatedKey, ServiceError> {
        let secret = generate_secret()?;
        let key = self
            .store_key(workspace, new, created_by, secret.expose_secret())
            .await?;
        info!(key_id = %key.id, workspace = %workspace, created_by, "api key created");
        Ok(CreatedKey { key, secret })
    }

    async fn store_key(
        &self,
        workspace: &WorkspaceId,
        new: NewKey<'_>,
        created_by: &str,
        secret: &str,
    ) -> Result<ApiKey, ServiceError> {
        let key = ApiKey {
            id: ApiKeyId::generate(),
            workspace: workspace.clone(),
            name: parse_key_name(new.name)?,
            scopes: new.scopes,
            policy: new.policy,
            prefix: secret.chars().take(SECRET_PREFIX.len() + 4).collect(),
            created_at: Utc::now(),
            created_by: created_by.to_owned(),
            revoked_at: None,
            rate: new.rate,
        };
        self.store
            .create_api_key(&key, &secret_hash(secret))
            .await?;
        self.catalogs.refresh(workspace).await?;
        Ok(key)
    }

    /// Makes sure the secret given by the operator (`ADMIN_API_KEY`) is an admin key of the
    /// default workspace; creates it on first start. A key revoked since stays revoked.
    pub async fn ensure_bootstrap_key(&self, secret: &SecretString) -> Result<(), ServiceError> {
        let secret = secret.expose_secret();
        if secret.len() < MIN_SECRET_LEN || secret.trim() != secret {
            return Err(ServiceError::invalid(
                "ADMIN_API_KEY",
                format!(
                    "ADMIN_API_KEY must be at least {MIN_SECRET_LEN} characters without surrounding spaces"
                ),
            ));
        }
        if self.catalogs.key_by_hash(&secret_hash(secret)).is_some() {
            return Ok(());
        }
        let key = self
            .store_key(
                &WorkspaceId::default(),
                NewKey {
                    name: "admin (ADMIN_API_KEY)",
                    scopes: Scopes::all(),
                    policy: FieldPolicy::unrestricted(),
                    rate: None,
                },
                BOOTSTRAP_ACTOR,
                secret,
            )
            .await?;
        info!(key_id = %key.id, "admin key from ADMIN_API_KEY stored");
        Ok(())
    }

    /// Whether the workspace has any key, revoked or not.
    pub fn any_key(&self, workspace: &WorkspaceId) -> bool {
        !self.catalogs.workspace(workspace).keys.is_empty()
    }

    /// Whether any workspace has a key that is not revoked.
    pub fn any_active_key(&self) -> bool {
        self.catalogs.any_active_key()
    }

    /// Key `id` of `workspace` (revoked or not); NOT_FOUND if it has none with that id.
    pub fn get(&self, workspace: &WorkspaceId, id: &ApiKeyId) -> Result<ApiKey, ServiceError> {
        let state = self.catalogs.workspace(workspace);
        state
            .keys
            .iter()
            .find(|stored| stored.key.id == *id)
            .map(|stored| stored.key.clone())
            .ok_or_else(|| ServiceError::NotFound(format!("no API key `{id}`")))
    }

    /// The keys of `workspace`, oldest first.
    pub fn list(&self, workspace: &WorkspaceId) -> Vec<ApiKey> {
        let state = self.catalogs.workspace(workspace);
        state.keys.iter().map(|stored| stored.key.clone()).collect()
    }

    /// Revokes a key of `workspace`; NOT_FOUND if it has none with that id.
    pub async fn revoke(
        &self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
    ) -> Result<ApiKey, ServiceError> {
        let key = self
            .store
            .revoke_api_key(workspace, id, Utc::now())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("there is no API key `{id}`")))?;
        self.catalogs.refresh(workspace).await?;
        info!(key_id = %id, workspace = %workspace, "api key revoked");
        Ok(key)
    }

    /// Changes the name, scopes or field policy of a key of `workspace` (`None` keeps that
    /// part); NOT_FOUND if it has none with that id. The next request with the key sees it.
    pub async fn update(
        &self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        change: KeyChange,
    ) -> Result<ApiKey, ServiceError> {
        let not_found = || ServiceError::NotFound(format!("there is no API key `{id}`"));
        let mut key = self
            .list(workspace)
            .into_iter()
            .find(|key| key.id == *id)
            .ok_or_else(not_found)?;
        if let Some(name) = change.name {
            key.name = parse_key_name(&name)?;
        }
        if let Some(scopes) = change.scopes {
            key.scopes = scopes;
        }
        if let Some(policy) = change.policy {
            key.policy = policy;
        }
        if let Some(rate) = change.rate {
            key.rate = Some(rate);
        }
        let key = self
            .store
            .update_api_key(&key)
            .await?
            .ok_or_else(not_found)?;
        self.catalogs.refresh(workspace).await?;
        info!(key_id = %id, workspace = %workspace, "api key updated");
        Ok(key)
    }

    /// The caller a bearer token authenticates: UNAUTHENTICATED when the token is unknown or
    /// revoked (the two are not told apart).
    pub fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        self.caller_of(&secret_hash(token)).ok_or_else(|| {
            ServiceError::Unauthenticated("the API key is unknown or revoked".to_owned())
        })
    }

    /// The caller of the key whose secret hashes to `secret_hash` as it stands now (`None`
    /// once revoked), for connections that outlive one request.
    pub fn caller_of(&self, secret_hash: &str) -> Option<Caller> {
        self.catalogs.caller(secret_hash)
    }

    /// Told of every catalogue change (keys among them).
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.catalogs.watch_changes()
    }
}

/// hex(SHA-256(secret)): what the store keeps. Secrets are 256 random bits (or an operator's
/// long secret), so a fast hash is the right tool; a password hash would only slow every request.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `qwry_` followed by 256 random bits in URL-safe base64.
fn generate_secret() -> Result<SecretString, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(InternalError::Randomness)?;
    Ok(SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_hashed() {
        let one = generate_secret().unwrap();
        let two = generate_secret().unwrap();
        assert_ne!(one.expose_secret(), two.expose_secret());
        assert!(one.expose_secret().starts_with(SECRET_PREFIX));
        assert_eq!(one.expose_secret().len(), SECRET_PREFIX.len() + 43);
        let hash = secret_hash(one.expose_secret());
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&one.expose_secret()[SECRET_PREFIX.len()..]));
    }
}
