//! The outbox's dispatcher: sends pending deliveries when they are due, each contact's in the
//! order they were enqueued (a contact's next waits until the one before it is delivered or
//! given up), different contacts and endpoints side by side.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::{broadcast, watch};

use crate::service::Lease;
use tracing::warn;

use super::sender::{Attempt, Sender};
use crate::domain::{DeliveryStatus, Webhook, WebhookDelivery};
use crate::service::Catalogs;
use crate::service::live::FeedEvent;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Pending deliveries read per endpoint and round (each endpoint gets its share).
const ROUND_SIZE: usize = 1_000;
/// Attempts in flight at once.
const CONCURRENCY: usize = 16;
/// How often the outbox is read without being woken (deliveries another instance enqueued,
/// retries coming due).
const POLL: Duration = Duration::from_secs(1);

/// Sends what the outbox holds.
pub struct Dispatcher {
    store: Store,
    catalogs: Catalogs,
    sender: Arc<Sender>,
    metrics: Arc<Metrics>,
    /// With several instances on one store, only the holder of this lease sends.
    lease: Option<Arc<Lease>>,
}

impl Dispatcher {
    /// A dispatcher of `store`'s outbox to the endpoints in `catalogs`.
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

    /// This dispatcher, sending only while it holds `lease` (several instances on one store).
    pub fn led_by(mut self, lease: Option<Arc<Lease>>) -> Self {
        self.lease = lease;
        self
    }

    /// Sends due deliveries until `shutdown` turns true, woken by `events` when the engine
    /// records something and otherwise every second or when a retry comes due.
    pub async fn run(
        self: Arc<Self>,
        mut events: broadcast::Receiver<FeedEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let sending = match &self.lease {
                Some(lease) => lease.held().await,
                None => true,
            };
            let round = if sending {
                self.round().await
            } else {
                Ok(None)
            };
            let wait = match round {
                Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or_default().min(POLL),
                Ok(None) => POLL,
                Err(error) => {
                    warn!(%error, "reading the webhook outbox failed; trying again");
                    POLL
                }
            };
            tokio::select! {
                woken = events.recv() => {
                    if matches!(woken, Err(broadcast::error::RecvError::Closed)) {
                        tokio::time::sleep(wait).await;
                    }
                }
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Sends every due delivery that heads its contact's queue; returns when the next one
    /// not yet due comes due.
    pub async fn round(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut next_due: Option<DateTime<Utc>> = None;
        let mut sent = 0;
        for workspace in self.catalogs.workspaces() {
            let state = self.catalogs.workspace(&workspace);
            for hook in state
                .webhooks
                .iter()
                .filter(|hook| hook.disabled_at.is_none())
            {
                let (count, due) = self.round_of(hook).await?;
                sent += count;
                next_due = match (next_due, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        if sent > 0 {
            // What was sent may have freed the next of its contact's queue.
            return Ok(Some(Utc::now()));
        }
        Ok(next_due)
    }

    /// One round of `hook`'s queue: its due heads sent side by side, their outcomes saved in
    /// one transaction. Returns how many were sent and when the next not yet due comes due.
    async fn round_of(&self, hook: &Webhook) -> Result<(usize, Option<DateTime<Utc>>), StoreError> {
        let started = std::time::Instant::now();
        let pending = self
            .store
            .pending_deliveries(&hook.workspace, &hook.id, ROUND_SIZE)
            .await?;
        let read = started.elapsed();
        let pending_read = pending.len();
        let (heads, next_due) = due_heads(pending, Utc::now());
        if heads.is_empty() {
            return Ok((0, next_due));
        }
        let Some(secret) = self.store.webhook_secret(&hook.workspace, &hook.id).await? else {
            return Ok((0, None));
        };
        let secret = secret.as_str();
        let settled: Vec<(WebhookDelivery, Attempt)> = futures_util::stream::iter(heads)
            .map(|mut delivery| async move {
                let attempt = self
                    .sender
                    .send(
                        &hook.url,
                        &delivery.id,
                        &delivery.payload,
                        secret,
                        Utc::now(),
                    )
                    .await;
                self.metrics
                    .webhook_attempt(settle(&mut delivery, attempt.clone(), Utc::now()));
                (delivery, attempt)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let sent = started.elapsed();
        let gone = settled.iter().any(|(_, attempt)| *attempt == Attempt::Gone);
        let deliveries: Vec<WebhookDelivery> =
            settled.into_iter().map(|(delivery, _)| delivery).collect();
        self.store.save_attempts(&deliveries).await?;
        tracing::debug!(
            pending = pending_read,
            sent = deliveries.len(),
            read_ms = read.as_millis(),
            send_ms = (sent - read).as_millis(),
            save_ms = (started.elapsed() - sent).as_millis(),
            "webhook round"
        );
        if gone {
            self.store
                .disable_webhook(hook, Utc::now(), "the endpoint answered 410 Gone")
                .await?;
            if let Err(error) = self.catalogs.reload(&hook.workspace).await {
                warn!(%error, "reloading the catalogue after disabling a webhook failed");
            }
        }
        Ok((deliveries.len(), next_due))
    }
}

/// The deliveries of `pending` (one endpoint's, in message order) that head their contact's
/// queue and are due at `now`, and when the first head not yet due comes due.
fn due_heads(
    pending: Vec<WebhookDelivery>,
    now: DateTime<Utc>,
) -> (Vec<WebhookDelivery>, Option<DateTime<Utc>>) {
    let mut heads = Vec::new();
    let mut queued = HashSet::new();
    let mut next_due: Option<DateTime<Utc>> = None;
    for delivery in pending {
        let queue = delivery
            .contact
            .map_or_else(|| delivery.id.clone(), |id| id.to_string());
        if !queued.insert(queue) {
            continue;
        }
        match delivery.next_attempt_at {
            Some(at) if at > now => next_due = Some(next_due.map_or(at, |due| due.min(at))),
            _ => heads.push(delivery),
        }
    }
    (heads, next_due)
}

/// Writes the outcome of an attempt into `delivery`; returns the outcome's metric label.
pub fn settle(
    delivery: &mut WebhookDelivery,
    attempt: Attempt,
    now: DateTime<Utc>,
) -> &'static str {
    delivery.attempts += 1;
    match attempt {
        Attempt::Delivered { status } => {
            delivery.status = DeliveryStatus::Delivered;
            delivery.delivered_at = Some(now);
            delivery.next_attempt_at = None;
            delivery.last_status = Some(status);
            delivery.last_error = None;
            "delivered"
        }
        Attempt::Gone => {
            delivery.status = DeliveryStatus::Failed;
            delivery.next_attempt_at = None;
            delivery.last_status = Some(410);
            delivery.last_error =
                Some("the endpoint answered 410 Gone and was disabled".to_owned());
            "disabled"
        }
        Attempt::Failed {
            status,
            error,
            retry_after,
        } => {
            delivery.last_status = status;
            delivery.last_error = Some(error);
            match WebhookDelivery::next_retry(delivery.attempts, now, retry_after) {
                Some(at) => {
                    delivery.next_attempt_at = Some(at);
                    "retry"
                }
                None => {
                    delivery.status = DeliveryStatus::Failed;
                    delivery.next_attempt_at = None;
                    "failed"
                }
            }
        }
    }
}
