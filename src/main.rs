//! The `qwry-contacts` command: serves the API (default), prints its schema, rebuilds or checks
//! the segment index, imports and exports contacts, or checks segment text for scripts.

mod commands;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, ServeFlags, Settings, StoreSettings};
use qwry_contacts::domain::{Caller, ContactId, WorkspaceId};
use qwry_contacts::service::{ImportFormat, ImportOptions, MatchBy, check_text, contact_json};
use qwry_contacts::store::Store;
use qwry_contacts::telemetry::init_logging;
use tokio::net::TcpListener;

/// Contacts service for conversational products.
#[derive(Debug, Parser)]
#[command(name = "qwry-contacts", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeFlags,
}

/// A running service to work through instead of opening the store.
#[derive(Debug, clap::Args)]
struct RemoteFlags {
    /// The running service's address, e.g. http://127.0.0.1:8080.
    #[arg(long, requires = "api_key")]
    url: Option<String>,
    /// An API key of the service (contacts:write to import, contacts:read to export).
    #[arg(long, requires = "url")]
    api_key: Option<String>,
}

impl RemoteFlags {
    /// The service, when --url was given.
    fn service(&self) -> anyhow::Result<Option<commands::remote::RemoteService>> {
        match (&self.url, &self.api_key) {
            (Some(url), Some(key)) => Ok(Some(commands::remote::RemoteService::new(url, key)?)),
            _ => Ok(None),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Print the GraphQL schema (SDL), as checked in to `schema.graphql`.
    Schema,
    /// Rebuild the segment index from the store (the service must not be running).
    Reindex,
    /// Import contacts from an NDJSON or CSV file; prints a summary. Opens the store itself
    /// (an embedded store only while the service is stopped), or, with --url and --api-key,
    /// streams the file to the running service.
    Import {
        /// The file; `.csv` is read as CSV, anything else as NDJSON unless --format says.
        file: PathBuf,
        /// `ndjson` or `csv`.
        #[arg(long)]
        format: Option<String>,
        /// Match rows without a known external id by `email` or `phone` too.
        #[arg(long, default_value = "external-id")]
        match_by: String,
        /// Count what would happen without writing.
        #[arg(long)]
        dry_run: bool,
        /// Workspace to import into (through --url: the API key's).
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        remote: RemoteFlags,
    },
    /// Export contacts (or a segment's members) as NDJSON, ascending by id; from the store, or
    /// with --url and --api-key from the running service.
    Export {
        /// Segment text; all contacts without it.
        #[arg(long)]
        segment: Option<String>,
        /// Resume after this contact id.
        #[arg(long)]
        after: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Workspace to export from (through --url: the API key's).
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
        #[command(flatten)]
        remote: RemoteFlags,
    },
    /// Compare the store with the segment index; exit 1 if they differ.
    Check,
    /// Write every workspace's data (contacts, identities, attributes, saved segments, merges,
    /// hashed keys, settings; sensitive values stay sealed) to FILE, as SurrealQL, from one
    /// read of the store.
    Backup {
        /// Where to write the backup.
        file: PathBuf,
    },
    /// Load a backup into an empty store and rebuild the segment index. Sealed values read
    /// again only with the same ENCRYPTION_KEY (or DATA_DIR/encryption.key).
    Restore {
        /// The backup to load.
        file: PathBuf,
    },
    /// Ask the running service whether it is ready (`GET /readyz` on LISTEN_ADDR): exit 0 when
    /// it is, 1 otherwise. For container health checks; needs no curl.
    Healthcheck,
    /// Create, list or revoke API keys.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
    /// Work with segment text.
    Segment {
        #[command(subcommand)]
        command: SegmentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    /// Check segment text: prints the canonical form (exit 0) or the problems (exit 1).
    Check {
        /// The segment, e.g. 'plan = "pro" and ltv >= 100'.
        text: String,
        /// Workspace whose attributes and saved segments the text may use.
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
        /// Check the grammar only, without opening the store.
        #[arg(long)]
        syntax_only: bool,
    },
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    qwry_contacts::huge_pages::turn_off_transparent_huge_pages();
    qwry_contacts::service::install_crypto_provider();
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(&cli.serve, &env)?;
    let command = cli.command.unwrap_or(Command::Serve);
    // Commands print their results on stdout: logs go to stderr, and only warnings unless
    // RUST_LOG says otherwise. Installing a filter also keeps disabled spans from evaluating
    // their fields (SurrealDB formats every key it reads for its trace spans otherwise).
    let default_filter = match command {
        Command::Serve => settings.log_filter.as_str(),
        _ => env.get("RUST_LOG").map_or("warn", String::as_str),
    };
    init_logging(default_filter, settings.log_format).context("invalid RUST_LOG")?;
    match command {
        Command::Serve => serve(settings).await.map(|()| ExitCode::SUCCESS),
        Command::Schema => {
            let settings = Settings {
                store: StoreSettings::new(DatabaseUrl::Memory),
                ..settings
            };
            let app = App::build(&settings).await?;
            print!("{}", app.schema().sdl());
            app.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reindex => {
            let app = App::build(&settings).await?;
            let documents = app.indexer().rebuild().await?;
            println!("indexed {documents} contacts");
            app.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            file,
            format,
            match_by,
            dry_run,
            workspace,
            remote,
        } => {
            let options = import_options(&file, format.as_deref(), &match_by, dry_run)?;
            match remote.service()? {
                Some(service) => service.import(&file, options).await,
                None => commands::import::import_file(&settings, &file, options, &workspace).await,
            }
        }
        Command::Export {
            segment,
            after,
            output,
            workspace,
            remote,
        } => match remote.service()? {
            Some(service) => {
                service
                    .export(segment.as_deref(), after.as_deref(), output.as_ref())
                    .await
            }
            None => export(&settings, segment, after, output, &workspace).await,
        },
        Command::Check => check(&settings).await,
        Command::Backup { file } => commands::backup::backup(&settings, &file).await,
        Command::Restore { file } => commands::backup::restore(&settings, &file).await,
        Command::Healthcheck => Ok(healthcheck(settings.listen_addr).await),
        Command::Keys { command } => commands::keys::run(&settings, command).await,
        Command::Segment {
            command:
                SegmentCommand::Check {
                    text,
                    workspace,
                    syntax_only,
                },
        } => segment_check(&settings, &text, &workspace, syntax_only).await,
    }
}

/// `GET /readyz` on the service's own address (loopback when it listens on every interface).
async fn healthcheck(listen: std::net::SocketAddr) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = if listen.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), probe).await {
        Ok(Ok(answer)) if answer.starts_with(b"HTTP/1.1 200") => {
            println!("ready");
            ExitCode::SUCCESS
        }
        Ok(Ok(answer)) => {
            let status = String::from_utf8_lossy(&answer);
            println!(
                "not ready: {}",
                status.lines().next().unwrap_or("no answer")
            );
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            println!("not ready: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            println!("not ready: no answer within 5 s");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = App::build(&settings).await?;
    let listener = TcpListener::bind(settings.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
    app.serve(listener, shutdown_signal()).await?;
    Ok(())
}

async fn segment_check(
    settings: &Settings,
    text: &str,
    workspace: &str,
    syntax_only: bool,
) -> anyhow::Result<ExitCode> {
    let outcome = if syntax_only {
        match qwry_segment::parse_recovering(text) {
            (Some(expr), diagnostics) if diagnostics.is_empty() => Ok(expr.to_string()),
            (_, diagnostics) => Err(diagnostics),
        }
    } else {
        let workspace = WorkspaceId::parse(workspace)?;
        let store = Store::connect(&settings.store)
            .await
            .context("cannot open the store to check attribute names (is the service running? try --syntax-only)")?;
        let outcome = check_text(&store, &workspace, text).await?;
        store.close().await;
        outcome
    };
    match outcome {
        Ok(canonical) => {
            println!("{canonical}");
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            for diagnostic in diagnostics {
                eprintln!("{}", diagnostic.render(text));
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn import_options(
    file: &Path,
    format: Option<&str>,
    match_by: &str,
    dry_run: bool,
) -> anyhow::Result<ImportOptions> {
    let format = match format {
        Some(raw) => ImportFormat::parse(raw).context("--format must be `ndjson` or `csv`")?,
        None => file
            .extension()
            .and_then(|extension| extension.to_str())
            .and_then(ImportFormat::parse)
            .unwrap_or(ImportFormat::Ndjson),
    };
    let Some(match_by) = MatchBy::parse(match_by) else {
        anyhow::bail!("--match-by is `{match_by}`; use external-id, email or phone");
    };
    Ok(ImportOptions {
        format,
        match_by,
        dry_run,
    })
}

async fn export(
    settings: &Settings,
    segment: Option<String>,
    after: Option<String>,
    output: Option<PathBuf>,
    workspace: &str,
) -> anyhow::Result<ExitCode> {
    let caller = Caller::operator(WorkspaceId::parse(workspace)?, "cli");
    let mut after = after.as_deref().map(ContactId::parse).transpose()?;
    let mut sink: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create `{}`", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let app = App::build(settings).await?;
    let exports = &app.services().exports;
    let outcome = async {
        let resolved = exports.resolve(&caller, segment.as_deref())?;
        loop {
            let (contacts, has_more) = exports.page(&caller, resolved.as_ref(), after).await?;
            for contact in &contacts {
                serde_json::to_writer(&mut sink, &contact_json(contact))?;
                sink.write_all(b"\n")?;
            }
            after = contacts.last().map(|contact| contact.id).or(after);
            if !has_more {
                break;
            }
        }
        sink.flush()?;
        anyhow::Ok(())
    }
    .await;
    app.close().await;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

async fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let app = App::build(settings).await?;
    let drift = app.indexer().compare(10).await;
    app.close().await;
    let drift = drift?;
    println!(
        "store: {} contacts; index: {} documents",
        drift.stored, drift.indexed
    );
    if drift.is_clean() {
        println!("store and index agree");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} contacts missing from the index, e.g.:", drift.missing);
    for (workspace, id) in &drift.missing_sample {
        println!("  {workspace}/{id}");
    }
    println!("{} index documents without a contact, e.g.:", drift.stale);
    for (workspace, id) in &drift.stale_sample {
        println!("  {workspace}/{id}");
    }
    Ok(ExitCode::FAILURE)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
