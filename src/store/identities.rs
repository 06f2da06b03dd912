//! Identity records: `contact_identity:[workspace, kind, value]`, one owner each.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{ContactId, Identity, IdentityKey, IdentityKind, Provenance, WorkspaceId};

pub(super) const IDENTITY_TABLE: &str = "contact_identity";

/// An identity and the contact that holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldIdentity {
    /// The identity.
    pub identity: Identity,
    /// Its owner.
    pub contact: ContactId,
}

/// `contact_identity:[workspace, kind, value]`.
pub(super) fn identity_key(workspace: &WorkspaceId, key: &IdentityKey) -> RecordId {
    let parts = vec![
        workspace.as_str().to_owned(),
        key.kind.as_str().to_owned(),
        key.value.clone(),
    ];
    RecordId::new(IDENTITY_TABLE, RecordIdKey::Array(Array::from(parts)))
}

/// An identity as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct IdentityRecord {
    id: RecordId,
    workspace: String,
    kind: String,
    value: String,
    contact: String,
    provenance: String,
    created_at: DateTime<Utc>,
}

impl IdentityRecord {
    pub(super) fn new(workspace: &WorkspaceId, owner: &ContactId, identity: &Identity) -> Self {
        Self {
            id: identity_key(workspace, &identity.key),
            workspace: workspace.as_str().to_owned(),
            kind: identity.key.kind.as_str().to_owned(),
            value: identity.key.value.clone(),
            contact: owner.to_string(),
            provenance: identity.provenance.as_str().to_owned(),
            created_at: identity.created_at,
        }
    }

    pub(super) fn into_held(self) -> Result<HeldIdentity, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("identity {what}: {self:?}"));
        let kind = IdentityKind::from_storage(&self.kind).ok_or_else(|| corrupt("kind"))?;
        let provenance =
            Provenance::from_storage(&self.provenance).ok_or_else(|| corrupt("provenance"))?;
        let contact = ContactId::parse(&self.contact).map_err(|_| corrupt("owner"))?;
        Ok(HeldIdentity {
            identity: Identity {
                key: IdentityKey::from_trusted(kind, self.value),
                provenance,
                created_at: self.created_at,
            },
            contact,
        })
    }
}

impl Store {
    /// The contact holding `key` in `workspace`, if any.
    pub async fn identity_holder(
        &self,
        workspace: &WorkspaceId,
        key: &IdentityKey,
    ) -> Result<Option<HeldIdentity>, StoreError> {
        let record: Option<IdentityRecord> = self
            .db
            .select(identity_key(workspace, key))
            .await
            .map_err(StoreError::from_surreal)?;
        record.map(IdentityRecord::into_held).transpose()
    }

    /// The holders of `keys` that are held, in one read.
    pub async fn identity_holders(
        &self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> Result<Vec<HeldIdentity>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<RecordId> = keys
            .iter()
            .map(|key| identity_key(workspace, key))
            .collect();
        let mut response = self
            .db
            .query("SELECT * FROM $ids")
            .bind(("ids", ids))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<IdentityRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records.into_iter().map(IdentityRecord::into_held).collect()
    }

    /// The identities of each of `contacts` (every one of them is a key of the answer); those
    /// of contacts unchanged since they were last read come from memory, the others in one
    /// round trip.
    pub async fn identities_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<HashMap<ContactId, Vec<Identity>>, StoreError> {
        let (mut found, missed) = self
            .cache
            .split(contacts, |id| self.cache.identities(workspace, id));
        if missed.is_empty() {
            return Ok(found);
        }
        let missed_ids: Vec<ContactId> = missed.iter().map(|(id, _)| *id).collect();
        let read = self.read_identities_of_many(workspace, &missed_ids).await?;
        for (contact, ticket) in missed {
            if let Some(identities) = read.get(&contact) {
                self.cache
                    .keep_identities(ticket, workspace, contact, identities);
            }
        }
        found.extend(read);
        Ok(found)
    }

    async fn read_identities_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<HashMap<ContactId, Vec<Identity>>, StoreError> {
        if contacts.is_empty() {
            return Ok(HashMap::new());
        }
        // One statement per contact, all in one round trip: each is served by the owner index.
        let statements: String = (0..contacts.len())
            .map(|n| {
                format!(
                    "SELECT * FROM {IDENTITY_TABLE} WHERE workspace = $workspace AND contact = $c{n} ORDER BY kind, value;"
                )
            })
            .collect();
        let mut query = self
            .db
            .query(statements)
            .bind(("workspace", workspace.as_str().to_owned()));
        for (n, contact) in contacts.iter().enumerate() {
            query = query.bind((format!("c{n}"), contact.to_string()));
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let mut found = HashMap::with_capacity(contacts.len());
        for (n, contact) in contacts.iter().enumerate() {
            let records: Vec<IdentityRecord> =
                response.take(n).map_err(StoreError::from_surreal)?;
            let identities = records
                .into_iter()
                .map(|record| record.into_held().map(|held| held.identity))
                .collect::<Result<Vec<_>, _>>()?;
            found.insert(*contact, identities);
        }
        Ok(found)
    }

    /// The identities of `contact`, by kind and value, read from the store itself (for writes
    /// that move them).
    pub async fn identities_of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<Identity>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT * FROM {IDENTITY_TABLE} WHERE workspace = $workspace AND contact = $contact ORDER BY kind, value"
            ))
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("contact", contact.to_string()))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<IdentityRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records
            .into_iter()
            .map(|record| record.into_held().map(|held| held.identity))
            .collect()
    }
}
