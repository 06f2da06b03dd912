//! Keeps the segment index in step with the store by following the store's change log.
//!
//! A step reads the change log from its cursor's watermark (see [`change_cursor`]),
//! takes the states of the contacts the new entries name (what the writes committed, or the
//! current state read back: see [`step_states`]) and hands them to the membership
//! engine, which records the step's ENTER and EXIT entries at once. The index commits the
//! steps' states later (with the watermark in the commit payload), a batching delay after the
//! first of them and beside the steps that follow, so that bursts become one commit and no
//! ENTER waits for one. Applied entries are deleted in the background by a periodic sweep,
//! never on a step's path. Writes wake the indexer at once. `try_apply_next` exposes one step,
//! committed, for tests.

mod change_cursor;
mod drift;
mod error;
mod step_states;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex as AsyncMutex, Notify, watch};
use tracing::{info, warn};

use crate::domain::{ContactId, WorkspaceId};
use crate::index::{CommitPayload, IndexChange, PROJECTION_VERSION, SegmentIndex};
use crate::service::membership::MembershipEngine;
use crate::store::{Backlog, Change, Store, change_key_at};
use change_cursor::{Batch, COMMIT_GRACE, ChangeCursor, Sweep, key_below};
pub use drift::Drift;
pub use step_states::StateSources;
use step_states::{RecentRemovals, Uncommitted};

/// Change-log entries read per step.
const BATCH_SIZE: usize = 1_000;
/// Entries below the watermark looked at per sweep.
const SWEEP_SIZE: usize = 5_000;
/// How often the running indexer sweeps below its watermark (late entries, deletions).
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Applied entries deleted per statement.
const DELETE_CHUNK: usize = 250;
/// A step of at most this many entries leaves the indexer quiet.
const QUIET_STEP: usize = 100;
/// How long after a larger step deletions wait.
const QUIET_AFTER: Duration = Duration::from_millis(500);
/// Applied entries kept in the log, at most, before deletions stop waiting for quiet.
const MAX_UNDELETED: usize = 200_000;
/// In a shared log, how far below the watermark sweeps look for entries that committed late
/// (a transaction that commits this long after it took its key is not expected).
const LATE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// In a shared log, how often an instance deletes the entries older than the retention.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// Expired entries deleted per statement by a purge.
const PURGE_CHUNK: usize = 1_000;
/// Entries read to measure the backlog, at most.
const BACKLOG_READ: usize = 100_000;
/// Contacts loaded per page while rebuilding.
const REBUILD_PAGE: usize = 5_000;
/// Contact keys read from the store, and from the index, per page by [`Indexer::compare`].
const COMPARE_PAGE: usize = 10_000;
/// How long the index lets taken batches accumulate before it commits them, so bursts share a
/// commit (the feed does not wait for it).
pub const DEFAULT_BATCH_DELAY: Duration = Duration::from_millis(100);
/// How far below the newest entry it went through a step reads the log, between reads from
/// the watermark: the log's keys are taken just before a transaction is sent, so an entry
/// may appear after newer ones; one that appears later than this is taken by the next read
/// from the watermark.
const TAIL_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::milliseconds(300);
/// How often a step reads the log from the watermark (about [`COMMIT_GRACE`] of entries, most
/// of them seen) rather than its tail.
const FULL_READ_INTERVAL: Duration = Duration::from_secs(1);
/// Contacts taken and not committed after which the index commits without waiting.
const MAX_UNCOMMITTED_CONTACTS: usize = 5_000;
/// A step whose entries name this many contacts each on average comes from bulk writes (an
/// import commits hundreds of rows per entry; API writes name one or two contacts).
const BULK_CONTACTS_PER_ENTRY: usize = 50;
/// How long the indexer lets bulk writes accumulate after a bulk step, so that an import is
/// indexed in a few large commits instead of one small commit per transaction (each commit
/// writes a tantivy segment that merges then rewrite); rows stay searchable within a second.
const BULK_DELAY: Duration = Duration::from_millis(500);
/// How often the indexer looks for changes without being woken (other writers, missed wakes).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The same in a shared log, where other instances' writes wake nothing here: so that they are
/// in this instance's segment results well within a second.
const SHARED_POLL_INTERVAL: Duration = Duration::from_millis(200);

pub use error::IndexerError;

/// How current the index is.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStatus {
    /// Change-log entries not yet applied.
    pub pending_changes: u64,
    /// Contacts those entries name (once per entry).
    pub pending_contacts: u64,
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
    /// Where the index stands in the change log.
    cursor: Arc<Mutex<ChangeCursor>>,
    /// The background deletion of applied entries, while one runs.
    deletion: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// When a step last applied more than [`QUIET_STEP`] entries.
    busy_at: Arc<Mutex<Option<Instant>>>,
    /// Whether other instances read the same log, and how long it keeps entries then.
    sharing: LogSharing,
    /// Contacts whose documents steps removed lately (see [`step_states`]).
    removals: Mutex<RecentRemovals>,
    /// Where the states applied since start came from.
    sources: Mutex<StateSources>,
    /// Entries applied per step at most.
    batch_size: usize,
    /// Batches taken (their membership recorded) and not committed to the index yet.
    unindexed: Mutex<Unindexed>,
    /// One commit of taken batches at a time (taken before the step lock, never inside it).
    commit_lock: AsyncMutex<()>,
    /// Numbers the batches taken.
    taken_steps: std::sync::atomic::AtomicU64,
    /// When a step last read the log from the watermark (the others read its tail).
    last_full_read: Mutex<Option<Instant>>,
}

/// Batches taken by steps whose commit is still to come.
#[derive(Default)]
struct Unindexed {
    /// Not handed to a commit yet, in the order they were taken.
    waiting: Vec<TakenBatch>,
    /// When the first of them was taken.
    since: Option<Instant>,
    /// Contacts they name.
    contacts: usize,
    /// Whether one of them came from bulk writes.
    bulk: bool,
    /// Per contact, the last state taken and not committed (waiting or being committed), with
    /// the batch that took it: later steps compare payloads with it, not with the index.
    states: HashMap<(WorkspaceId, ContactId), (u64, Option<u64>)>,
}

impl Unindexed {
    /// The batches waiting, handed over (to a commit, or dropped): nothing waits after.
    fn take_waiting(&mut self) -> Vec<TakenBatch> {
        self.since = None;
        self.contacts = 0;
        self.bulk = false;
        std::mem::take(&mut self.waiting)
    }

    /// Forgets the states of the batches up to `through`: the index holds them now.
    fn committed_through(&mut self, through: u64) {
        self.states.retain(|_, (step, _)| *step > through);
    }

    fn uncommitted(&self) -> Uncommitted {
        self.states
            .iter()
            .map(|(key, (_, revision))| (key.clone(), *revision))
            .collect()
    }
}

/// One step's batch, taken, with the states to index.
struct TakenBatch {
    step: u64,
    batch: Batch,
    changes: Vec<IndexChange>,
}

/// What one step applied.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    /// Change-log entries.
    entries: usize,
    /// Whether they came from bulk writes (see [`BULK_CONTACTS_PER_ENTRY`]).
    bulk: bool,
}

/// Where a step reads the change log from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Its tail, with a read from the watermark now and then (see [`TAIL_LOOKBACK`]).
    Tail,
    /// The watermark.
    Whole,
}

/// Who reads the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSharing {
    /// This process alone (an embedded store): applied entries are deleted.
    Exclusive,
    /// Every instance over a SurrealDB server: entries stay for the retention, whoever applied
    /// them, and an index whose watermark is older than that is rebuilt.
    Shared {
        /// How long entries stay.
        retention: chrono::TimeDelta,
    },
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
        let watermark = last_payload
            .as_ref()
            .and_then(|payload| payload.watermark.clone());
        Ok(Self {
            store,
            index,
            notifier,
            batch_delay,
            step_lock: AsyncMutex::new(()),
            last_payload: Mutex::new(last_payload),
            applied: Mutex::default(),
            engine: OnceLock::new(),
            cursor: Arc::new(Mutex::new(ChangeCursor::resume(watermark))),
            deletion: Mutex::new(None),
            busy_at: Arc::default(),
            sharing: LogSharing::Exclusive,
            removals: Mutex::default(),
            sources: Mutex::default(),
            batch_size: BATCH_SIZE,
            unindexed: Mutex::default(),
            commit_lock: AsyncMutex::new(()),
            taken_steps: std::sync::atomic::AtomicU64::new(0),
            last_full_read: Mutex::default(),
        })
    }

    /// This indexer, reading a log that `sharing` says who else reads.
    pub fn sharing(mut self, sharing: LogSharing) -> Self {
        self.sharing = sharing;
        self
    }

    /// Tests: this indexer, applying at most `entries` per step.
    #[cfg(test)]
    pub fn with_batch_size(mut self, entries: usize) -> Self {
        self.batch_size = entries;
        self
    }

    /// How many contact states the steps applied since start, by where they came from.
    pub fn state_sources(&self) -> StateSources {
        self.sources
            .lock()
            .map(|sources| *sources)
            .unwrap_or_default()
    }

    /// Whether the watermark is older than the shared log's retention: entries this index
    /// never applied may be gone.
    fn behind_retention(&self) -> Result<bool, IndexerError> {
        let LogSharing::Shared { retention } = self.sharing else {
            return Ok(false);
        };
        let oldest_kept = change_key_at(Utc::now() - retention);
        Ok(self
            .lock_cursor()?
            .watermark()
            .is_some_and(|watermark| watermark < oldest_kept.as_str()))
    }

    /// Rebuilds the index when it fell behind the shared log's retention, saying so.
    async fn rebuild_if_behind(&self) -> Result<(), IndexerError> {
        if self.behind_retention()? {
            warn!(
                "the segment index is further behind than the change log keeps entries (CHANGE_LOG_RETENTION_HOURS); rebuilding it from the store"
            );
            let documents = self.rebuild().await?;
            info!(documents, "segment index rebuilt from the store");
        }
        Ok(())
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
        self.rebuild_if_behind().await
    }

    /// Discards the index and rebuilds it from every contact in the store; returns the count.
    pub async fn rebuild(&self) -> Result<u64, IndexerError> {
        self.commit_taken().await?;
        let _commit = self.commit_lock.lock().await;
        let _step = self.step_lock.lock().await;
        // Batches taken since are covered by the scan (their entries are in the log now).
        self.drop_taken()?;
        // Entries in the log before the scan starts are covered by the scan; steps read on
        // from the grace before it, and any other entry below is found by a sweep.
        let existing = self.store.changes_from(None, usize::MAX).await?;
        let watermark = change_key_at(Utc::now() - COMMIT_GRACE);
        self.commit(Vec::new(), false, None, None, true).await?;
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
            self.commit(changes, false, None, None, false).await?;
        }
        self.commit(Vec::new(), true, None, Some(watermark.clone()), false)
            .await?;
        self.lock_cursor()?
            .rebuilt(watermark, existing.into_iter().map(|change| change.key));
        Ok(indexed)
    }

    /// Compares the contacts in the store with the documents in the index (after applying the
    /// pending change log); keeps up to `sample` ids of each kind of difference. Reads both
    /// a page at a time: its memory does not grow with the number of contacts.
    pub async fn compare(&self, sample: usize) -> Result<Drift, IndexerError> {
        self.catch_up().await?;
        drift::compare(&self.store, &self.index, sample, COMPARE_PAGE).await
    }

    /// Takes one batch of pending changes (recording its membership changes) and commits it
    /// with any taken before; returns how many entries it took. With an engine attached, the
    /// step records time transitions too, so it runs the engine even when nothing is pending.
    pub async fn try_apply_next(&self) -> Result<usize, IndexerError> {
        let step = self.step(Reading::Whole).await?;
        self.commit_taken().await?;
        Ok(step.entries)
    }

    /// Tests: takes one batch (recording its membership changes) without committing it;
    /// returns how many entries it took.
    #[cfg(test)]
    pub async fn take_next(&self) -> Result<usize, IndexerError> {
        self.step(Reading::Whole).await.map(|step| step.entries)
    }

    /// Takes the next batch: reads it, resolves its states and lets the engine record its
    /// membership changes; the index commits it later ([`Self::commit_taken`]).
    /// With `Reading::Tail`, the step reads the log's tail unless a read from the watermark
    /// is due; with `Reading::Whole`, from the watermark (what catching up needs: every entry
    /// committed before it started).
    async fn step(&self, reading: Reading) -> Result<Step, IndexerError> {
        let _step = self.step_lock.lock().await;
        let started = Instant::now();
        let read_at = Utc::now();
        let from_watermark = reading == Reading::Whole
            || self
                .last_full_read
                .lock()
                .map(|at| at.is_none_or(|at| at.elapsed() >= FULL_READ_INTERVAL))
                .unwrap_or(true);
        let (tail, (from, limit)) = {
            let cursor = self.lock_cursor()?;
            let tail = if from_watermark {
                None
            } else {
                cursor.tail_plan(self.batch_size, TAIL_LOOKBACK)
            };
            match tail {
                Some((from, limit)) => (true, (Some(from), limit)),
                None => (false, cursor.read_plan(self.batch_size)),
            }
        };
        let read = self.store.changes_from(from.as_deref(), limit).await?;
        let (batch, watermark) = {
            let mut cursor = self.lock_cursor()?;
            let batch = if tail {
                cursor.next_tail_batch(read, self.batch_size)
            } else {
                cursor.next_batch(read, limit, read_at, self.batch_size)
            };
            (batch, cursor.watermark().map(str::to_owned))
        };
        if !tail && let Ok(mut at) = self.last_full_read.lock() {
            *at = Some(Instant::now());
        }
        let pending = &batch.changes;
        if pending.len() > QUIET_STEP
            && let Ok(mut busy) = self.busy_at.lock()
        {
            *busy = Some(Instant::now());
        }
        let engine = self.engine.get();
        let number = self
            .taken_steps
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if pending.is_empty() {
            if let Some(engine) = engine {
                engine.before_batch(&[], &[], number).await?;
            }
            // Nothing to commit: the watermark moves in memory (the next commit records it).
            self.lock_cursor()?.applied(&batch);
            self.forget_below_watermark()?;
            return Ok(Step::default());
        }
        let uncommitted = self.lock_unindexed()?.uncommitted();
        let (changes, sources) = step_states::resolve(
            &self.store,
            &self.index,
            &self.removals,
            &uncommitted,
            pending,
            watermark.as_deref(),
        )
        .await?;
        if let Ok(mut totals) = self.sources.lock() {
            totals.from_payload += sources.from_payload;
            totals.read_back += sources.read_back;
        }
        let bulk = changes.len() >= BULK_CONTACTS_PER_ENTRY * pending.len();
        let read = started.elapsed();
        if let Some(engine) = engine {
            engine.before_batch(pending, &changes, number).await?;
        }
        let recorded = started.elapsed();
        let entries = pending.len();
        self.lock_cursor()?.taken(&batch);
        let mut unindexed = self.lock_unindexed()?;
        for change in &changes {
            let (workspace, id) = change.contact();
            let revision = match change {
                IndexChange::Upsert(contact) => Some(contact.revision),
                IndexChange::Remove(..) => None,
            };
            unindexed
                .states
                .insert((workspace.clone(), *id), (number, revision));
        }
        unindexed.contacts += changes.len();
        unindexed.bulk |= bulk;
        unindexed.since.get_or_insert_with(Instant::now);
        unindexed.waiting.push(TakenBatch {
            step: number,
            batch,
            changes,
        });
        tracing::debug!(
            entries,
            from_payload = sources.from_payload,
            read_back = sources.read_back,
            read_ms = read.as_millis(),
            membership_ms = (recorded - read).as_millis(),
            total_ms = started.elapsed().as_millis(),
            "indexer step"
        );
        Ok(Step { entries, bulk })
    }

    /// Commits the batches taken and not committed yet, after any commit under way; the
    /// engine hears which ones the index now holds.
    async fn commit_taken(&self) -> Result<(), IndexerError> {
        let _commit = self.commit_lock.lock().await;
        let taken = self.lock_unindexed()?.take_waiting();
        let Some(through) = taken.last().map(|taken| taken.step) else {
            return Ok(());
        };
        let started = Instant::now();
        let mut changes = Vec::new();
        let mut batches = Vec::with_capacity(taken.len());
        for taken in taken {
            changes.extend(taken.changes);
            batches.push(taken.batch);
        }
        let changes = last_per_contact(changes);
        let contacts = changes.len();
        let watermark = batches.iter().filter_map(|b| b.watermark.clone()).max();
        let last_change = batches
            .iter()
            .flat_map(|batch| batch.changes.iter().map(|change| change.key.clone()))
            .max();
        let built = self
            .current_payload()
            .is_some_and(|payload| payload.is_current_build());
        let committed = match self
            .commit(changes, built, last_change, watermark, false)
            .await
        {
            Ok(committed) => committed,
            Err(error) => {
                // Read again by the next step (the feed knows what it recorded of them).
                let mut cursor = self.lock_cursor()?;
                for batch in &batches {
                    cursor.untaken(batch);
                }
                return Err(error);
            }
        };
        let indexed = started.elapsed();
        let _step = self.step_lock.lock().await;
        {
            let mut cursor = self.lock_cursor()?;
            for batch in &batches {
                cursor.applied(batch);
            }
        }
        self.forget_below_watermark()?;
        let applied: Vec<Change> = batches.into_iter().flat_map(|b| b.changes).collect();
        if let Some(engine) = self.engine.get() {
            engine.after_batch(&applied, &committed, through);
        }
        let more = {
            let mut unindexed = self.lock_unindexed()?;
            unindexed.committed_through(through);
            !unindexed.waiting.is_empty()
        };
        if let Ok(mut applied_at) = self.applied.lock() {
            let now = Utc::now();
            for change in &applied {
                applied_at.insert(change.workspace.clone(), (change.key.clone(), now));
            }
        }
        if more {
            // Batches taken meanwhile: the loop looks at them when they are due.
            self.notifier.notify();
        }
        tracing::debug!(
            entries = applied.len(),
            contacts,
            index_ms = indexed.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "index commit"
        );
        Ok(())
    }

    /// Forgets the batches taken and not committed (a rebuild covers them), with the step
    /// and commit locks held.
    fn drop_taken(&self) -> Result<(), IndexerError> {
        let taken = self.lock_unindexed()?.take_waiting();
        let Some(through) = taken.last().map(|taken| taken.step) else {
            return Ok(());
        };
        let applied: Vec<Change> = taken.into_iter().flat_map(|t| t.batch.changes).collect();
        if let Some(engine) = self.engine.get() {
            engine.after_batch(&applied, &[], through);
        }
        self.lock_unindexed()?.committed_through(through);
        Ok(())
    }

    /// Whether the batches taken are due for their commit: the batching delay passed since
    /// the first, they name many contacts, or bulk writes.
    fn commit_due(&self) -> bool {
        self.unindexed.lock().is_ok_and(|unindexed| {
            unindexed.since.is_some_and(|since| {
                unindexed.bulk
                    || unindexed.contacts >= MAX_UNCOMMITTED_CONTACTS
                    || since.elapsed() >= self.batch_delay
            })
        })
    }

    /// How long until the batches taken are due for their commit (none taken: `None`).
    fn commit_wait(&self) -> Option<Duration> {
        let since = self.unindexed.lock().ok()?.since?;
        Some(self.batch_delay.saturating_sub(since.elapsed()))
    }

    fn lock_unindexed(&self) -> Result<std::sync::MutexGuard<'_, Unindexed>, IndexerError> {
        self.unindexed
            .lock()
            .map_err(|_| IndexerError::Poisoned("taken batches"))
    }

    /// Drops what only entries below the watermark could still need: their payloads (a late
    /// entry is read back) and the removals older than it.
    fn forget_below_watermark(&self) -> Result<(), IndexerError> {
        let Some(watermark) = self.lock_cursor()?.watermark().map(str::to_owned) else {
            return Ok(());
        };
        self.store.forget_change_payloads_before(&watermark);
        if let Ok(mut removals) = self.removals.lock() {
            removals.forget_before(&watermark);
        }
        Ok(())
    }

    /// Applies every change committed before this call; returns how many entries it applied.
    pub async fn catch_up(&self) -> Result<usize, IndexerError> {
        self.sweep().await?;
        self.apply_pending().await
    }

    /// At start: applies what the log holds (entries below the recorded watermark too, as
    /// nothing says they were applied) and then deletes every applied entry below the
    /// watermark before the service answers, so the log each start reads again is no more
    /// than what the run before left (a service killed within a second of each start, as the
    /// kill loop does, would otherwise re-apply a log that grows with every start).
    pub async fn settle(&self) -> Result<usize, IndexerError> {
        let mut applied = 0;
        loop {
            let had_watermark = self.lock_cursor()?.watermark().is_some();
            let sweep = self.look_below().await?;
            applied += self.apply_pending().await?;
            if !had_watermark && self.lock_cursor()?.watermark().is_some() {
                continue;
            }
            if sweep.applied.is_empty() && sweep.late == 0 {
                return Ok(applied);
            }
            for chunk in sweep.applied.chunks(BATCH_SIZE) {
                let outcome = self.store.delete_changes(chunk).await;
                self.lock_cursor()?.deleted(chunk, outcome.is_ok());
                outcome?;
            }
        }
    }

    /// Applies what the log holds from the watermark on (and the late entries found), and
    /// commits it with what earlier steps took; returns how many entries it took.
    async fn apply_pending(&self) -> Result<usize, IndexerError> {
        let mut applied = 0;
        loop {
            let step = self.step(Reading::Whole).await?.entries;
            if step == 0 {
                break;
            }
            applied += step;
        }
        self.commit_taken().await?;
        Ok(applied)
    }

    /// Looks below the watermark: entries never applied (committed later than the grace, or
    /// unsure after a restart) go to the next step, applied ones to a background deletion.
    pub async fn sweep(&self) -> Result<(), IndexerError> {
        let sweep = self.look_below().await?;
        if sweep.late > 0 {
            warn!(
                entries = sweep.late,
                "change-log entries below the index's watermark were not applied yet (a commit later than the grace, or a restart); applying them now"
            );
        }
        if !sweep.applied.is_empty() {
            self.delete_in_background(sweep.applied);
        }
        Ok(())
    }

    /// Reads below the watermark (nothing before one exists), from the cursor's sweep floor
    /// on, and sorts what it finds. In a shared log, only the last [`LATE_WINDOW`] below it,
    /// and nothing goes to deletion: what lies further down stays for the other instances, and
    /// this one forgets it applied it.
    async fn look_below(&self) -> Result<Sweep, IndexerError> {
        let Some(watermark) = self.lock_cursor()?.watermark().map(str::to_owned) else {
            return Ok(Sweep::default());
        };
        match self.sharing {
            LogSharing::Exclusive => {
                let floor = self.lock_cursor()?.sweep_floor(LATE_WINDOW);
                let below = match &floor {
                    Some(from) => {
                        self.store
                            .changes_between(from, &watermark, SWEEP_SIZE)
                            .await?
                    }
                    None => self.store.changes_before(&watermark, SWEEP_SIZE).await?,
                };
                let complete = below.len() < SWEEP_SIZE;
                let mut cursor = self.lock_cursor()?;
                if floor.is_none() {
                    cursor.swept_from_start(complete);
                }
                Ok(cursor.sweep(below))
            }
            LogSharing::Shared { .. } => {
                let from = key_below(&watermark, LATE_WINDOW)
                    .ok_or_else(|| IndexerError::BadWatermark(watermark.clone()))?;
                self.lock_cursor()?.forget_applied_before(&from);
                let below = self
                    .store
                    .changes_between(&from, &watermark, SWEEP_SIZE)
                    .await?;
                Ok(self.lock_cursor()?.find_late(below))
            }
        }
    }

    /// In a shared log, deletes the entries older than the retention (any instance may; a
    /// conflict with another one doing the same is left to the next purge).
    async fn purge_expired(store: Store, retention: chrono::TimeDelta) {
        let cutoff = change_key_at(Utc::now() - retention);
        loop {
            let expired = match store.changes_before(&cutoff, PURGE_CHUNK).await {
                Ok(expired) if !expired.is_empty() => expired,
                Ok(_) => return,
                Err(error) => {
                    warn!(%error, "reading expired change-log entries failed; the next purge retries");
                    return;
                }
            };
            let keys: Vec<String> = expired.into_iter().map(|change| change.key).collect();
            if let Err(error) = store.delete_changes(&keys).await {
                warn!(%error, "deleting expired change-log entries failed; the next purge retries");
                return;
            }
        }
    }

    /// Whether a background deletion is still under way.
    fn deleting(&self) -> bool {
        self.deletion
            .lock()
            .ok()
            .is_some_and(|task| task.as_ref().is_some_and(|task| !task.is_finished()))
    }

    /// Deletes applied entries in small chunks, one deletion at a time, while the indexer is
    /// quiet: a SurrealDB delete costs several times a write (it looks for the record's graph
    /// edges), and under a stream of writes it would slow the steps that follow it. Past
    /// [`MAX_UNDELETED`] applied entries it deletes anyway.
    fn delete_in_background(&self, keys: Vec<String>) {
        let store = self.store.clone();
        let cursor = Arc::clone(&self.cursor);
        let busy = Arc::clone(&self.busy_at);
        let previous = self.deletion.lock().ok().and_then(|mut slot| slot.take());
        let task = tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            for chunk in keys.chunks(DELETE_CHUNK) {
                loop {
                    let quiet = busy
                        .lock()
                        .map(|at| at.is_none_or(|at| at.elapsed() >= QUIET_AFTER))
                        .unwrap_or(true);
                    let crowded = cursor
                        .lock()
                        .map(|cursor| cursor.undeleted() > MAX_UNDELETED)
                        .unwrap_or(true);
                    if quiet || crowded {
                        break;
                    }
                    tokio::time::sleep(QUIET_AFTER).await;
                }
                let outcome = store.delete_changes(chunk).await;
                if let Err(error) = &outcome {
                    warn!(%error, "deleting applied change-log entries failed; a later sweep retries");
                }
                if let Ok(mut cursor) = cursor.lock() {
                    cursor.deleted(chunk, outcome.is_ok());
                }
            }
        });
        if let Ok(mut slot) = self.deletion.lock() {
            *slot = Some(task);
        }
    }

    /// Follows the change log until `shutdown` turns true: takes batches as writes come (the
    /// feed records them at once) and commits them to the index when due, in a task of its
    /// own so that the next batches are taken meanwhile.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_sweep: Option<Instant> = None;
        let mut last_purge: Option<Instant> = None;
        let mut purge: Option<tokio::task::JoinHandle<()>> = None;
        let mut committing: Option<tokio::task::JoinHandle<()>> = None;
        // While steps find entries, the next one starts at once (what came in during a step
        // is its batch).
        let mut busy = false;
        loop {
            if !busy {
                let next_due = self
                    .engine
                    .get()
                    .and_then(|engine| engine.next_due())
                    .map(|at| (at - Utc::now()).to_std().unwrap_or_default());
                let poll = match self.sharing {
                    LogSharing::Exclusive => POLL_INTERVAL,
                    LogSharing::Shared { .. } => SHARED_POLL_INTERVAL,
                };
                // A commit under way wakes the loop when it ends with batches left.
                let in_flight = committing.as_ref().is_some_and(|task| !task.is_finished());
                let commit_in = if in_flight { None } else { self.commit_wait() };
                let wait = [Some(poll), next_due, commit_in]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(poll);
                tokio::select! {
                    () = self.notifier.0.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if *shutdown.borrow() {
                if let Some(task) = committing.take() {
                    let _ = task.await;
                }
                if let Err(error) = self.commit_taken().await {
                    warn!(%error, "committing the segment index at shutdown failed; the next start applies the log again");
                }
                return;
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) && !self.deleting() {
                last_sweep = Some(Instant::now());
                if let Err(error) = self.sweep().await {
                    warn!(%error, "sweeping the change log failed; retrying");
                }
                if let Err(error) = self.rebuild_if_behind().await {
                    warn!(%error, "rebuilding the segment index failed; retrying");
                }
            }
            if let LogSharing::Shared { retention } = self.sharing
                && last_purge.is_none_or(|at| at.elapsed() >= PURGE_INTERVAL)
                && purge.as_ref().is_none_or(|task| task.is_finished())
            {
                last_purge = Some(Instant::now());
                purge = Some(tokio::spawn(Self::purge_expired(
                    self.store.clone(),
                    retention,
                )));
            }
            let step = self.step(Reading::Tail).await;
            if self.commit_due() && committing.as_ref().is_none_or(|task| task.is_finished()) {
                let indexer = Arc::clone(&self);
                committing = Some(tokio::spawn(async move {
                    if let Err(error) = indexer.commit_taken().await {
                        warn!(%error, "committing the segment index failed; retrying");
                    }
                }));
            }
            match step {
                Ok(step) => {
                    busy = step.entries > 0;
                    if step.bulk {
                        tokio::select! {
                            () = tokio::time::sleep(BULK_DELAY) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
                Err(error) => {
                    warn!(%error, "indexing failed; retrying");
                    busy = false;
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
            }
        }
    }

    /// How far the index is behind the store, over every workspace.
    pub async fn backlog(&self) -> Result<Backlog, IndexerError> {
        self.backlog_of(None).await
    }

    /// The entries of `workspace` (all: `None`) not applied yet.
    async fn backlog_of(&self, workspace: Option<&WorkspaceId>) -> Result<Backlog, IndexerError> {
        let watermark = self.lock_cursor()?.watermark().map(str::to_owned);
        let log = self
            .store
            .changes_from(watermark.as_deref(), BACKLOG_READ)
            .await?;
        Ok(self.lock_cursor()?.backlog(&log, workspace))
    }

    fn lock_cursor(&self) -> Result<std::sync::MutexGuard<'_, ChangeCursor>, IndexerError> {
        self.cursor
            .lock()
            .map_err(|_| IndexerError::Poisoned("change cursor"))
    }

    /// How current the index is.
    pub async fn status(&self, workspace: &WorkspaceId) -> Result<IndexStatus, IndexerError> {
        let backlog = self.backlog_of(Some(workspace)).await?;
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
            .map_err(IndexerError::Task)??;
        Ok(IndexStatus {
            pending_changes: backlog.pending,
            pending_contacts: backlog.pending_contacts,
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
        watermark: Option<String>,
        clear: bool,
    ) -> Result<Vec<IndexChange>, IndexerError> {
        let previous = self.current_payload();
        let last_change =
            last_change.or_else(|| previous.as_ref().and_then(|p| p.last_change.clone()));
        let watermark = watermark.or_else(|| previous.and_then(|p| p.watermark));
        let payload = CommitPayload {
            projection: PROJECTION_VERSION,
            built,
            last_change,
            watermark,
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
        .map_err(IndexerError::Task)??;
        if let Ok(mut last) = self.last_payload.lock() {
            *last = Some(payload);
        }
        Ok(changes)
    }
}

/// `changes` with only the last change of each contact, in the order of those last changes.
fn last_per_contact(changes: Vec<IndexChange>) -> Vec<IndexChange> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<IndexChange> = changes
        .into_iter()
        .rev()
        .filter(|change| {
            let (workspace, id) = change.contact();
            seen.insert((workspace.clone(), *id))
        })
        .collect();
    last.reverse();
    last
}
