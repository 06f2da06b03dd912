//! API key administration (scope `admin`): create (the secret is shown once), list, revoke.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject};
use secrecy::ExposeSecret;

use super::error::ApiResult;
use super::guard::RequireScope;
use super::key_view::{ApiKeyView, ApiScope, DefaultKeyRate, FieldPolicyView, RateLimit};
use super::page::{Connection, KeyOrder, page_complexity};
use super::{actor, caller, workspace};
use crate::domain::{ApiKeyId, FieldPolicy, KeyRate, Scope, Scopes};
use crate::service::{CreatedKey, KeyChange, NewKey, ServiceError, Services};

/// The scopes given as `grantedScopes` or, deprecated, as `scopes` text (at most one of
/// them); `None` when neither is.
fn given_scopes(
    granted: Option<Vec<ApiScope>>,
    text: Option<Vec<String>>,
) -> Result<Option<Scopes>, ServiceError> {
    let scopes = match (granted, text) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "grantedScopes",
                "give `grantedScopes` (or the deprecated `scopes`), not both",
            ));
        }
        (Some(granted), None) => Scopes::of(granted.into_iter().map(Scope::from))?,
        (None, Some(text)) => Scopes::parse(&text)?,
        (None, None) => return Ok(None),
    };
    Ok(Some(scopes))
}

/// A key's own request rate.
#[derive(InputObject)]
pub struct RateLimitInput {
    /// Requests per second, sustained: 1 to 100,000.
    per_second: i64,
    /// Requests at once, from `perSecond` to 10 times it; twice `perSecond` when omitted.
    burst: Option<i64>,
}

impl RateLimitInput {
    fn parse(self) -> Result<KeyRate, ServiceError> {
        Ok(KeyRate::parse(self.per_second, self.burst)?)
    }
}

/// The result of `createApiKey`: the new key and its secret.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CreateApiKeyPayload {
    /// The key.
    api_key: ApiKeyView,
    /// The bearer token: send `Authorization: Bearer <secret>`. Shown only this once; only
    /// its hash is stored.
    secret: String,
}

#[ComplexObject]
impl CreateApiKeyPayload {
    /// The key.
    #[graphql(deprecation = "Use `apiKey`; `key` goes in the next release.")]
    async fn key(&self) -> &ApiKeyView {
        &self.api_key
    }
}

impl From<CreatedKey> for CreateApiKeyPayload {
    fn from(created: CreatedKey) -> Self {
        Self {
            secret: created.secret.expose_secret().to_owned(),
            api_key: ApiKeyView(created.key),
        }
    }
}

/// The result of `updateApiKey`.
#[derive(SimpleObject)]
pub struct UpdateApiKeyPayload {
    /// The key as changed.
    api_key: ApiKeyView,
}

/// Input of `revokeApiKey`.
#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    /// The key to revoke.
    id: ID,
}

/// The result of `revokeApiKey`.
#[derive(SimpleObject)]
pub struct RevokeApiKeyPayload {
    /// The key, now revoked.
    api_key: ApiKeyView,
}

/// Approved fields of a new key; omit a list (or the whole input) to approve everything.
#[derive(InputObject)]
pub struct FieldPolicyInput {
    /// Approved built-in fields by their API names, e.g. `["name", "email", "externalId"]`
    /// (the segment spelling, `external_id`, is read too).
    fields: Option<Vec<String>>,
    /// Approved custom attributes, e.g. `["plan"]`.
    attributes: Option<Vec<String>>,
    /// Personalise only for verified visitors (for a chatbot's key): a lookup by anonymous
    /// id shows the approved fields only when a verified `identify` linked that visitor within
    /// the workspace's verification lifetime; otherwise only `id` and what the visitor itself
    /// sent.
    #[graphql(default)]
    require_verified_identity: bool,
}

impl FieldPolicyInput {
    fn parse(self) -> Result<FieldPolicy, ServiceError> {
        let mut policy = FieldPolicy::parse(self.fields, self.attributes)?;
        policy.require_verified_identity = self.require_verified_identity;
        Ok(policy)
    }
}

/// Input of `createApiKey`.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// Human name, e.g. `routing engine`.
    name: String,
    /// What it may do (give this or the deprecated `scopes`).
    granted_scopes: Option<Vec<ApiScope>>,
    /// Scopes as text: `contacts:read`, `contacts:write`, `segments:read`,
    /// `segments:write`, `identity:write`, `pii:read`, `admin`.
    #[graphql(deprecation = "Use `grantedScopes`; `scopes` goes in the next release.")]
    scopes: Option<Vec<String>>,
    /// What it may read; everything when omitted.
    field_policy: Option<FieldPolicyInput>,
    /// Its own request rate; the server's default when omitted.
    rate_limit: Option<RateLimitInput>,
}

/// Input of `updateApiKey`: what to change; omitted parts stay.
#[derive(InputObject)]
pub struct UpdateApiKeyInput {
    /// The key to change.
    id: ID,
    /// A new name.
    name: Option<String>,
    /// New scopes (replacing the old ones).
    granted_scopes: Option<Vec<ApiScope>>,
    /// New scopes as text (replacing the old ones).
    #[graphql(deprecation = "Use `grantedScopes`; `scopes` goes in the next release.")]
    scopes: Option<Vec<String>>,
    /// A new field policy (replacing the old one).
    field_policy: Option<FieldPolicyInput>,
    /// A request rate of its own (replacing the server's default or its earlier one).
    rate_limit: Option<RateLimitInput>,
}

/// Key queries.
pub struct KeyQuery {
    services: Services,
}

impl KeyQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// The key a request is made with, as the console shows it on sign-in.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Viewer {
    /// The key's id.
    key_id: ID,
    /// The key's name, as given when it was made.
    key_name: String,
    /// What it may do (`ADMIN` implies every scope).
    granted_scopes: Vec<ApiScope>,
    /// What it may read.
    field_policy: FieldPolicyView,
    /// The request rate in force: its own, or the server's default; null when unlimited.
    rate_limit: Option<RateLimit>,
}

#[ComplexObject]
impl Viewer {
    /// Its scopes as text, e.g. `contacts:read`.
    #[graphql(deprecation = "Use `grantedScopes`; `scopes` goes in the next release.")]
    async fn scopes(&self) -> Vec<&'static str> {
        self.granted_scopes
            .iter()
            .map(|&scope| Scope::from(scope).as_str())
            .collect()
    }
}

/// Key queries.
#[Object]
impl KeyQuery {
    /// The key this request is made with: its scopes, field policy and rate limit (any valid
    /// key may ask).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let caller = &*caller(ctx)?;
        let default = ctx
            .data_opt::<DefaultKeyRate>()
            .and_then(|default| default.0);
        let key_name = self
            .services
            .catalogs
            .workspace(&caller.workspace)
            .keys
            .iter()
            .find(|stored| stored.key.id.as_str() == caller.key_id)
            .map_or_else(|| caller.key_id.clone(), |stored| stored.key.name.clone());
        Ok(Viewer {
            key_id: ID(caller.key_id.clone()),
            key_name,
            granted_scopes: caller.scopes.iter().map(ApiScope::from).collect(),
            field_policy: FieldPolicyView::from(&caller.policy),
            rate_limit: caller.rate.or(default).map(RateLimit::from),
        })
    }

    /// The workspace's API keys, oldest first, revoked ones included.
    #[graphql(
        guard = "RequireScope(Scope::Admin)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<ApiKeyView>> {
        let keys = self.services.keys.list(&workspace(ctx)?);
        let views = keys.into_iter().map(ApiKeyView).collect();
        Connection::of_list(
            views,
            first,
            after.as_deref(),
            KeyOrder::Ascending,
            ApiKeyView::page_key,
        )
        .api()
    }
}

/// Key mutations.
pub struct KeyMutation {
    services: Services,
}

impl KeyMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Key mutations.
#[Object]
impl KeyMutation {
    /// Creates an API key in the caller's workspace; the secret is in the answer and nowhere
    /// else, ever.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let scopes = given_scopes(input.granted_scopes, input.scopes)
            .api()?
            .ok_or_else(|| ServiceError::invalid("grantedScopes", "give the key's `grantedScopes`"))
            .api()?;
        let policy = match input.field_policy {
            None => FieldPolicy::unrestricted(),
            Some(policy) => policy.parse().api()?,
        };
        let rate = input
            .rate_limit
            .map(RateLimitInput::parse)
            .transpose()
            .api()?;
        let new = NewKey {
            name: &input.name,
            scopes,
            policy,
            rate,
        };
        let created = self
            .services
            .keys
            .create(&workspace(ctx)?, new, &actor(ctx))
            .await
            .api()?;
        Ok(created.into())
    }

    /// Changes a key's name, scopes, field policy or rate limit; the very next request with
    /// the key sees the change.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn update_api_key(
        &self,
        ctx: &Context<'_>,
        input: UpdateApiKeyInput,
    ) -> async_graphql::Result<UpdateApiKeyPayload> {
        let id = ApiKeyId::parse(&input.id)
            .map_err(ServiceError::from)
            .api()?;
        let scopes = given_scopes(input.granted_scopes, input.scopes).api()?;
        let policy = input
            .field_policy
            .map(FieldPolicyInput::parse)
            .transpose()
            .api()?;
        let rate = input
            .rate_limit
            .map(RateLimitInput::parse)
            .transpose()
            .api()?;
        let change = KeyChange {
            name: input.name,
            scopes,
            policy,
            rate,
        };
        let key = self
            .services
            .keys
            .update(&workspace(ctx)?, &id, change)
            .await
            .api()?;
        Ok(UpdateApiKeyPayload {
            api_key: ApiKeyView(key),
        })
    }

    /// Revokes a key of the caller's workspace; it authenticates nothing from now on.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<RevokeApiKeyPayload> {
        let id = ApiKeyId::parse(&input.id)
            .map_err(ServiceError::from)
            .api()?;
        let key = self
            .services
            .keys
            .revoke(&workspace(ctx)?, &id)
            .await
            .api()?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKeyView(key),
        })
    }
}
