//! `qwry-contacts keys create|list|revoke`: API key administration from the command line, for
//! the first keys of a new workspace and for operators (with the service stopped, or
//! `--database-url` pointing at a SurrealDB server).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use qwry_contacts::domain::{ApiKeyId, FieldPolicy, Scopes, WorkspaceId};
use qwry_contacts::service::{Catalogs, KeyService, NewKey};
use qwry_contacts::store::Store;
use secrecy::ExposeSecret;

use qwry_contacts::config::Settings;

/// What to do with keys.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown only this once).
    Create {
        /// A name to recognise it by, e.g. `routing engine`.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: contacts:read, contacts:write, segments:read,
        /// segments:write, identity:write, pii:read, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated approved built-in fields (all when omitted).
        #[arg(long, value_delimiter = ',')]
        fields: Option<Vec<String>>,
        /// Comma-separated approved custom attributes (all when omitted).
        #[arg(long, value_delimiter = ',')]
        attributes: Option<Vec<String>>,
        /// Show lookups by anonymous id only for visitors a verified `identify` linked (a
        /// chatbot's key).
        #[arg(long)]
        require_verified_identity: bool,
        /// Workspace of the key (created with its first key).
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
    },
    /// List a workspace's keys (never their secrets).
    List {
        /// Workspace whose keys to list.
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
    },
    /// Revoke a key; it authenticates nothing from then on.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
        /// Workspace of the key.
        #[arg(long, default_value = WorkspaceId::DEFAULT)]
        workspace: String,
    },
}

/// Runs a `keys` subcommand against the configured store.
pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&settings.store)
        .await
        .context("cannot open the store (is the service running on it?)")?;
    let catalogs = Catalogs::load(store.clone()).await?;
    let keys = KeyService::new(store.clone(), catalogs);
    let outcome = execute(&keys, command).await;
    drop(keys);
    store.close().await;
    outcome
}

async fn execute(keys: &KeyService, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            fields,
            attributes,
            require_verified_identity,
            workspace,
        } => {
            let workspace = WorkspaceId::parse(&workspace)?;
            let scopes = Scopes::parse(&scopes)?;
            let mut policy = FieldPolicy::parse(fields, attributes)?;
            policy.require_verified_identity = require_verified_identity;
            let new = NewKey {
                name: &name,
                scopes,
                policy,
                rate: None,
            };
            let created = keys.create(&workspace, new, "cli").await?;
            eprintln!(
                "created {} in workspace `{workspace}`; the secret below is shown only once",
                created.key.id
            );
            println!("{}", created.secret.expose_secret());
        }
        KeysCommand::List { workspace } => {
            let workspace = WorkspaceId::parse(&workspace)?;
            for key in keys.list(&workspace) {
                let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {}", at.to_rfc3339()),
                    None => "active".to_owned(),
                };
                println!(
                    "{}\t{}…\t{}\t{}\t{state}",
                    key.id,
                    key.prefix,
                    key.name,
                    scopes.join(",")
                );
            }
        }
        KeysCommand::Revoke { id, workspace } => {
            let workspace = WorkspaceId::parse(&workspace)?;
            let id = ApiKeyId::parse(&id)?;
            keys.revoke(&workspace, &id).await?;
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
