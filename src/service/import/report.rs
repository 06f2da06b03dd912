//! What an import reports: row errors, options, job status and the report itself, and the
//! registry of the last jobs' reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use ulid::Ulid;

use crate::domain::WorkspaceId;
use crate::service::error::{ErrorCode, ServiceError};

/// Row errors and conflicts kept in a report.
const MAX_REPORTED: usize = 100;
/// Import reports kept in memory per workspace.
const MAX_JOBS: usize = 100;

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

impl ImportFormat {
    /// Parses `ndjson`/`jsonl`/`json` or `csv` (a file extension or a format name).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "ndjson" | "jsonl" | "json" | "application/x-ndjson" => Some(Self::Ndjson),
            "csv" | "text/csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// A row that was not imported, or imported with a conflict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// Line (NDJSON) or record line (CSV) where the row starts.
    pub line: u64,
    /// The error code, as in GraphQL `extensions.code`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Every problem of the row, the first one included, when it has more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<RowProblem>,
}

/// One problem of a row that has several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowProblem {
    /// The error code, as in GraphQL `extensions.code`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl RowError {
    /// The row error of a row with every one of `problems` (at least one) at `line`.
    pub(crate) fn from_problems(line: u64, problems: Vec<ServiceError>) -> Self {
        let mut listed: Vec<RowProblem> = problems
            .into_iter()
            .map(|problem| RowProblem {
                code: problem.code().as_str(),
                message: problem.to_string(),
            })
            .collect();
        let first = listed.first().cloned().unwrap_or(RowProblem {
            code: ErrorCode::InvalidInput.as_str(),
            message: "the row is invalid".to_owned(),
        });
        if listed.len() < 2 {
            listed.clear();
        }
        Self {
            line,
            code: first.code,
            message: first.message,
            problems: listed,
        }
    }

    /// An INVALID_INPUT error at `line`.
    pub fn invalid(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            code: ErrorCode::InvalidInput.as_str(),
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// The row error of a use case's error at `line`, with its code.
    pub(crate) fn from_service(line: u64, error: ServiceError) -> Self {
        Self {
            line,
            code: error.code().as_str(),
            message: error.to_string(),
            problems: Vec::new(),
        }
    }

    pub(super) fn conflict(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            code: ErrorCode::Conflict.as_str(),
            message: message.into(),
            problems: Vec::new(),
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

impl MatchBy {
    /// The way named `raw` (`externalId`, `email`, `phone`; `external_id` and the CLI's
    /// `external-id` are read too).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "externalId" | "external_id" | "external-id" => Some(Self::ExternalId),
            "email" => Some(Self::Email),
            "phone" => Some(Self::Phone),
            _ => None,
        }
    }

    /// The way's name in the HTTP API (`matchBy=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExternalId => "externalId",
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }
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

    pub(super) fn fail_row(&mut self, error: RowError) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(error);
        }
    }

    pub(super) fn conflict(&mut self, conflict: RowError) {
        self.conflicts += 1;
        if self.first_conflicts.len() < MAX_REPORTED {
            self.first_conflicts.push(conflict);
        }
    }
}

/// What one batch did, applied to the report once it committed.
#[derive(Debug, Default)]
pub(super) struct BatchOutcome {
    pub(super) created: u64,
    pub(super) updated: u64,
    pub(super) unchanged: u64,
    pub(super) failures: Vec<RowError>,
    pub(super) conflicts: Vec<RowError>,
}

impl BatchOutcome {
    /// Rows settled: written, unchanged or failed (a conflict is also written).
    pub(super) fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.failures.len() as u64
    }

    /// Adds `other`'s counts and rows to these.
    pub(super) fn absorb(&mut self, other: BatchOutcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failures.extend(other.failures);
        self.conflicts.extend(other.conflicts);
    }
}

/// The reports of each workspace's last [`MAX_JOBS`] jobs, shared by every clone of the import
/// service. Workspaces are kept apart, so one workspace's dry runs never push another's jobs
/// out; within a workspace, finished jobs make room before running ones.
#[derive(Clone, Default)]
pub(super) struct JobRegistry(Arc<Mutex<HashMap<WorkspaceId, Vec<ImportReport>>>>);

impl JobRegistry {
    /// Registers a new job into `workspace`; returns its id.
    pub(super) fn begin(&self, workspace: &WorkspaceId, dry_run: bool) -> String {
        let report = ImportReport::new(workspace.clone(), dry_run);
        let id = report.id.clone();
        let mut registry = self.lock();
        let jobs = registry.entry(workspace.clone()).or_default();
        if jobs.len() >= MAX_JOBS {
            let oldest_finished = jobs
                .iter()
                .position(|job| job.status != JobStatus::Running)
                .unwrap_or(0);
            jobs.remove(oldest_finished);
        }
        jobs.push(report);
        id
    }

    /// The reports of `workspace`'s jobs, newest first.
    pub(super) fn of(&self, workspace: &WorkspaceId) -> Vec<ImportReport> {
        let registry = self.lock();
        registry
            .get(workspace)
            .map(|jobs| jobs.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Applies `change` to job `job`'s report; returns the report as it now stands.
    pub(super) fn update(&self, job: &str, change: impl FnOnce(&mut ImportReport)) -> ImportReport {
        let mut registry = self.lock();
        let found = registry
            .values_mut()
            .flat_map(|jobs| jobs.iter_mut())
            .find(|report| report.id == job);
        match found {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkspaceId, Vec<ImportReport>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::MatchBy;

    #[test]
    fn match_by_reads_every_spelling_and_names_itself_as_the_api_does() {
        for raw in ["externalId", "external_id", "external-id"] {
            assert_eq!(MatchBy::parse(raw), Some(MatchBy::ExternalId), "{raw}");
        }
        for way in [MatchBy::ExternalId, MatchBy::Email, MatchBy::Phone] {
            assert_eq!(MatchBy::parse(way.as_str()), Some(way));
        }
        assert_eq!(MatchBy::parse("ExternalId"), None);
        assert_eq!(MatchBy::parse(""), None);
    }
}
