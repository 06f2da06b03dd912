//! The first admin key: from `ADMIN_API_KEY`, or, in development with an on-disk store and no
//! key yet, made up and written to `DATA_DIR/admin-api-key` for the operator to read.

use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::StartError;
use crate::config::{DatabaseUrl, Mode, Settings};
use crate::domain::{FieldPolicy, Scopes, WorkspaceId};
use crate::private_file::{self, IfExists};
use crate::service::KeyService;

/// File under `DATA_DIR` holding the development admin key.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";

/// Stores `ADMIN_API_KEY`, or makes up a development admin key when the default workspace has
/// none; in production without keys, warns that nothing can be called.
pub async fn ensure_admin_key(keys: &KeyService, settings: &Settings) -> Result<(), StartError> {
    let failed = |error: crate::service::ServiceError| StartError::AdminKey(error.to_string());
    if let Some(secret) = &settings.api.admin_api_key {
        return keys.ensure_bootstrap_key(secret).await.map_err(failed);
    }
    let workspace = WorkspaceId::default();
    if keys.any_key(&workspace) {
        return Ok(());
    }
    if settings.api.mode == Mode::Production {
        if keys.any_active_key() {
            return Ok(());
        }
        return Err(StartError::Unsafe(
            "no API key works: set ADMIN_API_KEY (at least 24 characters), or create a key with `qwry-contacts keys create --scopes admin` first",
        ));
    }
    if settings.store.url == DatabaseUrl::Memory {
        warn!("no API key exists; set ADMIN_API_KEY to create the first admin key");
        return Ok(());
    }
    let created = keys
        .create(
            &workspace,
            crate::service::NewKey {
                name: "development admin",
                scopes: Scopes::all(),
                policy: FieldPolicy::unrestricted(),
                rate: None,
            },
            "bootstrap",
        )
        .await
        .map_err(failed)?;
    let path = settings.data_dir.join(ADMIN_KEY_FILE);
    private_file::write(&path, created.secret.expose_secret(), IfExists::Replace).map_err(
        |error| StartError::AdminKey(format!("cannot write `{}`: {error}", path.display())),
    )?;
    info!(
        path = %path.display(),
        key_id = %created.key.id,
        "created a development admin API key; send it as `Authorization: Bearer <key>` (set ADMIN_API_KEY in production)"
    );
    Ok(())
}
