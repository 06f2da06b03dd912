//! The catalogue in memory: every workspace's API keys (with their secret hashes), attribute
//! registry, settings, saved segments and webhook endpoints, so that a request reads the store only for the
//! contacts it touches.
//!
//! Every catalogue write bumps the workspace's version in the same store transaction. The
//! instance that wrote reloads the workspace before it answers, so its next request sees the
//! change; every instance also polls the versions (one small read) and reloads the workspaces
//! that changed, so a change made elsewhere arrives within [`FOLLOW_INTERVAL`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tracing::warn;

use crate::domain::{
    ApiKey, AttributeDefinition, AttributeRegistry, Caller, ConsentPurpose, SavedSegment, Slug,
    Webhook, WorkspaceId, WorkspaceSettings,
};
use crate::service::error::ServiceError;
use crate::store::{Store, StoreError};

/// How often the versions are polled for changes made by other instances.
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// An API key with the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    /// The key.
    pub key: ApiKey,
    /// hex(SHA-256(secret)).
    pub secret_hash: String,
}

/// One workspace's catalogue at one version.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceState {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Catalogue changes committed before this state was read (0: none yet).
    pub version: u64,
    /// Its API keys, revoked ones included, oldest first.
    pub keys: Vec<StoredKey>,
    /// Its declared attributes, by name.
    pub attributes: Vec<AttributeDefinition>,
    /// Its identity settings.
    pub settings: WorkspaceSettings,
    /// Its saved segments, by slug.
    pub segments: Vec<SavedSegment>,
    /// Its webhook endpoints, oldest first.
    pub webhooks: Vec<Webhook>,
    /// Its consent purposes, by name.
    pub purposes: Vec<ConsentPurpose>,
}

impl PartialEq for WorkspaceState {
    fn eq(&self, other: &Self) -> bool {
        let secret = |settings: &WorkspaceSettings| {
            settings
                .identity_secret
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned())
        };
        self.workspace == other.workspace
            && self.version == other.version
            && self.keys == other.keys
            && self.attributes == other.attributes
            && secret(&self.settings) == secret(&other.settings)
            && self.settings.blocked_identity_values == other.settings.blocked_identity_values
            && self.segments == other.segments
            && self.webhooks == other.webhooks
            && self.purposes == other.purposes
    }
}

impl WorkspaceState {
    /// An empty catalogue of `workspace`.
    fn empty(workspace: &WorkspaceId) -> Self {
        Self {
            workspace: workspace.clone(),
            settings: WorkspaceSettings {
                workspace: workspace.clone(),
                ..WorkspaceSettings::default()
            },
            ..Self::default()
        }
    }

    /// Reads the workspace's catalogue from the store. The version is read first, so the
    /// state is at least as new as the version it carries.
    pub async fn load(store: &Store, workspace: &WorkspaceId) -> Result<Self, StoreError> {
        let version = store.catalog_version(workspace).await?;
        let keys = store
            .api_keys_with_hashes(workspace)
            .await?
            .into_iter()
            .map(|(key, secret_hash)| StoredKey { key, secret_hash })
            .collect();
        Ok(Self {
            workspace: workspace.clone(),
            version,
            keys,
            attributes: store.attribute_definitions(workspace).await?,
            settings: store.workspace_settings(workspace).await?,
            segments: store.segments(workspace).await?,
            webhooks: store.webhooks(workspace).await?,
            purposes: store.consent_purposes(workspace).await?,
        })
    }

    /// The consent purpose named `name`.
    pub fn purpose(&self, name: &str) -> Option<&ConsentPurpose> {
        self.purposes
            .iter()
            .find(|purpose| purpose.name.as_str() == name)
    }

    /// The saved segment `slug`.
    pub fn segment(&self, slug: &Slug) -> Option<&SavedSegment> {
        self.segments
            .iter()
            .find(|segment| segment.slug.as_str() == slug.as_str())
    }
}

#[derive(Default)]
struct Snapshot {
    workspaces: HashMap<WorkspaceId, Arc<WorkspaceState>>,
    /// Secret hash -> the workspace whose catalogue holds the key.
    key_owners: HashMap<String, WorkspaceId>,
}

impl Snapshot {
    /// Installs `state` unless a newer one is already there.
    fn install(&mut self, state: WorkspaceState) {
        if let Some(current) = self.workspaces.get(&state.workspace)
            && current.version > state.version
        {
            return;
        }
        let workspace = state.workspace.clone();
        self.key_owners.retain(|_, owner| *owner != workspace);
        for key in &state.keys {
            self.key_owners
                .insert(key.secret_hash.clone(), workspace.clone());
        }
        self.workspaces.insert(workspace, Arc::new(state));
    }
}

/// Every workspace's catalogue, shared by all requests.
#[derive(Clone)]
pub struct Catalogs {
    store: Store,
    snapshot: Arc<RwLock<Snapshot>>,
    /// Counts installed states, so that holders of long-lived access (sockets) learn at once
    /// that a key may have changed.
    changes: Arc<watch::Sender<u64>>,
    /// Stores its sensitive values with this sealer (for attribute registries).
    sealer: Option<Arc<dyn crate::domain::Sealer>>,
}

impl Catalogs {
    /// Loads the catalogue of every workspace in `store`.
    pub async fn load(store: Store) -> Result<Self, StoreError> {
        let catalogs = Self {
            sealer: store.sealer().cloned(),
            store,
            snapshot: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        };
        for workspace in catalogs.store.catalog_workspaces().await? {
            catalogs.reload(&workspace).await?;
        }
        Ok(catalogs)
    }

    /// The catalogue of `workspace` as last loaded (empty if it has none).
    pub fn workspace(&self, workspace: &WorkspaceId) -> Arc<WorkspaceState> {
        let snapshot = self.read();
        snapshot
            .workspaces
            .get(workspace)
            .cloned()
            .unwrap_or_else(|| Arc::new(WorkspaceState::empty(workspace)))
    }

    /// The workspaces whose catalogue is loaded.
    pub fn workspaces(&self) -> Vec<WorkspaceId> {
        self.read().workspaces.keys().cloned().collect()
    }

    /// The attribute registry of `workspace`, sealing sensitive values as it parses them.
    pub fn registry(&self, workspace: &WorkspaceId) -> AttributeRegistry {
        AttributeRegistry::new(self.workspace(workspace).attributes.clone())
            .with_sealer(self.sealer.clone())
    }

    /// The key whose secret hashes to `secret_hash`, revoked or not; no store read.
    pub fn key_by_hash(&self, secret_hash: &str) -> Option<ApiKey> {
        let snapshot = self.read();
        let owner = snapshot.key_owners.get(secret_hash)?;
        let state = snapshot.workspaces.get(owner)?;
        state
            .keys
            .iter()
            .find(|stored| stored.secret_hash == secret_hash)
            .map(|stored| stored.key.clone())
    }

    /// Whether any workspace holds a key that is not revoked.
    pub fn any_active_key(&self) -> bool {
        self.read().workspaces.values().any(|state| {
            state
                .keys
                .iter()
                .any(|stored| stored.key.revoked_at.is_none())
        })
    }

    /// The caller a secret hash authenticates: a known key that is not revoked.
    pub fn caller(&self, secret_hash: &str) -> Option<Caller> {
        self.key_by_hash(secret_hash)
            .filter(|key| key.revoked_at.is_none())
            .map(|key| Caller::of_key(&key))
    }

    /// A receiver told of every catalogue state installed (a write here, or one followed from
    /// another instance within [`FOLLOW_INTERVAL`]).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reads `workspace`'s catalogue from the store again and installs it (unless a newer one
    /// arrived meanwhile). Called after every catalogue write, before the write is answered.
    pub async fn reload(&self, workspace: &WorkspaceId) -> Result<(), StoreError> {
        let state = WorkspaceState::load(&self.store, workspace).await?;
        self.write().install(state);
        self.changes.send_modify(|installed| *installed += 1);
        Ok(())
    }

    /// [`Catalogs::reload`] for use cases: a failure is INTERNAL.
    pub async fn refresh(&self, workspace: &WorkspaceId) -> Result<(), ServiceError> {
        Ok(self.reload(workspace).await?)
    }

    /// Reloads every workspace whose stored version is newer than the one held.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let versions = self.store.catalog_versions().await?;
        let stale: Vec<WorkspaceId> = {
            let snapshot = self.read();
            versions
                .into_iter()
                .filter(|(workspace, version)| {
                    snapshot
                        .workspaces
                        .get(workspace)
                        .is_none_or(|state| state.version < *version)
                })
                .map(|(workspace, _)| workspace)
                .collect()
        };
        for workspace in &stale {
            self.reload(workspace).await?;
        }
        Ok(stale.len())
    }

    /// Follows changes made by other instances until `stop` turns true.
    pub async fn follow(self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(FOLLOW_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if let Err(error) = self.catch_up().await {
                        warn!(%error, "cannot follow catalogue changes");
                    }
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
