//! Contact use cases: read, page, idempotent upsert by external id, patch, delete.

use chrono::Utc;
use serde_json::{Map, Value as Json};
use tracing::debug;

use super::ServiceError;
use super::indexer::ChangeNotifier;
use crate::domain::{
    AttributeRegistry, Contact, ContactFields, ContactId, ContactPatch, Email, ExternalId,
    FieldChange, Phone, Text, WorkspaceId,
};
use crate::store::{ContactPage, Store, StoreError};

/// How often a write re-reads and retries after losing a race before it reports CONFLICT.
const MAX_WRITE_ATTEMPTS: usize = 8;
/// Largest page a client may ask for (checked where requests are parsed).
pub const MAX_PAGE_SIZE: usize = 100;

/// A change as received: fixed fields already parsed, attributes still JSON (they need the registry).
#[derive(Debug, Clone, Default)]
pub struct PatchInput {
    /// See [`ContactPatch::external_id`].
    pub external_id: FieldChange<ExternalId>,
    /// See [`ContactPatch::email`].
    pub email: FieldChange<Email>,
    /// See [`ContactPatch::name`].
    pub name: FieldChange<Text>,
    /// See [`ContactPatch::phone`].
    pub phone: FieldChange<Phone>,
    /// See [`ContactPatch::company`].
    pub company: FieldChange<Text>,
    /// See [`ContactPatch::account_ref`].
    pub account_ref: FieldChange<Text>,
    /// See [`ContactPatch::last_seen_at`].
    pub last_seen_at: FieldChange<chrono::DateTime<Utc>>,
    /// Attribute values by name; `null` unsets.
    pub attributes: Map<String, Json>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// No contact had the external id; one was created.
    Created,
    /// The contact changed.
    Updated,
    /// The input matched the stored contact; nothing was written.
    Unchanged,
}

/// Contact use cases over the store.
#[derive(Clone)]
pub struct ContactService {
    store: Store,
    notifier: ChangeNotifier,
}

impl ContactService {
    /// Contact use cases backed by `store`; `notifier` wakes the indexer after every write.
    pub fn new(store: Store, notifier: ChangeNotifier) -> Self {
        Self { store, notifier }
    }

    /// The contact with `id`, or NOT_FOUND.
    pub async fn get(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Contact, ServiceError> {
        self.store
            .contact(workspace, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("contact `{id}` does not exist")))
    }

    /// The contact with `external_id`, or NOT_FOUND.
    pub async fn get_by_external_id(
        &self,
        workspace: &WorkspaceId,
        external_id: &ExternalId,
    ) -> Result<Contact, ServiceError> {
        self.store
            .contact_by_external_id(workspace, external_id)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("no contact has external id `{external_id}`"))
            })
    }

    /// Up to `first` contacts after `after`, in stable id order.
    pub async fn page(
        &self,
        workspace: &WorkspaceId,
        after: Option<&ContactId>,
        first: usize,
    ) -> Result<ContactPage, ServiceError> {
        Ok(self.store.contact_page(workspace, after, first).await?)
    }

    /// How many contacts the workspace holds.
    pub async fn count(&self, workspace: &WorkspaceId) -> Result<u64, ServiceError> {
        Ok(self.store.count_contacts(workspace).await?)
    }

    /// Creates or changes the contact keyed by `external_id`. Replaying the same input writes nothing.
    pub async fn upsert(
        &self,
        workspace: &WorkspaceId,
        external_id: &ExternalId,
        input: PatchInput,
    ) -> Result<(Contact, UpsertOutcome), ServiceError> {
        let patch = self.validate(workspace, input).await?;
        for _attempt in 0..MAX_WRITE_ATTEMPTS {
            let Some(existing) = self
                .store
                .contact_by_external_id(workspace, external_id)
                .await?
            else {
                let blank = ContactFields {
                    external_id: Some(external_id.clone()),
                    ..ContactFields::default()
                };
                let contact = Contact::new(workspace.clone(), patch.apply_to(&blank), Utc::now());
                match self.store.insert_contact(&contact).await {
                    Ok(()) => {
                        self.notifier.notify();
                        return Ok((contact, UpsertOutcome::Created));
                    }
                    Err(StoreError::DuplicateExternalId(_) | StoreError::WriteConflict) => {
                        debug!(%external_id, "upsert lost a create race; retrying as update");
                        continue;
                    }
                    Err(other) => return Err(other.into()),
                }
            };
            match self.write_patch(existing, &patch).await? {
                Some((contact, changed)) => {
                    let outcome = if changed {
                        UpsertOutcome::Updated
                    } else {
                        UpsertOutcome::Unchanged
                    };
                    return Ok((contact, outcome));
                }
                None => continue,
            }
        }
        Err(contention(external_id.as_str()))
    }

    /// Applies `input` to the contact with `id`: given fields are set, `null` clears.
    pub async fn update(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
        input: PatchInput,
    ) -> Result<Contact, ServiceError> {
        let patch = self.validate(workspace, input).await?;
        for _attempt in 0..MAX_WRITE_ATTEMPTS {
            let existing = self.get(workspace, id).await?;
            if let Some((contact, _changed)) = self.write_patch(existing, &patch).await? {
                return Ok(contact);
            }
        }
        Err(contention(&id.to_string()))
    }

    /// Removes the contact entirely, or NOT_FOUND.
    pub async fn delete(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<(), ServiceError> {
        if self.store.delete_contact(workspace, id).await? {
            self.notifier.notify();
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "contact `{id}` does not exist"
            )))
        }
    }

    /// Parses attribute input against the workspace's registry.
    async fn validate(
        &self,
        workspace: &WorkspaceId,
        input: PatchInput,
    ) -> Result<ContactPatch, ServiceError> {
        let attributes = if input.attributes.is_empty() {
            Default::default()
        } else {
            let registry =
                AttributeRegistry::new(self.store.attribute_definitions(workspace).await?);
            registry.parse_changes(&input.attributes)?
        };
        Ok(ContactPatch {
            external_id: input.external_id,
            email: input.email,
            name: input.name,
            phone: input.phone,
            company: input.company,
            account_ref: input.account_ref,
            last_seen_at: input.last_seen_at,
            attributes,
        })
    }

    /// Writes `patch` over `existing` if it changes anything. `None` means a concurrent write won
    /// the race and the caller should re-read; `Some((contact, changed))` is the stored state.
    async fn write_patch(
        &self,
        existing: Contact,
        patch: &ContactPatch,
    ) -> Result<Option<(Contact, bool)>, ServiceError> {
        let fields = patch.apply_to(&existing.fields);
        if fields == existing.fields {
            return Ok(Some((existing, false)));
        }
        let expected_revision = existing.revision;
        let updated = Contact {
            fields,
            updated_at: Utc::now().max(existing.updated_at),
            revision: expected_revision + 1,
            ..existing
        };
        match self.store.update_contact(&updated, expected_revision).await {
            Ok(()) => {
                self.notifier.notify();
                Ok(Some((updated, true)))
            }
            Err(StoreError::WriteConflict) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

fn contention(key: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "contact `{key}` is being changed by many requests at once; retry the request"
    ))
}
