//! The suppression list's two sides: the keyed hash an identifier is kept under (HMAC with a
//! key derived from the master key, as sensitive values' blind index: a copy of the store alone
//! does not say whom it suppresses), and the check that refuses a write naming a suppressed
//! identifier (SUPPRESSED), whichever path the write takes (API, import, `identify`, events).

use std::collections::HashSet;

use crate::domain::{ContactPatch, FieldChange, IdentityKey, IdentityKind, WorkspaceId};
use crate::service::error::{InternalError, ServiceError};
use crate::store::Store;

/// Hashes identifiers and checks writes against the suppression list.
#[derive(Clone)]
pub struct Suppressions {
    store: Store,
}

impl Suppressions {
    /// Over `store` (whose sealer holds the key of the hashes).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The keyed hash `key` is suppressed under in `workspace`.
    pub fn hash(&self, workspace: &WorkspaceId, key: &IdentityKey) -> Result<String, ServiceError> {
        let sealer = self.store.sealer().ok_or(InternalError::Wiring(
            "the suppression list needs the encryption key",
        ))?;
        Ok(sealer.blind(
            workspace,
            &format!("suppressed:{}", key.kind.as_str()),
            &key.value,
        ))
    }

    /// SUPPRESSED when any of `keys` is suppressed in `workspace` (one read by key).
    pub async fn refuse(
        &self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> Result<(), ServiceError> {
        let found = self.suppressed_among(workspace, keys).await?;
        match keys.iter().find(|key| found.contains(key)) {
            Some(key) => Err(suppressed(key.kind)),
            None => Ok(()),
        }
    }

    /// Which of `keys` are suppressed in `workspace` (one read by key).
    pub async fn suppressed_among(
        &self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> Result<HashSet<IdentityKey>, ServiceError> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let hashes = keys
            .iter()
            .map(|key| self.hash(workspace, key))
            .collect::<Result<Vec<_>, _>>()?;
        let found: HashSet<String> = self
            .store
            .suppressed_among(workspace, &hashes)
            .await?
            .into_iter()
            .collect();
        Ok(keys
            .iter()
            .zip(&hashes)
            .filter(|(_, hash)| found.contains(*hash))
            .map(|(key, _)| key.clone())
            .collect())
    }

    /// [`Suppressions::refuse`] for the identifiers `patch` sets.
    pub async fn refuse_patch(
        &self,
        workspace: &WorkspaceId,
        patch: &ContactPatch,
    ) -> Result<(), ServiceError> {
        self.refuse(workspace, &patch_keys(patch)).await
    }
}

/// The identifiers `patch` sets (external id, email, phone).
pub fn patch_keys(patch: &ContactPatch) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    let mut add = |kind: IdentityKind, value: Option<&str>| {
        if let Some(value) = value {
            keys.push(IdentityKey {
                kind,
                value: value.to_owned(),
            });
        }
    };
    add(
        IdentityKind::ExternalId,
        set(&patch.external_id).map(|id| id.as_str()),
    );
    add(
        IdentityKind::Email,
        set(&patch.email).map(|email| email.as_str()),
    );
    add(
        IdentityKind::Phone,
        set(&patch.phone).map(|phone| phone.as_str()),
    );
    keys
}

fn set<T>(change: &FieldChange<T>) -> Option<&T> {
    match change {
        FieldChange::Set(value) => Some(value),
        _ => None,
    }
}

/// SUPPRESSED for an identifier of `kind` (the value is never repeated back).
pub fn suppressed(kind: IdentityKind) -> ServiceError {
    ServiceError::Suppressed(format!(
        "this {} belongs to a person whose data was erased; it stays refused until an admin lifts its suppression (`unsuppressIdentifiers`)",
        kind_words(kind)
    ))
}

fn kind_words(kind: IdentityKind) -> &'static str {
    match kind {
        IdentityKind::AnonymousId => "anonymous id",
        IdentityKind::ExternalId => "external id",
        IdentityKind::Email => "email",
        IdentityKind::Phone => "phone number",
    }
}
