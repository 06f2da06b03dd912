//! Identity use cases: track anonymous visitors, verify and link identified users, and the
//! workspace settings behind them (identity secret, blocked values).

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use tracing::debug;

use super::catalog_cache::Catalogs;
use super::claims::{
    Claim, add_claims, contact_point_claims, is_retryable, stage_claims, unless_raced,
};
use super::consents::{self, check_declared};
use super::contacts::{ContactService, PatchInput};
use super::identity_token::{TokenVerifier, check_public_keys};
use super::indexer::ChangeNotifier;
use super::merges::{MergeReason, MergeService};
use crate::domain::MAX_ACTIVE_KEYS;
use crate::domain::Refusal;
use crate::domain::{ConsentStatement, state_consents};
use crate::domain::{
    Contact, ContactFields, ContactPatch, FieldChange, IdentityKey, IdentityKind, MergeStrategy,
    Provenance, Verification, VerificationMethod, WorkspaceId, WorkspaceSettings, verify_user_hash,
};
use crate::service::contention::{Attempts, WRITE_ATTEMPTS};
use crate::service::error::ServiceError;
use crate::service::suppression::patch_keys;
use crate::store::{Store, StoreError, WriteBatch};

/// A verification repeated within this time is not recorded again (a replayed `identify`
/// writes nothing).
const REVERIFY_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// What `identify` was given.
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    /// The visitor's anonymous id, if the widget had one.
    pub anonymous_id: Option<String>,
    /// The user id in the business's system (required with a user hash; with a token, it
    /// must match the token's user id when given).
    pub external_id: Option<String>,
    /// What proves the user id.
    pub proof: IdentityProof,
    /// Fields and attributes the client sends, outside any proof: written as self-asserted,
    /// never over a verified value.
    pub traits: PatchInput,
}

/// A change to how a workspace verifies identities (`None`/`Keep`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct VerificationChange {
    /// A new identity secret; the current one becomes the previous one (still accepted).
    pub hmac_secret: Option<SecretString>,
    /// Stop accepting the previous secret.
    pub retire_previous_secret: bool,
    /// The public keys (PEM) to accept, replacing the current list.
    pub public_keys_pem: Option<Vec<String>>,
    /// The JWKS URL.
    pub jwks_url: FieldChange<String>,
    /// Whether the HMAC user hash is still accepted.
    pub allow_user_hash: Option<bool>,
    /// The longest token lifetime, in seconds.
    pub token_max_lifetime_secs: Option<u64>,
    /// How long a verified identification personalises a visitor, in seconds.
    pub verification_lifetime_secs: Option<u64>,
}

/// How `identify` proves a user id.
#[derive(Debug, Clone)]
pub enum IdentityProof {
    /// hex(HMAC-SHA256(identity secret, external id)), computed by the business's backend.
    UserHash(String),
    /// A signed, expiring JWT minted by the business's backend.
    Token(String),
}

/// What one `identify` writes: the verified part, the client's part and the verification.
#[derive(Debug, Clone)]
struct IdentifyWrite {
    /// The user id, verified.
    external: IdentityKey,
    /// Fields and attributes the proof vouches for.
    verified: ContactPatch,
    /// Fields and attributes the client sent besides.
    traits: ContactPatch,
    /// How the identity was proven.
    method: VerificationMethod,
    /// The visitor linked, if any.
    anonymous: Option<IdentityKey>,
    /// The consents the proof states (a token's `consents` claim).
    consents: Vec<ConsentStatement>,
}

impl IdentifyWrite {
    /// `contact` after this write at `now`: verified values (marked so), then the client's
    /// values where no verified value stands, and the verification recorded.
    /// `revision` is the one the result is stored at (the consents it states carry it).
    fn applied_to(&self, contact: &Contact, now: chrono::DateTime<Utc>, revision: u64) -> Contact {
        let mut next = contact.clone();
        let origin = consents::origin(now, Provenance::Verified, None);
        state_consents(&mut next.consents, &self.consents, &origin, revision);
        let before = contact.fields.clone();
        next.fields = self.verified.apply_to(&before);
        next.fields.external_id = Some(crate::domain::ExternalId::from_trusted(
            self.external.value.clone(),
        ));
        next.record_sources(&before, Provenance::Verified);
        let verified_keys: Vec<String> = self.verified_keys();
        next.mark_verified(verified_keys.iter().map(String::as_str));
        let after_verified = next.fields.clone();
        next.fields = self
            .traits
            .sparing_verified(&next.field_sources)
            .apply_to(&after_verified);
        next.record_sources(&after_verified, Provenance::SelfAsserted);
        let anonymous_id = self.anonymous.as_ref().map(|key| key.value.as_str());
        if !self.recently_recorded(contact.verification.as_ref(), anonymous_id, now) {
            next.verification = Some(Verification::record(
                contact.verification.as_ref(),
                now,
                self.method,
                anonymous_id,
            ));
        }
        next
    }

    /// Whether `current` already records this verification less than a minute ago (a replay
    /// then writes nothing).
    fn recently_recorded(
        &self,
        current: Option<&Verification>,
        anonymous_id: Option<&str>,
        now: chrono::DateTime<Utc>,
    ) -> bool {
        let Some(current) = current else {
            return false;
        };
        let recent = |at: chrono::DateTime<Utc>| now.signed_duration_since(at) < REVERIFY_AFTER;
        current.method == self.method
            && current.anonymous_id.as_deref() == anonymous_id
            && recent(current.verified_at)
    }

    /// The keys the proof vouches for (the user id and every claimed value).
    fn verified_keys(&self) -> Vec<String> {
        let patch = &self.verified;
        let fixed = [
            ("email", patch.email.is_kept()),
            ("name", patch.name.is_kept()),
            ("phone", patch.phone.is_kept()),
            ("company", patch.company.is_kept()),
        ];
        std::iter::once("external_id".to_owned())
            .chain(
                fixed
                    .into_iter()
                    .filter(|(_, kept)| !kept)
                    .map(|(key, _)| key.to_owned()),
            )
            .chain(patch.attributes.keys().map(|name| name.as_str().to_owned()))
            .collect()
    }

    /// Claims of the contact points the proof vouches for (email, phone), verified.
    fn verified_claims(&self, blocked: &[String]) -> Result<Vec<Claim>, ServiceError> {
        let mut claims = Vec::new();
        if let FieldChange::Set(email) = &self.verified.email {
            claims.push(Claim {
                key: IdentityKey::parse(IdentityKind::Email, email.as_str(), blocked)?,
                provenance: Provenance::Verified,
            });
        }
        if let FieldChange::Set(phone) = &self.verified.phone {
            claims.push(Claim {
                key: IdentityKey::parse(IdentityKind::Phone, phone.as_str(), blocked)?,
                provenance: Provenance::Verified,
            });
        }
        Ok(claims)
    }
}

/// Identity use cases over the store.
#[derive(Clone)]
pub struct IdentityService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    contacts: ContactService,
    merges: MergeService,
    tokens: TokenVerifier,
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
            tokens: TokenVerifier::new(false),
        }
    }

    /// These use cases, fetching JWKS documents from private and plain-http addresses too when
    /// `allow_private` (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, for development and tests).
    pub fn with_private_targets(mut self, allow_private: bool) -> Self {
        self.tokens = TokenVerifier::new(allow_private);
        self
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
        let mut patch = self
            .contacts
            .validate_naming(workspace, input, std::slice::from_ref(&anonymous))
            .await?;
        if patch.last_seen_at == FieldChange::Keep {
            patch.last_seen_at = FieldChange::Set(Utc::now());
        }
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let holder = self.holder(workspace, &anonymous).await?;
            let written = match holder {
                Some(existing) => {
                    let spared = patch.sparing_verified(&existing.field_sources);
                    self.contacts
                        .write_patch(existing, &spared, Provenance::SelfAsserted)
                        .await?
                        .map(|(contact, _)| contact)
                }
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

    /// Verifies the proof (a user hash, in constant time, or an identity token), then links:
    /// the visitor's anonymous contact becomes the identified contact, or is merged into it if
    /// it exists. A token's claims are written as verified; `traits` as self-asserted, never
    /// over a verified value. Nothing changes when the proof is refused; replaying a hash
    /// changes nothing, replaying a token with a `jti` is refused.
    pub async fn identify(
        &self,
        workspace: &WorkspaceId,
        request: IdentifyRequest,
    ) -> Result<Contact, ServiceError> {
        let settings = self.catalogs.workspace(workspace).settings.clone();
        let blocked = &settings.blocked_identity_values;
        let now = Utc::now();
        let (user_id, method, claims, consents, token) = match &request.proof {
            IdentityProof::UserHash(hash) => {
                let external_id = request.external_id.clone().ok_or_else(|| {
                    ServiceError::invalid("externalId", "`externalId` is required with `userHash`")
                })?;
                verify_hash(&settings, &external_id, hash)?;
                (
                    external_id,
                    VerificationMethod::UserHash,
                    PatchInput::default(),
                    Vec::new(),
                    None,
                )
            }
            IdentityProof::Token(token) => {
                let verified = self.tokens.verify(&settings, token, now).await?;
                if let Some(given) = &request.external_id
                    && given.trim() != verified.user_id.trim()
                {
                    return Err(Refusal::SubjectMismatch.error(format!(
                        "`externalId` `{}` is not the identity token's user `{}`",
                        given.trim(),
                        verified.user_id.trim()
                    )));
                }
                let claims = verified.claims.clone();
                let consents = verified.consents.clone();
                check_declared(&self.catalogs.workspace(workspace), &consents)?;
                (
                    verified.user_id.clone(),
                    VerificationMethod::Token,
                    claims,
                    consents,
                    Some(verified),
                )
            }
        };
        let external = IdentityKey::parse(IdentityKind::ExternalId, &user_id, blocked)?;
        let anonymous = request
            .anonymous_id
            .as_deref()
            .map(|raw| IdentityKey::parse(IdentityKind::AnonymousId, raw, blocked))
            .transpose()?;
        let mut verified = self.contacts.parse_patch(workspace, claims)?;
        let mut traits = self.contacts.parse_patch(workspace, request.traits)?;
        // One read for every identifier the call names: its own and those of both patches.
        let named: Vec<IdentityKey> = std::iter::once(external.clone())
            .chain(anonymous.clone())
            .chain(patch_keys(&verified))
            .chain(patch_keys(&traits))
            .collect();
        self.contacts.refuse_suppressed(workspace, &named).await?;
        verified.external_id = FieldChange::Keep;
        traits.external_id = FieldChange::Keep;
        if let Some(token) = &token
            && let Some(jti) = &token.jti
            && !self
                .store
                .claim_token_id(workspace, jti, token.expires_at)
                .await?
        {
            return Err(Refusal::Replayed.error(format!(
                "the identity token `{jti}` was used before; mint a new one for every identify"
            )));
        }
        let write = IdentifyWrite {
            external,
            verified,
            traits,
            method,
            anonymous,
            consents,
        };
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            if let Some(contact) = self.try_identify(workspace, &write, blocked).await? {
                return Ok(contact);
            }
            debug!(external_id = %write.external.value, "identify lost a race; retrying");
        }
        Err(ServiceError::Conflict(format!(
            "user `{}` is being identified by many requests at once; retry",
            write.external.value
        )))
    }

    /// One attempt of [`IdentityService::identify`]; `None` means a race was lost.
    async fn try_identify(
        &self,
        workspace: &WorkspaceId,
        write: &IdentifyWrite,
        blocked: &[String],
    ) -> Result<Option<Contact>, ServiceError> {
        let external = &write.external;
        let anonymous = write.anonymous.as_ref();
        let external_id = crate::domain::ExternalId::from_trusted(external.value.clone());
        let identified = self
            .contacts
            .find_by_external_id(workspace, &external_id)
            .await?;
        let visitor = match anonymous {
            Some(key) => self.holder(workspace, key).await?,
            None => None,
        };
        let mut verified_claims = vec![Claim {
            key: external.clone(),
            provenance: Provenance::Verified,
        }];
        add_claims(&mut verified_claims, write.verified_claims(blocked)?);
        let anonymous_claim = anonymous.map(|key| Claim {
            key: key.clone(),
            provenance: Provenance::SelfAsserted,
        });
        let now = Utc::now();
        match (identified, visitor) {
            // The user is known and the visitor is anonymous: merge the visitor into the user.
            (Some(user), Some(visitor))
                if visitor.id != user.id && visitor.fields.external_id.is_none() =>
            {
                let user_id = user.id;
                let with_write = write.applied_to(&user, now, user.revision + 1);
                let preview = self
                    .merges
                    .plan(workspace, with_write, visitor, MergeStrategy::default())
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
                let mut claims = verified_claims;
                let points = contact_point_claims(
                    &record.survivor_after.fields,
                    Some(&user.fields),
                    Provenance::SelfAsserted,
                    blocked,
                )?;
                add_claims(&mut claims, points);
                let survivor = record.survivor_after.clone();
                self.update_to(record.survivor_after, survivor, claims, blocked)
                    .await
            }
            // The user is known: attach the visitor id (if free), apply the write.
            // (A visitor id held by another identified user stays with that user.)
            (Some(user), visitor) => {
                let claims: Vec<Claim> = verified_claims
                    .into_iter()
                    .chain(anonymous_claim.filter(|_| visitor.is_none()))
                    .collect();
                let next = write.applied_to(&user, now, user.revision + 1);
                self.update_to(user, next, claims, blocked).await
            }
            // The visitor is anonymous and the user is new: the visitor becomes the user.
            (None, Some(visitor)) if visitor.fields.external_id.is_none() => {
                let next = write.applied_to(&visitor, now, visitor.revision + 1);
                self.update_to(visitor, next, verified_claims, blocked)
                    .await
            }
            // A new user (the visitor id, if any, belongs to someone else identified).
            (None, visitor) => {
                let blank = Contact::new(workspace.clone(), ContactFields::default(), now);
                let contact = write.applied_to(&blank, now, blank.revision);
                let claims = verified_claims
                    .into_iter()
                    .chain(anonymous_claim.filter(|_| visitor.is_none()))
                    .collect();
                self.create_with(contact, claims, Provenance::SelfAsserted, blocked)
                    .await
            }
        }
    }

    /// Sets the workspace's identity secret. The secret it replaces stays valid (for user
    /// hashes and HS256 tokens) until the next rotation or until it is retired, so a business
    /// rotates without downtime.
    pub async fn set_identity_secret(
        &self,
        workspace: &WorkspaceId,
        secret: SecretString,
    ) -> Result<(), ServiceError> {
        let change = VerificationChange {
            hmac_secret: Some(secret),
            ..VerificationChange::default()
        };
        self.set_identity_verification(workspace, change).await?;
        Ok(())
    }

    /// Changes how the workspace verifies identities; returns the settings.
    pub async fn set_identity_verification(
        &self,
        workspace: &WorkspaceId,
        change: VerificationChange,
    ) -> Result<WorkspaceSettings, ServiceError> {
        if let Some(pems) = &change.public_keys_pem {
            if pems.len() > MAX_ACTIVE_KEYS {
                return Err(ServiceError::invalid(
                    "publicKeysPem",
                    format!(
                        "at most {MAX_ACTIVE_KEYS} public keys are active at once (the current and the next)"
                    ),
                ));
            }
            check_public_keys(pems)?;
        }
        let mut settings = self.store.workspace_settings(workspace).await?;
        if let Some(secret) = change.hmac_secret {
            let same = settings
                .identity_secret
                .as_ref()
                .is_some_and(|current| current.expose_secret() == secret.expose_secret());
            if !same {
                settings.previous_identity_secret = settings.identity_secret.replace(secret);
            }
        }
        if change.retire_previous_secret {
            settings.previous_identity_secret = None;
        }
        if let Some(pems) = change.public_keys_pem {
            settings.public_keys_pem = pems;
        }
        match change.jwks_url {
            FieldChange::Keep => {}
            FieldChange::Set(url) => {
                let allow_private = self.tokens.allows_private();
                settings.jwks_url = Some(WorkspaceSettings::parse_jwks_url(&url, allow_private)?);
            }
            FieldChange::Clear => settings.jwks_url = None,
        }
        if let Some(allow) = change.allow_user_hash {
            settings.user_hash_disabled = !allow;
        }
        if let Some(secs) = change.token_max_lifetime_secs {
            settings.token_max_lifetime_secs = Some(secs);
        }
        if let Some(secs) = change.verification_lifetime_secs {
            settings.verification_lifetime_secs = Some(secs);
        }
        self.store.save_workspace_settings(&settings).await?;
        self.catalogs.refresh(workspace).await?;
        Ok(settings)
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

    /// Stores `next` over `existing` and stages `claims` plus the claims of its changed
    /// contact points (self-asserted); writes only if something changes. `None` means a race
    /// was lost.
    async fn update_to(
        &self,
        existing: Contact,
        next: Contact,
        mut claims: Vec<Claim>,
        blocked: &[String],
    ) -> Result<Option<Contact>, ServiceError> {
        let points = contact_point_claims(
            &next.fields,
            Some(&existing.fields),
            Provenance::SelfAsserted,
            blocked,
        )?;
        add_claims(&mut claims, points);
        let now = Utc::now();
        let mut batch = WriteBatch::new(&existing.workspace);
        let changed = next.fields != existing.fields
            || next.field_sources != existing.field_sources
            || next.verification != existing.verification
            || next.consents != existing.consents;
        let updated = if changed {
            // `updatedAt` follows the fields; a renewed verification alone does not move it.
            let updated_at = if next.fields == existing.fields {
                existing.updated_at
            } else {
                now.max(existing.updated_at)
            };
            let mut updated = Contact {
                updated_at,
                revision: existing.revision + 1,
                ..next
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

/// Checks the user hash against the workspace's secrets (the current one, then the one it
/// replaced), unless the workspace accepts tokens only.
fn verify_hash(
    settings: &WorkspaceSettings,
    external_id: &str,
    user_hash: &str,
) -> Result<(), ServiceError> {
    if settings.user_hash_disabled {
        return Err(Refusal::UserHashDisabled.error(
            "this workspace accepts identity tokens only (`allowUserHash: false`); send `identityToken`",
        ));
    }
    if settings.identity_secret.is_none() {
        return Err(Refusal::NoKey.error(
            "this workspace has no identity secret; set one with `setIdentityVerification(input: {hmacSecret})` (or IDENTITY_SECRET) before calling `identify`",
        ));
    }
    let verifies = settings.identity_secrets().any(|secret| {
        verify_user_hash(
            secret.expose_secret().as_bytes(),
            external_id.trim(),
            user_hash,
        )
    });
    if verifies {
        return Ok(());
    }
    Err(Refusal::BadSignature.error(format!(
        "`userHash` does not verify `externalId` `{}`; compute hex(HMAC-SHA256(identity secret, external id)) on your backend",
        external_id.trim()
    )))
}
