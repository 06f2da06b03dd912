//! `backup FILE` and `restore FILE`: every workspace's data as one SurrealQL file, and back
//! into an empty store, with the segment index rebuilt from it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, Settings, StoreSettings};
use qwry_contacts::store::Store;

/// The store to export from or import into: SurrealDB's SDK exports and imports over HTTP,
/// not over WebSocket, so a `ws://` (`wss://`) server is reached at `http://` (`https://`) on
/// the same address, with the same credentials, namespace and database.
fn transfer_settings(store: &StoreSettings) -> StoreSettings {
    let mut settings = store.clone();
    if let DatabaseUrl::Remote(url) = &store.url {
        let http = match url.strip_prefix("wss://") {
            Some(rest) => format!("https://{rest}"),
            None => url.replacen("ws://", "http://", 1),
        };
        settings.url = DatabaseUrl::Remote(http);
    }
    settings
}

/// Writes the store's data (all workspaces) to `file`.
pub async fn backup(settings: &Settings, file: &Path) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&transfer_settings(&settings.store))
        .await
        .context("cannot open the store")?;
    let written = store.backup(file).await;
    store.close().await;
    written?;
    eprintln!(
        "backed up {} to {}",
        settings.store.url.endpoint(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Loads `file` into the (empty) configured store, then rebuilds the segment index from it.
/// Sealed values read again only with the `ENCRYPTION_KEY` (or key file) they were sealed with.
pub async fn restore(settings: &Settings, file: &Path) -> anyhow::Result<ExitCode> {
    if !file.is_file() {
        anyhow::bail!("no backup at {}", file.display());
    }
    let store = Store::connect(&transfer_settings(&settings.store))
        .await
        .context("cannot open the store")?;
    let restored = store.restore(file).await;
    store.close().await;
    restored?;
    let app = App::build(settings).await?;
    let documents = app.indexer().rebuild().await;
    app.close().await;
    eprintln!(
        "restored {} into {}; indexed {} contacts",
        file.display(),
        settings.store.url.endpoint(),
        documents?
    );
    Ok(ExitCode::SUCCESS)
}
