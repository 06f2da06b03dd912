//! Identity queries and mutations: anonymous visitors, verified identification, identities of a
//! contact, and the workspace's identity settings.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::args::ContactFieldsInput;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::views::ContactView;
use super::{caller, workspace};
use crate::domain::Scope;
use crate::domain::{FieldChange, WorkspaceSettings};
use crate::service::{IdentifyRequest, PatchInput, ServiceError, Services};

/// The workspace's identity settings (the secret itself is never shown).
#[derive(SimpleObject)]
#[graphql(name = "IdentitySettings")]
pub struct IdentitySettingsView {
    /// Whether an identity secret is set (`identify` needs one).
    secret_set: bool,
    /// Values this workspace never links, beyond the built-in placeholders.
    blocked_values: Vec<String>,
    /// The built-in placeholders never linked ("anonymous", "null", …).
    built_in_blocked_values: Vec<String>,
}

impl From<WorkspaceSettings> for IdentitySettingsView {
    fn from(settings: WorkspaceSettings) -> Self {
        Self {
            secret_set: settings.identity_secret.is_some(),
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

#[Object]
impl IdentityQuery {
    /// The workspace's identity settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn identity_settings(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<IdentitySettingsView> {
        let workspace = workspace(ctx)?;
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
    ) -> async_graphql::Result<ContactView> {
        let caller = caller(ctx)?;
        let patch = input.fields.into_patch_input(FieldChange::Keep).api()?;
        let written = patch.written();
        let contact = self
            .services
            .identity
            .track_visitor(&caller.workspace, &input.anonymous_id, patch)
            .await
            .api()?;
        Ok(ContactView::after_write(contact, caller, written))
    }

    /// Identifies a visitor as the user `externalId`, proven by `userHash` =
    /// hex(HMAC-SHA256(workspace identity secret, externalId)) computed by your backend.
    /// The anonymous contact becomes the identified one, or is merged into it; `traits` are
    /// applied as an upsert. A wrong or missing hash is IDENTITY_NOT_VERIFIED and changes nothing.
    #[graphql(guard = "RequireScope(Scope::IdentityWrite)")]
    async fn identify(
        &self,
        ctx: &Context<'_>,
        input: IdentifyInput,
    ) -> async_graphql::Result<ContactView> {
        let caller = caller(ctx)?;
        let traits = match input.traits {
            Some(traits) => traits.into_patch_input(FieldChange::Keep).api()?,
            None => PatchInput::default(),
        };
        let mut written = traits.written();
        written.fields.insert("external_id");
        let request = IdentifyRequest {
            anonymous_id: input.anonymous_id,
            external_id: input.external_id,
            user_hash: input.user_hash.unwrap_or_default(),
            traits,
        };
        let contact = self
            .services
            .identity
            .identify(&caller.workspace, request)
            .await
            .api()?;
        Ok(ContactView::after_write(contact, caller, written))
    }

    /// Sets the workspace's identity secret (at least 16 bytes). Returns the settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn set_identity_secret(
        &self,
        ctx: &Context<'_>,
        secret: String,
    ) -> async_graphql::Result<IdentitySettingsView> {
        let workspace = workspace(ctx)?;
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

    /// Replaces the workspace's own list of identity values that are never linked (compared
    /// case-insensitively), e.g. a test user id. Returns the settings.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn set_blocked_identity_values(
        &self,
        ctx: &Context<'_>,
        values: Vec<String>,
    ) -> async_graphql::Result<IdentitySettingsView> {
        let workspace = workspace(ctx)?;
        let values = WorkspaceSettings::parse_blocked(&values)
            .map_err(ServiceError::from)
            .api()?;
        let settings = self
            .services
            .identity
            .set_blocked_values(workspace, values)
            .await
            .api()?;
        Ok(settings.into())
    }
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
    /// The user's id in your system.
    external_id: String,
    /// hex(HMAC-SHA256(identity secret, externalId)), computed by your backend.
    user_hash: Option<String>,
    /// Fields and attributes to set on the identified contact.
    traits: Option<ContactFieldsInput>,
}
