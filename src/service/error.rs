//! The closed set of failures a use case can report, each with a stable client-facing code.

use crate::domain::{Caller, DomainError, Refusal, Scope};
use crate::index::IndexError;
use crate::store::StoreError;

/// Client-facing error codes, published as GraphQL `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The addressed record does not exist (in this workspace).
    NotFound,
    /// An argument or fixed field is malformed.
    InvalidInput,
    /// A custom attribute is undeclared or has a value of the wrong type.
    InvalidAttribute,
    /// The request contradicts stored state (taken external id, changed type, contention).
    Conflict,
    /// Segment text or tree does not parse or check; diagnostics carry spans.
    InvalidSegment,
    /// An identity value is malformed or a placeholder that is never linked.
    InvalidIdentity,
    /// `identify` was called without a valid user hash (or before a secret was set).
    IdentityNotVerified,
    /// A dependency did not answer in time; retrying may succeed.
    Unavailable,
    /// No valid API key was presented (HTTP 401).
    Unauthenticated,
    /// The API key lacks the scope or the approved field the request needs.
    Forbidden,
    /// The API key sent more requests than its rate allows (HTTP 429, `Retry-After`).
    RateLimited,
    /// The query is nested too deep, too complex, or uses too many aliases.
    QueryTooComplex,
    /// A persisted query's hash is not (or no longer) known: send the query with its hash.
    PersistedQueryNotFound,
    /// The write names an identifier of an erased person, which stays refused until an admin
    /// lifts its suppression (`unsuppressIdentifiers`).
    Suppressed,
    /// Something failed on our side; details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [Self; 15] = [
        Self::NotFound,
        Self::InvalidInput,
        Self::InvalidAttribute,
        Self::Conflict,
        Self::InvalidSegment,
        Self::InvalidIdentity,
        Self::IdentityNotVerified,
        Self::Unavailable,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::RateLimited,
        Self::QueryTooComplex,
        Self::PersistedQueryNotFound,
        Self::Suppressed,
        Self::Internal,
    ];

    /// The wire spelling, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::InvalidInput => "INVALID_INPUT",
            Self::InvalidAttribute => "INVALID_ATTRIBUTE",
            Self::Conflict => "CONFLICT",
            Self::InvalidSegment => "INVALID_SEGMENT",
            Self::InvalidIdentity => "INVALID_IDENTITY",
            Self::IdentityNotVerified => "IDENTITY_NOT_VERIFIED",
            Self::Unavailable => "UNAVAILABLE",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::Suppressed => "SUPPRESSED",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// See [`ErrorCode::NotFound`].
    #[error("{0}")]
    NotFound(String),
    /// Input broke a domain rule; see [`ErrorCode::InvalidInput`] and [`ErrorCode::InvalidAttribute`].
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// See [`ErrorCode::Conflict`].
    #[error("{0}")]
    Conflict(String),
    /// An email or phone the write gives its contact identifies another contact, and the two
    /// cannot be linked; see [`ErrorCode::Conflict`].
    #[error("{kind} `{value}` already identifies another contact; nothing was written")]
    IdentityTaken {
        /// `email` or `phone`.
        kind: &'static str,
        /// The normalised value.
        value: String,
        /// The contact holding it (shown only to keys that may read contacts).
        holder: crate::domain::ContactId,
    },
    /// See [`ErrorCode::InvalidSegment`].
    #[error("{}", .0.first().map(|d| d.message.as_str()).unwrap_or("invalid segment"))]
    InvalidSegment(Vec<qwry_segment::Diagnostic>),
    /// See [`ErrorCode::IdentityNotVerified`]; `reason` says why (`extensions.reason`).
    #[error("{message}")]
    IdentityNotVerified {
        /// Why the proof was refused.
        reason: Refusal,
        /// What to do about it.
        message: String,
    },
    /// See [`ErrorCode::Unavailable`].
    #[error("{0}")]
    Unavailable(String),
    /// See [`ErrorCode::Unauthenticated`].
    #[error("{0}")]
    Unauthenticated(String),
    /// See [`ErrorCode::Forbidden`].
    #[error("{0}")]
    Forbidden(String),
    /// See [`ErrorCode::RateLimited`].
    #[error("{0}")]
    RateLimited(String),
    /// A segment tests fields the caller may not read; see [`ErrorCode::Forbidden`].
    #[error("{}", .0.first().map(|d| d.message.as_str()).unwrap_or("the segment uses fields this key may not read"))]
    ForbiddenSegment(Vec<qwry_segment::Diagnostic>),
    /// See [`ErrorCode::Suppressed`]; the message names the kind of identifier, never its value.
    #[error("{0}")]
    Suppressed(String),
    /// See [`ErrorCode::Internal`]; the cause is for logs only.
    #[error("internal error: {0}")]
    Internal(#[from] InternalError),
}

/// What failed on our side (INTERNAL): logged with its cause, never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// The store failed in a way no client can act on.
    #[error(transparent)]
    Store(StoreError),
    /// The segment index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A runtime (the indexer) failed; the source is its own typed error.
    #[error(transparent)]
    Runtime(Box<dyn std::error::Error + Send + Sync>),
    /// A blocking or background task panicked or was cancelled.
    #[error("a task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// No randomness was available for a secret.
    #[error("no randomness available: {0}")]
    Randomness(#[from] getrandom::Error),
    /// A saved segment's stored text no longer parses.
    #[error("saved segment `{0}` does not parse")]
    UnparsedSegment(String),
    /// A stored record holds a value this release does not know.
    #[error("{record} holds {problem}")]
    StoredValue {
        /// Which record.
        record: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The server was wired without something every request needs (a bug).
    #[error("server wiring: {0}")]
    Wiring(&'static str),
}

impl ServiceError {
    /// The client-facing code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Invalid(DomainError::InvalidInput { .. }) => ErrorCode::InvalidInput,
            Self::Invalid(DomainError::InvalidAttribute { .. }) => ErrorCode::InvalidAttribute,
            Self::Invalid(DomainError::InvalidIdentity { .. }) => ErrorCode::InvalidIdentity,
            Self::IdentityNotVerified { .. } => ErrorCode::IdentityNotVerified,
            Self::Conflict(_) | Self::IdentityTaken { .. } => ErrorCode::Conflict,
            Self::InvalidSegment(_) => ErrorCode::InvalidSegment,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) | Self::ForbiddenSegment(_) => ErrorCode::Forbidden,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Suppressed(_) => ErrorCode::Suppressed,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// `Ok` when `caller` holds `scope`, else FORBIDDEN naming the missing scope: the one
    /// scope check of every API surface (GraphQL guards, bulk streams).
    pub fn require_scope(caller: &Caller, scope: Scope) -> Result<(), Self> {
        if caller.allows(scope) {
            return Ok(());
        }
        Err(Self::Forbidden(format!(
            "this API key lacks the `{scope}` scope"
        )))
    }

    /// `Ok` when `caller`'s field policy lets it read built-in field `field` (segment spelling),
    /// else FORBIDDEN: looking a contact up by a field tests its value, so it needs the field.
    pub fn require_lookup_by(caller: &Caller, field: &str) -> Result<(), Self> {
        if caller.policy.allows_builtin(field) {
            return Ok(());
        }
        Err(Self::Forbidden(format!(
            "this API key may not read `{field}`, so it cannot look contacts up by it"
        )))
    }

    /// A shorthand for [`DomainError::invalid`].
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(DomainError::invalid(field, message))
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateExternalId(external_id) => Self::Conflict(format!(
                "external id `{external_id}` already belongs to another contact"
            )),
            StoreError::Missing => Self::NotFound("the record does not exist".to_owned()),
            StoreError::WriteConflict => {
                Self::Conflict("the record was changed concurrently; retry the request".to_owned())
            }
            StoreError::Unavailable(error) => Self::Unavailable(format!(
                "the store is unavailable ({error}); retry the request"
            )),
            other => Self::Internal(InternalError::Store(other)),
        }
    }
}

impl Refusal {
    /// IDENTITY_NOT_VERIFIED for this reason.
    pub fn error(self, message: impl Into<String>) -> ServiceError {
        ServiceError::IdentityNotVerified {
            reason: self,
            message: message.into(),
        }
    }
}
