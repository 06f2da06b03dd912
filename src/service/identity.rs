//! Identity use cases: track anonymous visitors, verify and link identified users, and the
//! workspace settings behind them (identity secret, blocked values).

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use super::ServiceError;
use super::catalog::Catalogs;
use super::claims::{
    Claim, add_claims, contact_point_claims, is_retryable, stage_claims, unless_raced,
};
use super::contacts::{ContactService, PatchInput};
use super::indexer::ChangeNotifier;
use super::merges::{MergeReason, MergeService};
use crate::domain::{
    Contact, ContactFields, ContactPatch, FieldChange, IdentityKey, IdentityKind, MergeStrategy,
    Provenance, WorkspaceId, WorkspaceSettings, verify_user_hash,
};
use crate::store::{Store, StoreError, WriteBatch};

/// How often a link re-reads and retries after losing a race before it reports CONFLICT.
const MAX_LINK_ATTEMPTS: usize = 8;

/// What `identify` was given.
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    /// The visitor's anonymous id, if the widget had one.
    pub anonymous_id: Option<String>,
    /// The user id in the business's system.
    pub external_id: String,
    /// hex(HMAC-SHA256(identity secret, external id)), computed by the business's backend.
    pub user_hash: String,
    /// Fields and attributes to upsert onto the identified contact.
    pub traits: PatchInput,
}

/// Identity use cases over the store.
#[derive(Clone)]
pub struct IdentityService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    contacts: ContactService,
    merges: MergeService,
}

impl IdentityService {
    /// Identity use cases over `store`, writing contacts through `contacts` and `merges`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        notifier: ChangeNotifier,
        contacts: ContactService,
        merges: MergeService,
    ) -> Self {
        Self {
            store,
            catalogs,
            notifier,
            contacts,
            merges,
        }
    }

    /// Creates the anonymous contact of `anonymous_id`, or touches it (`lastSeenAt` = now) and
    /// applies `input`. Emails and phones given here are self-asserted: they are recorded, but
    /// never link the visitor to another contact.
    pub async fn track_visitor(
        &self,
        workspace: &WorkspaceId,
        anonymous_id: &str,
        input: PatchInput,
    ) -> Result<Contact, ServiceError> {
        let settings = self.catalogs.workspace(workspace).settings.clone();
        let blocked = &settings.blocked_identity_values;
        let anonymous = IdentityKey::parse(IdentityKind::AnonymousId, anonymous_id, blocked)?;
        let mut patch = self.contacts.validate(workspace, input).await?;
        if patch.last_seen_at == FieldChange::Keep {
            patch.last_seen_at = FieldChange::Set(Utc::now());
        }
        for _attempt in 0..MAX_LINK_ATTEMPTS {
            let holder = self.holder(workspace, &anonymous).await?;
            let written = match holder {
                Some(existing) => self
                    .contacts
                    .write_patch(existing, &patch, Provenance::SelfAsserted)
                    .await?
                    .map(|(contact, _)| contact),
                None => {
                    let fields = patch.apply_to(&ContactFields::default());
                    let contact = Contact::new(workspace.clone(), fields, Utc::now());
                    let anonymous_claim = Claim {
                        key: anonymous.clone(),
                        provenance: Provenance::SelfAsserted,
                    };
                    self.create_with(
                        contact,
                        vec![anonymous_claim],
                        Provenance::SelfAsserted,
                        blocked,
                    )
                    .await?
                }
            };
            if let Some(contact) = written {
                return Ok(contact);
            }
            debug!(anonymous_id, "track lost a race; retrying");
        }
        Err(ServiceError::Conflict(format!(
            "visitor `{anonymous_id}` is being changed by many requests at once; retry"
        )))
    }

    /// Verifies `userHash` for `externalId` (constant time), then links: the visitor's anonymous
    /// contact becomes the identified contact, or is merged into it if it exists; `traits` are
    /// applied as an upsert. Nothing changes when the hash is wrong; replaying changes nothing.
    pub async fn identify(
        &self,
        workspace: &WorkspaceId,
        request: IdentifyRequest,
    ) -> Result<Contact, ServiceError> {
        let settings = self.catalogs.workspace(workspace).settings.clone();
        verify(&settings, &request.external_id, &request.user_hash)?;
        let blocked = &settings.blocked_identity_values;
        let external = IdentityKey::parse(IdentityKind::ExternalId, &request.external_id, blocked)?;
        let anonymous = request
            .anonymous_id
            .as_deref()
            .map(|raw| IdentityKey::parse(IdentityKind::AnonymousId, raw, blocked))
            .transpose()?;
        let mut patch = self.contacts.validate(workspace, request.traits).await?;
        patch.external_id = FieldChange::Keep;
        for _attempt in 0..MAX_LINK_ATTEMPTS {
            if let Some(contact) = self
                .try_identify(workspace, &external, anonymous.as_ref(), &patch, blocked)
                .await?
            {
                return Ok(contact);
            }
            debug!(external_id = %external.value, "identify lost a race; retrying");
        }
        Err(ServiceError::Conflict(format!(
            "user `{}` is being identified by many requests at once; retry",
            external.value
        )))
    }

    /// One attempt of [`IdentityService::identify`]; `None` means a race was lost.
    async fn try_identify(
        &self,
        workspace: &WorkspaceId,
        external: &IdentityKey,
        anonymous: Option<&IdentityKey>,
        patch: &ContactPatch,
        blocked: &[String],
    ) -> Result<Option<Contact>, ServiceError> {
        let external_id = crate::domain::ExternalId::from_trusted(external.value.clone());
        let identified = self
            .contacts
            .find_by_external_id(workspace, &external_id)
            .await?;
        let visitor = match anonymous {
            Some(key) => self.holder(workspace, key).await?,
            None => None,
        };
        let verified = Claim {
            key: external.clone(),
            provenance: Provenance::Verified,
        };
        let anonymous_claim = anonymous.map(|key| Claim {
            key: key.clone(),
            provenance: Provenance::SelfAsserted,
        });
        match (identified, visitor) {
            // The user is known and the visitor is anonymous: merge the visitor into the user.
            (Some(user), Some(visitor))
                if visitor.id != user.id && visitor.fields.external_id.is_none() =>
            {
                let user_id = user.id;
                let mut with_traits = user.clone();
                with_traits.fields = patch.apply_to(&user.fields);
                let preview = self
                    .merges
                    .plan(workspace, with_traits, visitor, MergeStrategy::default())
                    .await?;
                let Some(record) = self
                    .merges
                    .apply(
                        preview,
                        MergeStrategy::default(),
                        "identify",
                        MergeReason::Identify,
                    )
                    .await?
                else {
                    return Ok(None);
                };
                debug_assert_eq!(record.survivor, user_id);
                let mut claims = vec![verified];
                let points = contact_point_claims(
                    &record.survivor_after.fields,
                    Some(&user.fields),
                    Provenance::SelfAsserted,
                    blocked,
                )?;
                add_claims(&mut claims, points);
                self.update_with(
                    record.survivor_after,
                    &ContactPatch::default(),
                    claims,
                    blocked,
                )
                .await
            }
            // The user is known: attach the visitor id (if free), apply the traits.
            // (A visitor id held by another identified user stays with that user.)
            (Some(user), visitor) => {
                let claims: Vec<Claim> = std::iter::once(verified)
                    .chain(anonymous_claim.filter(|_| visitor.is_none()))
                    .collect();
                self.update_with(user, patch, claims, blocked).await
            }
            // The visitor is anonymous and the user is new: the visitor becomes the user.
            (None, Some(visitor)) if visitor.fields.external_id.is_none() => {
                let mut patch = patch.clone();
                patch.external_id = FieldChange::Set(external_id);
                self.update_with(visitor, &patch, vec![verified], blocked)
                    .await
            }
            // A new user (the visitor id, if any, belongs to someone else identified).
            (None, visitor) => {
                let blank = ContactFields {
                    external_id: Some(external_id),
                    ..ContactFields::default()
                };
                let contact = Contact::new(workspace.clone(), patch.apply_to(&blank), Utc::now());
                let claims = std::iter::once(verified)
                    .chain(anonymous_claim.filter(|_| visitor.is_none()))
                    .collect();
                self.create_with(contact, claims, Provenance::SelfAsserted, blocked)
                    .await
            }
        }
    }

    /// Sets the workspace's identity secret.
    pub async fn set_identity_secret(
        &self,
        workspace: &WorkspaceId,
        secret: SecretString,
    ) -> Result<(), ServiceError> {
        let mut settings = self.store.workspace_settings(workspace).await?;
        settings.identity_secret = Some(secret);
        self.store.save_workspace_settings(&settings).await?;
        self.catalogs.refresh(workspace).await
    }

    /// Sets the identity secret of `workspace` unless it already is `secret` (start-up config).
    pub async fn ensure_identity_secret(
        &self,
        workspace: &WorkspaceId,
        secret: &SecretString,
    ) -> Result<(), ServiceError> {
        let settings = self.catalogs.workspace(workspace).settings.clone();
        let same = settings
            .identity_secret
            .as_ref()
            .is_some_and(|current| current.expose_secret() == secret.expose_secret());
        if same {
            return Ok(());
        }
        self.set_identity_secret(workspace, secret.clone()).await
    }

    /// Replaces the workspace's own list of identity values never linked.
    pub async fn set_blocked_values(
        &self,
        workspace: &WorkspaceId,
        values: Vec<String>,
    ) -> Result<WorkspaceSettings, ServiceError> {
        let mut settings = self.store.workspace_settings(workspace).await?;
        settings.blocked_identity_values = values;
        self.store.save_workspace_settings(&settings).await?;
        self.catalogs.refresh(workspace).await?;
        Ok(settings)
    }

    /// The workspace's identity settings.
    pub async fn settings(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<WorkspaceSettings, ServiceError> {
        Ok(self.catalogs.workspace(workspace).settings.clone())
    }

    /// The live contact holding `key`, if any.
    async fn holder(
        &self,
        workspace: &WorkspaceId,
        key: &IdentityKey,
    ) -> Result<Option<Contact>, ServiceError> {
        let Some(held) = self.store.identity_holder(workspace, key).await? else {
            return Ok(None);
        };
        Ok(self.store.contact(workspace, &held.contact).await?)
    }

    /// Creates `contact` with `claims` plus the claims of its contact points (with
    /// `point_provenance`). `None` means a race was lost.
    async fn create_with(
        &self,
        contact: Contact,
        claims: Vec<Claim>,
        point_provenance: Provenance,
        blocked: &[String],
    ) -> Result<Option<Contact>, ServiceError> {
        let created = self
            .contacts
            .create_claiming(contact, claims, point_provenance, blocked)
            .await?;
        Ok(created.map(|(contact, _collisions)| contact))
    }

    /// Applies `patch` to `existing` and stages `claims` plus the claims of changed contact
    /// points (self-asserted); writes only if something changes. `None` means a race was lost.
    async fn update_with(
        &self,
        existing: Contact,
        patch: &ContactPatch,
        mut claims: Vec<Claim>,
        blocked: &[String],
    ) -> Result<Option<Contact>, ServiceError> {
        let fields = patch.apply_to(&existing.fields);
        let points = contact_point_claims(
            &fields,
            Some(&existing.fields),
            Provenance::SelfAsserted,
            blocked,
        )?;
        add_claims(&mut claims, points);
        let now = Utc::now();
        let mut batch = WriteBatch::new(&existing.workspace);
        let changed = fields != existing.fields;
        let updated = if changed {
            let mut updated = Contact {
                fields,
                updated_at: now.max(existing.updated_at),
                revision: existing.revision + 1,
                ..existing.clone()
            };
            batch.replace_contact(&mut updated, existing.revision);
            updated
        } else {
            existing
        };
        let staged = stage_claims(
            &self.store,
            &updated.workspace,
            &updated.id,
            claims,
            now,
            &mut batch,
        )
        .await;
        if unless_raced(staged)?.is_none() {
            return Ok(None);
        }
        self.commit(batch, updated).await
    }

    async fn commit(
        &self,
        batch: WriteBatch,
        contact: Contact,
    ) -> Result<Option<Contact>, ServiceError> {
        if batch.is_empty() {
            return Ok(Some(contact));
        }
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                Ok(Some(contact))
            }
            Err(error) if is_retryable(&error) => Ok(None),
            Err(StoreError::Missing) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

/// Checks the user hash against the workspace's secret.
fn verify(
    settings: &WorkspaceSettings,
    external_id: &str,
    user_hash: &str,
) -> Result<(), ServiceError> {
    let Some(secret) = &settings.identity_secret else {
        return Err(ServiceError::IdentityNotVerified(
            "this workspace has no identity secret; set one with `setIdentitySecret` (or IDENTITY_SECRET) before calling `identify`".to_owned(),
        ));
    };
    if verify_user_hash(
        secret.expose_secret().as_bytes(),
        external_id.trim(),
        user_hash,
    ) {
        return Ok(());
    }
    Err(ServiceError::IdentityNotVerified(format!(
        "`userHash` does not verify `externalId` `{}`; compute hex(HMAC-SHA256(identity secret, external id)) on your backend",
        external_id.trim()
    )))
}
