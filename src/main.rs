//! The `qwry-contacts` command: serves the API (default) or prints its schema.

use std::collections::HashMap;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, ServeFlags, Settings, StoreSettings};
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.serve, &env).await,
        Command::Schema => {
            let settings = Settings::load(&ServeFlags::default(), &env)?;
            let settings = Settings {
                store: StoreSettings::new(DatabaseUrl::Memory),
                ..settings
            };
            print!("{}", App::build(&settings).await?.schema().sdl());
            Ok(())
        }
    }
}

async fn serve(flags: &ServeFlags, env: &HashMap<String, String>) -> anyhow::Result<()> {
    let settings = Settings::load(flags, env)?;
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
