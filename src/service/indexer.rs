//! Keeps the segment index in step with the store by following the store's change log.
//!
//! A pass reads pending change-log entries in batches, loads the current state of the contacts
//! they name, applies it to the index, commits (with the last entry's key in the commit payload),
//! and only then acknowledges the entries. Writes wake the indexer; it waits a short batching
//! delay so that bursts become one commit. `try_apply_next` exposes one step for tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex as AsyncMutex, Notify, watch};
use tracing::{info, warn};

use crate::domain::{ContactId, WorkspaceId};
use crate::index::{CommitPayload, IndexChange, IndexError, PROJECTION_VERSION, SegmentIndex};
use crate::service::live::{LiveError, MembershipEngine};
use crate::store::{Backlog, Store, StoreError};

/// Change-log entries read per step.
const BATCH_SIZE: usize = 1_000;
/// Contacts loaded per page while rebuilding.
const REBUILD_PAGE: usize = 5_000;
/// How long the indexer lets writes accumulate after being woken, so bursts share a commit.
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_millis(100);
/// How often the indexer looks for changes without being woken (other writers, missed wakes).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Failures of the indexer.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// Reading the change log or the contacts failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A blocking index task panicked.
    #[error("index task failed: {0}")]
    Task(String),
    /// Recording segment membership changes failed.
    #[error(transparent)]
    Live(#[from] LiveError),
}

/// How current the index is.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStatus {
    /// Change-log entries not yet applied.
    pub pending_changes: u64,
    /// When the oldest pending entry was written.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Key of the last applied entry.
    pub last_applied_change: Option<String>,
    /// When the index last committed.
    pub last_commit_at: Option<DateTime<Utc>>,
    /// Documents in the index.
    pub documents: u64,
    /// Whether a full build has completed.
    pub built: bool,
}

/// Differences between the store and the index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drift {
    /// Contacts in the store.
    pub stored: u64,
    /// Documents in the index.
    pub indexed: u64,
    /// Contacts without a document.
    pub missing: u64,
    /// Documents without a contact.
    pub stale: u64,
    /// A sample of the missing ones.
    pub missing_sample: Vec<(WorkspaceId, ContactId)>,
    /// A sample of the stale ones.
    pub stale_sample: Vec<(WorkspaceId, ContactId)>,
}

impl Drift {
    /// Whether store and index hold the same contacts.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.stale == 0
    }

    fn note_missing(&mut self, id: &(WorkspaceId, ContactId), sample: usize) {
        self.missing += 1;
        if self.missing_sample.len() < sample {
            self.missing_sample.push(id.clone());
        }
    }

    fn note_stale(&mut self, id: &(WorkspaceId, ContactId), sample: usize) {
        self.stale += 1;
        if self.stale_sample.len() < sample {
            self.stale_sample.push(id.clone());
        }
    }
}

/// Wakes the indexer after writes; cheap to clone into every writer.
#[derive(Clone, Default)]
pub struct ChangeNotifier(Arc<Notify>);

impl ChangeNotifier {
    /// Tells the indexer that the change log grew.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// The indexer.
pub struct Indexer {
    store: Store,
    index: Arc<SegmentIndex>,
    notifier: ChangeNotifier,
    batch_delay: Duration,
    /// One step at a time: steps read, apply and acknowledge as a unit.
    step_lock: AsyncMutex<()>,
    last_payload: Mutex<Option<CommitPayload>>,
    /// Per workspace: the last change applied and when it was committed (since start).
    applied: Mutex<HashMap<WorkspaceId, (String, DateTime<Utc>)>>,
    /// Records segment membership changes around each step, once attached.
    engine: OnceLock<Arc<MembershipEngine>>,
}

impl Indexer {
    /// An indexer from `store` into `index`, woken through `notifier`.
    pub fn new(
        store: Store,
        index: Arc<SegmentIndex>,
        notifier: ChangeNotifier,
        batch_delay: Duration,
    ) -> Result<Self, IndexerError> {
        let last_payload = index.payload()?;
        Ok(Self {
            store,
            index,
            notifier,
            batch_delay,
            step_lock: AsyncMutex::new(()),
            last_payload: Mutex::new(last_payload),
            applied: Mutex::default(),
            engine: OnceLock::new(),
        })
    }

    /// Lets `engine` record segment membership changes in every step from now on.
    pub fn attach(&self, engine: Arc<MembershipEngine>) {
        let _ = self.engine.set(engine);
    }

    /// Rebuilds the index from the store if no full build has completed yet, or if the last
    /// one wrote documents of an older [`PROJECTION_VERSION`].
    pub async fn ensure_built(&self) -> Result<(), IndexerError> {
        let built = self
            .current_payload()
            .is_some_and(|payload| payload.is_current_build());
        if !built {
            let documents = self.rebuild().await?;
            info!(documents, "segment index built from the store");
        }
        Ok(())
    }

    /// Discards the index and rebuilds it from every contact in the store; returns the count.
    pub async fn rebuild(&self) -> Result<u64, IndexerError> {
        let _step = self.step_lock.lock().await;
        // Entries written before the scan starts are covered by the scan.
        let pending = self.store.pending_changes(usize::MAX).await?;
        self.commit(Vec::new(), false, None, true).await?;
        let mut indexed = 0u64;
        let mut after = None;
        loop {
            let page = self
                .store
                .all_contacts_after(after.as_ref().map(|(w, i)| (w, i)), REBUILD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.workspace.clone(), last.id));
            indexed += page.len() as u64;
            let changes = page.into_iter().map(IndexChange::upsert).collect();
            self.commit(changes, false, None, false).await?;
        }
        let last_change = pending.last().map(|change| change.key.clone());
        self.commit(Vec::new(), true, last_change, false).await?;
        let keys: Vec<String> = pending.into_iter().map(|change| change.key).collect();
        for chunk in keys.chunks(BATCH_SIZE) {
            self.store.acknowledge_changes(chunk).await?;
        }
        Ok(indexed)
    }

    /// Compares the contacts in the store with the documents in the index (after applying the
    /// pending change log); keeps up to `sample` ids of each kind of difference.
    pub async fn compare(&self, sample: usize) -> Result<Drift, IndexerError> {
        self.catch_up().await?;
        let stored = self.store.all_contact_keys().await?;
        let index = Arc::clone(&self.index);
        let indexed = tokio::task::spawn_blocking(move || index.documents())
            .await
            .map_err(|error| IndexerError::Task(error.to_string()))??;
        let mut drift = Drift {
            stored: stored.len() as u64,
            indexed: indexed.len() as u64,
            ..Drift::default()
        };
        let (mut s, mut i) = (stored.iter().peekable(), indexed.iter().peekable());
        loop {
            match (s.peek(), i.peek()) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    s.next();
                    i.next();
                }
                (Some(a), Some(b)) if a < b => {
                    drift.note_missing(a, sample);
                    s.next();
                }
                (Some(a), None) => {
                    drift.note_missing(a, sample);
                    s.next();
                }
                (_, Some(b)) => {
                    drift.note_stale(b, sample);
                    i.next();
                }
            }
        }
        Ok(drift)
    }

    /// Applies one batch of pending changes; returns how many entries it applied. With an
    /// engine attached, the step also records membership changes (time transitions too, so
    /// it runs the engine even when nothing is pending).
    pub async fn try_apply_next(&self) -> Result<usize, IndexerError> {
        let _step = self.step_lock.lock().await;
        let started = std::time::Instant::now();
        let pending = self.store.pending_changes(BATCH_SIZE).await?;
        let engine = self.engine.get();
        if pending.is_empty() {
            if let Some(engine) = engine {
                engine.before_batch(&[], &[]).await?;
            }
            return Ok(0);
        }
        // The batch's contacts in one read per workspace (a stream of single-contact writes
        // is one change-log entry each; reading them entry by entry cost a query apiece).
        let mut wanted: HashMap<WorkspaceId, Vec<ContactId>> = HashMap::new();
        for change in &pending {
            // Another instance may have written them: what memory keeps of them may be older.
            self.store.forget_contacts(&change.contacts);
            wanted
                .entry(change.workspace.clone())
                .or_default()
                .extend(change.contacts.iter().copied());
        }
        let mut current: HashMap<WorkspaceId, HashMap<ContactId, crate::domain::Contact>> =
            HashMap::new();
        for (workspace, mut ids) in wanted {
            ids.sort_unstable();
            ids.dedup();
            let found = current.entry(workspace.clone()).or_default();
            for chunk in ids.chunks(BATCH_SIZE) {
                for contact in self.store.fresh_contacts_by_ids(&workspace, chunk).await? {
                    found.insert(contact.id, contact);
                }
            }
        }
        let mut changes = Vec::new();
        for change in &pending {
            let found = current.get(&change.workspace);
            for id in &change.contacts {
                match found.and_then(|found| found.get(id)) {
                    Some(contact) => changes.push(IndexChange::upsert(contact.clone())),
                    None => changes.push(IndexChange::Remove(change.workspace.clone(), *id)),
                }
            }
        }
        let read = started.elapsed();
        if let Some(engine) = engine {
            engine.before_batch(&pending, &changes).await?;
        }
        let recorded = started.elapsed();
        let built = self
            .current_payload()
            .is_some_and(|payload| payload.is_current_build());
        let last_change = pending.last().map(|change| change.key.clone());
        let committed = self.commit(changes, built, last_change, false).await?;
        let indexed = started.elapsed();
        if let Some(engine) = engine {
            engine.after_batch(&committed);
        }
        let scheduled = started.elapsed();
        if let Ok(mut applied) = self.applied.lock() {
            let now = Utc::now();
            for change in &pending {
                applied.insert(change.workspace.clone(), (change.key.clone(), now));
            }
        }
        let keys: Vec<String> = pending.iter().map(|change| change.key.clone()).collect();
        self.store.acknowledge_changes(&keys).await?;
        tracing::debug!(
            entries = pending.len(),
            read_ms = read.as_millis(),
            membership_ms = (recorded - read).as_millis(),
            index_ms = (indexed - recorded).as_millis(),
            schedule_ms = (scheduled - indexed).as_millis(),
            total_ms = started.elapsed().as_millis(),
            "indexer step"
        );
        Ok(pending.len())
    }

    /// Applies every change committed before this call; returns how many entries it applied.
    pub async fn catch_up(&self) -> Result<usize, IndexerError> {
        let mut applied = 0;
        loop {
            let step = self.try_apply_next().await?;
            if step == 0 {
                return Ok(applied);
            }
            applied += step;
        }
    }

    /// Follows the change log until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let next_due = self
                .engine
                .get()
                .and_then(|engine| engine.next_due())
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default());
            let wait = next_due.map_or(POLL_INTERVAL, |due| due.min(POLL_INTERVAL));
            tokio::select! {
                () = self.notifier.0.notified() => tokio::time::sleep(self.batch_delay).await,
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.catch_up().await {
                warn!(%error, "indexing failed; retrying");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }

    /// How far the index is behind the store, over every workspace.
    pub async fn backlog(&self) -> Result<Backlog, IndexerError> {
        Ok(self.store.change_backlog(None).await?)
    }

    /// How current the index is.
    pub async fn status(&self, workspace: &WorkspaceId) -> Result<IndexStatus, IndexerError> {
        let backlog = self.store.change_backlog(Some(workspace)).await?;
        let payload = self.current_payload();
        let applied = self
            .applied
            .lock()
            .ok()
            .and_then(|applied| applied.get(workspace).cloned());
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let documents = tokio::task::spawn_blocking(move || index.documents_of(&scoped))
            .await
            .map_err(|error| IndexerError::Task(error.to_string()))??;
        Ok(IndexStatus {
            pending_changes: backlog.pending,
            oldest_pending_at: backlog.oldest,
            last_applied_change: applied.as_ref().map(|(key, _)| key.clone()),
            last_commit_at: applied.map(|(_, at)| at),
            documents,
            built: payload.is_some_and(|p| p.built),
        })
    }

    fn current_payload(&self) -> Option<CommitPayload> {
        self.last_payload
            .lock()
            .ok()
            .and_then(|payload| payload.clone())
    }

    /// Commits `changes` (or clears the index first) off the async runtime.
    async fn commit(
        &self,
        changes: Vec<IndexChange>,
        built: bool,
        last_change: Option<String>,
        clear: bool,
    ) -> Result<Vec<IndexChange>, IndexerError> {
        let last_change =
            last_change.or_else(|| self.current_payload().and_then(|p| p.last_change));
        let payload = CommitPayload {
            projection: PROJECTION_VERSION,
            built,
            last_change,
            committed_at: Utc::now(),
        };
        let index = Arc::clone(&self.index);
        let committed = payload.clone();
        let changes = tokio::task::spawn_blocking(move || {
            let applied = if clear {
                index.clear(&committed)
            } else {
                index.apply(&changes, &committed)
            };
            applied.map(|()| changes)
        })
        .await
        .map_err(|error| IndexerError::Task(error.to_string()))??;
        if let Ok(mut last) = self.last_payload.lock() {
            *last = Some(payload);
        }
        Ok(changes)
    }
}
