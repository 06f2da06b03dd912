//! The one mapping from service errors to GraphQL errors with `extensions.code`.

use async_graphql::ErrorExtensions;
use tracing::error;

use crate::domain::{Caller, DomainError, Scope};
use crate::service::{ErrorCode, ServiceError};

/// Every code an error of this API may carry in `extensions.code`, and in a bulk report's
/// rows.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ErrorCode", remote = "ErrorCode")]
pub enum ErrorCodeView {
    /// The addressed record does not exist (in this workspace).
    NotFound,
    /// An argument or fixed field is malformed (also syntax and validation errors).
    InvalidInput,
    /// A custom attribute is undeclared or has a value of the wrong type.
    InvalidAttribute,
    /// The request contradicts stored state (a taken external id, a changed type, contention).
    Conflict,
    /// Segment text or tree does not parse or check; diagnostics carry spans.
    InvalidSegment,
    /// An identity value is malformed, or a placeholder that is never linked.
    InvalidIdentity,
    /// `identify` was called without a valid user hash or token.
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
    /// The write names an identifier of an erased person (suppressed until an admin lifts it).
    Suppressed,
    /// Something failed on our side; details are logged, not returned.
    Internal,
}

impl ErrorCodeView {
    /// The code spelled `wire` (`NOT_FOUND`, ...).
    pub fn of_wire(wire: &str) -> Option<Self> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| code.as_str() == wire)
            .map(Self::from)
    }
}

/// Code given to errors async-graphql raises itself (syntax, validation, argument coercion).
pub const REQUEST_ERROR_CODE: ErrorCode = ErrorCode::InvalidInput;

/// The code of an error async-graphql raised itself, when its message says more than a bad
/// request: its complexity limit (async-graphql gives it no code of its own).
pub fn request_error_code(message: &str) -> Option<ErrorCode> {
    if message == "Query is too complex." {
        return Some(ErrorCode::QueryTooComplex);
    }
    // The message the persisted-query protocol prescribes; clients match it, and the code.
    (message == "PersistedQueryNotFound").then_some(ErrorCode::PersistedQueryNotFound)
}

/// A clearer message for an error async-graphql raised itself, where there is one (see
/// [`super::coercion_messages`]).
pub fn request_error_message(message: &str) -> Option<String> {
    super::coercion_messages::explain(message)
}

/// Converts a service error into a GraphQL error; internal details are logged, never returned.
pub fn api_error(error: ServiceError) -> async_graphql::Error {
    let code = error.code();
    let message = match &error {
        ServiceError::Internal(detail) => {
            error!(error = %detail, "request failed");
            "internal error; the failure was logged".to_owned()
        }
        other => other.to_string(),
    };
    async_graphql::Error::new(message).extend_with(|_, extensions| {
        extensions.set("code", code.as_str());
        match &error {
            ServiceError::Invalid(DomainError::InvalidInput { field, .. }) => {
                extensions.set("field", field.as_str())
            }
            ServiceError::Invalid(DomainError::InvalidAttribute { attribute, .. }) => {
                extensions.set("attribute", attribute.as_str())
            }
            ServiceError::Invalid(DomainError::InvalidIdentity { kind, .. }) => {
                extensions.set("kind", kind.to_uppercase())
            }
            ServiceError::IdentityTaken { kind, .. } => extensions.set("field", *kind),
            ServiceError::IdentityNotVerified { reason, .. } => {
                extensions.set("reason", reason.as_str())
            }
            ServiceError::InvalidSegment(diagnostics)
            | ServiceError::ForbiddenSegment(diagnostics) => {
                let list: Vec<async_graphql::Value> =
                    diagnostics.iter().map(diagnostic_value).collect();
                extensions.set("diagnostics", async_graphql::Value::List(list));
            }
            _ => {}
        }
    })
}

/// A segment diagnostic as an extension value: message, code, byte span and hint.
fn diagnostic_value(diagnostic: &qwry_segment::Diagnostic) -> async_graphql::Value {
    let mut object = async_graphql::indexmap::IndexMap::new();
    object.insert(
        async_graphql::Name::new("message"),
        async_graphql::Value::from(diagnostic.message.as_str()),
    );
    object.insert(
        async_graphql::Name::new("code"),
        async_graphql::Value::from(diagnostic.code.as_str()),
    );
    object.insert(
        async_graphql::Name::new("start"),
        async_graphql::Value::from(diagnostic.span.start as u64),
    );
    object.insert(
        async_graphql::Name::new("end"),
        async_graphql::Value::from(diagnostic.span.end as u64),
    );
    let hint = diagnostic
        .hint
        .as_deref()
        .map_or(async_graphql::Value::Null, async_graphql::Value::from);
    object.insert(async_graphql::Name::new("hint"), hint);
    async_graphql::Value::Object(object)
}

/// `?`-friendly conversion of service results in resolvers.
pub trait ApiResult<T> {
    /// Maps the error through [`api_error`].
    fn api(self) -> async_graphql::Result<T>;

    /// Maps the error through [`api_error`], adding what `caller` may see of it: the holder
    /// of a taken email or phone (`extensions.holderId`) for keys with `contacts:read` that may
    /// read that field (otherwise the holder would tell who has a value the key may not see).
    fn api_for(self, caller: &Caller) -> async_graphql::Result<T>;
}

impl<T, E: Into<ServiceError>> ApiResult<T> for Result<T, E> {
    fn api(self) -> async_graphql::Result<T> {
        self.map_err(|error| api_error(error.into()))
    }

    fn api_for(self, caller: &Caller) -> async_graphql::Result<T> {
        self.map_err(|error| {
            let error = error.into();
            let holder = match &error {
                ServiceError::IdentityTaken { holder, kind, .. }
                    if caller.allows(Scope::ContactsRead) && caller.policy.allows_builtin(kind) =>
                {
                    Some(holder.to_string())
                }
                _ => None,
            };
            let mut api = api_error(error);
            if let Some(holder) = holder {
                api = api.extend_with(|_, extensions| extensions.set("holderId", holder));
            }
            api
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_code_is_an_enum_value_under_its_wire_name() {
        for code in crate::service::ErrorCode::ALL {
            assert_eq!(
                super::ErrorCodeView::of_wire(code.as_str()),
                Some(super::ErrorCodeView::from(code)),
                "{}",
                code.as_str()
            );
        }
        assert_eq!(super::ErrorCodeView::of_wire("NOPE"), None);
    }
    use super::*;
    use crate::service::InternalError;

    #[test]
    fn internal_errors_get_a_code_and_a_generic_message() {
        let error = api_error(ServiceError::Internal(InternalError::StoredValue {
            record: "disk".to_owned(),
            problem: "fire at /var/db".to_owned(),
        }));
        assert_eq!(error.message, "internal error; the failure was logged");
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .cloned();
        assert_eq!(code, Some(async_graphql::Value::from("INTERNAL")));
    }

    #[test]
    fn invalid_input_names_the_field() {
        let error = api_error(ServiceError::invalid("email", "bad email"));
        let extensions = error.extensions.unwrap();
        assert_eq!(
            extensions.get("code"),
            Some(&async_graphql::Value::from("INVALID_INPUT"))
        );
        assert_eq!(
            extensions.get("field"),
            Some(&async_graphql::Value::from("email"))
        );
    }
}
