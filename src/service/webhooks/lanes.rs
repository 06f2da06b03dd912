//! Fair delivery: every enabled endpoint has a lane of its own, a task that sends its outbox
//! round after round ([`Dispatcher::round_of`]), with its own concurrency and its own backoff. A
//! slow, failing, refusing or silent endpoint holds up only its own lane: the others never
//! wait for its attempts (each at most 10 s), and a lane whose attempts all fail backs off by
//! itself. The manager starts a lane when an endpoint appears or is enabled and stops it when
//! the endpoint is deleted or disabled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::dispatcher::{Dispatcher, HookRound, LaneMemory};
use crate::domain::FeedEvent;
use crate::domain::{Webhook, WebhookId};
use crate::telemetry::supervise::catch_panic;

/// How often a lane reads its outbox without being woken (deliveries another instance
/// enqueued, retries coming due).
const POLL: Duration = Duration::from_secs(1);
/// How often the manager compares its lanes with the endpoints when nothing told it to.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// The longest a lane whose every attempt fails waits before its next round.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The name under which a panic in one lane's round is logged and counted.
const LANE_TASK: &str = "webhook-lane";

/// A running lane, told to stop when dropped.
struct Lane {
    hook: Webhook,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Lane {
    fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Dispatcher {
    /// Sends due deliveries until `shutdown` turns true: one lane per enabled endpoint, woken
    /// by `events` of its workspace, by its retries coming due, or every second.
    pub async fn run(
        self: Arc<Self>,
        events: broadcast::Receiver<FeedEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut lanes: HashMap<WebhookId, Lane> = HashMap::new();
        let mut catalog = self.catalogs.watch_changes();
        loop {
            self.reconcile(&mut lanes, &events);
            tokio::select! {
                _ = catalog.changed() => {}
                () = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
        // Each lane finishes the round it is in (its attempts are saved) and stops.
        let tasks: Vec<JoinHandle<()>> = lanes
            .drain()
            .filter_map(|(_, mut lane)| lane.task.take())
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Starts a lane for each enabled endpoint that has none (or whose lane ended), and stops
    /// the lanes of endpoints deleted, disabled or changed since.
    fn reconcile(
        self: &Arc<Self>,
        lanes: &mut HashMap<WebhookId, Lane>,
        events: &broadcast::Receiver<FeedEvent>,
    ) {
        let mut wanted: HashMap<WebhookId, Webhook> = HashMap::new();
        for workspace in self.catalogs.workspaces() {
            let state = self.catalogs.workspace(&workspace);
            for hook in state
                .webhooks
                .iter()
                .filter(|hook| hook.disabled_at.is_none())
            {
                wanted.insert(hook.id.clone(), hook.clone());
            }
        }
        lanes.retain(|id, lane| {
            lane.is_running() && wanted.get(id).is_some_and(|hook| *hook == lane.hook)
        });
        for (id, hook) in wanted {
            if lanes.contains_key(&id) {
                continue;
            }
            let (stop, stopped) = watch::channel(false);
            let task =
                tokio::spawn(Arc::clone(self).lane(hook.clone(), events.resubscribe(), stopped));
            lanes.insert(
                id,
                Lane {
                    hook,
                    stop,
                    task: Some(task),
                },
            );
        }
    }

    /// One endpoint's lane: rounds of its outbox until `stop` turns true.
    async fn lane(
        self: Arc<Self>,
        hook: Webhook,
        mut events: broadcast::Receiver<FeedEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut failing_rounds: u32 = 0;
        let mut events_open = true;
        let mut memory = LaneMemory::default();
        loop {
            let sending = match &self.lease {
                Some(lease) => lease.held().await,
                None => true,
            };
            let round = if sending {
                catch_panic(LANE_TASK, &self.metrics, self.round_of(&hook, &mut memory)).await
            } else {
                Some(Ok(HookRound::default()))
            };
            let (wait, wake_on_events) = match round {
                Some(Ok(round)) => {
                    failing_rounds = next_failing_rounds(failing_rounds, &round);
                    if failing_rounds > 0 {
                        (backoff(failing_rounds), false)
                    } else if round.sent > 0 || round.more {
                        (Duration::ZERO, true)
                    } else {
                        let due = round
                            .next_due
                            .map(|at| (at - Utc::now()).to_std().unwrap_or_default());
                        (due.map_or(POLL, |due| due.min(POLL)), true)
                    }
                }
                Some(Err(error)) => {
                    warn!(%error, webhook = %hook.id, "reading the webhook outbox failed; trying again");
                    (POLL, false)
                }
                // A panic in the round (logged and counted): try again later.
                None => (POLL, false),
            };
            let deadline = Instant::now() + wait;
            loop {
                tokio::select! {
                    woken = events.recv(), if wake_on_events && events_open => match woken {
                        Ok(event) if *event.workspace() == hook.workspace => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => events_open = false,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = stop.changed() => break,
                }
            }
            if *stop.borrow() {
                let _ = memory.settled().await;
                return;
            }
        }
    }
}

/// Rounds in a row whose attempts all failed, after `round`: a round that delivered resets
/// the count, one that attempted nothing leaves it.
fn next_failing_rounds(failing_rounds: u32, round: &HookRound) -> u32 {
    if round.delivered > 0 {
        0
    } else if round.sent > 0 {
        failing_rounds.saturating_add(1)
    } else {
        failing_rounds
    }
}

/// How long a lane waits after `failing_rounds` failing rounds in a row: 1 s, 2 s, 4 s, ...
/// up to [`MAX_BACKOFF`]. Each delivery keeps its own retry schedule besides.
fn backoff(failing_rounds: u32) -> Duration {
    let exponent = failing_rounds.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_lane_backs_off_and_recovers_on_a_delivery() {
        let failed = HookRound {
            sent: 3,
            ..HookRound::default()
        };
        let idle = HookRound::default();
        let delivered = HookRound {
            sent: 1,
            delivered: 1,
            ..HookRound::default()
        };
        let mut failing = 0;
        for expected in [1, 2, 4, 8, 16, 32, 60, 60] {
            failing = next_failing_rounds(failing, &failed);
            assert_eq!(backoff(failing), Duration::from_secs(expected));
        }
        assert_eq!(
            next_failing_rounds(failing, &idle),
            failing,
            "nothing tried: no news"
        );
        assert_eq!(next_failing_rounds(failing, &delivered), 0);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
