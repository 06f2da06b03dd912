//! The suppression list's two sides: the keyed hash an identifier is kept under (HMAC with a
//! key derived from the master key, as sensitive values' blind index: a copy of the store alone
//! does not say whom it suppresses), and the check that refuses a write naming a suppressed
//! identifier (SUPPRESSED), whichever path the write takes (API, import, `identify`, events).

use std::collections::HashSet;

use crate::domain::{
    ContactFields, ContactPatch, Email, ExternalId, FieldChange, IdentityKey, IdentityKind, Phone,
    WorkspaceId,
};
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
}

/// The identifiers `patch` sets (external id, email, phone).
pub fn patch_keys(patch: &ContactPatch) -> Vec<IdentityKey> {
    keys_of([
        (
            IdentityKind::ExternalId,
            set(&patch.external_id).map(ExternalId::as_str),
        ),
        (IdentityKind::Email, set(&patch.email).map(Email::as_str)),
        (IdentityKind::Phone, set(&patch.phone).map(Phone::as_str)),
    ])
}

/// The identifiers `fields` hold (external id, email, phone).
pub fn field_keys(fields: &ContactFields) -> Vec<IdentityKey> {
    keys_of([
        (
            IdentityKind::ExternalId,
            fields.external_id.as_ref().map(ExternalId::as_str),
        ),
        (
            IdentityKind::Email,
            fields.email.as_ref().map(Email::as_str),
        ),
        (
            IdentityKind::Phone,
            fields.phone.as_ref().map(Phone::as_str),
        ),
    ])
}

fn keys_of(values: [(IdentityKind, Option<&str>); 3]) -> Vec<IdentityKey> {
    values
        .into_iter()
        .filter_map(|(kind, value)| {
            value.map(|value| IdentityKey {
                kind,
                value: value.to_owned(),
            })
        })
        .collect()
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
