//! `node(id:)`: a record with a global id, found by that id alone (Relay's object
//! identification). Contacts and merges have ULIDs, API keys `key_…` and webhook endpoints
//! `wh_…`; each is checked as its own field would be (scope, field policy, workspace).

use async_graphql::{Context, ID, Interface, Object};

use super::caller;
use super::error::ApiResult;
use super::key_view::ApiKeyView;
use super::lookup::{ContactLookupInput, look_up};
use super::merge_view::MergeView;
use super::views::ContactView;
use super::webhook_view::WebhookView;
use crate::domain::{ApiKeyId, Caller, ContactId, MergeId, Scope, WebhookId};
use crate::service::{ServiceError, Services};

/// A record with an id unique across the API, which `node(id:)` finds again.
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(
        name = "id",
        ty = "ID",
        desc = "Its id, unique across every type of the API."
    )
)]
pub enum NodeView {
    /// A contact.
    Contact(Box<ContactView>),
    /// A merge.
    Merge(Box<MergeView>),
    /// An API key.
    ApiKey(ApiKeyView),
    /// A webhook endpoint.
    Webhook(WebhookView),
}

/// `node(id:)`.
pub struct NodeQuery {
    services: Services,
}

impl NodeQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// `node(id:)`.
#[Object]
impl NodeQuery {
    /// The contact, merge, API key or webhook endpoint with id `id`, checked as its own field
    /// checks it: a contact or merge needs `contacts:read` (and shows what the key's field
    /// policy allows; an id of a contact merged away resolves to the survivor), an API key
    /// or endpoint `admin`. NOT_FOUND if the workspace has no record with that id.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<NodeView>> {
        let caller = &*caller(ctx)?;
        self.find(caller, id).await.map(Some)
    }
}

impl NodeQuery {
    async fn find(&self, caller: &Caller, id: ID) -> async_graphql::Result<NodeView> {
        let services = &self.services;
        let workspace = &caller.workspace;
        if id.starts_with("key_") {
            ServiceError::require_scope(caller, Scope::Admin).api()?;
            let key_id = ApiKeyId::parse(&id).map_err(|_| not_found(&id)).api()?;
            let key = services.keys.get(workspace, &key_id).api()?;
            return Ok(NodeView::ApiKey(ApiKeyView(key)));
        }
        if id.starts_with("wh_") {
            ServiceError::require_scope(caller, Scope::Admin).api()?;
            if WebhookId::parse(&id).is_err() {
                return Err(not_found(&id)).api();
            }
            let hook = services.webhooks.get(caller, &id).api()?;
            return Ok(NodeView::Webhook(WebhookView::from(hook)));
        }
        ServiceError::require_scope(caller, Scope::ContactsRead).api()?;
        if ContactId::parse(&id).is_err() {
            return Err(not_found(&id)).api();
        }
        let by_id = ContactLookupInput::Id(id.clone());
        match look_up(services, caller, by_id).await {
            Ok(seen) => return Ok(NodeView::Contact(Box::new(seen.into_view()))),
            Err(ServiceError::NotFound(_)) => {}
            Err(other) => return Err(other).api(),
        }
        let merge_id = MergeId::parse(&id).map_err(|_| not_found(&id)).api()?;
        match services.merges.get(workspace, &merge_id).await {
            Ok(merge) => Ok(NodeView::Merge(Box::new(MergeView(merge)))),
            Err(ServiceError::NotFound(_)) => Err(not_found(&id)).api(),
            Err(other) => Err(other).api(),
        }
    }
}

/// NOT_FOUND for an id no record of the workspace has.
fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound(format!("no record with id `{id}`"))
}
