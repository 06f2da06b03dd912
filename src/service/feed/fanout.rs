//! Fans a saved segment's feed out to its subscriptions. Each segment with subscribers on this
//! instance has one follower: it takes the entries this instance records straight from the
//! engine (no store read), reads the store once a second for entries another instance recorded,
//! and broadcasts each entry once; the subscriptions share it. A subscription reads the store
//! itself only to catch up: from the cursor it started after, or after it fell behind the
//! broadcast. So 1,000 subscriptions cost one follower per segment, not 1,000 store readers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use crate::domain::FeedEvent;
use crate::domain::{MembershipChange, Slug, WorkspaceId};
use crate::service::error::ServiceError;
use crate::service::membership::MembershipEngine;
use crate::store::Store;

/// Entries read per store query while catching up or following.
const PAGE: usize = 200;
/// How often a follower reads the store for entries it was not handed (another instance's).
const POLL: Duration = Duration::from_secs(1);
/// Entries a follower holds for its slowest subscription before that one falls behind (and
/// catches up from the store).
const BROADCAST_CAPACITY: usize = 1_024;

type FollowerKey = (WorkspaceId, Slug);

/// The followers of the segments that have subscribers.
#[derive(Clone)]
pub struct FeedFanout {
    store: Store,
    engine: Arc<MembershipEngine>,
    followers: Arc<Mutex<HashMap<FollowerKey, broadcast::Sender<MembershipChange>>>>,
}

impl FeedFanout {
    /// Followers of what `engine` records in `store`.
    pub fn new(store: Store, engine: Arc<MembershipEngine>) -> Self {
        Self {
            store,
            engine,
            followers: Arc::default(),
        }
    }

    /// The entries of `segment` after position `after` (a valid position), or from `from_now`
    /// (a position) when `after` is `None`, then each new one.
    pub fn subscribe(
        &self,
        workspace: WorkspaceId,
        segment: Slug,
        after: Option<String>,
        from_now: String,
    ) -> impl Stream<Item = Result<MembershipChange, ServiceError>> + use<> {
        // Joined before catching up, so nothing recorded meanwhile is missed.
        let live = self.follow(&workspace, &segment);
        let subscription = Subscription {
            live,
            store: self.store.clone(),
            catching_up: after.is_some(),
            cursor: after.unwrap_or(from_now),
            workspace,
            segment,
            buffer: VecDeque::new(),
        };
        futures_util::stream::unfold(subscription, |mut subscription| async move {
            let next = subscription.next().await;
            next.map(|item| (item, subscription))
        })
    }

    /// A receiver of the segment's follower, started if it has none.
    fn follow(
        &self,
        workspace: &WorkspaceId,
        segment: &Slug,
    ) -> broadcast::Receiver<MembershipChange> {
        let key = (workspace.clone(), segment.clone());
        let mut followers = self.lock();
        if let Some(sender) = followers.get(&key) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(BROADCAST_CAPACITY);
        followers.insert(key.clone(), sender.clone());
        let follower = Follower {
            key,
            sender,
            events: self.engine.subscribe(),
            store: self.store.clone(),
            cursor: now_position(),
            followers: Arc::clone(&self.followers),
        };
        tokio::spawn(follower.run());
        receiver
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<FollowerKey, broadcast::Sender<MembershipChange>>> {
        self.followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The position just before every entry recorded from now on.
pub fn now_position() -> String {
    ulid::Ulid::from_parts(ulid::Ulid::new().timestamp_ms(), 0).to_string()
}

/// One segment's follower: broadcasts each new entry once, until no subscription is left.
struct Follower {
    key: FollowerKey,
    sender: broadcast::Sender<MembershipChange>,
    events: broadcast::Receiver<FeedEvent>,
    store: Store,
    /// The last entry broadcast (or the position it started from).
    cursor: String,
    followers: Arc<Mutex<HashMap<FollowerKey, broadcast::Sender<MembershipChange>>>>,
}

impl Follower {
    async fn run(mut self) {
        let mut events_open = true;
        loop {
            tokio::select! {
                event = self.events.recv(), if events_open => match event {
                    Ok(FeedEvent::Recorded(workspace, entries)) if workspace == self.key.0 => {
                        let handed: Vec<MembershipChange> = entries
                            .iter()
                            .filter(|entry| entry.segment == self.key.1)
                            .cloned()
                            .collect();
                        self.broadcast(handed);
                    }
                    Ok(_) => {}
                    // Handed entries were missed: the store has them.
                    Err(RecvError::Lagged(_)) => self.read_store().await,
                    Err(RecvError::Closed) => events_open = false,
                },
                () = tokio::time::sleep(POLL) => self.read_store().await,
            }
            if self.abandoned() {
                return;
            }
        }
    }

    /// Broadcasts the entries after the cursor, in order.
    fn broadcast(&mut self, entries: Vec<MembershipChange>) {
        for entry in entries {
            if entry.position > self.cursor {
                self.cursor.clone_from(&entry.position);
                // No subscription left is noticed by `abandoned`.
                let _ = self.sender.send(entry);
            }
        }
    }

    /// Broadcasts what the store holds after the cursor (entries another instance recorded,
    /// or ones this follower missed).
    async fn read_store(&mut self) {
        loop {
            let page = self
                .store
                .membership_changes(&self.key.0, &self.key.1, Some(&self.cursor), PAGE)
                .await;
            match page {
                Ok(entries) => {
                    let full = entries.len() == PAGE;
                    self.broadcast(entries);
                    if !full {
                        return;
                    }
                }
                Err(error) => {
                    warn!(%error, segment = %self.key.1, "reading the segment feed failed; trying again");
                    return;
                }
            }
        }
    }

    /// Whether every subscription left; if so, the follower is forgotten (a subscription that
    /// arrives later starts a new one).
    fn abandoned(&self) -> bool {
        if self.sender.receiver_count() > 0 {
            return false;
        }
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Checked again under the lock: a subscription may have joined meanwhile.
        if self.sender.receiver_count() > 0 {
            return false;
        }
        followers.remove(&self.key);
        true
    }
}

/// One subscription to a segment's feed.
struct Subscription {
    live: broadcast::Receiver<MembershipChange>,
    store: Store,
    workspace: WorkspaceId,
    segment: Slug,
    /// The last entry delivered (or the position it started after).
    cursor: String,
    /// Whether the store is read before the broadcast (at the start from a cursor, or after
    /// falling behind).
    catching_up: bool,
    buffer: VecDeque<MembershipChange>,
}

impl Subscription {
    async fn next(&mut self) -> Option<Result<MembershipChange, ServiceError>> {
        loop {
            if let Some(entry) = self.buffer.pop_front() {
                if entry.position > self.cursor {
                    self.cursor.clone_from(&entry.position);
                    return Some(Ok(entry));
                }
                // Seen while catching up.
                continue;
            }
            if self.catching_up {
                let page = self
                    .store
                    .membership_changes(&self.workspace, &self.segment, Some(&self.cursor), PAGE)
                    .await;
                match page {
                    Ok(entries) if entries.is_empty() => self.catching_up = false,
                    Ok(entries) => self.buffer.extend(entries),
                    Err(error) => return Some(Err(error.into())),
                }
                continue;
            }
            match self.live.recv().await {
                Ok(entry) => self.buffer.push_back(entry),
                Err(RecvError::Lagged(_)) => self.catching_up = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
