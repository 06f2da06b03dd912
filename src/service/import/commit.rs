//! The commit loop: a group of rows is planned against one read of the store and committed as
//! parallel transactions, parts that lose a race planned again, rows deferred to the next
//! round until every row has settled.

use std::collections::HashSet;

use chrono::Utc;
use tracing::warn;

use super::ImportService;
use super::planner::{Reads, claim_keys, plan, row_keys, target_keys};
use super::read_ahead::Footprint;
use super::report::{BatchOutcome, ImportOptions, MatchBy, RowError};
use crate::domain::{IdentityKey, ParsedRow, WorkspaceId};
use crate::service::claims::is_retryable;
use crate::service::contention::Attempts;
use crate::service::error::{InternalError, ServiceError};

/// How often a batch is re-read and retried after losing a race with another writer.
const BATCH_ATTEMPTS: usize = 5;
/// The most transactions one batch is split into.
const MAX_PARTS: usize = 4;
/// The fewest keys worth a concurrent read of their own.
const MIN_READ_PART: usize = 100;

/// A write that stopped on an error, with what it had committed before it.
pub(super) struct Stopped {
    pub committed: BatchOutcome,
    pub error: ServiceError,
}

impl ImportService {
    /// Writes a group of rows in as few transactions as possible (rows that reach a contact
    /// another row of the batch already changes wait for the next one).
    /// `ahead` is a read of the store for these rows that is still current; `footprint`
    /// collects the contacts every read found.
    pub(super) async fn write_group(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ParsedRow>,
        mut ahead: Option<Reads>,
        options: ImportOptions,
        blocked: &[String],
        footprint: &mut Footprint,
    ) -> Result<BatchOutcome, Stopped> {
        let mut total = BatchOutcome::default();
        let mut pending = rows;
        while !pending.is_empty() {
            let count = pending.len();
            let written = self
                .write_batch(
                    workspace,
                    pending,
                    ahead.take(),
                    options,
                    blocked,
                    footprint,
                )
                .await;
            let (outcome, deferred) = match written {
                Ok(written) => written,
                Err(Stopped { committed, error }) => {
                    total.absorb(committed);
                    return Err(Stopped {
                        committed: total,
                        error,
                    });
                }
            };
            total.absorb(outcome);
            if deferred.len() == count {
                break;
            }
            pending = deferred;
        }
        Ok(total)
    }

    /// Writes rows planned against one read of the store, re-planning the rows of any part
    /// that lost a race with another writer. The rows of a plan touch pairwise different
    /// contacts and identities, so its parts commit as parallel transactions: a batch keeps the
    /// machine's cores busy instead of one. Returns the outcome and the rows deferred to a
    /// later batch.
    async fn write_batch(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ParsedRow>,
        mut ahead: Option<Reads>,
        options: ImportOptions,
        blocked: &[String],
        footprint: &mut Footprint,
    ) -> Result<(BatchOutcome, Vec<ParsedRow>), Stopped> {
        let mut total = BatchOutcome::default();
        let mut deferred = Vec::new();
        let mut pending = rows;
        let mut attempts = Attempts::new(BATCH_ATTEMPTS);
        while attempts.next().await {
            let reads = match ahead.take() {
                Some(reads) => reads,
                None => match self.read_group(workspace, &pending, options.match_by).await {
                    Ok(reads) => reads,
                    Err(error) => {
                        return Err(Stopped {
                            committed: total,
                            error,
                        });
                    }
                },
            };
            footprint.add_reads(&reads);
            let plan = plan(
                workspace,
                &pending,
                &reads,
                options,
                blocked,
                self.parallelism,
                Utc::now(),
            );
            total.absorb(plan.settled);
            let mut slots: Vec<Option<ParsedRow>> = pending.into_iter().map(Some).collect();
            deferred.extend(take_rows(&mut slots, &plan.deferred));
            if options.dry_run {
                plan.parts.into_iter().for_each(|p| total.absorb(p.outcome));
                return Ok((total, deferred));
            }
            let commits: Vec<_> = plan
                .parts
                .into_iter()
                .map(|part| {
                    let store = self.store.clone();
                    let commit = tokio::spawn(async move { store.commit(part.batch).await });
                    (commit, part.outcome, part.rows)
                })
                .collect();
            // Every part is awaited before any error is returned, so that nothing of the
            // batch is still committing once the job reports how it ended.
            pending = Vec::new();
            let mut failure = None;
            for (commit, outcome, rows) in commits {
                match commit.await {
                    Ok(Ok(())) => {
                        self.notifier.notify();
                        total.absorb(outcome);
                    }
                    Ok(Err(error)) if is_retryable(&error) => {
                        warn!(%error, "import batch lost a race; retrying");
                        pending.extend(take_rows(&mut slots, &rows));
                    }
                    Ok(Err(other)) => failure = Some(other.into()),
                    Err(panicked) => {
                        failure = Some(InternalError::Task(panicked).into());
                    }
                }
            }
            if let Some(error) = failure {
                return Err(Stopped {
                    committed: total,
                    error,
                });
            }
            if pending.is_empty() {
                return Ok((total, deferred));
            }
        }
        total.failures.extend(pending.iter().map(|row| {
            RowError::conflict(
                row.line,
                "the contact was changed concurrently; import the row again",
            )
        }));
        Ok((total, deferred))
    }

    /// Reads what the rows touch: first the holders of the identities that find each row's
    /// contact and those contacts, then the holders of the rows' other identities that could
    /// change (see [`claim_keys`]). The reads are batched, and split into one part per core: a
    /// re-import whose rows change nothing is all reads.
    pub(super) async fn read_group(
        &self,
        workspace: &WorkspaceId,
        rows: &[ParsedRow],
        match_by: MatchBy,
    ) -> Result<Reads, ServiceError> {
        let mut reads = Reads::default();
        let targets: HashSet<IdentityKey> = rows
            .iter()
            .flat_map(|row| target_keys(row, match_by))
            .collect();
        self.read_holders(workspace, targets.iter().cloned().collect(), &mut reads)
            .await?;
        let others: HashSet<IdentityKey> = rows
            .iter()
            .flat_map(|row| claim_keys(row, match_by, &reads, &targets))
            .collect();
        self.read_holders(workspace, others.into_iter().collect(), &mut reads)
            .await?;
        let named: Vec<IdentityKey> = rows
            .iter()
            .flat_map(row_keys)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        reads.suppressed = self
            .suppressions
            .suppressed_among(workspace, &named)
            .await?;
        Ok(reads)
    }

    /// Adds to `reads` the holders of `keys` that are held, and those contacts as stored: in up
    /// to one concurrent part per core (parts of at least [`MIN_READ_PART`] keys), each part
    /// one round trip.
    async fn read_holders(
        &self,
        workspace: &WorkspaceId,
        keys: Vec<IdentityKey>,
        reads: &mut Reads,
    ) -> Result<(), ServiceError> {
        let part_size = keys
            .len()
            .div_ceil(self.parallelism.max(1))
            .max(MIN_READ_PART);
        let mut keys = keys.into_iter().peekable();
        let mut parts = Vec::new();
        while keys.peek().is_some() {
            let part: Vec<IdentityKey> = keys.by_ref().take(part_size).collect();
            let (store, workspace) = (self.store.clone(), workspace.clone());
            // Compared with the rows to decide what to write: read from the store itself.
            parts.push(tokio::spawn(async move {
                store
                    .identity_holders_with_contacts(&workspace, &part)
                    .await
            }));
        }
        for part in parts {
            let (held, contacts) = part.await.map_err(InternalError::Task)??;
            reads.holders.extend(
                held.into_iter()
                    .map(|held| (held.identity.key.clone(), held)),
            );
            reads
                .contacts
                .extend(contacts.into_iter().map(|contact| (contact.id, contact)));
        }
        Ok(())
    }
}

/// Moves the rows at `indices` out of `slots`.
fn take_rows(slots: &mut [Option<ParsedRow>], indices: &[usize]) -> Vec<ParsedRow> {
    indices
        .iter()
        .filter_map(|&index| slots.get_mut(index).and_then(Option::take))
        .collect()
}

/// How many transactions a batch is split into: one per core, at most [`MAX_PARTS`].
pub(super) fn commit_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_PARTS)
}
