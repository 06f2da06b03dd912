//! API keys: creation (the secret is shown once and only its SHA-256 is stored), listing,
//! revocation, and authentication of a bearer token into a [`Caller`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tracing::info;

use super::ServiceError;
use crate::domain::{ApiKey, ApiKeyId, Caller, FieldPolicy, Scopes, WorkspaceId, parse_key_name};
use crate::store::Store;

/// How long an authenticated key is trusted without asking the store again. A key revoked
/// through this process stops working at once; one revoked through another replica within this.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most authenticated keys kept in memory.
const KEY_CACHE_CAPACITY: usize = 10_000;
/// Prefix of every generated secret, so that leaked keys are easy to scan for.
pub const SECRET_PREFIX: &str = "qwry_";
/// Shortest secret accepted from the environment (`ADMIN_API_KEY`).
pub const MIN_SECRET_LEN: usize = 24;
/// Who created the key `ADMIN_API_KEY` names.
const BOOTSTRAP_ACTOR: &str = "bootstrap";

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
    cache: Arc<Mutex<HashMap<String, (Caller, Instant)>>>,
}

impl KeyService {
    /// Keys over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: Arc::default(),
        }
    }

    /// Creates a key in `workspace`; the secret is returned once.
    pub async fn create(
        &self,
        workspace: &WorkspaceId,
        name: &str,
        scopes: Scopes,
        policy: FieldPolicy,
        created_by: &str,
    ) -> Result<CreatedKey, ServiceError> {
        let secret = generate_secret()?;
        let key = self
            .store_key(
                workspace,
                name,
                scopes,
                policy,
                created_by,
                secret.expose_secret(),
            )
            .await?;
        info!(key_id = %key.id, workspace = %workspace, created_by, "api key created");
        Ok(CreatedKey { key, secret })
    }

    async fn store_key(
        &self,
        workspace: &WorkspaceId,
        name: &str,
        scopes: Scopes,
        policy: FieldPolicy,
        created_by: &str,
        secret: &str,
    ) -> Result<ApiKey, ServiceError> {
        let key = ApiKey {
            id: ApiKeyId::generate(),
            workspace: workspace.clone(),
            name: parse_key_name(name)?,
            scopes,
            policy,
            prefix: secret.chars().take(SECRET_PREFIX.len() + 4).collect(),
            created_at: Utc::now(),
            created_by: created_by.to_owned(),
            revoked_at: None,
        };
        self.store
            .create_api_key(&key, &secret_hash(secret))
            .await?;
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
        if self
            .store
            .api_key_by_hash(&secret_hash(secret))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let key = self
            .store_key(
                &WorkspaceId::default(),
                "admin (ADMIN_API_KEY)",
                Scopes::all(),
                FieldPolicy::unrestricted(),
                BOOTSTRAP_ACTOR,
                secret,
            )
            .await?;
        info!(key_id = %key.id, "admin key from ADMIN_API_KEY stored");
        Ok(())
    }

    /// Whether the workspace has any key, revoked or not.
    pub async fn any_key(&self, workspace: &WorkspaceId) -> Result<bool, ServiceError> {
        Ok(!self.store.api_keys(workspace).await?.is_empty())
    }

    /// The keys of `workspace`, oldest first.
    pub async fn list(&self, workspace: &WorkspaceId) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.api_keys(workspace).await?)
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
        self.lock_cache()
            .retain(|_, (caller, _)| caller.key_id != id.as_str());
        info!(key_id = %id, workspace = %workspace, "api key revoked");
        Ok(key)
    }

    /// The caller a bearer token authenticates: UNAUTHENTICATED when the token is unknown or
    /// revoked (the two are not told apart).
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        let hash = secret_hash(token);
        if let Some((caller, at)) = self.lock_cache().get(&hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(caller.clone());
        }
        let key = self.store.api_key_by_hash(&hash).await?;
        let Some(key) = key.filter(|key| key.revoked_at.is_none()) else {
            self.lock_cache().remove(&hash);
            return Err(ServiceError::Unauthenticated(
                "the API key is unknown or revoked".to_owned(),
            ));
        };
        let caller = Caller::of_key(&key);
        let mut cache = self.lock_cache();
        if cache.len() >= KEY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(hash, (caller.clone(), Instant::now()));
        Ok(caller)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Caller, Instant)>> {
        match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        }
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
    getrandom::fill(&mut bytes)
        .map_err(|error| ServiceError::Internal(format!("no randomness for a key: {error}")))?;
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
