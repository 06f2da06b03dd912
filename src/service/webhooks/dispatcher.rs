//! The outbox's dispatcher: sends pending deliveries when they are due, each contact's in the
//! order they were enqueued (a contact's next waits until the one before it is delivered or
//! given up), different contacts side by side, and each endpoint in a lane of its own
//! ([`super::lanes`]). A round reads an endpoint's
//! retry lane and fresh lane (see the store's `outbox`), walks each contact's queue, and saves
//! the attempts, the lane changes and the cursor in one transaction; what it sent before a
//! crash is sent again (at least once). A round in which every attempt was delivered and the
//! retry lane played no part is saved in the background while the next round reads on from
//! where it read through (its lane's [`LaneMemory`]); any other round first waits for the saves
//! under way and then saves in line, so a contact's retry never overtakes it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::service::lease::Lease;
use tracing::warn;

use super::sender::{Attempt, Sender};
use crate::domain::{DeliveryStatus, Webhook, WebhookDelivery};
use crate::service::catalog_cache::Catalogs;
use crate::store::{RoundOutcome, Store, StoreError};
use crate::telemetry::Metrics;
use crate::telemetry::supervise::catch_panic;

/// The name under which a panic in one attempt is logged and counted.
const ATTEMPT_TASK: &str = "webhook-attempt";
/// Pending deliveries read per endpoint and round (each endpoint gets its share).
const ROUND_SIZE: usize = 1_000;
/// Attempts in flight at once in one endpoint's lane.
const CONCURRENCY: usize = 8;

/// Sends what the outbox holds, one lane per endpoint (see [`super::lanes`]).
pub struct Dispatcher {
    store: Store,
    pub(super) catalogs: Catalogs,
    sender: Arc<Sender>,
    pub(super) metrics: Arc<Metrics>,
    /// With several instances on one store, only the holder of this lease sends.
    pub(super) lease: Option<Arc<Lease>>,
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

    /// One round of `hook`'s outbox: each contact's queue walked in order, queues side by
    /// side, what happened saved in one transaction (in the background when the whole round
    /// was delivered; see the module documentation). Returns how many were sent, when the
    /// next not yet due comes due, and whether the fresh lane holds more than was read.
    pub(super) async fn round_of(
        &self,
        hook: &Webhook,
        memory: &mut LaneMemory,
    ) -> Result<HookRound, RoundError> {
        memory.look_back().await?;
        let started = std::time::Instant::now();
        let read = self
            .store
            .read_outbox_from(
                &hook.workspace,
                &hook.id,
                ROUND_SIZE,
                memory.resume.as_deref(),
            )
            .await?;
        let retry_lane_read = !read.retrying.is_empty() || !read.settled_retries.is_empty();
        let read_time = started.elapsed();
        let now = Utc::now();
        let waiting = read.retrying.len() + read.fresh.len();
        let more = read.more;
        let mut outcome = RoundOutcome {
            from_retry: read.settled_retries,
            read_through: read.read_through,
            ..RoundOutcome::default()
        };
        let queues = queues(read.retrying, read.fresh);
        if queues.is_empty() {
            memory.settled().await?;
            self.store
                .save_round(&hook.workspace, &hook.id, outcome)
                .await?;
            memory.saved_in_line();
            return Ok(HookRound {
                more,
                ..HookRound::default()
            });
        }
        let Some(secret) = self.store.webhook_secret(&hook.workspace, &hook.id).await? else {
            return Ok(HookRound::default());
        };
        let secret = secret.as_str();
        let walked: Vec<Walked> = futures_util::stream::iter(queues)
            .map(|queue| self.walk(hook, secret, queue, now))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let sent_time = started.elapsed();
        let mut round = HookRound {
            more,
            ..HookRound::default()
        };
        for walked in walked {
            round.gone |= walked.gone;
            round.next_due = earliest(round.next_due, walked.next_due);
            for (delivery, lane, attempted) in walked.entries {
                let pending = delivery.status == DeliveryStatus::Pending;
                match lane {
                    Lane::Fresh if pending => outcome.to_retry.push(delivery.id.clone()),
                    Lane::Retry if !pending => outcome.from_retry.push(delivery.id.clone()),
                    Lane::Fresh | Lane::Retry => {}
                }
                if attempted {
                    round.sent += 1;
                    if delivery.status == DeliveryStatus::Delivered {
                        round.delivered += 1;
                    }
                    outcome.attempted.push(delivery);
                }
            }
        }
        let clean = !retry_lane_read
            && !round.gone
            && round.delivered == round.sent
            && outcome.to_retry.is_empty()
            && outcome.from_retry.is_empty();
        if clean {
            memory.save_behind(self.store.clone(), hook, outcome);
        } else {
            memory.settled().await?;
            self.store
                .save_round(&hook.workspace, &hook.id, outcome)
                .await?;
            memory.saved_in_line();
        }
        tracing::debug!(
            pending = waiting,
            sent = round.sent,
            read_ms = read_time.as_millis(),
            send_ms = (sent_time - read_time).as_millis(),
            save_ms = (started.elapsed() - sent_time).as_millis(),
            "webhook round"
        );
        if round.gone {
            self.store
                .disable_webhook(hook, Utc::now(), "the endpoint answered 410 Gone")
                .await?;
            if let Err(error) = self.catalogs.reload(&hook.workspace).await {
                warn!(%error, "reloading the catalogue after disabling a webhook failed");
            }
        }
        Ok(round)
    }

    /// Sends `queue` (one contact's deliveries, in order) until one is not due or stays
    /// pending after its attempt; the rest wait behind it.
    async fn walk(
        &self,
        hook: &Webhook,
        secret: &str,
        queue: Vec<(WebhookDelivery, Lane)>,
        now: DateTime<Utc>,
    ) -> Walked {
        let mut walked = Walked::default();
        let mut blocked = false;
        for (mut delivery, lane) in queue {
            if !blocked && let Some(at) = delivery.next_attempt_at.filter(|at| *at > now) {
                walked.next_due = Some(at);
                blocked = true;
            }
            if blocked {
                walked.entries.push((delivery, lane, false));
                continue;
            }
            let sending = self.sender.send(
                &hook.url,
                &delivery.id,
                &delivery.payload,
                secret,
                Utc::now(),
            );
            // A bug met while sending fails this attempt (retried on the schedule), never the
            // round: the other endpoints' and contacts' deliveries go on.
            let attempt = catch_panic(ATTEMPT_TASK, &self.metrics, sending)
                .await
                .unwrap_or_else(|| Attempt::Failed {
                    status: None,
                    error: "sending failed on our side (logged); retried on the schedule"
                        .to_owned(),
                    retry_after: None,
                });
            walked.gone |= attempt == Attempt::Gone;
            self.metrics
                .webhook_attempt(settle(&mut delivery, attempt, Utc::now()));
            blocked = walked.gone || delivery.status == DeliveryStatus::Pending;
            walked.entries.push((delivery, lane, true));
        }
        walked
    }
}

/// Which lane of the outbox a delivery was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Fresh,
    Retry,
}

/// Why a round of an endpoint failed (its deliveries are sent again from the saved cursor).
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// Reading or saving deliveries failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A round's save, run in the background, panicked or was cancelled.
    #[error("saving a webhook round failed ({0}); its deliveries are sent again")]
    SaveTask(#[from] tokio::task::JoinError),
}

/// What one lane keeps between rounds: where its last round read through while that round's
/// save is under way, and the saves under way (each waits for the one before it, so the saved
/// cursor only moves forward).
#[derive(Default)]
pub(super) struct LaneMemory {
    /// Where the next read of the fresh lane starts (`None`: the saved cursor).
    resume: Option<String>,
    /// The last save under way.
    saving: Option<tokio::task::JoinHandle<Result<(), RoundError>>>,
}

impl LaneMemory {
    /// Saves `outcome` behind the saves under way and reads on after it.
    fn save_behind(&mut self, store: Store, hook: &Webhook, outcome: RoundOutcome) {
        if let Some(through) = &outcome.read_through {
            self.resume = Some(through.clone());
        }
        let before = self.saving.take();
        let (workspace, webhook) = (hook.workspace.clone(), hook.id.clone());
        self.saving = Some(tokio::spawn(async move {
            if let Some(before) = before {
                before.await??;
            }
            Ok(store.save_round(&workspace, &webhook, outcome).await?)
        }));
    }

    /// Waits for the saves under way. One that failed leaves its rounds unsaved: the error
    /// ends the round under way unsaved too, and the next read starts at the saved cursor
    /// again, so they are all sent again (at least once).
    pub(super) async fn settled(&mut self) -> Result<(), RoundError> {
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        let outcome = saving
            .await
            .map_err(RoundError::from)
            .and_then(|saved| saved);
        if outcome.is_err() {
            self.resume = None;
        }
        outcome
    }

    /// Records that a round was saved in line: the saved cursor is where reads start.
    fn saved_in_line(&mut self) {
        self.resume = None;
    }

    /// Looks at a save that has ended meanwhile (without waiting for one under way).
    async fn look_back(&mut self) -> Result<(), RoundError> {
        if self.saving.as_ref().is_some_and(|task| task.is_finished()) {
            self.settled().await?;
        }
        Ok(())
    }
}

/// One contact's queue after a round: each delivery as it stands, its lane and whether it
/// was attempted.
#[derive(Default)]
struct Walked {
    entries: Vec<(WebhookDelivery, Lane, bool)>,
    next_due: Option<DateTime<Utc>>,
    gone: bool,
}

/// What a round of one endpoint did.
#[derive(Debug, Default)]
pub(super) struct HookRound {
    /// Attempts made.
    pub(super) sent: usize,
    /// Attempts the endpoint accepted.
    pub(super) delivered: usize,
    /// When the next delivery not yet due comes due.
    pub(super) next_due: Option<DateTime<Utc>>,
    /// Whether the fresh lane holds more than was read.
    pub(super) more: bool,
    /// Whether the endpoint answered 410 Gone.
    pub(super) gone: bool,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The deliveries of one endpoint grouped into per-contact queues in message order (the
/// retry lane's ids all sort before the fresh lane's), queues ordered by their first message;
/// a delivery about no contact is a queue of its own.
fn queues(
    retrying: Vec<WebhookDelivery>,
    fresh: Vec<WebhookDelivery>,
) -> Vec<Vec<(WebhookDelivery, Lane)>> {
    let mut queues: Vec<Vec<(WebhookDelivery, Lane)>> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let lanes = retrying
        .into_iter()
        .map(|delivery| (delivery, Lane::Retry))
        .chain(fresh.into_iter().map(|delivery| (delivery, Lane::Fresh)));
    for (delivery, lane) in lanes {
        let key = delivery
            .contact
            .map_or_else(|| delivery.id.clone(), |id| id.to_string());
        match position.get(&key) {
            Some(&at) => queues[at].push((delivery, lane)),
            None => {
                position.insert(key, queues.len());
                queues.push(vec![(delivery, lane)]);
            }
        }
    }
    queues
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
