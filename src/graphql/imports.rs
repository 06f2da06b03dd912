//! Import job queries: follow a bulk import (`POST /v1/contacts/import`) and fetch its report.

use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::error::{ApiResult, ErrorCodeView};
use super::guard::RequireScope;
use super::workspace;
use crate::domain::Scope;
use crate::service::{ImportReport, JobStatus, RowError, ServiceError, Services};

/// Where an import job stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ImportJobStatus")]
pub enum JobStatusView {
    /// Rows are being read and written.
    Running,
    /// Every row was read (some may have failed).
    Completed,
    /// The job stopped early; `message` says why.
    Failed,
}

impl From<JobStatus> for JobStatusView {
    fn from(value: JobStatus) -> Self {
        match value {
            JobStatus::Running => Self::Running,
            JobStatus::Completed => Self::Completed,
            JobStatus::Failed => Self::Failed,
        }
    }
}

/// A row that was skipped, or imported with a conflict.
#[derive(SimpleObject)]
#[graphql(name = "ImportRowError", complex)]
pub struct RowErrorView {
    /// Line (NDJSON) or record line (CSV) where the row starts.
    line: u64,
    /// Error code, as in `extensions.code`.
    #[graphql(deprecation = "use `errorCode`, an enum")]
    code: String,
    /// What is wrong.
    message: String,
    #[graphql(skip)]
    listed: Vec<(String, String)>,
}

/// One problem of an import row.
#[derive(SimpleObject)]
#[graphql(name = "ImportRowProblem")]
pub struct RowProblemView {
    /// Why, as in `extensions.code`.
    error_code: ErrorCodeView,
    /// What is wrong.
    message: String,
}

#[ComplexObject]
impl RowErrorView {
    /// Why the row was refused, as in `extensions.code`.
    async fn error_code(&self) -> ErrorCodeView {
        ErrorCodeView::of_wire(&self.code).unwrap_or(ErrorCodeView::Internal)
    }

    /// Every problem of the row (`message` is the first of them).
    async fn problems(&self) -> Vec<RowProblemView> {
        let view = |code: &str, message: &str| RowProblemView {
            error_code: ErrorCodeView::of_wire(code).unwrap_or(ErrorCodeView::Internal),
            message: message.to_owned(),
        };
        if self.listed.is_empty() {
            return vec![view(&self.code, &self.message)];
        }
        self.listed
            .iter()
            .map(|(code, message)| view(code, message))
            .collect()
    }
}

impl From<RowError> for RowErrorView {
    fn from(error: RowError) -> Self {
        Self {
            line: error.line,
            code: error.code.to_owned(),
            message: error.message,
            listed: error
                .problems
                .into_iter()
                .map(|problem| (problem.code.to_owned(), problem.message))
                .collect(),
        }
    }
}

/// Progress and report of an import job.
pub struct ImportJobView(ImportReport);

/// Progress and report of an import job.
#[Object(name = "ImportJob")]
impl ImportJobView {
    /// The job id.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Where it stands.
    async fn status(&self) -> JobStatusView {
        self.0.status.into()
    }

    /// Whether it writes nothing (counts are what would happen).
    async fn dry_run(&self) -> bool {
        self.0.dry_run
    }

    /// Rows read so far; each was committed or failed.
    async fn processed(&self) -> u64 {
        self.0.processed
    }

    /// Contacts created.
    async fn created(&self) -> u64 {
        self.0.created
    }

    /// Contacts changed.
    async fn updated(&self) -> u64 {
        self.0.updated
    }

    /// Rows that matched a contact without changing it.
    async fn unchanged(&self) -> u64 {
        self.0.unchanged
    }

    /// Rows skipped for an error.
    async fn failed(&self) -> u64 {
        self.0.failed
    }

    /// Rows with an email, phone or external id that belongs to another contact.
    async fn conflicts(&self) -> u64 {
        self.0.conflicts
    }

    /// The first (up to 100) row errors.
    async fn errors(&self) -> Vec<RowErrorView> {
        self.0.errors.iter().cloned().map(Into::into).collect()
    }

    /// The first (up to 100) conflicts.
    async fn first_conflicts(&self) -> Vec<RowErrorView> {
        self.0
            .first_conflicts
            .iter()
            .cloned()
            .map(Into::into)
            .collect()
    }

    /// When it started.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    /// When it ended.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Why it failed, if it did.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
}

/// Import job queries.
pub struct ImportQuery {
    services: Services,
}

impl ImportQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Import job queries.
#[Object]
impl ImportQuery {
    /// An import job, while it runs and after (the last 100 jobs since the service started);
    /// NOT_FOUND for another id.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn import_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ImportJobView> {
        let workspace = &workspace(ctx)?;
        self.services
            .imports
            .job(workspace, &id)
            .map(ImportJobView)
            .ok_or_else(|| ServiceError::NotFound(format!("no import job `{}`", id.as_str())))
            .api()
    }

    /// Recent import jobs, newest first.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn import_jobs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ImportJobView>> {
        let workspace = &workspace(ctx)?;
        let jobs = self.services.imports.jobs(workspace);
        Ok(jobs.into_iter().map(ImportJobView).collect())
    }
}
