//! Bulk import: rows upserted by external id (or, when the import says so, matched by email or
//! phone) in batched transactions. A bad row is reported with its line and skipped; re-running
//! the same file changes nothing; a dry run counts what would happen without writing.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, warn};
use ulid::Ulid;

use super::catalog::Catalogs;
use super::claims::{Claim, contact_point_claims, is_retryable};
use super::import_reader::{ImportFormat, ReadFailure, RowReader};
use super::indexer::ChangeNotifier;
use super::{ErrorCode, ServiceError};
use crate::domain::{
    AttributeRegistry, Contact, ContactFields, ContactId, DomainError, FieldChange, Identity,
    IdentityKey, IdentityKind, ImportRow, ParsedRow, Provenance, WorkspaceId, check_columns,
};
use crate::store::{HeldIdentity, Store, WriteBatch};

/// Rows read, parsed and written per transaction.
pub const CHUNK_ROWS: usize = 500;
/// Row errors and conflicts kept in a report.
const MAX_REPORTED: usize = 100;
/// Import reports kept in memory.
const MAX_JOBS: usize = 100;
/// How often a batch is re-read and retried after losing a race with another writer.
const MAX_BATCH_ATTEMPTS: usize = 5;
/// The fewest written rows worth a transaction of their own when a batch is split.
const MIN_PART_ROWS: usize = 100;
/// The most transactions one batch is split into.
const MAX_PARTS: usize = 4;

/// A row that was not imported, or imported with a conflict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// Line (NDJSON) or record line (CSV) where the row starts.
    pub line: u64,
    /// The error code, as in GraphQL `extensions.code`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl RowError {
    /// An INVALID_INPUT error at `line`.
    pub fn invalid(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            code: ErrorCode::InvalidInput.as_str(),
            message: message.into(),
        }
    }

    fn from_service(line: u64, error: ServiceError) -> Self {
        Self {
            line,
            code: error.code().as_str(),
            message: error.to_string(),
        }
    }

    fn conflict(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            code: ErrorCode::Conflict.as_str(),
            message: message.into(),
        }
    }
}

/// Which identity rows without a known external id are matched by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchBy {
    /// External id only (rows must carry one).
    #[default]
    ExternalId,
    /// External id, else email.
    Email,
    /// External id, else phone.
    Phone,
}

/// How an import runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// The file format.
    pub format: ImportFormat,
    /// How rows find their contacts.
    pub match_by: MatchBy,
    /// Count what would happen without writing.
    pub dry_run: bool,
}

/// Where an import job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Rows are being read and written.
    Running,
    /// Every row was read (some may have failed).
    Completed,
    /// The job stopped early; `message` says why.
    Failed,
}

/// Progress and outcome of an import job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The job id.
    pub id: String,
    /// The workspace imported into.
    #[serde(skip)]
    pub workspace: WorkspaceId,
    /// Where it stands.
    pub status: JobStatus,
    /// Whether it writes nothing.
    pub dry_run: bool,
    /// Rows read so far (each committed or failed).
    pub processed: u64,
    /// Contacts created (or, in a dry run, that would be).
    pub created: u64,
    /// Contacts changed.
    pub updated: u64,
    /// Rows that matched a contact without changing it.
    pub unchanged: u64,
    /// Rows skipped for an error.
    pub failed: u64,
    /// Rows whose email, phone or external id belongs to another contact (the row is applied
    /// without that identity, or skipped when its external id is taken).
    pub conflicts: u64,
    /// The first row errors.
    pub errors: Vec<RowError>,
    /// The first conflicts.
    pub first_conflicts: Vec<RowError>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed, if it did.
    pub message: Option<String>,
}

impl ImportReport {
    fn new(workspace: WorkspaceId, dry_run: bool) -> Self {
        Self {
            id: Ulid::new().to_string(),
            workspace,
            status: JobStatus::Running,
            dry_run,
            processed: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            failed: 0,
            conflicts: 0,
            errors: Vec::new(),
            first_conflicts: Vec::new(),
            started_at: Utc::now(),
            finished_at: None,
            message: None,
        }
    }

    fn fail_row(&mut self, error: RowError) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(error);
        }
    }

    fn conflict(&mut self, conflict: RowError) {
        self.conflicts += 1;
        if self.first_conflicts.len() < MAX_REPORTED {
            self.first_conflicts.push(conflict);
        }
    }
}

/// What one batch did, applied to the report once it committed.
#[derive(Debug, Default)]
struct BatchOutcome {
    created: u64,
    updated: u64,
    unchanged: u64,
    failures: Vec<RowError>,
    conflicts: Vec<RowError>,
}

impl BatchOutcome {
    /// Rows settled: written, unchanged or failed (a conflict is also written).
    fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.failures.len() as u64
    }

    /// Adds `other`'s counts and rows to these.
    fn absorb(&mut self, other: BatchOutcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failures.extend(other.failures);
        self.conflicts.extend(other.conflicts);
    }
}

/// A write that stopped on an error, with what it had committed before it.
struct Stopped {
    committed: BatchOutcome,
    error: ServiceError,
}

/// Bulk import use cases over the store.
#[derive(Clone)]
pub struct ImportService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    /// How many transactions a batch is split into.
    parallelism: usize,
    jobs: Arc<Mutex<Vec<ImportReport>>>,
}

impl ImportService {
    /// Imports into `store`; `notifier` wakes the indexer after every batch.
    pub fn new(store: Store, catalogs: Catalogs, notifier: ChangeNotifier) -> Self {
        Self {
            store,
            catalogs,
            notifier,
            parallelism: commit_parallelism(),
            jobs: Arc::default(),
        }
    }

    /// The report of `workspace`'s job `id`, while it runs and after it ended (the last 100
    /// jobs).
    pub fn job(&self, workspace: &WorkspaceId, id: &str) -> Option<ImportReport> {
        self.jobs(workspace).into_iter().find(|job| job.id == id)
    }

    /// The reports of `workspace`'s jobs among the last 100, newest first.
    pub fn jobs(&self, workspace: &WorkspaceId) -> Vec<ImportReport> {
        let jobs = self
            .jobs
            .lock()
            .map(|jobs| jobs.clone())
            .unwrap_or_default();
        jobs.into_iter()
            .rev()
            .filter(|job| job.workspace == *workspace)
            .collect()
    }

    /// Registers a new job into `workspace` and returns its id.
    pub fn begin(&self, workspace: &WorkspaceId, options: ImportOptions) -> String {
        let report = ImportReport::new(workspace.clone(), options.dry_run);
        let id = report.id.clone();
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= MAX_JOBS {
                jobs.remove(0);
            }
            jobs.push(report);
        }
        id
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
                let (sender, mut receiver) = mpsc::channel(2);
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
                                    validate(row, &registry).map_err(ReadFailure::from)
                                })
                            })
                            .collect();
                        if chunk.is_empty() || sender.blocking_send(chunk).is_err() {
                            return;
                        }
                    }
                });
                let outcome = self
                    .consume(workspace, job, options, &blocked, &mut receiver)
                    .await;
                drop(receiver);
                let _ = reader.await;
                outcome
            }
            Err(error) => Err(error),
        };
        let report = self.update(job, |report| {
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

    async fn consume(
        &self,
        workspace: &WorkspaceId,
        job: &str,
        options: ImportOptions,
        blocked: &[String],
        receiver: &mut mpsc::Receiver<Vec<Result<ParsedRow, ReadFailure>>>,
    ) -> Result<(), ServiceError> {
        while let Some(chunk) = receiver.recv().await {
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
            let mut total = BatchOutcome::default();
            let mut stopped = None;
            for group in without_shared_identities(parsed) {
                match self.write_group(workspace, group, options, blocked).await {
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
            self.update(job, |report| {
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
                self.update(job, |report| report.errors.push(error));
                return Err(ServiceError::invalid("file", message));
            }
        }
        Ok(())
    }

    /// Writes a group of rows in as few transactions as possible (rows that reach a contact
    /// another row of the batch already changes wait for the next one).
    async fn write_group(
        &self,
        workspace: &WorkspaceId,
        rows: Vec<ParsedRow>,
        options: ImportOptions,
        blocked: &[String],
    ) -> Result<BatchOutcome, Stopped> {
        let mut total = BatchOutcome::default();
        let mut pending = rows;
        while !pending.is_empty() {
            let count = pending.len();
            let (outcome, deferred) =
                match self.write_batch(workspace, pending, options, blocked).await {
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
        options: ImportOptions,
        blocked: &[String],
    ) -> Result<(BatchOutcome, Vec<ParsedRow>), Stopped> {
        let mut total = BatchOutcome::default();
        let mut deferred = Vec::new();
        let mut pending = rows;
        for _attempt in 0..MAX_BATCH_ATTEMPTS {
            let plan = match self.plan_group(workspace, &pending, options, blocked).await {
                Ok(plan) => plan,
                Err(error) => {
                    return Err(Stopped {
                        committed: total,
                        error,
                    });
                }
            };
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
                        failure =
                            Some(ServiceError::Internal(format!("import commit: {panicked}")));
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

    /// Reads what the rows touch and stages their writes.
    async fn plan_group(
        &self,
        workspace: &WorkspaceId,
        rows: &[ParsedRow],
        options: ImportOptions,
        blocked: &[String],
    ) -> Result<Plan, ServiceError> {
        let keys: Vec<IdentityKey> = rows.iter().flat_map(row_identities).collect();
        let holders: HashMap<IdentityKey, HeldIdentity> = self
            .store
            .identity_holders(workspace, &keys)
            .await?
            .into_iter()
            .map(|held| (held.identity.key.clone(), held))
            .collect();
        let ids: Vec<ContactId> = holders.values().map(|held| held.contact).collect();
        let contacts: HashMap<ContactId, Contact> = self
            .store
            .contacts_by_ids(workspace, &ids)
            .await?
            .into_iter()
            .map(|contact| (contact.id, contact))
            .collect();

        let now = Utc::now();
        let part_count = (rows.len() / MIN_PART_ROWS).clamp(1, self.parallelism);
        let mut parts: Vec<PartBuilder> = (0..part_count)
            .map(|_| PartBuilder::new(workspace))
            .collect();
        let mut written = 0usize;
        let mut outcome = BatchOutcome::default();
        let mut deferred = Vec::new();
        let mut touched: HashSet<ContactId> = HashSet::new();
        for (index, row) in rows.iter().enumerate() {
            let target = find_target(row, options.match_by, &holders, &contacts);
            let existing = match target {
                Ok(existing) => existing,
                Err(conflict) => {
                    outcome.failures.push(conflict);
                    continue;
                }
            };
            if let Some(contact) = existing
                && !touched.insert(contact.id)
            {
                deferred.push(index);
                continue;
            }
            let before = existing.map(|contact| &contact.fields);
            let mut fields = row
                .patch
                .apply_to(before.unwrap_or(&ContactFields::default()));
            if let Some(external_id) = &row.external_id
                && existing.is_none_or(|contact| contact.fields.external_id.is_none())
            {
                fields.external_id = Some(external_id.clone());
            }
            if before == Some(&fields) {
                outcome.unchanged += 1;
                continue;
            }
            let claims = match contact_point_claims(&fields, before, Provenance::Imported, blocked)
            {
                Ok(claims) => claims,
                Err(error) => {
                    outcome
                        .failures
                        .push(RowError::from_service(row.line, error.into()));
                    continue;
                }
            };
            let mut contact = match existing {
                Some(existing) => Contact {
                    fields,
                    updated_at: now.max(existing.updated_at),
                    revision: existing.revision + 1,
                    ..existing.clone()
                },
                None => Contact::new(workspace.clone(), fields, now),
            };
            let staged = stage_row_claims(&contact, claims, &holders, now);
            if let Some(taken) = staged.external_id_taken {
                outcome.failures.push(RowError::conflict(
                    row.line,
                    format!("external id `{taken}` already belongs to another contact"),
                ));
                continue;
            }
            // An email or phone another contact holds is not taken: the field keeps its value,
            // so it always agrees with the identities the contact holds.
            let taken: Vec<RowError> = staged
                .taken
                .iter()
                .map(|key| {
                    RowError::conflict(
                        row.line,
                        format!(
                            "{} `{}` already identifies another contact; the row was imported without it",
                            key.kind.as_str(),
                            key.value
                        ),
                    )
                })
                .collect();
            for key in &staged.taken {
                match key.kind {
                    IdentityKind::Email => {
                        contact.fields.email = before.and_then(|b| b.email.clone());
                    }
                    IdentityKind::Phone => {
                        contact.fields.phone = before.and_then(|b| b.phone.clone());
                    }
                    IdentityKind::AnonymousId | IdentityKind::ExternalId => {}
                }
            }
            if before == Some(&contact.fields) {
                outcome.unchanged += 1;
                outcome.conflicts.extend(taken);
                continue;
            }
            let part = &mut parts[written % part_count];
            written += 1;
            part.rows.push(index);
            match existing {
                Some(existing) => {
                    part.batch.replace_contact(&mut contact, existing.revision);
                    part.outcome.updated += 1;
                }
                None => part.outcome.created += 1,
            }
            part.identities.extend(
                staged
                    .create
                    .into_iter()
                    .map(|identity| (contact.id, identity)),
            );
            part.outcome.conflicts.extend(taken);
            if existing.is_none() {
                part.created.push(contact);
            }
        }
        Ok(Plan {
            settled: outcome,
            parts: parts
                .into_iter()
                .filter(|part| !part.rows.is_empty())
                .map(PartBuilder::finish)
                .collect(),
            deferred,
        })
    }

    fn update(&self, job: &str, change: impl FnOnce(&mut ImportReport)) -> ImportReport {
        let mut jobs = match self.jobs.lock() {
            Ok(jobs) => jobs,
            Err(poisoned) => poisoned.into_inner(),
        };
        match jobs.iter_mut().find(|report| report.id == job) {
            Some(report) => {
                change(report);
                report.clone()
            }
            None => {
                let mut report = ImportReport::new(WorkspaceId::default(), false);
                change(&mut report);
                report
            }
        }
    }
}

/// The writes planned for rows against one read of the store.
struct Plan {
    /// Outcomes of the rows that write nothing (unchanged or failed).
    settled: BatchOutcome,
    /// The writes, split into parts over disjoint contacts and identities.
    parts: Vec<PlannedPart>,
    /// Rows (by index) that reach a contact another row already changes; they wait for the
    /// next batch.
    deferred: Vec<usize>,
}

/// One transaction's share of a plan.
struct PlannedPart {
    batch: WriteBatch,
    /// What the part does once committed.
    outcome: BatchOutcome,
    /// Its rows (by index), planned again if the commit loses a race.
    rows: Vec<usize>,
}

/// A part being planned: contacts and identities are created with one statement each.
struct PartBuilder {
    batch: WriteBatch,
    created: Vec<Contact>,
    identities: Vec<(ContactId, Identity)>,
    outcome: BatchOutcome,
    rows: Vec<usize>,
}

impl PartBuilder {
    fn new(workspace: &WorkspaceId) -> Self {
        Self {
            batch: WriteBatch::new(workspace),
            created: Vec::new(),
            identities: Vec::new(),
            outcome: BatchOutcome::default(),
            rows: Vec::new(),
        }
    }

    fn finish(mut self) -> PlannedPart {
        self.batch.create_contacts(&mut self.created);
        self.batch.create_identities(&self.identities);
        PlannedPart {
            batch: self.batch,
            outcome: self.outcome,
            rows: self.rows,
        }
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
fn commit_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_PARTS)
}

/// `row` checked against the workspace's attributes, or the error at its line.
fn validate(row: ImportRow, registry: &AttributeRegistry) -> Result<ParsedRow, RowError> {
    let line = row.line;
    row.parse(registry)
        .map_err(|error| RowError::from_service(line, error.into()))
}

/// The identities a row names: its external id, email and phone.
fn row_identities(row: &ParsedRow) -> Vec<IdentityKey> {
    let mut keys = Vec::new();
    if let Some(external_id) = &row.external_id {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::ExternalId,
            external_id.as_str().to_owned(),
        ));
    }
    if let FieldChange::Set(email) = &row.patch.email {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::Email,
            email.as_str().to_owned(),
        ));
    }
    if let FieldChange::Set(phone) = &row.patch.phone {
        keys.push(IdentityKey::from_trusted(
            IdentityKind::Phone,
            phone.as_str().to_owned(),
        ));
    }
    keys
}

/// The identity a row is matched by when it has no known external id.
fn match_key(row: &ParsedRow, match_by: MatchBy) -> Option<IdentityKey> {
    let kind = match match_by {
        MatchBy::ExternalId => return None,
        MatchBy::Email => IdentityKind::Email,
        MatchBy::Phone => IdentityKind::Phone,
    };
    row_identities(row).into_iter().find(|key| key.kind == kind)
}

/// The contact a row updates (`None`: it creates one), or why it cannot be imported.
fn find_target<'a>(
    row: &ParsedRow,
    match_by: MatchBy,
    holders: &HashMap<IdentityKey, HeldIdentity>,
    contacts: &'a HashMap<ContactId, Contact>,
) -> Result<Option<&'a Contact>, RowError> {
    let holder_of = |key: &IdentityKey| {
        holders
            .get(key)
            .and_then(|held| contacts.get(&held.contact))
    };
    if let Some(external_id) = &row.external_id {
        let key =
            IdentityKey::from_trusted(IdentityKind::ExternalId, external_id.as_str().to_owned());
        if let Some(contact) = holder_of(&key) {
            return Ok(Some(contact));
        }
    }
    let Some(key) = match_key(row, match_by) else {
        if row.external_id.is_none() {
            let needed = match match_by {
                MatchBy::ExternalId => "`externalId`",
                MatchBy::Email => "`externalId` or `email`",
                MatchBy::Phone => "`externalId` or `phone`",
            };
            return Err(RowError::from_service(
                row.line,
                DomainError::invalid("externalId", format!("the row has no {needed} to match by"))
                    .into(),
            ));
        }
        return Ok(None);
    };
    let Some(contact) = holder_of(&key) else {
        return Ok(None);
    };
    match (&row.external_id, &contact.fields.external_id) {
        (Some(mine), Some(theirs)) if mine != theirs => Err(RowError::conflict(
            row.line,
            format!(
                "{} `{}` belongs to the contact with external id `{theirs}`, not `{mine}`",
                key.kind.as_str(),
                key.value
            ),
        )),
        _ => Ok(Some(contact)),
    }
}

/// What a row's claims do.
struct StagedClaims {
    create: Vec<Identity>,
    taken: Vec<IdentityKey>,
    external_id_taken: Option<String>,
}

fn stage_row_claims(
    contact: &Contact,
    claims: Vec<Claim>,
    holders: &HashMap<IdentityKey, HeldIdentity>,
    now: DateTime<Utc>,
) -> StagedClaims {
    let mut staged = StagedClaims {
        create: Vec::new(),
        taken: Vec::new(),
        external_id_taken: None,
    };
    for claim in claims {
        match holders.get(&claim.key) {
            None => staged.create.push(Identity {
                key: claim.key,
                provenance: claim.provenance,
                created_at: now,
            }),
            Some(held) if held.contact == contact.id => {}
            Some(_) if claim.key.kind == IdentityKind::ExternalId => {
                staged.external_id_taken = Some(claim.key.value);
            }
            Some(_) => staged.taken.push(claim.key),
        }
    }
    staged
}

/// Splits rows into groups in which no two rows name the same identity, keeping their order,
/// so that each group can be planned against one read of the store.
fn without_shared_identities(rows: Vec<ParsedRow>) -> Vec<Vec<ParsedRow>> {
    let mut groups: Vec<Vec<ParsedRow>> = Vec::new();
    let mut seen: HashSet<IdentityKey> = HashSet::new();
    let mut current = Vec::new();
    for row in rows {
        let keys = row_identities(&row);
        if keys.iter().any(|key| seen.contains(key)) {
            groups.push(std::mem::take(&mut current));
            seen.clear();
        }
        seen.extend(keys);
        current.push(row);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}
