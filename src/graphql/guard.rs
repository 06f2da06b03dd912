//! Scope checks on resolvers: a field guarded by [`RequireScope`] answers FORBIDDEN to a key
//! without that scope.

use async_graphql::{Context, Guard};

use super::caller;
use super::error::api_error;
use crate::domain::Scope;
use crate::service::ServiceError;

/// Lets the field resolve only for callers holding the scope (`admin` holds every scope).
pub struct RequireScope(pub Scope);

impl Guard for RequireScope {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ServiceError::require_scope(&*caller(ctx)?, self.0).map_err(api_error)
    }
}
