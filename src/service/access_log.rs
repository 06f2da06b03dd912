//! Who read what: every read of a contact's personal fields (through the API, an export or a
//! data subject export) is noted in memory as (workspace, key, contact, hour) and written once
//! per hour and key, in the background every [`FLUSH_INTERVAL`], so a read costs a hash-set
//! insert, not a write. Entries are kept for the configured retention (90 days by default).
//!
//! - Who may read it: admin keys (`contactAccessLog`, `exportContactData`).
//! - What it reveals: key ids and hours, no field values.
//! - What bounds it: one record per key, contact and hour; at most [`MAX_PENDING`] notes wait
//!   for a flush (beyond: further notes are dropped until it runs, and a warning counts them)
//!   and at most [`MAX_REMEMBERED`] written ones are remembered.
//!
//! A crash loses at most the last [`FLUSH_INTERVAL`] of notes.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::sync::watch;
use tracing::warn;

use crate::domain::{Caller, ContactId, Scope, WorkspaceId};
use crate::service::error::ServiceError;
use crate::store::{ContactAccess, Store};

/// How often noted reads are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Most notes waiting for a flush.
pub const MAX_PENDING: usize = 100_000;
/// Most accesses of the current hour remembered as written (beyond: forgotten, and written
/// again if read again).
pub const MAX_REMEMBERED: usize = 200_000;
/// How long accesses are kept by default (`ACCESS_LOG_RETENTION_DAYS`).
pub const DEFAULT_ACCESS_LOG_RETENTION: TimeDelta = TimeDelta::days(90);
/// How often old accesses are pruned.
const PRUNE_EVERY: u32 = 720;

/// Notes reads and writes them in the background.
pub struct AccessLog {
    store: Store,
    retention: TimeDelta,
    /// Noted and not yet written.
    pending: Mutex<HashSet<ContactAccess>>,
    /// Written in the current hour (so a key reading a contact again this hour costs nothing).
    written: Mutex<(DateTime<Utc>, HashSet<ContactAccess>)>,
    /// Notes dropped because [`MAX_PENDING`] were waiting (reported at the next flush).
    dropped: std::sync::atomic::AtomicU64,
}

impl AccessLog {
    /// Over `store`, keeping accesses for `retention`.
    pub fn new(store: Store, retention: TimeDelta) -> Self {
        Self {
            store,
            retention,
            pending: Mutex::default(),
            written: Mutex::new((DateTime::<Utc>::MIN_UTC, HashSet::new())),
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Notes that `caller` read `contact`'s personal fields now (nothing when the retention is
    /// zero: no access log is kept).
    pub fn note(&self, caller: &Caller, contact: &ContactId) {
        if self.retention.is_zero() {
            return;
        }
        let access = ContactAccess {
            workspace: caller.workspace.as_str().to_owned(),
            contact: contact.to_string(),
            key: caller.key_id.clone(),
            hour: hour_of(Utc::now()),
        };
        let known = self
            .written
            .lock()
            .is_ok_and(|written| written.0 == access.hour && written.1.contains(&access));
        if known {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            if pending.len() < MAX_PENDING {
                pending.insert(access);
            } else {
                self.dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Writes what was noted since the last flush.
    pub async fn flush(&self) -> Result<(), ServiceError> {
        let dropped = self.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if dropped > 0 {
            warn!(
                dropped,
                "the access log dropped reads while its writes fell behind"
            );
        }
        let noted: Vec<ContactAccess> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return Ok(()),
        };
        if noted.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.store.record_accesses(&noted).await {
            // Kept for the next flush.
            if let Ok(mut pending) = self.pending.lock() {
                pending.extend(noted);
            }
            return Err(error.into());
        }
        if let Ok(mut written) = self.written.lock() {
            let hour = hour_of(Utc::now());
            // A new hour, or too many remembered: start again (a repeated write is harmless).
            if written.0 != hour || written.1.len() > MAX_REMEMBERED {
                *written = (hour, HashSet::new());
            }
            written
                .1
                .extend(noted.into_iter().filter(|access| access.hour == hour));
        }
        Ok(())
    }

    /// Flushes every [`FLUSH_INTERVAL`] and prunes past the retention now and then, until
    /// `stop` turns true (then flushes once more).
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
        let mut rounds: u32 = 0;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => {
                    if let Err(error) = self.flush().await {
                        warn!(%error, "writing the access log failed at stop");
                    }
                    return;
                }
            }
            if let Err(error) = self.flush().await {
                warn!(%error, "writing the access log failed; trying again");
            }
            if rounds.is_multiple_of(PRUNE_EVERY)
                && let Err(error) = self.store.prune_accesses(Utc::now() - self.retention).await
            {
                warn!(%error, "pruning the access log failed; trying again later");
            }
            rounds = rounds.wrapping_add(1);
        }
    }

    /// Who read `contact` (admin), newest hour first.
    pub async fn of_contact(
        &self,
        caller: &Caller,
        contact: &ContactId,
    ) -> Result<Vec<ContactAccess>, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        self.of(&caller.workspace, contact).await
    }

    /// Who read `contact` of `workspace`, for a data subject export.
    pub async fn of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<ContactAccess>, ServiceError> {
        self.flush().await?;
        Ok(self.store.accesses_of(workspace, contact).await?)
    }
}

/// The start of the hour `at` falls in.
fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}
