//! Webhook administration (scope `admin`): endpoints, their secrets (shown once) and their
//! delivery logs.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::args::page_size;
use super::caller;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::page::{Connection, CountList, DEFAULT_PAGE_SIZE, Total, page_complexity};
use super::webhook_view::{EventType, WebhookView};
use crate::domain::{DeliveryStatus, Scope, WebhookDelivery, WebhookEvent};
use crate::service::{CreatedWebhook, InternalError, ServiceError, Services, WebhookInput};

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "WebhookDeliveryStatus")]
pub enum StatusView {
    /// Waiting for its first attempt or its next retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up (retries exhausted, or the endpoint was disabled).
    Failed,
}

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where deliveries are POSTed (http or https; private and loopback addresses are
    /// refused unless `WEBHOOK_ALLOW_PRIVATE_TARGETS=true`).
    url: String,
    /// What it is told about.
    events: Vec<EventType>,
    /// Saved segments whose membership it is told about; all when omitted or empty.
    segments: Option<Vec<String>>,
}

/// The result of `createWebhook`: the endpoint with its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct CreateWebhookPayload {
    /// The endpoint.
    webhook: WebhookView,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    secret: String,
}

impl From<CreatedWebhook> for CreateWebhookPayload {
    fn from(created: CreatedWebhook) -> Self {
        Self {
            webhook: created.webhook.into(),
            secret: created.secret,
        }
    }
}

/// The result of `rotateWebhookSecret`: the endpoint with its new secret, shown this once.
#[derive(SimpleObject)]
pub struct RotateWebhookSecretPayload {
    /// The endpoint.
    webhook: WebhookView,
    /// The new `whsec_…`; the old one signs nothing from now on.
    secret: String,
}

impl From<CreatedWebhook> for RotateWebhookSecretPayload {
    fn from(rotated: CreatedWebhook) -> Self {
        let CreateWebhookPayload { webhook, secret } = rotated.into();
        Self { webhook, secret }
    }
}

/// Input of `rotateWebhookSecret`.
#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    /// The endpoint.
    id: ID,
}

/// Input of `deleteWebhook`.
#[derive(InputObject)]
pub struct DeleteWebhookInput {
    /// The endpoint.
    id: ID,
}

/// The result of `deleteWebhook`.
#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    /// The id of the endpoint deleted.
    deleted_id: ID,
    /// The endpoint as it was.
    webhook: WebhookView,
}

/// Input of `testWebhook`.
#[derive(InputObject)]
pub struct TestWebhookInput {
    /// The endpoint.
    id: ID,
}

/// The result of `testWebhook`.
#[derive(SimpleObject)]
pub struct TestWebhookPayload {
    /// The test message's delivery, as logged.
    delivery: DeliveryView,
}

/// What a message to an endpoint is about: the `type` of its body.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "WebhookMessageType")]
pub enum MessageType {
    /// `segment.membership`: a contact entered or left a saved segment.
    SegmentMembership,
    /// `contact.changed`: a contact was written, merged or deleted.
    ContactChanged,
    /// `contact.erased`: a contact was erased by `eraseContacts`.
    ContactErased,
    /// `webhook.test`: a message sent by `testWebhook`.
    WebhookTest,
}

impl MessageType {
    /// The type a body names (`segment.membership`, ...).
    fn of(body_type: &str) -> Option<Self> {
        match body_type {
            "segment.membership" => Some(Self::SegmentMembership),
            "contact.changed" => Some(Self::ContactChanged),
            "contact.erased" => Some(Self::ContactErased),
            "webhook.test" => Some(Self::WebhookTest),
            _ => None,
        }
    }
}

/// One message to an endpoint and how its attempts went.
#[derive(SimpleObject, Clone)]
#[graphql(name = "WebhookDelivery", complex)]
pub struct DeliveryView {
    /// The message id, sent as `webhook-id` (the same on every attempt: deduplicate by it).
    id: ID,
    /// `segment.membership`, `contact.changed` or `webhook.test`.
    #[graphql(deprecation = "use `messageType`, an enum")]
    event_type: String,
    /// The contact it is about.
    contact_id: Option<ID>,
    /// The JSON body sent, as text.
    #[graphql(
        deprecation = "Use `body`, the same JSON as a value; `payload` goes in the next release."
    )]
    payload: String,
    /// Where it stands.
    status: StatusView,
    /// Attempts made.
    attempts: i32,
    /// When it was enqueued.
    created_at: DateTime<Utc>,
    /// When it is tried next (pending only).
    next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when the endpoint answered.
    last_status: Option<i32>,
    /// What went wrong in the last attempt.
    last_error: Option<String>,
    /// When it was delivered.
    delivered_at: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl DeliveryView {
    /// The JSON body sent.
    async fn body(&self) -> async_graphql::Result<Json<JsonValue>> {
        serde_json::from_str(&self.payload)
            .map(Json)
            .map_err(|error| {
                ServiceError::Internal(InternalError::StoredValue {
                    record: format!("delivery `{}`", self.id.as_str()),
                    problem: format!("a body that is not JSON ({error})"),
                })
            })
            .api()
    }

    /// What the message is about (its body's `type`).
    async fn message_type(&self) -> async_graphql::Result<MessageType> {
        MessageType::of(&self.event_type)
            .ok_or_else(|| {
                ServiceError::Internal(InternalError::StoredValue {
                    record: format!("delivery `{}`", self.id.as_str()),
                    problem: format!("the unknown type `{}`", self.event_type),
                })
            })
            .api()
    }
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(delivery: WebhookDelivery) -> Self {
        Self {
            id: ID(delivery.id),
            event_type: delivery.event_type,
            contact_id: delivery.contact.map(|id| ID(id.to_string())),
            payload: delivery.payload,
            status: match delivery.status {
                DeliveryStatus::Pending => StatusView::Pending,
                DeliveryStatus::Delivered => StatusView::Delivered,
                DeliveryStatus::Failed => StatusView::Failed,
            },
            attempts: i32::try_from(delivery.attempts).unwrap_or(i32::MAX),
            created_at: delivery.created_at,
            next_attempt_at: delivery.next_attempt_at,
            last_status: delivery.last_status.map(i32::from),
            last_error: delivery.last_error,
            delivered_at: delivery.delivered_at,
        }
    }
}

/// Webhook queries.
pub struct WebhookQuery {
    services: Services,
}

impl WebhookQuery {
    /// Reads through `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Webhook queries.
#[Object]
impl WebhookQuery {
    /// The workspace's webhook endpoints, oldest first.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<WebhookView>> {
        let hooks = self.services.webhooks.list(&*caller(ctx)?).api()?;
        Ok(hooks.into_iter().map(WebhookView::from).collect())
    }

    /// An endpoint's deliveries, newest first: what was sent, how often, and how it went.
    #[graphql(
        guard = "RequireScope(Scope::Admin)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        webhook_id: ID,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<DeliveryView>> {
        let caller = caller(ctx)?;
        let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
        let page = self
            .services
            .webhooks
            .deliveries(&caller, &webhook_id, after.as_deref(), first)
            .await
            .api()?;
        let items = page
            .deliveries
            .into_iter()
            .map(|delivery| (delivery.id.clone(), DeliveryView::from(delivery)))
            .collect();
        let webhooks = self.services.webhooks.clone();
        let count: CountList = Box::new(move || {
            let (webhooks, caller, id) = (webhooks.clone(), caller.clone(), webhook_id.clone());
            Box::pin(async move { webhooks.delivery_count(&caller, &id).await })
        });
        Ok(Connection::of_page(
            items,
            page.has_more,
            after,
            Total::Counted(count),
        ))
    }
}

/// Webhook mutations.
pub struct WebhookMutation {
    services: Services,
}

impl WebhookMutation {
    /// Writes through `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Webhook mutations.
#[Object]
impl WebhookMutation {
    /// Creates an endpoint; the answer carries its signing secret, shown this once.
    /// Deliveries are JSON bodies signed as Standard Webhooks prescribe (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`), sent at least
    /// once, in order per contact, retried with backoff for about a day.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<CreateWebhookPayload> {
        let input = WebhookInput {
            url: input.url,
            events: input.events.into_iter().map(WebhookEvent::from).collect(),
            segments: input.segments.unwrap_or_default(),
        };
        let created = self
            .services
            .webhooks
            .create(&*caller(ctx)?, input)
            .await
            .api()?;
        Ok(created.into())
    }

    /// Replaces an endpoint's signing secret; the new one is shown this once.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> async_graphql::Result<RotateWebhookSecretPayload> {
        let rotated = self
            .services
            .webhooks
            .rotate_secret(&*caller(ctx)?, &input.id)
            .await
            .api()?;
        Ok(rotated.into())
    }

    /// Deletes an endpoint with its delivery log; nothing more is sent to it.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        input: DeleteWebhookInput,
    ) -> async_graphql::Result<DeleteWebhookPayload> {
        let deleted = self
            .services
            .webhooks
            .delete(&*caller(ctx)?, &input.id)
            .await
            .api()?;
        Ok(DeleteWebhookPayload {
            deleted_id: input.id,
            webhook: deleted.into(),
        })
    }

    /// Sends a signed `webhook.test` message to the endpoint now, once, and answers how it
    /// went (it is logged with the endpoint's deliveries).
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn test_webhook(
        &self,
        ctx: &Context<'_>,
        input: TestWebhookInput,
    ) -> async_graphql::Result<TestWebhookPayload> {
        let delivery = self
            .services
            .webhooks
            .test(&*caller(ctx)?, &input.id)
            .await
            .api()?;
        Ok(TestWebhookPayload {
            delivery: delivery.into(),
        })
    }
}
