//! The `qwry-contacts` command: serves the API (default), prints its schema, rebuilds the
//! segment index, or checks segment text for scripts.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, ServeFlags, Settings, StoreSettings};
use qwry_contacts::domain::WorkspaceId;
use qwry_contacts::service::check_text;
use qwry_contacts::store::Store;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Contacts service for conversational products.
#[derive(Debug, Parser)]
#[command(name = "qwry-contacts", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeFlags,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the GraphQL API (the default).
    Serve,
    /// Print the GraphQL schema (SDL), as checked in to `schema.graphql`.
    Schema,
    /// Rebuild the segment index from the store (the service must not be running).
    Reindex,
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

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(&cli.serve, &env)?;
    match cli.command.unwrap_or(Command::Serve) {
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

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&settings.log_filter).context("invalid RUST_LOG")?)
        .init();
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
        qwry_segment::parse(text)
            .map(|expr| expr.to_string())
            .map_err(|d| vec![d])
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
