//! Identity queries and mutations: anonymous visitors, verified identification, identities of a
//! contact, and the workspace's identity settings.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, OneofObject, SimpleObject};

use super::args::ContactFieldsInput;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::views::ContactView;
use super::{caller, workspace};
use crate::domain::{FieldChange, WorkspaceSettings};
use crate::domain::{Refusal, Scope};
use crate::service::{
    IdentifyRequest, IdentityProof, PatchInput, ServiceError, Services, VerificationChange,
};

/// The workspace's identity settings (the secret itself is never shown).
#[derive(SimpleObject)]
#[graphql(name = "IdentitySettings")]
pub struct IdentitySettingsView {
    /// Whether an identity secret is set (for user hashes and HS256 tokens).
    secret_set: bool,
    /// Whether the secret replaced by the last rotation is still accepted.
    previous_secret_set: bool,
    /// How many PEM public keys (RS256/ES256 tokens) are registered.
    public_key_count: i32,
    /// The JWKS URL whose keys are accepted, if any.
    jwks_url: Option<String>,
    /// Whether `identify` still accepts the HMAC `userHash`.
    allow_user_hash: bool,
    /// The longest lifetime (`exp` - now) an identity token may have, in seconds.
    token_max_lifetime_seconds: i64,
    /// How long a verified identification personalises a visitor for keys that require it,
    /// in seconds.
    verification_lifetime_seconds: i64,
    /// Values this workspace never links, beyond the built-in placeholders.
    blocked_values: Vec<String>,
    /// The built-in placeholders never linked ("anonymous", "null", …).
    built_in_blocked_values: Vec<String>,
}

impl From<WorkspaceSettings> for IdentitySettingsView {
    fn from(settings: WorkspaceSettings) -> Self {
        Self {
            secret_set: settings.identity_secret.is_some(),
            previous_secret_set: settings.previous_identity_secret.is_some(),
            public_key_count: i32::try_from(settings.public_keys_pem.len()).unwrap_or(i32::MAX),
            jwks_url: settings.jwks_url.clone(),
            allow_user_hash: !settings.user_hash_disabled,
            token_max_lifetime_seconds: settings.token_max_lifetime().num_seconds(),
            verification_lifetime_seconds: settings.verification_lifetime().num_seconds(),
            blocked_values: settings.blocked_identity_values,
            built_in_blocked_values: crate::domain::NEVER_LINKED
                .iter()
                .map(|value| (*value).to_owned())
                .collect(),
        }
    }
}

/// Identity queries.
pub struct IdentityQuery {
    services: Services,
}

impl IdentityQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Identity queries.
#[Object]
impl IdentityQuery {
    /// The workspace's identity settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn identity_settings(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<IdentitySettingsView> {
        let workspace = &workspace(ctx)?;
        let settings = self.services.identity.settings(workspace).await.api()?;
        Ok(settings.into())
    }
}

/// Identity mutations.
pub struct IdentityMutation {
    services: Services,
}

impl IdentityMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Identity mutations.
#[Object]
impl IdentityMutation {
    /// Creates the anonymous contact of `anonymousId`, or touches it: `lastSeenAt` becomes now
    /// (unless given) and the given fields and attributes are applied. Emails and phones given
    /// here are self-asserted and never link the visitor to another contact.
    #[graphql(guard = "RequireScope(Scope::IdentityWrite)")]
    async fn track_visitor(
        &self,
        ctx: &Context<'_>,
        input: TrackVisitorInput,
    ) -> async_graphql::Result<TrackVisitorPayload> {
        let caller = &*caller(ctx)?;
        let patch = input.fields.into_patch_input(FieldChange::Keep).api()?;
        let written = patch.written();
        let contact = self
            .services
            .identity
            .track_visitor(&caller.workspace, &input.anonymous_id, patch)
            .await
            .api()?;
        Ok(TrackVisitorPayload {
            contact: ContactView::after_write(contact, caller, written),
        })
    }

    /// Identifies a visitor as a user of your system, proven by exactly one of `identityToken`
    /// (a JWT your backend signs: HS256 with the identity secret, or RS256/ES256 with a
    /// registered key; `sub` or `user_id` names the user, `exp` is required; `email`, `name`,
    /// `phone`, `company` and `attributes` claims are written as verified) or `userHash` =
    /// hex(HMAC-SHA256(identity secret, externalId)). The anonymous contact becomes the
    /// identified one, or is merged into it; `traits` are applied as self-asserted values,
    /// never over verified ones. A refused proof is IDENTITY_NOT_VERIFIED with
    /// `extensions.reason` (`EXPIRED`, `BAD_SIGNATURE`, `WRONG_AUDIENCE`, `MISSING_CLAIM`,
    /// `REPLAYED`, …) and changes nothing; a token that is not a JWT is INVALID_INPUT.
    #[graphql(guard = "RequireScope(Scope::IdentityWrite)")]
    async fn identify(
        &self,
        ctx: &Context<'_>,
        input: IdentifyInput,
    ) -> async_graphql::Result<IdentifyPayload> {
        let caller = &*caller(ctx)?;
        let traits = match input.traits {
            Some(traits) => traits.into_patch_input(FieldChange::Keep).api()?,
            None => PatchInput::default(),
        };
        let mut written = traits.written();
        written.fields.insert("external_id");
        let (user_hash, identity_token) = match (input.proof, input.user_hash, input.identity_token)
        {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ServiceError::invalid(
                    "proof",
                    "give `proof` alone, without `userHash` or `identityToken`",
                ))
                .api();
            }
            (Some(IdentityProofInput::UserHash(hash)), None, None) => (Some(hash), None),
            (Some(IdentityProofInput::IdentityToken(token)), None, None) => (None, Some(token)),
            (None, hash, token) => (hash, token),
        };
        let proof = match (user_hash, identity_token) {
            (Some(hash), None) if hash.trim().is_empty() => {
                return Err(Refusal::MissingProof.error(
                    "`userHash` is empty; send hex(HMAC-SHA256(identity secret, external id)) computed on your backend, or an `identityToken`",
                ))
                .api();
            }
            (Some(hash), None) => IdentityProof::UserHash(hash),
            (None, Some(token)) => IdentityProof::Token(token),
            (None, None) => {
                return Err(Refusal::MissingProof.error(
                    "`identify` needs a proof: an `identityToken` (or a `userHash`) from your backend",
                ))
                .api();
            }
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid(
                    "identityToken",
                    "give one of `identityToken` and `userHash`, not both",
                ))
                .api();
            }
        };
        let request = IdentifyRequest {
            anonymous_id: input.anonymous_id,
            external_id: input.external_id,
            proof,
            traits,
        };
        let contact = self
            .services
            .identity
            .identify(&caller.workspace, request)
            .await
            .api()?;
        // The proof just verified vouches for the contact it names.
        Ok(IdentifyPayload {
            contact: ContactView::after_write(contact, caller, written).vouched(),
        })
    }

    /// Sets the workspace's identity secret (at least 16 bytes). Returns the settings.
    #[graphql(
        guard = "RequireScope(Scope::Admin)",
        deprecation = "Use `setIdentityVerification(input: {hmacSecret})`; `setIdentitySecret` goes in the next release."
    )]
    async fn set_identity_secret(
        &self,
        ctx: &Context<'_>,
        secret: String,
    ) -> async_graphql::Result<IdentitySettingsView> {
        let workspace = &workspace(ctx)?;
        let secret = WorkspaceSettings::parse_secret(&secret)
            .map_err(ServiceError::from)
            .api()?;
        let identity = &self.services.identity;
        identity
            .set_identity_secret(workspace, secret)
            .await
            .api()?;
        Ok(identity.settings(workspace).await.api()?.into())
    }

    /// Changes how `identify` verifies users; omitted parts stay. A new `hmacSecret` becomes
    /// the current secret and the one it replaces stays valid until `retirePreviousSecret`
    /// (two at a time, for rotation without downtime). Returns the settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn set_identity_verification(
        &self,
        ctx: &Context<'_>,
        input: SetIdentityVerificationInput,
    ) -> async_graphql::Result<SetIdentityVerificationPayload> {
        let workspace = &workspace(ctx)?;
        let change = input.parse().api()?;
        let settings = self
            .services
            .identity
            .set_identity_verification(workspace, change)
            .await
            .api()?;
        Ok(SetIdentityVerificationPayload {
            identity_settings: settings.into(),
        })
    }

    /// Replaces the workspace's own list of identity values that are never linked (compared
    /// case-insensitively), e.g. a test user id. Returns the settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn set_blocked_identity_values(
        &self,
        ctx: &Context<'_>,
        input: SetBlockedIdentityValuesInput,
    ) -> async_graphql::Result<SetBlockedIdentityValuesPayload> {
        let workspace = &workspace(ctx)?;
        let values = WorkspaceSettings::parse_blocked(&input.values)
            .map_err(ServiceError::from)
            .api()?;
        let settings = self
            .services
            .identity
            .set_blocked_values(workspace, values)
            .await
            .api()?;
        Ok(SetBlockedIdentityValuesPayload {
            identity_settings: settings.into(),
        })
    }
}

/// The result of `trackVisitor`.
#[derive(SimpleObject)]
struct TrackVisitorPayload {
    /// The visitor's contact as written.
    contact: ContactView,
}

/// The result of `identify`.
#[derive(SimpleObject)]
struct IdentifyPayload {
    /// The identified contact as written (the survivor when the visitor was merged into it).
    contact: ContactView,
}

/// The result of `setIdentityVerification`.
#[derive(SimpleObject)]
struct SetIdentityVerificationPayload {
    /// The workspace's identity settings as changed.
    identity_settings: IdentitySettingsView,
}

/// Input of `setBlockedIdentityValues`.
#[derive(InputObject)]
struct SetBlockedIdentityValuesInput {
    /// The values never linked, replacing the list (empty clears it).
    values: Vec<String>,
}

/// The result of `setBlockedIdentityValues`.
#[derive(SimpleObject)]
struct SetBlockedIdentityValuesPayload {
    /// The workspace's identity settings as changed.
    identity_settings: IdentitySettingsView,
}

/// Input of `trackVisitor`.
#[derive(InputObject)]
struct TrackVisitorInput {
    /// The visitor id your chat widget keeps (a cookie, a device id).
    anonymous_id: String,
    #[graphql(flatten)]
    fields: ContactFieldsInput,
}

/// Input of `identify`.
#[derive(InputObject)]
struct IdentifyInput {
    /// The visitor id the widget had before the user logged in, if any.
    anonymous_id: Option<String>,
    /// The user's id in your system: required with `userHash`; with `identityToken`, optional
    /// and then it must be the token's user.
    external_id: Option<String>,
    /// What proves the user is who the widget says: a token or a user hash from your backend.
    proof: Option<IdentityProofInput>,
    /// hex(HMAC-SHA256(identity secret, externalId)), computed by your backend.
    #[graphql(
        deprecation = "Use `proof: { userHash }`; the flat proof fields go in the next release."
    )]
    user_hash: Option<String>,
    /// A JWT signed by your backend (see `identify`).
    #[graphql(
        deprecation = "Use `proof: { identityToken }`; the flat proof fields go in the next release."
    )]
    identity_token: Option<String>,
    /// Fields and attributes to set on the identified contact.
    traits: Option<ContactFieldsInput>,
}

/// What proves an `identify`: exactly one.
#[derive(OneofObject)]
enum IdentityProofInput {
    /// A JWT signed by your backend (HS256 with the identity secret, or RS256/ES256 under a
    /// JWKS URL), naming the user in `sub`; it expires.
    IdentityToken(String),
    /// hex(HMAC-SHA256(identity secret, externalId)), computed by your backend; needs
    /// `externalId`.
    UserHash(String),
}

/// Input of `setIdentityVerification`; omitted parts stay as they are.
#[derive(InputObject)]
struct SetIdentityVerificationInput {
    /// A new identity secret (at least 16 bytes) for user hashes and HS256 tokens.
    hmac_secret: Option<String>,
    /// Stop accepting the secret replaced by the last rotation.
    #[graphql(default)]
    retire_previous_secret: bool,
    /// PEM public keys (RSA or P-256, `-----BEGIN PUBLIC KEY-----`) whose RS256/ES256 tokens
    /// are accepted, at most two (the current and the next); replaces the list.
    public_keys_pem: Option<Vec<String>>,
    /// A JWKS URL (https) whose keys are accepted too, fetched and cached; null removes it.
    jwks_url: MaybeUndefined<String>,
    /// Whether the HMAC `userHash` is still accepted (turn off once every client sends tokens).
    allow_user_hash: Option<bool>,
    /// The longest token lifetime accepted, in seconds (default 86,400).
    token_max_lifetime_seconds: Option<i64>,
    /// How long a verified identification personalises a visitor for keys that require it,
    /// in seconds (default 2,592,000: 30 days).
    verification_lifetime_seconds: Option<i64>,
}

impl SetIdentityVerificationInput {
    fn parse(self) -> Result<VerificationChange, ServiceError> {
        let hmac_secret = self
            .hmac_secret
            .as_deref()
            .map(WorkspaceSettings::parse_secret)
            .transpose()?;
        let jwks_url = match self.jwks_url {
            MaybeUndefined::Undefined => FieldChange::Keep,
            MaybeUndefined::Null => FieldChange::Clear,
            // Checked by the use case, which knows whether private targets are allowed.
            MaybeUndefined::Value(url) => FieldChange::Set(url),
        };
        let lifetime = |field: &str, secs: Option<i64>| {
            secs.map(|secs| WorkspaceSettings::parse_lifetime(field, secs))
                .transpose()
        };
        Ok(VerificationChange {
            hmac_secret,
            retire_previous_secret: self.retire_previous_secret,
            public_keys_pem: self.public_keys_pem,
            jwks_url,
            allow_user_hash: self.allow_user_hash,
            token_max_lifetime_secs: lifetime(
                "tokenMaxLifetimeSeconds",
                self.token_max_lifetime_seconds,
            )?,
            verification_lifetime_secs: lifetime(
                "verificationLifetimeSeconds",
                self.verification_lifetime_seconds,
            )?,
        })
    }
}
