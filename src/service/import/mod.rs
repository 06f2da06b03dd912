//! Bulk import: rows upserted by external id (or, when the import says so, matched by email or
//! phone) in batched transactions. A bad row is reported with its line and skipped; re-running
//! the same file changes nothing; a dry run counts what would happen without writing.
//!
//! `reader` turns the input into rows (on a blocking thread, validated there), `read_ahead`
//! reads the store for the next batch while one is planned and committed, `planner` turns a
//! batch of rows and one read of the store into writes (a pure function), `commit` runs the
//! commit loop, and `report` keeps each job's report.

mod commit;
mod planner;
mod read_ahead;
mod reader;
mod report;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

use commit::{Stopped, commit_parallelism};
use planner::without_shared_identities;
use read_ahead::{FirstGroup, Footprint, PreparedChunk, PreparedGroup, ReadAhead, SettledGroups};
use reader::{ReadFailure, RowReader};
use report::{BatchOutcome, JobRegistry};

pub use report::{ImportFormat, ImportOptions, ImportReport, JobStatus, MatchBy, RowError};

use super::catalog_cache::{Catalogs, WorkspaceState};
use super::consents::check_declared;
use super::indexer::ChangeNotifier;
use crate::domain::{AttributeRegistry, ImportRow, ParsedRow, WorkspaceId, check_columns};
use crate::service::error::{InternalError, ServiceError};
use crate::service::suppression::Suppressions;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Rows read and parsed together, then written as one transaction per core: 500 rows a
/// transaction on 2 cores, which the store share runs 9-14% faster with than with 250
/// (BENCHMARKS, issue #15).
pub const CHUNK_ROWS: usize = 1000;

/// Bulk import use cases over the store.
#[derive(Clone)]
pub struct ImportService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    /// How many transactions a batch is split into.
    parallelism: usize,
    jobs: JobRegistry,
    metrics: Arc<Metrics>,
    suppressions: Suppressions,
}

impl ImportService {
    /// Imports into `store`; `notifier` wakes the indexer after every batch.
    pub fn new(store: Store, catalogs: Catalogs, notifier: ChangeNotifier) -> Self {
        Self {
            suppressions: Suppressions::new(store.clone()),
            store,
            catalogs,
            notifier,
            parallelism: commit_parallelism(),
            jobs: JobRegistry::default(),
            metrics: Arc::default(),
        }
    }

    /// These imports, counting their rows in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The report of `workspace`'s job `id`, while it runs and after it ended (the last 100
    /// jobs).
    pub fn job(&self, workspace: &WorkspaceId, id: &str) -> Option<ImportReport> {
        self.jobs(workspace).into_iter().find(|job| job.id == id)
    }

    /// The reports of `workspace`'s jobs among the last 100, newest first.
    pub fn jobs(&self, workspace: &WorkspaceId) -> Vec<ImportReport> {
        self.jobs.of(workspace)
    }

    /// Registers a new job into `workspace` and returns its id.
    pub fn begin(&self, workspace: &WorkspaceId, options: ImportOptions) -> String {
        self.jobs.begin(workspace, options.dry_run)
    }

    /// Imports every row of `input` into `workspace` as job `job` (from [`ImportService::begin`]):
    /// a blocking thread reads and validates rows while batches are written as they arrive, so
    /// memory stays bounded whatever the input's size. Returns the final report.
    pub async fn run<R: Read + Send + 'static>(
        &self,
        workspace: &WorkspaceId,
        job: &str,
        options: ImportOptions,
        input: R,
    ) -> ImportReport {
        let outcome = match self.rules(workspace).await {
            Ok((registry, blocked)) => {
                let catalogue = self.catalogs.workspace(workspace);
                let (sender, receiver) = mpsc::channel(2);
                let reader = tokio::task::spawn_blocking(move || {
                    let mut rows = RowReader::new(options.format, input);
                    let header = rows.check_header(|names| {
                        check_columns(names, &registry).map_err(|error| error.to_string())
                    });
                    if let Err(failure) = header {
                        let _ = sender.blocking_send(vec![Err(failure)]);
                        return;
                    }
                    loop {
                        let chunk: Vec<_> = rows
                            .by_ref()
                            .take(CHUNK_ROWS)
                            .map(|row| {
                                row.and_then(|row| {
                                    validate(row, &registry, &catalogue).map_err(ReadFailure::from)
                                })
                            })
                            .collect();
                        if chunk.is_empty() || sender.blocking_send(chunk).is_err() {
                            return;
                        }
                    }
                });
                let settled = SettledGroups::default();
                let (read_sender, mut read) = mpsc::channel(1);
                let read_ahead = tokio::spawn(self.clone().read_ahead(
                    workspace.clone(),
                    options.match_by,
                    receiver,
                    read_sender,
                    settled.counter(),
                ));
                let outcome = self
                    .consume(workspace, job, options, &blocked, &mut read, settled)
                    .await;
                drop(read);
                let _ = read_ahead.await;
                let _ = reader.await;
                outcome
            }
            Err(error) => Err(error),
        };
        let report = self.jobs.update(job, |report| {
            report.finished_at = Some(Utc::now());
            match &outcome {
                Ok(()) => report.status = JobStatus::Completed,
                Err(error) => {
                    report.status = JobStatus::Failed;
                    report.message = Some(error.to_string());
                }
            }
        });
        info!(
            job,
            processed = report.processed,
            created = report.created,
            updated = report.updated,
            failed = report.failed,
            "import finished"
        );
        report
    }

    /// What rows are checked against: the attribute registry and the blocked identity values.
    async fn rules(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<(AttributeRegistry, Vec<String>), ServiceError> {
        let registry = self.catalogs.registry(workspace);
        let blocked = self
            .catalogs
            .workspace(workspace)
            .settings
            .blocked_identity_values
            .clone();
        Ok((registry, blocked))
    }

    /// Splits each chunk the reader sends into groups that can each be planned against one
    /// read, and reads the store for the chunk's first group ahead of its turn (a chunk's later
    /// groups share identities with the group before them, so they are read in turn). While
    /// the reads find the rows' contacts (a sync of known contacts, whose rows may change
    /// nothing), the next chunk's read starts before this one's ends, so that the reads keep
    /// the cores busy; while they find none (new contacts, where commits take the time), one
    /// read runs at a time. `settled` counts the groups the consumer settled.
    async fn read_ahead(
        self,
        workspace: WorkspaceId,
        match_by: MatchBy,
        mut chunks: mpsc::Receiver<Vec<Result<ParsedRow, ReadFailure>>>,
        prepared: mpsc::Sender<PreparedChunk>,
        settled: Arc<AtomicU64>,
    ) {
        let finds_contacts = Arc::new(AtomicBool::new(false));
        while let Some(chunk) = chunks.recv().await {
            let mut parsed = Vec::with_capacity(chunk.len());
            let mut failures = Vec::new();
            let mut fatal = None;
            for row in chunk {
                match row {
                    Ok(row) => parsed.push(row),
                    Err(failure) if failure.fatal => fatal = Some(failure.error),
                    Err(failure) => failures.push(failure.error),
                }
            }
            let mut groups = without_shared_identities(parsed).into_iter();
            let first = match groups.next() {
                Some(rows) => {
                    let reading = self.read_first_group(
                        &workspace,
                        rows,
                        match_by,
                        &settled,
                        &finds_contacts,
                    );
                    if finds_contacts.load(Ordering::Acquire) {
                        Some(FirstGroup::Reading(reading))
                    } else {
                        Some(FirstGroup::Read(reading.await))
                    }
                }
                None => None,
            };
            let rest = groups
                .map(|rows| PreparedGroup { rows, ahead: None })
                .collect();
            let chunk = PreparedChunk {
                first,
                rest,
                failures,
                fatal,
            };
            if prepared.send(chunk).await.is_err() {
                return;
            }
        }
    }

    /// A task that reads the store for `rows` (a chunk's first group) and then records in
    /// `finds_contacts` whether the read found contacts for at least half of them.
    fn read_first_group(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ParsedRow>,
        match_by: MatchBy,
        settled: &Arc<AtomicU64>,
        finds_contacts: &Arc<AtomicBool>,
    ) -> JoinHandle<PreparedGroup> {
        let (service, workspace) = (self.clone(), workspace.clone());
        let (settled, finds_contacts) = (Arc::clone(settled), Arc::clone(finds_contacts));
        tokio::spawn(async move {
            let settled_before = settled.load(Ordering::Acquire);
            // A read that fails is taken again in turn, which reports the error.
            let read = service.read_group(&workspace, &rows, match_by).await;
            if let Ok(reads) = &read {
                let found = reads.contacts.len() * 2 >= rows.len();
                finds_contacts.store(found, Ordering::Release);
            }
            let ahead = read.ok().map(|reads| ReadAhead::new(reads, settled_before));
            PreparedGroup { rows, ahead }
        })
    }

    async fn consume(
        &self,
        workspace: &WorkspaceId,
        job: &str,
        options: ImportOptions,
        blocked: &[String],
        prepared: &mut mpsc::Receiver<PreparedChunk>,
        mut settled: SettledGroups,
    ) -> Result<(), ServiceError> {
        while let Some(chunk) = prepared.recv().await {
            let PreparedChunk {
                first,
                rest,
                mut failures,
                fatal,
            } = chunk;
            let first = match first {
                Some(FirstGroup::Read(read)) => Some(read),
                Some(FirstGroup::Reading(reading)) => Some(reading.await),
                None => None,
            }
            .transpose()
            .map_err(InternalError::Task)?;
            let mut total = BatchOutcome::default();
            let mut stopped = None;
            for PreparedGroup { rows, ahead } in first.into_iter().chain(rest) {
                let mut footprint = Footprint::of_rows(&rows);
                let ahead = ahead.and_then(|ahead| settled.current(&footprint, ahead));
                let written = self
                    .write_group(workspace, rows, ahead, options, blocked, &mut footprint)
                    .await;
                settled.settle(footprint);
                match written {
                    Ok(outcome) => total.absorb(outcome),
                    Err(Stopped { committed, error }) => {
                        total.absorb(committed);
                        stopped = Some(error);
                        break;
                    }
                }
            }
            // Rows are counted once settled: committed, unchanged or failed. When the job stops
            // on an error, rows of this chunk that were not written are not counted.
            let processed = failures.len() as u64 + total.rows();
            failures.extend(total.failures);
            failures.sort_by_key(|failure| failure.line);
            let metrics = &self.metrics;
            metrics.import_rows("created", total.created);
            metrics.import_rows("updated", total.updated);
            metrics.import_rows("unchanged", total.unchanged);
            metrics.import_rows("failed", failures.len() as u64);
            metrics.import_rows("conflict", total.conflicts.len() as u64);
            self.jobs.update(job, |report| {
                report.created += total.created;
                report.updated += total.updated;
                report.unchanged += total.unchanged;
                failures.into_iter().for_each(|e| report.fail_row(e));
                total.conflicts.into_iter().for_each(|c| report.conflict(c));
                report.processed += processed;
            });
            if let Some(error) = stopped {
                return Err(error);
            }
            if let Some(error) = fatal {
                let message = format!("line {}: {}", error.line, error.message);
                self.jobs.update(job, |report| report.errors.push(error));
                return Err(ServiceError::invalid("file", message));
            }
        }
        Ok(())
    }
}

/// `row` checked against the workspace's attributes and consent purposes, or the error at its
/// line.
fn validate(
    row: ImportRow,
    registry: &AttributeRegistry,
    catalogue: &WorkspaceState,
) -> Result<ParsedRow, RowError> {
    let line = row.line;
    let parsed = row.parse_all(registry).map_err(|problems| {
        RowError::from_problems(line, problems.into_iter().map(Into::into).collect())
    })?;
    check_declared(catalogue, &parsed.consents)
        .map_err(|error| RowError::from_service(line, error))?;
    Ok(parsed)
}
