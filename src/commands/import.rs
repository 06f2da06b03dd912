//! `import FILE` on the store itself: runs the import job with progress in rows, then waits
//! until the segment index has applied every imported row, so the command ends with the rows
//! searchable (as the service would answer them).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use qwry_contacts::actor::acting_as;
use qwry_contacts::app::App;
use qwry_contacts::config::Settings;
use qwry_contacts::domain::WorkspaceId;
use qwry_contacts::service::{ImportOptions, ImportReport};

use super::import_progress::{RowProgress, wait_for_index};

/// Imports `file` into `workspace` and prints the report; the exit code is 2 when rows failed.
pub async fn import_file(
    settings: &Settings,
    file: &Path,
    options: ImportOptions,
    workspace: &str,
) -> anyhow::Result<ExitCode> {
    let workspace = WorkspaceId::parse(workspace)?;
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open `{}`", file.display()))?;
    let size = input.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let app = App::build(settings).await?;
    let services = app.services();
    let mut progress = RowProgress::importing(size);
    let job = services.imports.begin(&workspace, options);
    let run = acting_as(
        "cli",
        services
            .imports
            .run(&workspace, &job, options, progress.reading(input)),
    );
    let report = progress
        .follow(run, async || {
            let report = services.imports.job(&workspace, &job)?;
            Some(report.processed)
        })
        .await;
    progress.rows_done(report.processed);
    progress.finish();
    let written = report.created + report.updated;
    if !report.dry_run && written > 0 {
        wait_for_index(written, async || {
            let backlog = services.segments.backlog().await?;
            anyhow::Ok((backlog.pending, backlog.pending_contacts))
        })
        .await?;
    }
    app.close().await;
    print_report(&report);
    Ok(exit_code(&report))
}

fn print_report(report: &ImportReport) {
    let verb = if report.dry_run { "would be " } else { "" };
    println!(
        "{} rows: {} {verb}created, {} {verb}updated, {} unchanged, {} failed, {} conflicts",
        report.processed,
        report.created,
        report.updated,
        report.unchanged,
        report.failed,
        report.conflicts
    );
    for error in report.errors.iter().chain(&report.first_conflicts) {
        eprintln!("line {}: {}: {}", error.line, error.code, error.message);
    }
    if let Some(message) = &report.message {
        eprintln!("import stopped: {message}");
    }
}

fn exit_code(report: &ImportReport) -> ExitCode {
    if report.message.is_some() {
        ExitCode::FAILURE
    } else if report.failed > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
