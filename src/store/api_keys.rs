//! API keys: `api_key:[workspace, id]`, found at authentication by the hash of their secret
//! (unique index), listed and revoked within their workspace.

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};

use super::catalog_versions::CatalogWrite;
use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::{ApiKey, ApiKeyId, FieldPolicy, KeyRate, NameSet, Scope, Scopes, WorkspaceId};

const API_KEY_TABLE: &str = "api_key";

fn api_key_key(workspace: &WorkspaceId, id: &ApiKeyId) -> RecordId {
    compound_key(API_KEY_TABLE, workspace, id.as_str().to_owned())
}

#[derive(Debug, SurrealValue)]
struct ApiKeyRecord {
    id: RecordId,
    key_id: String,
    workspace: String,
    name: String,
    scopes: Vec<String>,
    /// Readable built-in fields; `None` = all.
    fields: Option<Vec<String>>,
    /// Readable attributes; `None` = all.
    attributes: Option<Vec<String>>,
    /// Whether lookups by anonymous id need a verified visitor.
    require_verified_identity: Option<bool>,
    secret_hash: String,
    prefix: String,
    created_at: DateTime<Utc>,
    created_by: String,
    revoked_at: Option<DateTime<Utc>>,
    /// The key's own rate (requests a second); the server's default when absent.
    rate_per_second: Option<u32>,
    /// The key's own burst, with `rate_per_second`.
    rate_burst: Option<u32>,
}

impl ApiKeyRecord {
    fn from_key(key: &ApiKey, secret_hash: &str) -> Self {
        Self {
            id: api_key_key(&key.workspace, &key.id),
            key_id: key.id.as_str().to_owned(),
            workspace: key.workspace.as_str().to_owned(),
            name: key.name.clone(),
            scopes: key.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            fields: key.policy.fields.names(),
            attributes: key.policy.attributes.names(),
            require_verified_identity: Some(key.policy.require_verified_identity),
            secret_hash: secret_hash.to_owned(),
            prefix: key.prefix.clone(),
            created_at: key.created_at,
            created_by: key.created_by.clone(),
            revoked_at: key.revoked_at,
            rate_per_second: key.rate.map(|rate| rate.per_second),
            rate_burst: key.rate.map(|rate| rate.burst),
        }
    }

    fn into_key(self) -> Result<ApiKey, StoreError> {
        let scopes = Scopes::parse(&self.scopes)
            .map_err(|error| StoreError::Corrupt(format!("api key scopes: {error}")))?;
        debug_assert!(scopes.iter().all(|s| Scope::ALL.contains(&s)));
        let names = |list: Option<Vec<String>>| match list {
            None => NameSet::All,
            Some(names) => NameSet::Only(names.into_iter().collect()),
        };
        Ok(ApiKey {
            id: ApiKeyId::from_trusted(self.key_id),
            workspace: WorkspaceId::from_trusted(self.workspace),
            name: self.name,
            scopes,
            policy: FieldPolicy {
                fields: names(self.fields),
                attributes: names(self.attributes),
                require_verified_identity: self.require_verified_identity.unwrap_or(false),
            },
            prefix: self.prefix,
            created_at: self.created_at,
            created_by: self.created_by,
            revoked_at: self.revoked_at,
            rate: self
                .rate_per_second
                .zip(self.rate_burst)
                .map(|(per_second, burst)| KeyRate { per_second, burst }),
        })
    }
}

impl Store {
    /// Stores a new key with the hash of its secret. A second key with the same secret hash is
    /// refused by the unique index ([`StoreError::Backend`]).
    pub async fn create_api_key(&self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        let record = ApiKeyRecord::from_key(key, secret_hash);
        self.write_catalog_record(&key.workspace, "CREATE", record.id.clone(), record)
            .await
    }

    /// The key whose secret hashes to `secret_hash`, revoked or not, in any workspace: this
    /// lookup is what decides the workspace of a request.
    pub async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut response = self
            .db
            .query("SELECT * FROM api_key WHERE secret_hash = $hash LIMIT 1")
            .bind(("hash", secret_hash.to_owned()))
            .await
            .map_err(StoreError::from_surreal)?;
        first_key(response.take(0).map_err(StoreError::from_surreal)?)
    }

    /// Every key of the workspace with the hash of its secret, oldest first.
    pub async fn api_keys_with_hashes(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<(ApiKey, String)>, StoreError> {
        let records: Vec<ApiKeyRecord> = self
            .workspace_records(API_KEY_TABLE, workspace, "created_at, key_id")
            .await?;
        records
            .into_iter()
            .map(|record| {
                let hash = record.secret_hash.clone();
                record.into_key().map(|key| (key, hash))
            })
            .collect()
    }

    /// Replaces the name, scopes and field policy of a key; `None` when the workspace has no
    /// such key.
    pub async fn update_api_key(&self, key: &ApiKey) -> Result<Option<ApiKey>, StoreError> {
        let record_id = api_key_key(&key.workspace, &key.id);
        let existing: Option<ApiKeyRecord> = self
            .db
            .select(record_id.clone())
            .await
            .map_err(StoreError::from_surreal)?;
        if existing.is_none() {
            return Ok(None);
        }
        let updated = ApiKeyRecord::from_key(key, "");
        let mut write = CatalogWrite::new(&key.workspace);
        let record = write.bind(record_id.clone());
        let name = write.bind(updated.name);
        let scopes = write.bind(updated.scopes);
        let fields = write.bind(updated.fields);
        let attributes = write.bind(updated.attributes);
        let verified = write.bind(updated.require_verified_identity);
        let rate = write.bind(updated.rate_per_second);
        let burst = write.bind(updated.rate_burst);
        write.statement(format!(
            "UPDATE {record} SET name = {name}, scopes = {scopes}, fields = {fields}, \
             attributes = {attributes}, require_verified_identity = {verified}, \
             rate_per_second = {rate}, rate_burst = {burst} RETURN NONE"
        ));
        self.commit_catalog(write).await?;
        let stored: Option<ApiKeyRecord> = self
            .db
            .select(record_id)
            .await
            .map_err(StoreError::from_surreal)?;
        stored.map(ApiKeyRecord::into_key).transpose()
    }

    /// Every key of the workspace, oldest first.
    pub async fn api_keys(&self, workspace: &WorkspaceId) -> Result<Vec<ApiKey>, StoreError> {
        let records: Vec<ApiKeyRecord> = self
            .workspace_records(API_KEY_TABLE, workspace, "created_at, key_id")
            .await?;
        records.into_iter().map(ApiKeyRecord::into_key).collect()
    }

    /// Marks the key revoked (once; a second revocation keeps the first time). `None` when the
    /// workspace has no such key.
    pub async fn revoke_api_key(
        &self,
        workspace: &WorkspaceId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key = api_key_key(workspace, id);
        let existing: Option<ApiKeyRecord> = self
            .db
            .select(key.clone())
            .await
            .map_err(StoreError::from_surreal)?;
        if existing.is_none() {
            return Ok(None);
        }
        let mut write = CatalogWrite::new(workspace);
        let record = write.bind(key.clone());
        let at = write.bind(at);
        write.statement(format!(
            "UPDATE {record} SET revoked_at = revoked_at ?? {at} RETURN NONE"
        ));
        self.commit_catalog(write).await?;
        let revoked: Option<ApiKeyRecord> = self
            .db
            .select(key)
            .await
            .map_err(StoreError::from_surreal)?;
        revoked.map(ApiKeyRecord::into_key).transpose()
    }
}

fn first_key(records: Vec<ApiKeyRecord>) -> Result<Option<ApiKey>, StoreError> {
    records
        .into_iter()
        .next()
        .map(ApiKeyRecord::into_key)
        .transpose()
}
