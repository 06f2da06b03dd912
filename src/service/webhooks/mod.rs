//! Signed webhooks (Standard Webhooks): endpoints per workspace, which endpoints each change goes
//! to and with which body (`routing.rs`, `body.rs`: the membership engine asks, and records the
//! answer in a durable outbox in the transaction that records what it is about), and a dispatcher
//! that delivers it at least once, in order per contact, with retries over about a day.

mod body;
mod dispatcher;
mod lanes;
mod routing;
mod sender;

pub use dispatcher::{Dispatcher, settle};
pub use routing::deliveries;
pub use sender::{Attempt, Sender};

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;

use crate::domain::{
    Caller, MAX_WEBHOOKS, Scope, Slug, Webhook, WebhookDelivery, WebhookEvent, WebhookId,
    message_id, parse_webhook_url,
};
use crate::service::catalog_cache::Catalogs;
use crate::service::error::{InternalError, ServiceError};
use crate::store::Store;
use crate::telemetry::Metrics;

/// Most deliveries one page of `webhookDeliveries` returns.
pub const MAX_DELIVERY_PAGE: usize = 200;

/// What `createWebhook` asks for.
#[derive(Debug, Clone)]
pub struct WebhookInput {
    /// Where to POST.
    pub url: String,
    /// What to be told about (at least one).
    pub events: Vec<WebhookEvent>,
    /// Saved segments whose membership to be told about (empty: all).
    pub segments: Vec<String>,
}

/// A new endpoint or a new secret, with the secret shown this once.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub webhook: Webhook,
    /// `whsec_` and the base64 of 32 random bytes.
    pub secret: String,
}

/// A page of an endpoint's delivery log, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// The deliveries.
    pub deliveries: Vec<WebhookDelivery>,
    /// Whether older ones follow.
    pub has_more: bool,
}

/// Managing endpoints and reading their logs (admin keys only).
#[derive(Clone)]
pub struct WebhookService {
    store: Store,
    catalogs: Catalogs,
    sender: Arc<Sender>,
    metrics: Arc<Metrics>,
    lease: Option<Arc<crate::service::lease::Lease>>,
}

impl WebhookService {
    /// Endpoints in `catalogs`, stored in `store`, sent to by `sender`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        sender: Arc<Sender>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            catalogs,
            sender,
            metrics,
            lease: None,
        }
    }

    /// This service, whose dispatcher sends only while it holds `lease`.
    pub fn led_by(mut self, lease: Arc<crate::service::lease::Lease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// The dispatcher of the outbox.
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            self.catalogs.clone(),
            Arc::clone(&self.sender),
            Arc::clone(&self.metrics),
        )
        .led_by(self.lease.clone())
    }

    /// Creates an endpoint and its signing secret.
    pub async fn create(
        &self,
        caller: &Caller,
        input: WebhookInput,
    ) -> Result<CreatedWebhook, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        let url = parse_webhook_url(&input.url, self.sender.allows_private())?;
        let mut events = input.events;
        events.dedup();
        if events.is_empty() {
            return Err(ServiceError::invalid(
                "events",
                "name at least one event: SEGMENT_MEMBERSHIP or CONTACT_CHANGED",
            ));
        }
        let state = self.catalogs.workspace(&caller.workspace);
        if state.webhooks.len() >= MAX_WEBHOOKS {
            return Err(ServiceError::Conflict(format!(
                "a workspace has at most {MAX_WEBHOOKS} webhooks; delete one first"
            )));
        }
        let mut segments = Vec::new();
        for raw in input.segments {
            let slug = Slug::parse(raw.trim()).map_err(ServiceError::from)?;
            if state.segment(&slug).is_none() {
                return Err(ServiceError::NotFound(format!(
                    "no saved segment `{slug}`; webhooks follow saved segments"
                )));
            }
            if !segments.contains(&slug) {
                segments.push(slug);
            }
        }
        let webhook = Webhook {
            id: WebhookId::generate(),
            workspace: caller.workspace.clone(),
            url: url.to_string(),
            events,
            segments,
            created_at: Utc::now(),
            disabled_at: None,
            disabled_reason: None,
        };
        let secret = new_secret()?;
        self.store.create_webhook(&webhook, &secret).await?;
        self.catalogs.refresh(&caller.workspace).await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Every endpoint of the caller's workspace, oldest first.
    pub fn list(&self, caller: &Caller) -> Result<Vec<Webhook>, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        Ok(self.catalogs.workspace(&caller.workspace).webhooks.clone())
    }

    /// The endpoint `raw_id` of the caller's workspace.
    pub fn get(&self, caller: &Caller, raw_id: &str) -> Result<Webhook, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        let id = WebhookId::parse(raw_id)?;
        self.catalogs
            .workspace(&caller.workspace)
            .webhooks
            .iter()
            .find(|hook| hook.id == id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("no webhook `{id}`")))
    }

    /// Up to `first` deliveries of the endpoint older than message `after`, newest first.
    pub async fn deliveries(
        &self,
        caller: &Caller,
        raw_id: &str,
        after: Option<&str>,
        first: usize,
    ) -> Result<DeliveryPage, ServiceError> {
        let hook = self.get(caller, raw_id)?;
        if let Some(after) = after {
            let valid = after
                .strip_prefix("msg_")
                .is_some_and(|rest| ulid::Ulid::from_string(rest).is_ok());
            if !valid {
                return Err(ServiceError::invalid(
                    "after",
                    format!("`{after}` is not a delivery cursor"),
                ));
            }
        }
        let first = first.min(MAX_DELIVERY_PAGE);
        let mut deliveries = self
            .store
            .webhook_deliveries(&caller.workspace, &hook.id, after, first + 1)
            .await?;
        let has_more = deliveries.len() > first;
        deliveries.truncate(first);
        Ok(DeliveryPage {
            deliveries,
            has_more,
        })
    }

    /// How many deliveries the endpoint's log holds.
    pub async fn delivery_count(&self, caller: &Caller, raw_id: &str) -> Result<u64, ServiceError> {
        let hook = self.get(caller, raw_id)?;
        Ok(self
            .store
            .count_webhook_deliveries(&caller.workspace, &hook.id)
            .await?)
    }

    /// Replaces the endpoint's signing secret; the old one signs nothing from now on.
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        raw_id: &str,
    ) -> Result<CreatedWebhook, ServiceError> {
        let webhook = self.get(caller, raw_id)?;
        let secret = new_secret()?;
        if !self.store.rotate_webhook_secret(&webhook, &secret).await? {
            return Err(ServiceError::NotFound(format!(
                "no webhook `{}`",
                webhook.id
            )));
        }
        self.catalogs.refresh(&caller.workspace).await?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// Deletes the endpoint; its delivery log and undelivered messages are purged in the
    /// background, a thousand per transaction, so a long log does not hold the request.
    pub async fn delete(&self, caller: &Caller, raw_id: &str) -> Result<Webhook, ServiceError> {
        let webhook = self.get(caller, raw_id)?;
        if !self
            .store
            .delete_webhook(&caller.workspace, &webhook.id)
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "no webhook `{}`",
                webhook.id
            )));
        }
        self.catalogs.refresh(&caller.workspace).await?;
        let (store, workspace, id) = (
            self.store.clone(),
            caller.workspace.clone(),
            webhook.id.clone(),
        );
        tokio::spawn(async move {
            if let Err(error) = store.purge_webhook_deliveries(&workspace, &id).await {
                tracing::warn!(%error, webhook = %id, "purging a deleted webhook's deliveries failed");
            }
        });
        Ok(webhook)
    }

    /// Sends a `webhook.test` message now, once, and logs it with the endpoint's deliveries.
    pub async fn test(
        &self,
        caller: &Caller,
        raw_id: &str,
    ) -> Result<WebhookDelivery, ServiceError> {
        let webhook = self.get(caller, raw_id)?;
        let secret = self
            .store
            .webhook_secret(&caller.workspace, &webhook.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no webhook `{}`", webhook.id)))?;
        let now = Utc::now();
        let body = body::test(webhook.id.as_str(), now);
        let mut delivery =
            WebhookDelivery::pending(message_id(), &webhook, None, body::TEST_EVENT, body, now);
        let attempt = self
            .sender
            .send(&webhook.url, &delivery.id, &delivery.payload, &secret, now)
            .await;
        settle(&mut delivery, attempt, Utc::now());
        // A test is tried once: it is a check, not a message to keep sending.
        if delivery.status == crate::domain::DeliveryStatus::Pending {
            delivery.status = crate::domain::DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
        }
        self.store.save_delivery(&delivery).await?;
        Ok(delivery)
    }
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
fn new_secret() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(InternalError::Randomness)?;
    Ok(format!("whsec_{}", STANDARD.encode(bytes)))
}
