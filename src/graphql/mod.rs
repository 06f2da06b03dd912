//! The GraphQL API: roots merged per area, thin resolvers over the services. Roots never
//! import each other: what several share lives in `args` (inputs), `views`, `identity_view`,
//! `segment_view`, `merge_view`, `key_view`, `webhook_view`, `page`, `contact_page` and `cursor`
//! (outputs).

mod access_log;
mod activity;
mod activity_view;
mod args;
mod attributes;
mod checked_documents;
mod coercion_messages;
mod consents;
mod contact_page;
mod contacts;
mod cursor;
mod erasure;
pub mod error;
mod gate;
mod guard;
mod identity;
mod identity_view;
mod imports;
mod json_value;
mod key_view;
mod keys;
mod limits;
mod live;
mod lookup;
mod merge_view;
mod merges;
mod node;
mod page;
mod page_batch;
mod persisted;
mod segment_input;
mod segment_view;
mod segments;
mod views;
mod webhook_view;
mod webhooks;

pub use gate::{Prepared, RequestGate};

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{BatchRequest, Context, MergedObject, Schema};
use tokio::sync::watch;

pub use live::SubscriptionRoot;

use crate::domain::{Caller, WorkspaceId, sensitive_names};
use crate::service::{InternalError, ServiceError, Services};

/// Highest query complexity accepted.
pub const MAX_COMPLEXITY: usize = 2_000;

/// Every query field.
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    contacts::ContactQuery,
    attributes::AttributeQuery,
    segments::SegmentQuery,
    identity::IdentityQuery,
    merges::MergeQuery,
    imports::ImportQuery,
    keys::KeyQuery,
    live::LiveQuery,
    webhooks::WebhookQuery,
    node::NodeQuery,
);

/// Every mutation field.
#[derive(MergedObject)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    contacts::ContactMutation,
    attributes::AttributeMutation,
    segments::SegmentMutation,
    identity::IdentityMutation,
    merges::MergeMutation,
    keys::KeyMutation,
    activity::ActivityMutation,
    webhooks::WebhookMutation,
);

/// The executable schema.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who an operation acts for. A request's caller is fixed when it is authenticated; a
/// subscription over a socket follows its key as it stands now, so a narrowed scope or field
/// policy applies to its next message (a revoked key closes the socket).
#[derive(Clone)]
pub enum CallerSource {
    /// The caller as authenticated for this request.
    Fixed(Arc<Caller>),
    /// The key's current caller, updated by the socket when the key changes.
    Live(watch::Receiver<Arc<Caller>>),
}

impl CallerSource {
    /// The caller as of now.
    pub fn current(&self) -> Arc<Caller> {
        match self {
            Self::Fixed(caller) => Arc::clone(caller),
            Self::Live(current) => Arc::clone(&current.borrow()),
        }
    }
}

/// Where the current operation's caller comes from, attached by the HTTP layer. Its absence
/// is a server bug, reported as INTERNAL rather than guessed.
fn source<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a CallerSource> {
    ctx.data_opt::<CallerSource>().ok_or_else(|| {
        error::api_error(ServiceError::Internal(InternalError::Wiring(
            "request without an authenticated caller",
        )))
    })
}

/// The authenticated caller of the current operation, as of now.
fn caller(ctx: &Context<'_>) -> async_graphql::Result<Arc<Caller>> {
    source(ctx).map(CallerSource::current)
}

/// The current operation's caller source, to follow the key through a subscription.
fn caller_source(ctx: &Context<'_>) -> async_graphql::Result<CallerSource> {
    source(ctx).cloned()
}

/// Who acts in the current request (the API key id), for audit records.
fn actor(ctx: &Context<'_>) -> String {
    ctx.data_opt::<CallerSource>().map_or_else(
        || "unknown".to_owned(),
        |source| source.current().key_id.clone(),
    )
}

/// The workspace every read and write of the current request is confined to (a key never
/// changes workspace).
fn workspace(ctx: &Context<'_>) -> async_graphql::Result<WorkspaceId> {
    caller(ctx).map(|caller| caller.workspace.clone())
}

/// Per-request memo of the workspace's sensitive attribute names, so a page of contacts reads
/// the registry once.
#[derive(Default, Clone)]
pub struct SensitiveNames(Arc<std::sync::OnceLock<Arc<HashSet<String>>>>);

/// Names of the caller's workspace's sensitive attributes (read once per request).
async fn sensitive_attributes(
    ctx: &Context<'_>,
    workspace: &WorkspaceId,
) -> async_graphql::Result<Arc<HashSet<String>>> {
    let services = services(ctx)?;
    let load = || {
        Arc::new(sensitive_names(
            &services.catalogs.workspace(workspace).attributes,
        ))
    };
    Ok(match ctx.data_opt::<SensitiveNames>() {
        Some(memo) => Arc::clone(memo.0.get_or_init(load)),
        None => load(),
    })
}

/// Marks a request that may only query (it came by `GET`): a mutation is refused.
#[derive(Debug, Clone, Copy)]
pub struct ReadOnly;

/// Attaches what every request needs: the authenticated caller and per-request memos.
pub fn for_caller(batch: BatchRequest, caller: Caller) -> BatchRequest {
    batch
        .data(CallerSource::Fixed(Arc::new(caller)))
        .data(SensitiveNames::default())
}

/// Attaches to one operation over a socket who it acts for: a query or mutation runs as the
/// key stands when it starts (with per-request memos, like a request); a subscription
/// follows the key through `live` and reads the registry afresh for every message, so an
/// attribute made sensitive meanwhile is masked in the next one.
pub fn for_socket_operation(
    request: async_graphql::Request,
    live: &watch::Receiver<Arc<Caller>>,
    subscription: bool,
) -> async_graphql::Request {
    if subscription {
        request.data(CallerSource::Live(live.clone()))
    } else {
        let now = Arc::clone(&live.borrow());
        request
            .data(CallerSource::Fixed(now))
            .data(SensitiveNames::default())
    }
}

/// The services, for resolvers of nested objects (roots hold their own handle).
fn services<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Services> {
    ctx.data_opt::<Services>().ok_or_else(|| {
        error::api_error(ServiceError::Internal(InternalError::Wiring(
            "schema built without services",
        )))
    })
}

/// Builds the schema with its limits, serving `services`; `introspection` says whether it
/// answers introspection queries.
pub fn build_schema(
    services: Services,
    introspection: bool,
    default_rate: Option<crate::domain::KeyRate>,
) -> ApiSchema {
    let query = QueryRoot(
        contacts::ContactQuery::new(services.clone()),
        attributes::AttributeQuery::new(services.clone()),
        segments::SegmentQuery::new(services.clone()),
        identity::IdentityQuery::new(services.clone()),
        merges::MergeQuery::new(services.clone()),
        imports::ImportQuery::new(services.clone()),
        keys::KeyQuery::new(services.clone()),
        live::LiveQuery::new(services.clone()),
        webhooks::WebhookQuery::new(services.clone()),
        node::NodeQuery::new(services.clone()),
    );
    let mutation = MutationRoot(
        contacts::ContactMutation::new(services.clone()),
        attributes::AttributeMutation::new(services.clone()),
        segments::SegmentMutation::new(services.clone()),
        identity::IdentityMutation::new(services.clone()),
        merges::MergeMutation::new(services.clone()),
        keys::KeyMutation::new(services.clone()),
        activity::ActivityMutation::new(services.clone()),
        webhooks::WebhookMutation::new(services.clone()),
    );
    let builder = Schema::build(query, mutation, SubscriptionRoot::new(services.clone()))
        .data(services)
        .data(key_view::DefaultKeyRate(default_rate))
        .limit_complexity(MAX_COMPLEXITY);
    let schema = if introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    };
    coercion_messages::learn(&schema);
    schema
}
