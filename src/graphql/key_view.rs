//! An API key as the API shows it (never with its secret): its scopes, field policy and rate.

use async_graphql::{Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{ApiKey, FieldPolicy, KeyRate, Scope, api_field_name};

/// What a key may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "Scope")]
pub enum ApiScope {
    /// `contacts:read`: read contacts (fields subject to the key's field policy), attributes,
    /// history.
    ContactsRead,
    /// `contacts:write`: create, change, delete, merge and import contacts.
    ContactsWrite,
    /// `segments:read`: validate segments, read saved segments, members and counts.
    SegmentsRead,
    /// `segments:write`: save and delete segments.
    SegmentsWrite,
    /// `identity:write`: `trackVisitor` and `identify`.
    IdentityWrite,
    /// `pii:read`: read the values of sensitive attributes.
    PiiRead,
    /// `admin`: manage keys, the attribute registry and workspace settings; implies every
    /// scope.
    Admin,
}

/// The rate of keys without one of their own (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`;
/// `None`: unlimited), as schema data.
pub struct DefaultKeyRate(pub Option<KeyRate>);

/// A request rate: `perSecond` sustained, up to `burst` at once after a quiet spell. Each
/// answer tells where the key stands in `RateLimit-Policy` and `RateLimit` headers; a request
/// over it is answered 429 `RATE_LIMITED` with `Retry-After`.
#[derive(SimpleObject)]
pub struct RateLimit {
    /// Requests per second, sustained.
    per_second: u32,
    /// Requests at once.
    burst: u32,
}

impl From<KeyRate> for RateLimit {
    fn from(rate: KeyRate) -> Self {
        Self {
            per_second: rate.per_second,
            burst: rate.burst,
        }
    }
}

/// What a key may read. A list names exactly what is approved; `null` approves everything,
/// including attributes declared later.
#[derive(SimpleObject)]
#[graphql(name = "FieldPolicy")]
pub struct FieldPolicyView {
    /// Approved built-in fields by their API names (`externalId`, `email`, `name`, `phone`,
    /// `company`, `accountRef`, `lastSeenAt`, `conversations`, `events`), or null for all.
    /// `id`, `createdAt` and `updatedAt` are always readable.
    fields: Option<Vec<String>>,
    /// Approved custom attributes, or null for all.
    attributes: Option<Vec<String>>,
    /// Whether a lookup by anonymous id shows the approved fields only for a visitor a
    /// verified `identify` linked within the workspace's verification lifetime.
    require_verified_identity: bool,
}

impl From<&FieldPolicy> for FieldPolicyView {
    fn from(policy: &FieldPolicy) -> Self {
        Self {
            fields: policy
                .fields
                .names()
                .map(|names| names.iter().map(|name| api_field_name(name)).collect()),
            attributes: policy.attributes.names(),
            require_verified_identity: policy.require_verified_identity,
        }
    }
}

/// An API key (never with its secret).
#[derive(Clone)]
pub struct ApiKeyView(pub ApiKey);

impl ApiKeyView {
    /// Where it sits in the list of keys (oldest first), as a cursor holds it.
    pub fn page_key(&self) -> String {
        let created = self
            .0
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        format!("{created}|{}", self.0.id)
    }
}

/// An API key (never with its secret).
#[Object(name = "ApiKey")]
impl ApiKeyView {
    /// Opaque id; writes made with the key record it as their actor.
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Human name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the key may do.
    async fn granted_scopes(&self) -> Vec<ApiScope> {
        self.0.scopes.iter().map(ApiScope::from).collect()
    }

    /// Scopes as text, e.g. `contacts:read`.
    #[graphql(deprecation = "Use `grantedScopes`; `scopes` goes in the next release.")]
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes.iter().map(Scope::as_str).collect()
    }

    /// What the key may read.
    async fn field_policy(&self) -> FieldPolicyView {
        FieldPolicyView::from(&self.0.policy)
    }

    /// The first characters of the secret, to tell keys apart.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The key (or `bootstrap`, `cli`) that created it.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    /// When it was revoked; null while it works.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }

    /// Its own request rate; null when the server's default applies (see `viewer`).
    async fn rate_limit(&self) -> Option<RateLimit> {
        self.0.rate.map(RateLimit::from)
    }
}
