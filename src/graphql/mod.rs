//! The GraphQL API: roots merged per area, thin resolvers over the services.

mod attributes;
mod connection;
mod contacts;
pub mod error;
mod identity;
mod imports;
mod merges;
mod segment_input;
mod segments;
mod views;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

use crate::domain::WorkspaceId;
use crate::service::{ServiceError, Services};

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 12;
/// Highest query complexity accepted.
pub const MAX_COMPLEXITY: usize = 2_000;

/// Every query field.
#[derive(MergedObject)]
pub struct QueryRoot(
    contacts::ContactQuery,
    attributes::AttributeQuery,
    segments::SegmentQuery,
    identity::IdentityQuery,
    merges::MergeQuery,
    imports::ImportQuery,
);

/// Every mutation field.
#[derive(MergedObject)]
pub struct MutationRoot(
    contacts::ContactMutation,
    attributes::AttributeMutation,
    segments::SegmentMutation,
    identity::IdentityMutation,
    merges::MergeMutation,
);

/// The executable schema.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Who is asking, attached to every request by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The workspace every read and write of the request is confined to.
    pub workspace: WorkspaceId,
    /// Who acts, as recorded in audit trails (an API key id once keys exist).
    pub actor: String,
}

impl Default for RequestContext {
    fn default() -> Self {
        Self {
            workspace: WorkspaceId::default(),
            actor: "api".to_owned(),
        }
    }
}

/// Who acts in the current request, for audit records.
fn actor<'a>(ctx: &'a Context<'_>) -> &'a str {
    ctx.data_opt::<RequestContext>()
        .map_or("api", |request| request.actor.as_str())
}

/// The workspace of the current request. The HTTP layer attaches a [`RequestContext`] to every
/// request; its absence is a server bug, reported as INTERNAL rather than guessed.
fn workspace<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a WorkspaceId> {
    ctx.data_opt::<RequestContext>()
        .map(|request| &request.workspace)
        .ok_or_else(|| {
            error::api_error(ServiceError::Internal(
                "request without a RequestContext".to_owned(),
            ))
        })
}

/// The services, for resolvers of nested objects (roots hold their own handle).
fn services<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Services> {
    ctx.data_opt::<Services>().ok_or_else(|| {
        error::api_error(ServiceError::Internal(
            "schema built without services".to_owned(),
        ))
    })
}

/// Builds the schema with its limits, serving `services`.
pub fn build_schema(services: Services) -> ApiSchema {
    let query = QueryRoot(
        contacts::ContactQuery::new(services.clone()),
        attributes::AttributeQuery::new(services.clone()),
        segments::SegmentQuery::new(services.clone()),
        identity::IdentityQuery::new(services.clone()),
        merges::MergeQuery::new(services.clone()),
        imports::ImportQuery::new(services.clone()),
    );
    let mutation = MutationRoot(
        contacts::ContactMutation::new(services.clone()),
        attributes::AttributeMutation::new(services.clone()),
        segments::SegmentMutation::new(services.clone()),
        identity::IdentityMutation::new(services.clone()),
        merges::MergeMutation::new(services.clone()),
    );
    Schema::build(query, mutation, EmptySubscription)
        .data(services)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}
