//! Contact use cases: read (following merges), page, idempotent upsert by external id, patch,
//! delete. Every write also claims the identities of the contact's external id, email and phone.

use chrono::Utc;
use serde_json::{Map, Value as Json};
use tracing::{debug, warn};

use super::catalog_cache::Catalogs;
use super::claims::{
    Claim, Collision, add_claims, contact_point_claims, is_retryable, stage_claims, unless_raced,
};
use super::indexer::ChangeNotifier;
use super::merges::{MergeReason, MergeService};
use crate::domain::{
    Contact, ContactFields, ContactId, ContactPatch, Email, ExternalId, FieldChange, FieldPolicy,
    Identity, IdentityKey, IdentityKind, MergeStrategy, NameSet, Phone, Provenance, Text,
    WorkspaceId,
};
use crate::service::contention::{Attempts, WRITE_ATTEMPTS};
use crate::service::error::ServiceError;
use crate::service::suppression::{Suppressions, patch_keys};
use crate::store::{ContactPage, Store, StoreError, WriteBatch};

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

impl PatchInput {
    /// The fields this input sets or clears, as a field policy naming exactly them.
    pub fn written(&self) -> FieldPolicy {
        let fixed = [
            ("external_id", self.external_id.is_kept()),
            ("email", self.email.is_kept()),
            ("name", self.name.is_kept()),
            ("phone", self.phone.is_kept()),
            ("company", self.company.is_kept()),
            ("account_ref", self.account_ref.is_kept()),
            ("last_seen_at", self.last_seen_at.is_kept()),
        ];
        FieldPolicy {
            fields: NameSet::Only(
                fixed
                    .into_iter()
                    .filter(|(_, kept)| !kept)
                    .map(|(name, _)| name.to_owned())
                    .collect(),
            ),
            attributes: NameSet::Only(self.attributes.keys().cloned().collect()),
            require_verified_identity: false,
        }
    }
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
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    merges: MergeService,
    suppressions: Suppressions,
}

impl ContactService {
    /// Contact use cases backed by `store`; `notifier` wakes the indexer after every write;
    /// `merges` links contacts that claim the same email or phone with enough trust.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        notifier: ChangeNotifier,
        merges: MergeService,
    ) -> Self {
        Self {
            suppressions: Suppressions::new(store.clone()),
            store,
            catalogs,
            notifier,
            merges,
        }
    }

    /// The contact with `id`, or the contact it was merged into; NOT_FOUND if neither exists.
    pub async fn get(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Contact, ServiceError> {
        if let Some(contact) = self.store.contact(workspace, id).await? {
            return Ok(contact);
        }
        if let Some(survivor) = self.store.alias_target(workspace, id).await?
            && let Some(contact) = self.store.contact(workspace, &survivor).await?
        {
            return Ok(contact);
        }
        Err(ServiceError::NotFound(format!(
            "contact `{id}` does not exist"
        )))
    }

    /// The contact known by `external_id` (its own, or one merged into it), or NOT_FOUND.
    pub async fn get_by_external_id(
        &self,
        workspace: &WorkspaceId,
        external_id: &ExternalId,
    ) -> Result<Contact, ServiceError> {
        self.find_by_external_id(workspace, external_id)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!("no contact has external id `{external_id}`"))
            })
    }

    /// The contact holding `key`, or NOT_FOUND.
    pub async fn get_by_identity(
        &self,
        workspace: &WorkspaceId,
        key: &IdentityKey,
    ) -> Result<Contact, ServiceError> {
        let holder = self.store.identity_holder(workspace, key).await?;
        let contact = match holder {
            Some(held) => self.store.contact(workspace, &held.contact).await?,
            None => None,
        };
        contact.ok_or_else(|| ServiceError::NotFound(format!("no contact has identity `{key}`")))
    }

    /// The identities `contact` holds (from memory when unchanged since last read).
    pub async fn identities(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<Identity>, ServiceError> {
        let mut found = self
            .store
            .identities_of_many(workspace, std::slice::from_ref(contact))
            .await?;
        Ok(found.remove(contact).unwrap_or_default())
    }

    /// The identities of each of `contacts`, in one round trip (none for those kept in memory).
    pub async fn identities_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<std::collections::HashMap<ContactId, Vec<Identity>>, ServiceError> {
        Ok(self.store.identities_of_many(workspace, contacts).await?)
    }

    /// The ids merged into each of `contacts`, in one round trip.
    pub async fn merged_from_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<std::collections::HashMap<ContactId, Vec<ContactId>>, ServiceError> {
        Ok(self.store.merged_into_many(workspace, contacts).await?)
    }

    /// The ids merged into `contact` that now resolve to it.
    pub async fn merged_from(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<ContactId>, ServiceError> {
        Ok(self.store.merged_into(workspace, contact).await?)
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
        let key = IdentityKey::parse(IdentityKind::ExternalId, external_id.as_str(), &[])?;
        let patch = self.validate_naming(workspace, input, &[key]).await?;
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let Some(existing) = self.find_by_external_id(workspace, external_id).await? else {
                let blank = ContactFields {
                    external_id: Some(external_id.clone()),
                    ..ContactFields::default()
                };
                let contact = Contact::new(workspace.clone(), patch.apply_to(&blank), Utc::now());
                match self.create(contact, Provenance::Api).await? {
                    Some((contact, collisions)) => {
                        let contact = self.auto_link(contact, collisions).await;
                        return Ok((contact, UpsertOutcome::Created));
                    }
                    None => {
                        debug!(%external_id, "upsert lost a create race; retrying as update");
                        continue;
                    }
                }
            };
            match self.write_patch(existing, &patch, Provenance::Api).await? {
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
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let existing = self.get(workspace, id).await?;
            if let Some((contact, _changed)) =
                self.write_patch(existing, &patch, Provenance::Api).await?
            {
                return Ok(contact);
            }
        }
        Err(contention(&id.to_string()))
    }

    /// Removes the contact entirely, with its identities, the aliases that resolved to it and
    /// the merge records that hold snapshots of it; NOT_FOUND if it does not exist.
    pub async fn delete(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<(), ServiceError> {
        let mut batch = WriteBatch::new(workspace);
        batch.delete_identities_of(id);
        batch.delete_contact(id, None);
        batch.delete_aliases_to(id);
        batch.delete_merges_of(id);
        batch.delete_activity(id);
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                Ok(())
            }
            Err(StoreError::Missing) => Err(ServiceError::NotFound(format!(
                "contact `{id}` does not exist"
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Parses attribute input against the workspace's registry; SUPPRESSED when an identifier
    /// it sets belongs to an erased person.
    pub(super) async fn validate(
        &self,
        workspace: &WorkspaceId,
        input: PatchInput,
    ) -> Result<ContactPatch, ServiceError> {
        self.validate_naming(workspace, input, &[]).await
    }

    /// [`ContactService::validate`], refusing also when any of `also` (identifiers the write
    /// names besides its fields: an upsert's key, a visitor's anonymous id) belongs to an erased
    /// person, in the same one read. Every write of a contact's fields passes here.
    pub(super) async fn validate_naming(
        &self,
        workspace: &WorkspaceId,
        input: PatchInput,
        also: &[IdentityKey],
    ) -> Result<ContactPatch, ServiceError> {
        let patch = self.parse_patch(workspace, input)?;
        let mut keys = patch_keys(&patch);
        keys.extend_from_slice(also);
        self.suppressions.refuse(workspace, &keys).await?;
        Ok(patch)
    }

    /// Parses attribute input against the workspace's registry, without the suppression
    /// check (the caller makes it, once for everything the write names).
    pub(super) fn parse_patch(
        &self,
        workspace: &WorkspaceId,
        input: PatchInput,
    ) -> Result<ContactPatch, ServiceError> {
        let attributes = if input.attributes.is_empty() {
            Default::default()
        } else {
            let registry = self.catalogs.registry(workspace);
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

    /// SUPPRESSED when any of `keys` belongs to an erased person (see [`Suppressions`]).
    pub(super) async fn refuse_suppressed(
        &self,
        workspace: &WorkspaceId,
        keys: &[IdentityKey],
    ) -> Result<(), ServiceError> {
        self.suppressions.refuse(workspace, keys).await
    }

    /// The contact known by `external_id`: through its identity (which follows merges).
    pub(super) async fn find_by_external_id(
        &self,
        workspace: &WorkspaceId,
        external_id: &ExternalId,
    ) -> Result<Option<Contact>, ServiceError> {
        let key = IdentityKey::from_trusted(IdentityKind::ExternalId, external_id.as_str().into());
        match self.store.identity_holder(workspace, &key).await? {
            Some(held) => Ok(self.store.contact(workspace, &held.contact).await?),
            None => Ok(None),
        }
    }

    /// Stores a new contact with the identities of its contact points. `None` means another
    /// writer took its external id first (re-read and retry).
    async fn create(
        &self,
        contact: Contact,
        provenance: Provenance,
    ) -> Result<Option<(Contact, Vec<Collision>)>, ServiceError> {
        let blocked = self.blocked_values(&contact.workspace).await?;
        self.create_claiming(contact, Vec::new(), provenance, &blocked)
            .await
    }

    /// Stores a new contact holding `claims` and the identities of its contact points (claimed
    /// with `point_provenance`). `None` means another writer took one of them first.
    pub(super) async fn create_claiming(
        &self,
        mut contact: Contact,
        mut claims: Vec<Claim>,
        point_provenance: Provenance,
        blocked: &[String],
    ) -> Result<Option<(Contact, Vec<Collision>)>, ServiceError> {
        let points = contact_point_claims(&contact.fields, None, point_provenance, blocked)?;
        add_claims(&mut claims, points);
        contact.fill_sources(point_provenance);
        let mut batch = WriteBatch::new(&contact.workspace);
        batch.create_contact(&mut contact);
        let staged = stage_claims(
            &self.store,
            &contact.workspace,
            &contact.id,
            claims,
            contact.created_at,
            &mut batch,
        )
        .await;
        let Some(collisions) = unless_raced(staged)? else {
            return Ok(None);
        };
        self.refuse_unlinkable(&contact, &collisions).await?;
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                Ok(Some((contact, collisions)))
            }
            Err(error) if is_retryable(&error) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Writes `patch` over `existing` if it changes anything. `None` means a concurrent write won
    /// the race and the caller should re-read; `Some((contact, changed))` is the stored state.
    pub(super) async fn write_patch(
        &self,
        existing: Contact,
        patch: &ContactPatch,
        provenance: Provenance,
    ) -> Result<Option<(Contact, bool)>, ServiceError> {
        let fields = patch.apply_to(&existing.fields);
        if fields == existing.fields {
            return Ok(Some((existing, false)));
        }
        let blocked = self.blocked_values(&existing.workspace).await?;
        let claims = contact_point_claims(&fields, Some(&existing.fields), provenance, &blocked)?;
        let expected_revision = existing.revision;
        let now = Utc::now();
        let before = existing.fields.clone();
        let mut updated = Contact {
            fields,
            updated_at: now.max(existing.updated_at),
            revision: expected_revision + 1,
            ..existing
        };
        updated.record_sources(&before, provenance);
        let mut batch = WriteBatch::new(&updated.workspace);
        batch.replace_contact(&mut updated, expected_revision);
        let collisions = stage_claims(
            &self.store,
            &updated.workspace,
            &updated.id,
            claims,
            now,
            &mut batch,
        )
        .await?;
        self.refuse_unlinkable(&updated, &collisions).await?;
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                let contact = self.auto_link(updated, collisions).await;
                Ok(Some((contact, true)))
            }
            Err(StoreError::WriteConflict) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Refuses (IdentityTaken, CONFLICT) a trusted write whose email or phone identifies another
    /// contact that [`ContactService::auto_link`] would not merge it with, so that a contact's
    /// email and phone fields always agree with the identities it holds. A self-asserted claim
    /// (a visitor typing an address) is kept on the field and never taken from its holder.
    async fn refuse_unlinkable(
        &self,
        contact: &Contact,
        collisions: &[Collision],
    ) -> Result<(), ServiceError> {
        for collision in collisions {
            let claim = &collision.claim;
            if claim.provenance == Provenance::SelfAsserted {
                continue;
            }
            let holder = &collision.holder;
            let linkable = claim.provenance.may_auto_link(holder.identity.provenance)
                && match self
                    .store
                    .contact(&contact.workspace, &holder.contact)
                    .await?
                {
                    Some(other) => !matches!(
                        (&contact.fields.external_id, &other.fields.external_id),
                        (Some(mine), Some(theirs)) if mine != theirs
                    ),
                    None => false,
                };
            if !linkable {
                return Err(ServiceError::IdentityTaken {
                    kind: claim.key.kind.as_str(),
                    value: claim.key.value.clone(),
                    holder: holder.contact,
                });
            }
        }
        Ok(())
    }

    /// Merges `contact` with the holders of the emails and phones it could not claim, where both
    /// claims are trusted enough ([`Provenance::may_auto_link`]) and their external ids do not
    /// conflict. The write that led here has committed; a link that fails is logged, not
    /// reported. Returns the contact as it stands afterwards.
    async fn auto_link(&self, contact: Contact, collisions: Vec<Collision>) -> Contact {
        let mut current = contact;
        for collision in collisions {
            if !collision
                .claim
                .provenance
                .may_auto_link(collision.holder.identity.provenance)
            {
                continue;
            }
            let workspace = current.workspace.clone();
            let holder = match self
                .store
                .contact(&workspace, &collision.holder.contact)
                .await
            {
                Ok(Some(holder)) => holder,
                _ => continue,
            };
            let (survivor, absorbed) =
                match (&current.fields.external_id, &holder.fields.external_id) {
                    (Some(mine), Some(theirs)) if mine != theirs => continue,
                    (Some(_), None) => (current.id, holder.id),
                    (None, Some(_)) => (holder.id, current.id),
                    _ if holder.created_at < current.created_at => (holder.id, current.id),
                    _ => (current.id, holder.id),
                };
            let merged = self
                .merges
                .merge(
                    &workspace,
                    &survivor,
                    &absorbed,
                    MergeStrategy::default(),
                    "auto-link",
                    MergeReason::AutoLink,
                )
                .await;
            match merged {
                Ok(record) => current = record.survivor_after,
                Err(error) => {
                    warn!(%error, identity = %collision.claim.key, "automatic link skipped");
                }
            }
        }
        current
    }

    async fn blocked_values(&self, workspace: &WorkspaceId) -> Result<Vec<String>, ServiceError> {
        Ok(self
            .catalogs
            .workspace(workspace)
            .settings
            .blocked_identity_values
            .clone())
    }
}

fn contention(key: &str) -> ServiceError {
    ServiceError::Conflict(format!(
        "contact `{key}` is being changed by many requests at once; retry the request"
    ))
}
