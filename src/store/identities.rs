//! Identities. Each is a record `contact_identity:[workspace, kind, value]` naming its one
//! owner (SurrealDB's primary key makes it unique per workspace, and answers "who holds this
//! identity"), and an entry in its owner's `identities` list on the contact record, which
//! answers "the identities of this contact" without a secondary index: every write of an
//! identity writes both, in one transaction ([`super::WriteBatch`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, SurrealValue};

use super::records::{contact_key, contact_key_parts};
use super::{Store, StoreError};
use crate::domain::{
    Contact, ContactId, Identity, IdentityKey, IdentityKind, Provenance, WorkspaceId,
};

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

/// The record ids of `keys`.
fn identity_keys(workspace: &WorkspaceId, keys: &[IdentityKey]) -> Vec<RecordId> {
    keys.iter()
        .map(|key| identity_key(workspace, key))
        .collect()
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

/// An identity as kept in its owner's `identities` list.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct IdentityEntry {
    kind: String,
    value: String,
    provenance: String,
    created_at: DateTime<Utc>,
}

impl IdentityEntry {
    pub(super) fn new(identity: &Identity) -> Self {
        Self {
            kind: identity.key.kind.as_str().to_owned(),
            value: identity.key.value.clone(),
            provenance: identity.provenance.as_str().to_owned(),
            created_at: identity.created_at,
        }
    }

    fn into_identity(self) -> Result<Identity, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("identity entry {what}: {self:?}"));
        let kind = IdentityKind::from_storage(&self.kind).ok_or_else(|| corrupt("kind"))?;
        let provenance =
            Provenance::from_storage(&self.provenance).ok_or_else(|| corrupt("provenance"))?;
        Ok(Identity {
            key: IdentityKey::from_trusted(kind, self.value),
            provenance,
            created_at: self.created_at,
        })
    }
}

/// A contact's `identities` list, as read.
#[derive(Debug, SurrealValue)]
struct ListedIdentities {
    id: RecordId,
    identities: Option<Vec<IdentityEntry>>,
}

/// A stored list as identities, by kind and value.
fn listed(entries: Option<Vec<IdentityEntry>>) -> Result<Vec<Identity>, StoreError> {
    let mut identities = entries
        .unwrap_or_default()
        .into_iter()
        .map(IdentityEntry::into_identity)
        .collect::<Result<Vec<_>, _>>()?;
    identities.sort_by(|a, b| {
        (a.key.kind.as_str(), &a.key.value).cmp(&(b.key.kind.as_str(), &b.key.value))
    });
    Ok(identities)
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
        let ids = identity_keys(workspace, keys);
        let mut response = self
            .db
            .query("SELECT * FROM $ids")
            .bind(("ids", ids))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<IdentityRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records.into_iter().map(IdentityRecord::into_held).collect()
    }

    /// The holders of `keys` that are held, and those contacts as stored (not from memory): two
    /// reads, the contacts' ids worked out here (a SurrealQL `map` closure over the holders cost
    /// more than the second round trip).
    pub async fn identity_holders_with_contacts(
        &self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> Result<(Vec<HeldIdentity>, Vec<Contact>), StoreError> {
        let held = self.identity_holders(workspace, keys).await?;
        let mut owners: Vec<ContactId> = held.iter().map(|held| held.contact).collect();
        owners.sort_unstable();
        owners.dedup();
        let contacts = self.fresh_contacts_by_ids(workspace, &owners).await?;
        Ok((held, contacts))
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
        let mut found: HashMap<ContactId, Vec<Identity>> = contacts
            .iter()
            .map(|contact| (*contact, Vec::new()))
            .collect();
        if contacts.is_empty() {
            return Ok(found);
        }
        let keys: Vec<RecordId> = contacts
            .iter()
            .map(|contact| contact_key(workspace, contact))
            .collect();
        let mut response = self
            .db
            .query("SELECT id, identities FROM $keys")
            .bind(("keys", keys))
            .await
            .map_err(StoreError::from_surreal)?;
        let lists: Vec<ListedIdentities> = response.take(0).map_err(StoreError::from_surreal)?;
        for list in lists {
            let (_, contact) = contact_key_parts(&list.id)?;
            found.insert(contact, listed(list.identities)?);
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
            .query("SELECT VALUE identities FROM $key")
            .bind(("key", contact_key(workspace, contact)))
            .await
            .map_err(StoreError::from_surreal)?;
        let lists: Vec<Option<Vec<IdentityEntry>>> =
            response.take(0).map_err(StoreError::from_surreal)?;
        listed(lists.into_iter().next().flatten())
    }
}
