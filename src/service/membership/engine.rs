//! The membership engine: turns index steps, time and segment edits into feed entries.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use qwry_segment::eval::next_change;
use qwry_segment::{Checked, Field, Test, TimePoint};
use tokio::sync::broadcast;

use super::error::MembershipError;
use super::shadow::{self, Shadow, Shadows};
use super::timer::Timer;
use crate::domain::{
    Contact, ContactId, FeedEvent, MembershipCause, MembershipChange, MembershipKind, Slug,
    Webhook, WebhookDelivery, WorkspaceId,
};
use crate::index::{ContactRecord, IndexChange, IndexError, SegmentIndex};
use crate::service::lease::Lease;
use crate::service::segment::{CompiledCatalogs, evaluate};
use crate::service::webhooks;
use crate::store::{Change, FedState, Store};

/// How far ahead the timer loads flips; a new window is scanned when half of it has passed.
const WINDOW: TimeDelta = TimeDelta::minutes(10);
/// How often the clock is saved while no transition happens.
const CLOCK_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// How often old feed entries are pruned.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);
/// Contacts read per page while scanning a window.
const SCAN_PAGE: usize = 5_000;
/// Default of how long feed entries are kept.
pub use crate::config::DEFAULT_FEED_RETENTION;

/// The saved segments of a workspace as the engine last evaluated them.
type Trees = Vec<(Slug, Checked)>;

/// Records ENTER and EXIT entries of saved segments (see the module documentation).
pub struct MembershipEngine {
    store: Store,
    index: Arc<SegmentIndex>,
    compiled: CompiledCatalogs,
    positions: Mutex<ulid::Generator>,
    events: broadcast::Sender<FeedEvent>,
    known: Mutex<HashMap<WorkspaceId, Trees>>,
    timer: Mutex<Timer>,
    clock_saved: Mutex<Option<Instant>>,
    /// What the feed holds that the index has not committed yet, as the store records it
    /// (loaded at the first batch): a replay must not record it again.
    fed_unapplied: Mutex<Option<FeedAhead>>,
    /// When the last prune started, and the task running it.
    last_prune: Mutex<Option<(Instant, tokio::task::JoinHandle<()>)>>,
    retention: TimeDelta,
    /// With several instances on one store, only the holder of this lease records.
    lease: Option<Arc<Lease>>,
    /// Whether this instance recorded at its last step.
    leading: std::sync::atomic::AtomicBool,
    /// What this instance evaluated while another held the lease (see [`super::shadow`]).
    shadows: Mutex<Shadows>,
}

/// What an instance does at a step, given the lease.
enum Role {
    /// Records the feed; `took_over` at the first step after another instance held it.
    Leading { took_over: bool },
    /// Evaluates, and keeps what it would have recorded (another instance records).
    Following,
}

/// A contact of a workspace.
type ContactKey = (WorkspaceId, ContactId);

/// What the feed holds ahead of the index.
#[derive(Debug, Clone, Default)]
struct FeedAhead {
    /// Change-log entries turned into feed entries.
    keys: HashSet<String>,
    /// The membership the feed last recorded for (contact, segment) pairs whose contact the
    /// index has not committed since: after a crash, the old state of a replayed contact (the
    /// index may still hold a state from before what the feed already said).
    members: HashMap<(WorkspaceId, ContactId, Slug), bool>,
    /// The states the feed evaluated and the index has not committed yet, with the step that
    /// evaluated them (`None`: removed). The feed runs ahead of the index: a later write's old
    /// state is this one, not the index's.
    states: HashMap<ContactKey, (u64, Option<Contact>)>,
}

impl FeedAhead {
    fn loaded(state: FedState) -> Self {
        Self {
            keys: state.keys.into_iter().collect(),
            members: state
                .members
                .into_iter()
                .map(|(workspace, contact, segment, member)| {
                    ((workspace, contact, segment), member)
                })
                .collect(),
            states: HashMap::new(),
        }
    }

    /// What the store records of it, with a step's `keys` and `members` added.
    fn stored_with(
        &self,
        keys: &[String],
        members: &HashMap<(WorkspaceId, ContactId, Slug), bool>,
    ) -> FedState {
        let mut all = self.members.clone();
        all.extend(members.iter().map(|(key, member)| (key.clone(), *member)));
        FedState {
            keys: self.keys.iter().chain(keys).cloned().collect(),
            members: all
                .into_iter()
                .map(|((workspace, contact, segment), member)| {
                    (workspace, contact, segment, member)
                })
                .collect(),
        }
    }

    /// The feed's word on `contact` in `segment` (`tree`) at `now`, when it is ahead of the
    /// index: its state evaluated, or after a crash the membership it last recorded.
    fn member(
        &self,
        workspace: &WorkspaceId,
        contact: ContactId,
        segment: &Slug,
        tree: &Checked,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        if let Some((_, state)) = self.states.get(&(workspace.clone(), contact)) {
            return Some(
                state
                    .as_ref()
                    .is_some_and(|state| evaluate(tree, &ContactRecord(state), now)),
            );
        }
        self.members
            .get(&(workspace.clone(), contact, segment.clone()))
            .copied()
    }

    /// The contacts of `workspace` whose evaluated state the index has not committed yet.
    fn uncommitted_of<'a>(
        &'a self,
        workspace: &'a WorkspaceId,
    ) -> impl Iterator<Item = (ContactId, Option<&'a Contact>)> + 'a {
        self.states
            .iter()
            .filter(move |((of, _), _)| of == workspace)
            .map(|((_, id), (_, state))| (*id, state.as_ref()))
    }
}

/// What one step adds to the feed's lead over the index once its entries are recorded.
#[derive(Default)]
struct StepLead {
    keys: Vec<String>,
    members: HashMap<(WorkspaceId, ContactId, Slug), bool>,
    states: Vec<(ContactKey, Option<Contact>)>,
}

/// Contacts of one workspace that a batch changed: their new state, or `None` when removed.
pub(super) type Written = HashMap<WorkspaceId, Vec<(ContactId, Option<Contact>)>>;

impl MembershipEngine {
    /// An engine over `store` and `index`, evaluating the trees of `compiled`; feed entries
    /// are pruned once older than `retention`.
    pub fn new(
        store: Store,
        index: Arc<SegmentIndex>,
        compiled: CompiledCatalogs,
        retention: TimeDelta,
    ) -> Self {
        let (events, _) = broadcast::channel(4_096);
        Self {
            store,
            index,
            compiled,
            positions: Mutex::new(ulid::Generator::new()),
            events,
            known: Mutex::default(),
            timer: Mutex::default(),
            clock_saved: Mutex::default(),
            fed_unapplied: Mutex::default(),
            last_prune: Mutex::default(),
            retention,
            lease: None,
            leading: std::sync::atomic::AtomicBool::new(false),
            shadows: Mutex::default(),
        }
    }

    /// This engine, recording only while it holds `lease` (several instances on one store):
    /// the others keep their indexes and subscribers, and take over when the holder stops.
    pub fn led_by(mut self, lease: Arc<Lease>) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Whether this instance records now. One that takes over starts from what the store
    /// says, as at a start: the feed's record of what it holds ahead of the index, the
    /// time-transition clock and the saved segments' trees.
    async fn recording(&self) -> Role {
        use std::sync::atomic::Ordering;
        let Some(lease) = &self.lease else {
            return Role::Leading { took_over: false };
        };
        let held = lease.held().await;
        let was = self.leading.swap(held, Ordering::SeqCst);
        if held != was {
            // The lead over the index is the holder's (loaded from the store at a takeover)
            // or the follower's own (from nothing when the lease is lost).
            if let Ok(mut fed) = self.fed_unapplied.lock() {
                *fed = None;
            }
        }
        if held && !was {
            if let Ok(mut timer) = self.timer.lock() {
                *timer = Timer::default();
            }
            if let Ok(mut known) = self.known.lock() {
                known.clear();
            }
        }
        if !held
            && was
            && let Ok(mut shadows) = self.shadows.lock()
        {
            shadows.clear();
        }
        match held {
            true => Role::Leading { took_over: !was },
            false => Role::Following,
        }
    }

    /// Follows what the engine records and which contacts change.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.events.subscribe()
    }

    /// The earliest scheduled time transition.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.timer.lock().ok().and_then(|timer| timer.next_due())
    }

    /// Runs when the indexer takes a batch (`pending` as read, `changes` as it will apply
    /// them; both may be empty), before the index commits it: loads the timer's window,
    /// records the differences of edited segments, the time transitions now due and the
    /// batch's own, in that order. `step` numbers the batch (rising); [`Self::after_batch`]
    /// says up to which one the index committed. The index may commit later, after more
    /// batches: a contact's old state is what the feed last evaluated of it, not the index's.
    pub async fn before_batch(
        &self,
        pending: &[Change],
        changes: &[IndexChange],
        step: u64,
    ) -> Result<(), MembershipError> {
        let took_over = match self.recording().await {
            Role::Following => return self.shadow(pending, changes, step).await,
            Role::Leading { took_over } => took_over,
        };
        // Batches are taken one at a time (the indexer's step lock): the state is taken for
        // the step and put back at its end, with the step's lead added once it is recorded.
        let taken = self
            .fed_unapplied
            .lock()
            .ok()
            .and_then(|mut fed| fed.take());
        let mut ahead = match taken {
            Some(ahead) => ahead,
            None => FeedAhead::loaded(self.store.last_fed_state().await?),
        };
        if took_over && let Err(error) = self.record_shadows(&ahead).await {
            // The next step takes over again, with the shadows kept.
            self.leading
                .store(false, std::sync::atomic::Ordering::SeqCst);
            return Err(error);
        }
        let outcome = self.feed(pending, changes, &ahead).await;
        let recorded = outcome.map(|lead| {
            ahead.keys.extend(lead.keys);
            ahead.members.extend(lead.members);
            for (key, state) in lead.states {
                ahead.states.insert(key, (step, state));
            }
        });
        if let Ok(mut unapplied) = self.fed_unapplied.lock() {
            *unapplied = Some(ahead);
        }
        recorded
    }

    /// Records one batch's entries (see [`Self::before_batch`]) against what the feed holds
    /// ahead of the index (`ahead`); returns what the batch adds to that lead.
    async fn feed(
        &self,
        pending: &[Change],
        changes: &[IndexChange],
        ahead: &FeedAhead,
    ) -> Result<StepLead, MembershipError> {
        let now = Utc::now();
        let started = Instant::now();
        let mut entries = Vec::new();
        self.load_window(now).await?;
        self.reconcile(now, ahead, &mut entries).await?;
        let prepared = started.elapsed();
        let already_fed = |change: &Change| change.fed || ahead.keys.contains(&change.key);
        let written = written_by(pending, changes, &already_fed);
        let fired = self.fire_due(now, &written, &mut entries).await?;
        for (workspace, contacts) in &written {
            self.batch_transitions(workspace, contacts, now, ahead, &mut entries)
                .await?;
            // Their next flips, from the moment they were evaluated at (the index commits
            // them later).
            let trees = self.trees(workspace);
            for contact in contacts.iter().filter_map(|(_, contact)| contact.as_ref()) {
                self.schedule_next(&trees, contact, now);
            }
        }
        let evaluated = started.elapsed();
        self.assign_positions(&mut entries);
        let erased = self.erased_in(&written).await?;
        let deliveries = self.deliveries(&entries, &written, &erased, now);
        let mut lead = StepLead {
            states: written
                .iter()
                .flat_map(|(workspace, contacts)| {
                    contacts
                        .iter()
                        .map(|(id, contact)| ((workspace.clone(), *id), contact.clone()))
                })
                .collect(),
            ..StepLead::default()
        };
        let save_clock = fired
            || self
                .clock_saved
                .lock()
                .map(|saved| saved.is_none_or(|at| at.elapsed() >= CLOCK_SAVE_INTERVAL))
                .unwrap_or(true);
        let fresh_keys: Vec<String> = pending
            .iter()
            .filter(|change| !already_fed(change))
            .map(|change| change.key.clone())
            .collect();
        // Beside other instances, a batch is marked fed even when it changes no membership,
        // so that a takeover does not record what the followers evaluated of it differently.
        let marks_alone = self.lease.is_some() && !fresh_keys.is_empty();
        if !entries.is_empty() || !deliveries.is_empty() || marks_alone {
            // What the feed holds and the index does not yet: the earlier ones still
            // unapplied (a replay may apply them over several steps) and this batch's.
            lead.keys = fresh_keys;
            // Entries of written contacts only: time transitions and segment edits are what
            // the index says at their moment, so the index is not behind on them.
            let written_now: HashSet<&ContactKey> =
                lead.states.iter().map(|(key, _)| key).collect();
            lead.members = entries
                .iter()
                .filter(|entry| written_now.contains(&(entry.workspace.clone(), entry.contact)))
                .map(|entry| {
                    let key = (
                        entry.workspace.clone(),
                        entry.contact,
                        entry.segment.clone(),
                    );
                    (key, entry.kind == MembershipKind::Enter)
                })
                .collect();
            let fed = ahead.stored_with(&lead.keys, &lead.members);
            // Beside other instances, the log's entries say they were fed (a takeover asks).
            let marks = if self.lease.is_some() {
                lead.keys.as_slice()
            } else {
                &[]
            };
            self.record(&entries, &deliveries, &fed, marks).await?;
        }
        let recorded = started.elapsed();
        if save_clock {
            self.store.advance_live_clock(now).await?;
            if let Ok(mut saved) = self.clock_saved.lock() {
                *saved = Some(Instant::now());
            }
        }
        self.prune_now_and_then(now);
        if !pending.is_empty() {
            tracing::debug!(
                entries = entries.len(),
                prepare_ms = prepared.as_millis(),
                evaluate_ms = (evaluated - prepared).as_millis(),
                record_ms = (recorded - evaluated).as_millis(),
                total_ms = started.elapsed().as_millis(),
                "membership step"
            );
        }
        Ok(lead)
    }

    /// A follower's step: evaluates the batch as the holder does, against its own lead over
    /// its index, and keeps the entries as shadows (see [`super::shadow`]).
    async fn shadow(
        &self,
        pending: &[Change],
        changes: &[IndexChange],
        step: u64,
    ) -> Result<(), MembershipError> {
        let mut ahead = self
            .fed_unapplied
            .lock()
            .ok()
            .and_then(|mut fed| fed.take())
            .unwrap_or_default();
        let now = Utc::now();
        let written = written_by(pending, changes, &|change: &Change| change.fed);
        let mut entries = Vec::new();
        let mut evaluated = Ok(());
        for (workspace, contacts) in &written {
            evaluated = self
                .batch_transitions(workspace, contacts, now, &ahead, &mut entries)
                .await;
            if evaluated.is_err() {
                break;
            }
        }
        if evaluated.is_ok() {
            for (workspace, contacts) in &written {
                for (id, contact) in contacts {
                    ahead
                        .states
                        .insert((workspace.clone(), *id), (step, contact.clone()));
                }
            }
        }
        if let Ok(mut unapplied) = self.fed_unapplied.lock() {
            *unapplied = Some(ahead);
        }
        evaluated?;
        let mut keys_of: HashMap<ContactKey, Vec<String>> = HashMap::new();
        for change in pending.iter().filter(|change| !change.fed) {
            for id in &change.contacts {
                keys_of
                    .entry((change.workspace.clone(), *id))
                    .or_default()
                    .push(change.key.clone());
            }
        }
        let written: Written = written
            .into_iter()
            .filter(|(workspace, _)| !self.compiled.webhooks(workspace).is_empty())
            .collect();
        if let Ok(mut shadows) = self.shadows.lock() {
            shadows.keep(Shadow {
                taken: Instant::now(),
                keys_of,
                entries,
                written,
            });
        }
        Ok(())
    }

    /// At a takeover: records what this instance evaluated as a follower of the contacts
    /// whose changes no holder fed (the last holder died before it recorded them). `ahead`
    /// is the store's record of what the feed holds ahead of the index.
    async fn record_shadows(&self, ahead: &FeedAhead) -> Result<(), MembershipError> {
        let shadows = self
            .shadows
            .lock()
            .map(|mut shadows| shadows.take())
            .unwrap_or_default();
        if shadows.is_empty() {
            return Ok(());
        }
        let keys = shadow::keys_of(&shadows);
        let mut fed = match self.store.fed_changes_among(&keys).await {
            Ok(fed) => fed,
            Err(error) => {
                if let Ok(mut kept) = self.shadows.lock() {
                    shadows.into_iter().for_each(|shadow| kept.keep(shadow));
                }
                return Err(error.into());
            }
        };
        fed.extend(ahead.keys.iter().cloned());
        let (mut entries, written, owed) = shadow::unfed(shadows, &fed);
        if owed.is_empty() {
            return Ok(());
        }
        self.assign_positions(&mut entries);
        let erased = self.erased_in(&written).await?;
        let deliveries = self.deliveries(&entries, &written, &erased, Utc::now());
        let state = ahead.stored_with(&[], &HashMap::new());
        self.record(&entries, &deliveries, &state, &owed).await?;
        tracing::info!(
            entries = entries.len(),
            changes = owed.len(),
            "took the membership feed over: recorded what the last holder had not"
        );
        Ok(())
    }

    /// Runs after the indexer committed the batches up to `through` (`applied` as read,
    /// `changes` as applied): their entries are no longer owed to a replay, and the index
    /// holds what the feed evaluated of their contacts (unless a later batch wrote them
    /// again); schedules the next flips of the written contacts and tells followers which
    /// contacts changed.
    pub fn after_batch(&self, applied: &[Change], changes: &[IndexChange], through: u64) {
        if let Ok(mut fed) = self.fed_unapplied.lock()
            && let Some(fed) = fed.as_mut()
        {
            for change in applied {
                fed.keys.remove(&change.key);
            }
            let committed: HashSet<ContactKey> = fed
                .states
                .iter()
                .filter(|(_, (step, _))| *step <= through)
                .map(|(key, _)| key.clone())
                .collect();
            fed.states.retain(|_, (step, _)| *step > through);
            fed.members.retain(|(workspace, contact, _), _| {
                !committed.contains(&(workspace.clone(), *contact))
            });
        }
        let now = Utc::now();
        for change in changes {
            match change {
                IndexChange::Upsert(contact) => {
                    let trees = self.trees(&contact.workspace);
                    self.schedule_next(&trees, contact, now);
                    let _ = self.events.send(FeedEvent::ContactChanged(
                        contact.workspace.clone(),
                        contact.id,
                    ));
                }
                IndexChange::Remove(workspace, id) => {
                    let _ = self
                        .events
                        .send(FeedEvent::ContactChanged(workspace.clone(), *id));
                }
            }
        }
    }

    /// The saved segments of `workspace` that check, with their trees, as compiled now.
    fn current_trees(&self, workspace: &WorkspaceId) -> Trees {
        let compiled = self.compiled.compiled(workspace);
        compiled
            .saved_trees()
            .map(|(saved, tree)| (saved.slug.clone(), tree.clone()))
            .collect()
    }

    /// The trees the engine evaluates for `workspace` (the current ones once reconciled).
    fn trees(&self, workspace: &WorkspaceId) -> Trees {
        let known = self
            .known
            .lock()
            .ok()
            .and_then(|known| known.get(workspace).cloned());
        known.unwrap_or_else(|| self.current_trees(workspace))
    }

    /// Records the member differences of every saved segment whose tree changed since the
    /// last step (a new segment starts its feed empty; a deleted one records nothing).
    async fn reconcile(
        &self,
        now: DateTime<Utc>,
        ahead: &FeedAhead,
        entries: &mut Vec<MembershipChange>,
    ) -> Result<(), MembershipError> {
        for workspace in self.compiled.workspaces() {
            let current = self.current_trees(&workspace);
            let previous = self
                .known
                .lock()
                .ok()
                .and_then(|mut known| known.insert(workspace.clone(), current.clone()));
            let Some(previous) = previous else {
                continue;
            };
            let previous: HashMap<&Slug, &Checked> =
                previous.iter().map(|(slug, tree)| (slug, tree)).collect();
            let mut edited = false;
            for (slug, tree) in &current {
                let Some(old) = previous.get(slug).filter(|old| **old != tree) else {
                    continue;
                };
                edited = true;
                let (mut before, mut after) = self
                    .blocking({
                        let (index, workspace) = (Arc::clone(&self.index), workspace.clone());
                        let (old, new) = ((*old).clone(), tree.clone());
                        move || {
                            Ok((
                                all_members(&index, &workspace, &old, now)?,
                                all_members(&index, &workspace, &new, now)?,
                            ))
                        }
                    })
                    .await?;
                // Contacts the index has not committed yet count as the feed evaluated them.
                for (id, state) in ahead.uncommitted_of(&workspace) {
                    for (members, tree) in [(&mut before, *old), (&mut after, tree)] {
                        if state.is_some_and(|state| evaluate(tree, &ContactRecord(state), now)) {
                            members.insert(id);
                        } else {
                            members.remove(&id);
                        }
                    }
                }
                let cause = MembershipCause::SegmentEdited;
                for contact in after.difference(&before) {
                    entries.push(entry(
                        &workspace,
                        slug,
                        *contact,
                        MembershipKind::Enter,
                        now,
                        cause,
                    ));
                }
                for contact in before.difference(&after) {
                    entries.push(entry(
                        &workspace,
                        slug,
                        *contact,
                        MembershipKind::Exit,
                        now,
                        cause,
                    ));
                }
            }
            let added = current.iter().any(|(slug, _)| !previous.contains_key(slug));
            if edited || added {
                let through = self.timer.lock().ok().and_then(|t| t.loaded_through);
                if let Some(through) = through {
                    self.scan(&workspace, &current, now, through).await?;
                }
            }
        }
        Ok(())
    }

    /// Records the time transitions due by `now`, each at its exact moment, for contacts the
    /// batch does not write (the batch's comparison at `now` covers those). Returns whether
    /// any flip came due.
    async fn fire_due(
        &self,
        now: DateTime<Utc>,
        written: &Written,
        entries: &mut Vec<MembershipChange>,
    ) -> Result<bool, MembershipError> {
        let due = match self.timer.lock() {
            Ok(mut timer) => timer.take_due(now),
            Err(_) => return Ok(false),
        };
        if due.is_empty() {
            return Ok(false);
        }
        let mut by_workspace: HashMap<WorkspaceId, Vec<(DateTime<Utc>, ContactId)>> =
            HashMap::new();
        for (at, workspace, contact) in due {
            let in_batch = written
                .get(&workspace)
                .is_some_and(|contacts| contacts.iter().any(|(id, _)| *id == contact));
            if !in_batch {
                by_workspace
                    .entry(workspace)
                    .or_default()
                    .push((at, contact));
            }
        }
        for (workspace, flips) in by_workspace {
            let trees = self.trees(&workspace);
            let mut ids: Vec<ContactId> = flips.iter().map(|(_, id)| *id).collect();
            ids.sort();
            ids.dedup();
            let contacts: HashMap<ContactId, Arc<Contact>> = self
                .store
                .contacts_by_ids(&workspace, &ids)
                .await?
                .into_iter()
                .map(|contact| (contact.id, contact))
                .collect();
            for (at, id) in flips {
                let Some(contact) = contacts.get(&id) else {
                    continue;
                };
                let record = ContactRecord(contact);
                let just_before = at - TimeDelta::nanoseconds(1);
                for (slug, tree) in &trees {
                    let (was, is) = (
                        evaluate(tree, &record, just_before),
                        evaluate(tree, &record, at),
                    );
                    if was != is {
                        let kind = if is {
                            MembershipKind::Enter
                        } else {
                            MembershipKind::Exit
                        };
                        entries.push(entry(&workspace, slug, id, kind, at, MembershipCause::Time));
                    }
                }
                self.schedule_next(&trees, contact, at);
            }
        }
        Ok(true)
    }

    /// Records the membership changes the batch makes: the index before it against the
    /// written contacts evaluated in memory.
    async fn batch_transitions(
        &self,
        workspace: &WorkspaceId,
        contacts: &[(ContactId, Option<Contact>)],
        now: DateTime<Utc>,
        ahead: &FeedAhead,
        entries: &mut Vec<MembershipChange>,
    ) -> Result<(), MembershipError> {
        let trees = self.trees(workspace);
        if trees.is_empty() || contacts.is_empty() {
            return Ok(());
        }
        let ids: Vec<ContactId> = contacts.iter().map(|(id, _)| *id).collect();
        let before = self
            .blocking({
                let (index, workspace) = (Arc::clone(&self.index), workspace.clone());
                let trees = trees.clone();
                move || {
                    let refs: Vec<&Checked> = trees.iter().map(|(_, tree)| tree).collect();
                    index.members_among(&workspace, &refs, &ids, now)
                }
            })
            .await?;
        for ((slug, tree), members) in trees.iter().zip(&before) {
            for (id, contact) in contacts {
                let was = ahead
                    .member(workspace, *id, slug, tree, now)
                    .unwrap_or_else(|| members.contains(id));
                let is = contact
                    .as_ref()
                    .is_some_and(|contact| evaluate(tree, &ContactRecord(contact), now));
                if was == is {
                    continue;
                }
                let kind = if is {
                    MembershipKind::Enter
                } else {
                    MembershipKind::Exit
                };
                let cause = match contact {
                    Some(contact) if consent_changed(tree, contact) => MembershipCause::Consent,
                    Some(_) => MembershipCause::ContactChanged,
                    None => MembershipCause::ContactRemoved,
                };
                entries.push(entry(workspace, slug, *id, kind, now, cause));
            }
        }
        Ok(())
    }

    /// Gives `entries` their feed positions, in the order they were made.
    fn assign_positions(&self, entries: &mut [MembershipChange]) {
        for entry in entries.iter_mut() {
            entry.position = self.next_ulid().to_string();
        }
    }

    /// A ULID greater than every one this engine made before (positions and message ids).
    fn next_ulid(&self) -> ulid::Ulid {
        self.positions
            .lock()
            .ok()
            .and_then(|mut positions| positions.generate().ok())
            .unwrap_or_else(|| ulid::Ulid::from_datetime(std::time::SystemTime::now()))
    }

    /// The webhook deliveries of `entries` and of the contacts `written` (see
    /// [`webhooks::deliveries`]), with message ids from this engine's generator.
    /// The contacts `written` removes that an erasure removed (read only for steps that
    /// remove contacts of a workspace with an endpoint that wants erasures).
    async fn erased_in(&self, written: &Written) -> Result<HashSet<ContactId>, MembershipError> {
        let mut erased = HashSet::new();
        for (workspace, contacts) in written {
            let wanted = self
                .compiled
                .webhooks(workspace)
                .iter()
                .any(Webhook::wants_erasures);
            if !wanted {
                continue;
            }
            let removed: Vec<ContactId> = contacts
                .iter()
                .filter(|(_, contact)| contact.is_none())
                .map(|(id, _)| *id)
                .collect();
            if !removed.is_empty() {
                erased.extend(self.store.erased_among(workspace, &removed).await?);
            }
        }
        Ok(erased)
    }

    fn deliveries(
        &self,
        entries: &[MembershipChange],
        written: &Written,
        erased: &HashSet<ContactId>,
        now: DateTime<Utc>,
    ) -> Vec<WebhookDelivery> {
        let changed = written
            .iter()
            .map(|(workspace, contacts)| (workspace, contacts.as_slice()));
        webhooks::deliveries(
            entries,
            changed,
            erased,
            |workspace| self.compiled.webhooks(workspace),
            || format!("msg_{}", self.next_ulid()),
            now,
        )
    }

    /// Writes `entries` and `deliveries` (with what the feed holds ahead of the index, `fed`,
    /// and the change-log entries they feed marked so, `marks`) and wakes the followers and
    /// the webhook dispatcher.
    async fn record(
        &self,
        entries: &[MembershipChange],
        deliveries: &[WebhookDelivery],
        fed: &FedState,
        marks: &[String],
    ) -> Result<(), MembershipError> {
        self.store
            .record_membership_changes(entries, deliveries, fed, marks)
            .await?;
        let workspaces: HashSet<&WorkspaceId> = entries
            .iter()
            .map(|e| &e.workspace)
            .chain(deliveries.iter().map(|d| &d.workspace))
            .collect();
        for workspace in workspaces {
            let recorded: Arc<[MembershipChange]> = entries
                .iter()
                .filter(|entry| entry.workspace == *workspace)
                .cloned()
                .collect();
            let _ = self
                .events
                .send(FeedEvent::Recorded(workspace.clone(), recorded));
        }
        Ok(())
    }

    /// Loads the timer's first window (from the saved clock, so flips missed while the
    /// service was down fire at once with their own moments), or the next one when half of
    /// the current one has passed.
    async fn load_window(&self, now: DateTime<Utc>) -> Result<(), MembershipError> {
        let loaded = self
            .timer
            .lock()
            .ok()
            .and_then(|timer| timer.loaded_through);
        let from = match loaded {
            Some(through) if through - WINDOW / 2 > now => return Ok(()),
            Some(through) => through,
            None => self.store.live_clock().await?.unwrap_or(now).min(now),
        };
        let through = now + WINDOW;
        if let Ok(mut timer) = self.timer.lock() {
            timer.loaded_through = Some(through);
        }
        for workspace in self.compiled.workspaces() {
            let trees = self.trees(&workspace);
            self.scan(&workspace, &trees, from, through).await?;
        }
        Ok(())
    }

    /// Schedules every flip in `(from, through]` of the contacts of `workspace`: the index
    /// finds the contacts whose time values put a flip there, memory gives the exact moments.
    async fn scan(
        &self,
        workspace: &WorkspaceId,
        trees: &Trees,
        from: DateTime<Utc>,
        through: DateTime<Utc>,
    ) -> Result<(), MembershipError> {
        let mut windows = Vec::new();
        for (_, tree) in trees {
            moving_bounds(tree, &mut windows);
        }
        windows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        windows.dedup();
        let mut candidates = HashSet::new();
        for (field, shift) in windows {
            // A flip at `t` comes from a value `t + shift` (give or take a nanosecond).
            let margin = TimeDelta::nanoseconds(1);
            let range = Checked::Test(
                field,
                Test::TimeRange(
                    Bound::Included(TimePoint::At(from + shift - margin)),
                    Bound::Included(TimePoint::At(through + shift + margin)),
                ),
            );
            let mut after = None;
            loop {
                let page = self
                    .blocking({
                        let (index, workspace) = (Arc::clone(&self.index), workspace.clone());
                        let range = range.clone();
                        move || index.members(&workspace, &range, from, after.as_ref(), SCAN_PAGE)
                    })
                    .await?;
                after = page.ids.last().copied();
                candidates.extend(page.ids);
                if !page.has_more {
                    break;
                }
            }
        }
        let mut ids: Vec<ContactId> = candidates.into_iter().collect();
        ids.sort();
        for chunk in ids.chunks(SCAN_PAGE) {
            for contact in self.store.contacts_by_ids(workspace, chunk).await? {
                self.schedule_next(trees, contact.as_ref(), from);
            }
        }
        Ok(())
    }

    /// Schedules the first flip of `contact` after `after` in any of `trees`.
    fn schedule_next(&self, trees: &Trees, contact: &Contact, after: DateTime<Utc>) {
        let record = ContactRecord(contact);
        let next = trees
            .iter()
            .filter_map(|(_, tree)| next_change(tree, &record, after))
            .min();
        if let (Some(at), Ok(mut timer)) = (next, self.timer.lock()) {
            timer.schedule(at, &contact.workspace, contact.id);
        }
    }

    /// Deletes feed entries, and webhook deliveries no longer pending, older than the retention,
    /// about once an hour, in a task of its own: the deletions scan their tables, which at 1M
    /// contacts held a step (and every ENTER behind it) for 13 s.
    fn prune_now_and_then(&self, now: DateTime<Utc>) {
        let Ok(mut last) = self.last_prune.lock() else {
            return;
        };
        let due = last.as_ref().is_none_or(|(started, task)| {
            started.elapsed() >= PRUNE_INTERVAL && task.is_finished()
        });
        if !due {
            return;
        }
        let store = self.store.clone();
        let before = now - self.retention;
        let task = tokio::spawn(async move {
            if let Err(error) = store.prune_membership_changes(before).await {
                tracing::warn!(%error, "pruning the segment feed failed; trying again later");
            }
            if let Err(error) = store.prune_webhook_deliveries(before).await {
                tracing::warn!(%error, "pruning the webhook delivery log failed; trying again later");
            }
            if let Err(error) = store.prune_erased_marks(before).await {
                tracing::warn!(%error, "pruning erasure marks failed; trying again later");
            }
            if let Err(error) = store
                .prune_segment_days(now - crate::store::DAYS_KEPT)
                .await
            {
                tracing::warn!(%error, "pruning the segments' day counts failed; trying again later");
            }
        });
        *last = Some((Instant::now(), task));
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
    ) -> Result<T, MembershipError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(MembershipError::Task)?
            .map_err(MembershipError::from)
    }
}

/// The contacts the batch writes, per workspace, leaving out entries already fed (replayed).
fn written_by(
    pending: &[Change],
    changes: &[IndexChange],
    already_fed: &dyn Fn(&Change) -> bool,
) -> Written {
    let fresh: HashSet<(&WorkspaceId, &ContactId)> = pending
        .iter()
        .filter(|change| !already_fed(change))
        .flat_map(|change| change.contacts.iter().map(|id| (&change.workspace, id)))
        .collect();
    let mut written: Written = HashMap::new();
    let mut seen = HashSet::new();
    // The last change of a contact in the batch is its state after the batch.
    for change in changes.iter().rev() {
        let (workspace, id) = change.contact();
        if fresh.contains(&(workspace, id)) && seen.insert((workspace.clone(), *id)) {
            let contact = match change {
                IndexChange::Upsert(contact) => Some((**contact).clone()),
                IndexChange::Remove(..) => None,
            };
            written
                .entry(workspace.clone())
                .or_default()
                .push((*id, contact));
        }
    }
    written
}

/// Every member of `tree` in `workspace` at `now`.
fn all_members(
    index: &SegmentIndex,
    workspace: &WorkspaceId,
    tree: &Checked,
    now: DateTime<Utc>,
) -> Result<HashSet<ContactId>, IndexError> {
    let mut members = HashSet::new();
    let mut after = None;
    loop {
        let page = index.members(workspace, tree, now, after.as_ref(), SCAN_PAGE)?;
        after = page.ids.last().copied();
        members.extend(page.ids);
        if !page.has_more {
            return Ok(members);
        }
    }
}

/// The datetime fields `tree` compares with a moving `now`, each with how far ahead of the
/// flip moment the value lies (`within 30d`: a value flips 30 days after itself, so -30d).
fn moving_bounds(tree: &Checked, out: &mut Vec<(Field, TimeDelta)>) {
    match tree {
        Checked::And(operands) | Checked::Or(operands) => {
            operands
                .iter()
                .for_each(|operand| moving_bounds(operand, out));
        }
        Checked::Not(operand) => moving_bounds(operand, out),
        Checked::InSegment(_) => {}
        Checked::Test(field, Test::TimeRange(low, high)) => {
            for bound in [low, high] {
                if let Bound::Included(TimePoint::Now(offset))
                | Bound::Excluded(TimePoint::Now(offset)) = bound
                {
                    // value = flip moment + offset
                    let zero: DateTime<Utc> = DateTime::UNIX_EPOCH;
                    out.push((field.clone(), TimePoint::Now(*offset).resolve(zero) - zero));
                }
            }
        }
        Checked::Test(..) => {}
    }
}

fn entry(
    workspace: &WorkspaceId,
    segment: &Slug,
    contact: ContactId,
    kind: MembershipKind,
    at: DateTime<Utc>,
    cause: MembershipCause,
) -> MembershipChange {
    MembershipChange {
        position: String::new(),
        workspace: workspace.clone(),
        segment: segment.clone(),
        contact,
        kind,
        at,
        cause,
    }
}

/// Whether the contact's latest write granted or withdrew a consent that `tree` tests: the
/// membership change it made is then one of consent.
fn consent_changed(tree: &Checked, contact: &Contact) -> bool {
    match tree {
        Checked::And(operands) | Checked::Or(operands) => operands
            .iter()
            .any(|operand| consent_changed(operand, contact)),
        Checked::Not(operand) => consent_changed(operand, contact),
        Checked::Test(Field::Consent(purpose), _) => contact
            .consents
            .get(purpose.as_str())
            .is_some_and(|consent| consent.stated_at_revision(contact.revision)),
        Checked::Test(..) | Checked::InSegment(_) => false,
    }
}
