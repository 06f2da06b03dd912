//! Where an indexer stands in the change log, without deleting entries on its path.
//!
//! Entry keys are ULIDs taken just before a write's transaction is sent, so key order is not
//! commit order: an entry may become visible after one with a later key. The cursor keeps a
//! *watermark*: every entry with a smaller key was seen by an earlier read. Each step reads the
//! log from the watermark on, skips what it already applied, and afterwards moves the
//! watermark up to [`COMMIT_GRACE`] before the moment the read started (never past an entry it
//! left unread), so an entry committed up to that long after its key's time is still read.
//! A later commit is found by a sweep below the watermark, which also hands the applied
//! entries found there to a background deletion; nothing unapplied is ever deleted. After one
//! sweep saw the whole log below the watermark, sweeps start at a floor (the lowest entry still
//! owed something, at most a late window under the watermark), past the deleted entries.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::WorkspaceId;
use crate::store::{Backlog, Change, change_key_at};

/// How long after its key's time an entry can commit and still be read in key order.
pub const COMMIT_GRACE: Duration = Duration::from_secs(5);

/// The change-log key `window` before the time of `key` (a ULID; `None` when it is not one).
pub fn key_below(key: &str, window: chrono::TimeDelta) -> Option<String> {
    let ulid = ulid::Ulid::from_string(key).ok()?;
    Some(change_key_at(
        DateTime::<Utc>::from(ulid.datetime()) - window,
    ))
}

/// One step's entries and where the watermark goes once they are applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Entries to apply, late ones first, then in key order.
    pub changes: Vec<Change>,
    /// The watermark to record with the commit that applies them.
    pub watermark: Option<String>,
}

/// What a sweep below the watermark found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    /// Applied entries, ready to be deleted.
    pub applied: Vec<String>,
    /// Entries never applied (committed late, or unsure after a restart); the next step
    /// applies them.
    pub late: usize,
}

/// An indexer's position in the change log.
#[derive(Debug, Default)]
pub struct ChangeCursor {
    /// Every entry below it was seen by a read (`None`: nothing was read yet).
    watermark: Option<String>,
    /// Applied entries not yet deleted from the log.
    applied: BTreeSet<String>,
    /// Entries a step took whose commit is still to come (the membership feed runs ahead of
    /// the index): later reads skip them, sweeps leave them alone.
    fed: BTreeSet<String>,
    /// Unapplied entries a sweep found below the watermark.
    late: Vec<Change>,
    /// Entries being deleted.
    deleting: HashSet<String>,
    /// Whether a sweep from the start of the log saw everything below the watermark; until
    /// then sweeps start there (entries of an earlier run may lie anywhere below).
    swept_to_start: bool,
    /// The newest key a step went through (taken or skipped), where tail reads look back from.
    newest_read: Option<String>,
}

impl ChangeCursor {
    /// A cursor resuming at `watermark` (from the index's last commit). Entries below it that
    /// are still in the log count as unapplied: the first sweep applies them again, which is
    /// harmless and covers a crash between a commit and anything this process knew.
    pub fn resume(watermark: Option<String>) -> Self {
        Self {
            watermark,
            ..Self::default()
        }
    }

    /// Where the next read starts and how many entries it asks for so that `batch` new ones
    /// fit beside the applied ones it will skip.
    pub fn read_plan(&self, batch: usize) -> (Option<String>, usize) {
        let skipped = match &self.watermark {
            Some(watermark) => {
                self.applied.range(watermark.clone()..).count()
                    + self.fed.range(watermark.clone()..).count()
            }
            None => self.applied.len() + self.fed.len(),
        };
        (self.watermark.clone(), batch + skipped)
    }

    /// Where a tail read starts and how many entries it asks for: `lookback` below the newest
    /// key a step went through, when that lies above the watermark (else `None`: read from the
    /// watermark). A tail read skips the entries already seen below it; the watermark only
    /// moves with reads from it, which find whatever committed later than the lookback.
    pub fn tail_plan(&self, batch: usize, lookback: chrono::TimeDelta) -> Option<(String, usize)> {
        let from = key_below(self.newest_read.as_deref()?, lookback)?;
        if self
            .watermark
            .as_deref()
            .is_some_and(|watermark| from.as_str() <= watermark)
        {
            return None;
        }
        let skipped =
            self.applied.range(from.clone()..).count() + self.fed.range(from.clone()..).count();
        Some((from, batch + skipped))
    }

    /// Picks up to `batch` entries to apply from `read` (the answer to [`Self::read_plan`]'s
    /// read, of `limit` entries at most, started at `read_at`) and the late ones.
    pub fn next_batch(
        &mut self,
        read: Vec<Change>,
        limit: usize,
        read_at: DateTime<Utc>,
        batch: usize,
    ) -> Batch {
        let full_read = read.len() >= limit;
        let last_read = read.last().map(|change| change.key.clone());
        let (changes, left_unread) = self.pick(read, batch);
        let horizon = change_key_at(read_at - COMMIT_GRACE);
        let mut bound = horizon;
        if let Some(key) = left_unread.or(if full_read { last_read } else { None }) {
            bound = bound.min(key);
        }
        let watermark = match &self.watermark {
            Some(current) if *current >= bound => Some(current.clone()),
            _ => Some(bound),
        };
        Batch { changes, watermark }
    }

    /// As [`Self::next_batch`] for the answer to a [`Self::tail_plan`] read: the watermark
    /// stays where it is.
    pub fn next_tail_batch(&mut self, read: Vec<Change>, batch: usize) -> Batch {
        let (changes, _) = self.pick(read, batch);
        Batch {
            changes,
            watermark: self.watermark.clone(),
        }
    }

    /// The late entries and then those of `read` not seen yet, up to `batch`, and the first
    /// entry left for a later step.
    fn pick(&mut self, read: Vec<Change>, batch: usize) -> (Vec<Change>, Option<String>) {
        let late_taken = self.late.len().min(batch);
        let mut changes: Vec<Change> = self.late.drain(..late_taken).collect();
        let mut chosen: HashSet<String> = changes.iter().map(|c| c.key.clone()).collect();
        let mut left_unread: Option<String> = None;
        let mut newest: Option<String> = None;
        for change in read {
            if self.applied.contains(&change.key)
                || self.fed.contains(&change.key)
                || chosen.contains(&change.key)
            {
                newest = Some(change.key);
                continue;
            }
            if changes.len() >= batch {
                left_unread = Some(change.key);
                break;
            }
            newest = Some(change.key.clone());
            chosen.insert(change.key.clone());
            changes.push(change);
        }
        if newest > self.newest_read {
            self.newest_read = newest;
        }
        (changes, left_unread)
    }

    /// Records that `batch` was taken by a step whose commit is still to come: later reads
    /// skip its entries, and the watermark stays until [`Self::applied`].
    pub fn taken(&mut self, batch: &Batch) {
        self.fed
            .extend(batch.changes.iter().map(|change| change.key.clone()));
    }

    /// Records that the commit of `batch` failed: its entries are read again.
    pub fn untaken(&mut self, batch: &Batch) {
        for change in &batch.changes {
            self.fed.remove(&change.key);
        }
    }

    /// Records that `batch` was applied and committed.
    pub fn applied(&mut self, batch: &Batch) {
        for change in &batch.changes {
            self.fed.remove(&change.key);
        }
        self.applied
            .extend(batch.changes.iter().map(|change| change.key.clone()));
        if batch.watermark > self.watermark {
            self.watermark.clone_from(&batch.watermark);
        }
    }

    /// Starts over after a full build that covers the `existing` entries (those in the log
    /// before its scan began), resuming at `watermark`.
    pub fn rebuilt(&mut self, watermark: String, existing: impl IntoIterator<Item = String>) {
        self.applied = existing.into_iter().collect();
        self.fed.clear();
        self.late.clear();
        self.watermark = Some(watermark);
        self.swept_to_start = false;
        self.newest_read = None;
    }

    /// Where a sweep below the watermark starts: the start of the log (`None`) until one
    /// sweep from there saw all of it, then the lowest entry still owed a deletion or an
    /// apply, or `late_window` below the watermark, whichever is lower. Deleted entries stay
    /// in the store as tombstones for a while; a sweep that starts at its floor seeks past
    /// them instead of stepping over each one every time.
    pub fn sweep_floor(&self, late_window: chrono::TimeDelta) -> Option<String> {
        if !self.swept_to_start {
            return None;
        }
        let window = key_below(self.watermark.as_deref()?, late_window)?;
        let owed = [
            self.applied.first().cloned(),
            self.late.iter().map(|change| change.key.clone()).min(),
        ];
        owed.into_iter().flatten().chain([window]).min()
    }

    /// Records that a sweep read the log from its start to the watermark, all of it
    /// (`complete`: fewer entries than it asked for), so later sweeps may start at
    /// [`Self::sweep_floor`].
    pub fn swept_from_start(&mut self, complete: bool) {
        self.swept_to_start |= complete;
    }

    /// The watermark, when a sweep below it can find anything.
    pub fn watermark(&self) -> Option<&str> {
        self.watermark.as_deref()
    }

    /// Sorts the entries found below the watermark (`below`): applied ones go to deletion
    /// (unless already being deleted), others are applied by the next step.
    pub fn sweep(&mut self, below: Vec<Change>) -> Sweep {
        self.sort_below(below, true)
    }

    /// As [`Self::sweep`] in a shared log, whose applied entries stay for the other readers:
    /// only the late ones are taken, nothing goes to deletion.
    pub fn find_late(&mut self, below: Vec<Change>) -> Sweep {
        self.sort_below(below, false)
    }

    fn sort_below(&mut self, below: Vec<Change>, delete_applied: bool) -> Sweep {
        let mut sweep = Sweep::default();
        let queued: HashSet<String> = self.late.iter().map(|c| c.key.clone()).collect();
        for change in below {
            if self.fed.contains(&change.key) {
                continue;
            }
            if self.applied.contains(&change.key) {
                if delete_applied && self.deleting.insert(change.key.clone()) {
                    sweep.applied.push(change.key);
                }
            } else if !queued.contains(&change.key) {
                sweep.late += 1;
                self.late.push(change);
            }
        }
        sweep
    }

    /// Forgets the applied entries keyed before `key` (a shared log keeps them until its
    /// retention ends; sweeps no longer look that far down).
    pub fn forget_applied_before(&mut self, key: &str) {
        self.applied = self.applied.split_off(key);
    }

    /// Applied entries still in the log.
    pub fn undeleted(&self) -> usize {
        self.applied.len()
    }

    /// Records the outcome of deleting `keys`: gone from the log, or (`false`) still there,
    /// to be deleted by a later sweep.
    pub fn deleted(&mut self, keys: &[String], gone: bool) {
        for key in keys {
            self.deleting.remove(key);
            if gone {
                self.applied.remove(key);
            }
        }
    }

    /// The entries of `workspace` (of all: `None`) not applied yet: those of `from_watermark`
    /// (the log read from the watermark on) not applied, and the late ones.
    pub fn backlog<'a>(
        &'a self,
        from_watermark: impl IntoIterator<Item = &'a Change>,
        workspace: Option<&WorkspaceId>,
    ) -> Backlog {
        let mut backlog = Backlog {
            pending: 0,
            pending_contacts: 0,
            oldest: None,
        };
        let unapplied = from_watermark
            .into_iter()
            .filter(|change| !self.applied.contains(&change.key));
        for change in unapplied.chain(self.late.iter()) {
            if workspace.is_none_or(|workspace| change.workspace == *workspace) {
                backlog.pending += 1;
                backlog.pending_contacts += change.contacts.len() as u64;
                backlog.oldest = Some(
                    backlog
                        .oldest
                        .map_or(change.created_at, |oldest| oldest.min(change.created_at)),
                );
            }
        }
        backlog
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str) -> Change {
        Change {
            key: key.to_owned(),
            workspace: WorkspaceId::from_trusted("w".to_owned()),
            contacts: Vec::new(),
            created_at: Utc::now(),
            fed: false,
        }
    }

    fn key(at: DateTime<Utc>, n: u8) -> String {
        let base = change_key_at(at);
        format!("{}{}", &base[..25], char::from(b'0' + n))
    }

    #[test]
    fn a_step_skips_what_it_applied_and_keeps_the_grace_window() {
        let now = Utc::now();
        let mut cursor = ChangeCursor::resume(None);
        let (from, limit) = cursor.read_plan(10);
        assert_eq!((from, limit), (None, 10));
        let recent = key(now, 1);
        let batch = cursor.next_batch(vec![change(&recent)], limit, now, 10);
        assert_eq!(batch.changes.len(), 1);
        // The watermark stays COMMIT_GRACE behind the read, below the entry just read.
        let watermark = batch.watermark.clone().unwrap();
        assert!(watermark < recent);
        assert_eq!(watermark, change_key_at(now - COMMIT_GRACE));
        cursor.applied(&batch);
        let (from, limit) = cursor.read_plan(10);
        assert_eq!(from.as_deref(), Some(watermark.as_str()));
        assert_eq!(
            limit, 11,
            "the applied entry above the watermark is read again"
        );
        // An entry committed late with an earlier key, still above the watermark, is read.
        let earlier = key(now - chrono::Duration::seconds(2), 1);
        let next = cursor.next_batch(vec![change(&earlier), change(&recent)], limit, now, 10);
        let keys: Vec<&str> = next.changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, vec![earlier.as_str()]);
    }

    #[test]
    fn the_watermark_never_passes_an_entry_left_unread() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(60);
        let mut cursor = ChangeCursor::resume(None);
        let read = vec![
            change(&key(old, 1)),
            change(&key(old, 2)),
            change(&key(old, 3)),
        ];
        let batch = cursor.next_batch(read, 10, now, 2);
        assert_eq!(batch.changes.len(), 2);
        assert_eq!(batch.watermark, Some(key(old, 3)));
        cursor.applied(&batch);
        // A full read (limit reached) bounds it at the last entry read.
        let read = vec![change(&key(old, 3)), change(&key(old, 4))];
        let batch = cursor.next_batch(read, 2, now, 10);
        assert_eq!(batch.watermark, Some(key(old, 4)));
    }

    #[test]
    fn a_sweep_deletes_only_applied_entries_and_queues_late_ones() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(60);
        let mut cursor = ChangeCursor::resume(None);
        let batch = cursor.next_batch(vec![change(&key(old, 1))], 10, now, 10);
        cursor.applied(&batch);
        let sweep = cursor.sweep(vec![change(&key(old, 1)), change(&key(old, 2))]);
        assert_eq!(sweep.applied, vec![key(old, 1)]);
        assert_eq!(sweep.late, 1);
        // While deleting, the same entries are neither handed out again nor queued twice.
        let again = cursor.sweep(vec![change(&key(old, 1)), change(&key(old, 2))]);
        assert_eq!(again, Sweep::default());
        let batch = cursor.next_batch(Vec::new(), 10, now, 10);
        assert_eq!(batch.changes.len(), 1, "the late entry comes first");
        assert_eq!(batch.changes[0].key, key(old, 2));
        cursor.applied(&batch);
        // A failed deletion leaves the entry to a later sweep.
        cursor.deleted(&[key(old, 1)], false);
        let retry = cursor.sweep(vec![change(&key(old, 1))]);
        assert_eq!(retry.applied, vec![key(old, 1)]);
        cursor.deleted(&[key(old, 1)], true);
        assert_eq!(cursor.backlog(&[change(&key(old, 1))], None).pending, 1);
    }

    #[test]
    fn entries_taken_before_their_commit_are_neither_read_again_nor_swept() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(60);
        let mut cursor = ChangeCursor::resume(None);
        let first = cursor.next_batch(vec![change(&key(old, 1))], 10, now, 10);
        cursor.taken(&first);
        assert_eq!(
            cursor.watermark(),
            None,
            "the watermark waits for the commit"
        );
        let (_, limit) = cursor.read_plan(10);
        assert_eq!(limit, 11, "the taken entry is read again and skipped");
        let second = cursor.next_batch(
            vec![change(&key(old, 1)), change(&key(old, 2))],
            limit,
            now,
            10,
        );
        let keys: Vec<&str> = second.changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, vec![key(old, 2).as_str()]);
        cursor.taken(&second);
        let sweep = cursor.sweep(vec![change(&key(old, 1)), change(&key(old, 2))]);
        assert_eq!(
            sweep,
            Sweep::default(),
            "nothing taken is deleted or queued"
        );
        assert_eq!(
            cursor
                .backlog(&[change(&key(old, 1)), change(&key(old, 2))], None)
                .pending,
            2,
            "taken entries are pending until committed"
        );
        cursor.applied(&first);
        cursor.applied(&second);
        assert_eq!(cursor.watermark(), second.watermark.as_deref());
        let sweep = cursor.sweep(vec![change(&key(old, 1)), change(&key(old, 2))]);
        assert_eq!(sweep.applied, vec![key(old, 1), key(old, 2)]);
    }

    #[test]
    fn tail_reads_look_back_from_the_newest_entry_and_leave_the_watermark() {
        let now = Utc::now();
        let mut cursor = ChangeCursor::resume(None);
        let lookback = chrono::TimeDelta::milliseconds(300);
        assert_eq!(cursor.tail_plan(10, lookback), None, "nothing read yet");
        let first = key(now - chrono::Duration::seconds(1), 1);
        let batch = cursor.next_batch(vec![change(&first)], 10, now, 10);
        cursor.applied(&batch);
        let watermark = cursor.watermark().map(str::to_owned);
        let (from, limit) = cursor.tail_plan(10, lookback).unwrap();
        assert_eq!(from, key_below(&first, lookback).unwrap());
        assert_eq!(limit, 11, "the entry seen above the floor is read again");
        let newer = key(now, 2);
        let tail = cursor.next_tail_batch(vec![change(&first), change(&newer)], 10);
        let keys: Vec<&str> = tail.changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, vec![newer.as_str()]);
        assert_eq!(
            tail.watermark, watermark,
            "a tail read does not move the watermark"
        );
        cursor.taken(&tail);
        let (from, _) = cursor.tail_plan(10, lookback).unwrap();
        assert_eq!(from, key_below(&newer, lookback).unwrap());
        // Once the floor would fall to the watermark, steps read from the watermark.
        let mut behind = ChangeCursor::resume(Some(key(now, 0)));
        behind.next_tail_batch(vec![change(&key(now, 1))], 10);
        assert_eq!(behind.tail_plan(10, lookback), None);
    }

    #[test]
    fn forgetting_below_a_key_keeps_what_shared_sweeps_still_see() {
        let now = Utc::now();
        let mut cursor = ChangeCursor::resume(None);
        let batch = cursor.next_batch(
            vec![
                change(&key(now, 1)),
                change(&key(now, 2)),
                change(&key(now, 3)),
            ],
            10,
            now,
            10,
        );
        cursor.applied(&batch);
        cursor.forget_applied_before(&key(now, 2));
        assert_eq!(cursor.undeleted(), 2);
        let sweep = cursor.find_late(vec![change(&key(now, 2)), change(&key(now, 3))]);
        assert_eq!(sweep.late, 0, "still known as applied");
        assert!(
            sweep.applied.is_empty(),
            "a shared log's entries are not deleted"
        );
        assert_eq!(cursor.undeleted(), 2);
    }

    #[test]
    fn sweeps_start_at_the_floor_once_one_saw_the_whole_log_below_the_watermark() {
        let now = Utc::now();
        let window = chrono::TimeDelta::minutes(10);
        let hour_ago = now - chrono::Duration::hours(1);
        let mut cursor = ChangeCursor::resume(Some(change_key_at(now)));
        assert_eq!(
            cursor.sweep_floor(window),
            None,
            "no sweep yet: from the start"
        );
        // A sweep that filled its read may have left entries further up: still from the start.
        cursor.swept_from_start(false);
        assert_eq!(cursor.sweep_floor(window), None);
        cursor.swept_from_start(true);
        assert_eq!(
            cursor.sweep_floor(window),
            Some(change_key_at(now - window)),
            "nothing owed: the late window under the watermark"
        );
        // An hour-old entry applied and not yet deleted, then one found late, hold it down.
        let batch = cursor.next_batch(vec![change(&key(hour_ago, 5))], 10, now, 10);
        cursor.applied(&batch);
        assert_eq!(cursor.sweep_floor(window), Some(key(hour_ago, 5)));
        let sweep = cursor.sweep(vec![change(&key(hour_ago, 2)), change(&key(hour_ago, 5))]);
        assert_eq!(sweep.late, 1);
        assert_eq!(cursor.sweep_floor(window), Some(key(hour_ago, 2)));
        // Once both are applied and deleted, the floor goes back up.
        let batch = cursor.next_batch(Vec::new(), 10, now, 10);
        cursor.applied(&batch);
        cursor.deleted(&[key(hour_ago, 2), key(hour_ago, 5)], true);
        assert_eq!(
            cursor.sweep_floor(window),
            Some(change_key_at(now - window))
        );
        // A rebuild starts over from the start of the log.
        cursor.rebuilt(change_key_at(now), Vec::<String>::new());
        assert_eq!(cursor.sweep_floor(window), None);
    }

    #[test]
    fn a_rebuild_covers_the_entries_that_existed_before_its_scan() {
        let now = Utc::now();
        let old = now - chrono::Duration::seconds(60);
        let mut cursor = ChangeCursor::resume(None);
        cursor.rebuilt(change_key_at(now), [key(old, 1)]);
        // An entry that appeared below the watermark after the scan began is applied.
        let sweep = cursor.sweep(vec![change(&key(old, 1)), change(&key(old, 2))]);
        assert_eq!(sweep.applied, vec![key(old, 1)]);
        assert_eq!(sweep.late, 1);
    }
}
