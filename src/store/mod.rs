//! SurrealDB, and nothing else: connection, schema, and one method per stored operation.
//!
//! Every method takes the workspace and builds keys inside it, so isolation between tenants is
//! enforced here, once. No SurrealDB type crosses this module's boundary.

mod access_log;
mod activity;
mod api_keys;
mod attributes;
mod backup;
mod batch;
mod catalog_versions;
mod change_payloads;
mod changes;
mod connection;
mod consent_purposes;
mod contact_cache;
mod contacts;
mod delivery_keys;
mod feed;
pub use feed::FedState;
mod identities;
mod leases;
mod lock_probe;
mod merges;
#[cfg(test)]
mod migration_tests;
mod migrations;
mod outbox;
pub use outbox::{OutboxRead, RoundOutcome};
mod records;
mod schema;
mod segment_days;
mod segments;
mod suppressions;
mod token_uses;
mod webhooks;
mod workspaces;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use surrealdb::opt::auth::Root;

use tracing::warn;

use crate::config::{DatabaseUrl, StoreSettings};
use crate::domain::{AttributeRegistry, ExternalId, Sealer, WorkspaceId};

use connection::Connection;

pub use access_log::ContactAccess;
pub use activity::ActivityCursor;
pub use batch::WriteBatch;
pub use changes::{Backlog, Change, change_key_at};
pub use connection::engine_settings;
pub use contacts::ContactPage;
pub use identities::HeldIdentity;
pub use migrations::{Migrated, MigrationLimits, SCHEMA_VERSION};
pub use segment_days::{DAYS_KEPT, SegmentDay};
pub use suppressions::ErasureReceipt;

/// Whether `error` only reports that its transaction failed because another statement of it
/// did (SurrealDB marks such statements not executed, or cancelled): not a cause.
fn is_consequence(error: &surrealdb::Error) -> bool {
    matches!(
        error.query_details(),
        Some(surrealdb::types::QueryError::NotExecuted | surrealdb::types::QueryError::Cancelled)
    )
}

/// The error that caused a failed transaction's statements to fail: the first that is not
/// only a consequence of another, else the first.
fn cause_of(errors: &[surrealdb::Error]) -> &surrealdb::Error {
    errors
        .iter()
        .find(|error| !is_consequence(error))
        .unwrap_or(&errors[0])
}

/// Failures of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The unique index refused a second contact with this external id.
    #[error("external id `{0}` already belongs to another contact")]
    DuplicateExternalId(ExternalId),
    /// A concurrent write changed the record first; re-read and retry.
    #[error("the record was changed concurrently")]
    WriteConflict,
    /// A record the write needed does not exist.
    #[error("the record does not exist")]
    Missing,
    /// The database could not be reached or opened.
    #[error("cannot open the store at `{url}`: {message}")]
    Connect {
        /// The endpoint, without credentials.
        url: String,
        /// What SurrealDB said.
        message: String,
    },
    /// Another process (a running service, or another command) holds the embedded store.
    #[error(
        "the store at `{url}` is in use by another process (a running service holds its lock): stop that process first, point the command at a SurrealDB server with `--database-url ws://...`, or go through the running service (`import` and `export` take `--url http://HOST:PORT --api-key KEY`; everything else is in its GraphQL API)"
    )]
    Locked {
        /// The embedded store's address.
        url: String,
    },
    /// A record with that key (or a unique index entry with that value) exists already.
    #[error("store failure: {0}")]
    AlreadyExists(#[source] Box<surrealdb::Error>),
    /// The database refused or failed a statement.
    #[error("store failure: {0}")]
    Backend(#[source] Box<surrealdb::Error>),
    /// The SurrealDB server could not be reached, or did not answer in time.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] Box<surrealdb::Error>),
    /// Writing a backup failed.
    #[error("backup failed: {0}")]
    Backup(#[source] Box<surrealdb::Error>),
    /// Loading a backup failed.
    #[error("restore failed: {0}")]
    Restore(#[source] Box<surrealdb::Error>),
    /// A restore was asked of a store that holds data (so that a restore never mixes two
    /// histories).
    #[error(
        "refusing to restore into a store that holds data (table `{table}` has records); restore into an empty store"
    )]
    RestoreIntoData {
        /// A table that holds records.
        table: String,
    },
    /// A value could not be sealed for storage.
    #[error("cannot seal a value for storage: {0}")]
    Seal(#[from] crate::domain::SealError),
    /// A segment naming sensitive values was saved while no encryption key is loaded.
    #[error("a segment naming sensitive values needs the encryption key")]
    NoEncryptionKey,
    /// The store was written by a newer release, in a schema this one does not know.
    #[error(
        "the store has schema version {found}, newer than this release knows ({supported}): run the release that wrote it, or a newer one"
    )]
    NewerSchema {
        /// The store's version.
        found: i64,
        /// The newest version this release reads.
        supported: i64,
    },
    /// A stored record does not have the expected shape.
    #[error("malformed stored record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Classifies a SurrealDB error by its kind: transaction conflicts become retryable
    /// [`StoreError::WriteConflict`], duplicate keys [`StoreError::AlreadyExists`].
    fn from_surreal(error: surrealdb::Error) -> Self {
        Self::classify(&error)
    }

    /// [`StoreError::from_surreal`] by reference.
    fn classify(error: &surrealdb::Error) -> Self {
        if matches!(
            error.query_details(),
            Some(surrealdb::types::QueryError::TransactionConflict)
        ) {
            return Self::WriteConflict;
        }
        if error.is_already_exists() {
            return Self::AlreadyExists(Box::new(error.clone()));
        }
        if error.is_connection() {
            return Self::Unavailable(Box::new(error.clone()));
        }
        Self::Backend(Box::new(error.clone()))
    }
}

/// How often applying the schema is retried when a concurrent definition (another instance
/// starting, or another database of the namespace being defined) wins the race.
const SCHEMA_RETRIES: u64 = 19;

/// Selects the namespace and database (which defines them when they are new) and applies the
/// schema (every statement `IF NOT EXISTS`), retrying on a transaction conflict.
async fn apply_schema(
    db: &Connection,
    namespace: &str,
    database: &str,
) -> Result<(), surrealdb::Error> {
    let conflict =
        |error: &surrealdb::Error| matches!(StoreError::classify(error), StoreError::WriteConflict);
    retrying_conflicts(
        SCHEMA_RETRIES,
        Duration::from_millis(5),
        conflict,
        || async {
            db.use_database(namespace, database).await?;
            db.query(schema::SCHEMA)
                .await
                .and_then(|response| response.check())
                .map(|_| ())
        },
    )
    .await
}

/// Runs `attempt` until it does not fail with an error `is_conflict` says lost a race to a
/// concurrent transaction, retrying at most `retries` times, the n-th time after `pause` × n.
async fn retrying_conflicts<T, E, F, Fut>(
    retries: u64,
    pause: Duration,
    is_conflict: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut retried = 0;
    loop {
        match attempt().await {
            Err(error) if retried < retries && is_conflict(&error) => {
                retried += 1;
                tokio::time::sleep(pause * retried as u32).await;
            }
            other => return other,
        }
    }
}

impl Store {
    /// Upserts each record at its id (a whole content; again: no change), a query per 1,000.
    pub(super) async fn upsert_each<R: surrealdb::types::SurrealValue + Clone>(
        &self,
        records: &[(surrealdb::types::RecordId, R)],
    ) -> Result<(), StoreError> {
        for chunk in records.chunks(1_000) {
            let (ids, contents): (Vec<_>, Vec<_>) = chunk.iter().cloned().unzip();
            self.db
                .query(
                    "FOR $i IN 0..array::len($ids) { UPSERT $ids[$i] CONTENT $contents[$i] RETURN NONE; }",
                )
                .bind(("ids", ids))
                .bind(("contents", contents))
                .await
                .and_then(|response| response.check())
                .map_err(StoreError::from_surreal)?;
        }
        Ok(())
    }

    /// Deletes the records of `table` whose `field` is before `before`; returns how many
    /// (counted by the store: nothing deleted is sent back).
    pub(super) async fn delete_before(
        &self,
        table: &'static str,
        field: &'static str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "(DELETE {table} WHERE {field} < $before RETURN BEFORE).len()"
            ))
            .bind(("before", before))
            .await
            .map_err(StoreError::from_surreal)?;
        let deleted: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(deleted.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// How many records the record-id `range` holds.
    pub(super) async fn count_in(
        &self,
        range: surrealdb::types::RecordId,
    ) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query("(SELECT count() FROM $range GROUP ALL)[0].count OR 0")
            .bind(("range", range))
            .await
            .map_err(StoreError::from_surreal)?;
        let count: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }
}

/// How long [`Store::close`] waits for an embedded datastore to release its files.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The source of truth: a SurrealDB datastore, embedded or remote.
#[derive(Clone)]
pub struct Store {
    /// One SurrealDB session shared by every clone: cloning an SDK handle opens a session
    /// (a random id and a message to the router, and another to close it on drop), which
    /// would cost every request that clones the services.
    db: Arc<Connection>,
    /// SurrealKV's lock file, held while the embedded datastore is open.
    lock_file: Option<PathBuf>,
    /// Seals sensitive attribute values before they are written (see [`Store::attribute_registry`]).
    sealer: Option<Arc<dyn Sealer>>,
    /// Contacts and identities read before and unchanged since (see [`contact_cache`]).
    cache: Arc<contact_cache::ContactCache>,
    /// What committed entries wrote, until the indexer applies them (see [`change_payloads`]).
    payloads: Arc<change_payloads::ChangePayloads>,
}

/// `limit` as a SurrealQL `LIMIT` value: SurrealDB's compute executor (see
/// [`connection::capabilities`]) takes at most `u32::MAX`, and a longer read means "all".
pub(super) fn limit_value(limit: usize) -> i64 {
    i64::from(u32::try_from(limit).unwrap_or(u32::MAX))
}

impl Store {
    /// Opens (or connects to) the datastore, applies the schema and migrates an older store
    /// to [`SCHEMA_VERSION`].
    pub async fn connect(settings: &StoreSettings) -> Result<Self, StoreError> {
        let store = Self::connect_unmigrated(settings).await?;
        if matches!(settings.url, DatabaseUrl::Remote(_))
            && !store.range_pages_stop_at_their_limit().await?
        {
            warn!(
                url = %settings.url.endpoint(),
                "the SurrealDB server reads a whole record-id range for every page (SurrealDB \
                 3.3.5's streaming planner): check, reindex, exports, the feed and the webhook \
                 outbox will cost memory and time in proportion to the store; start it with \
                 --planner-strategy compute-only (docs/operations.md)"
            );
        }
        store.migrate(MigrationLimits::default()).await?;
        Ok(store)
    }

    /// [`Store::connect`] without the migration (tests stop one part-way).
    pub(crate) async fn connect_unmigrated(settings: &StoreSettings) -> Result<Self, StoreError> {
        let url = settings.url.endpoint();
        let connect_error = |error: surrealdb::Error| StoreError::Connect {
            url: url.clone(),
            message: error.to_string(),
        };
        let db = match &settings.url {
            DatabaseUrl::RocksDb(_) | DatabaseUrl::SurrealKv(_) => {
                if lock_probe::held_elsewhere(&settings.url) {
                    return Err(StoreError::Locked { url });
                }
                connection::open_embedded(&settings.url, &settings.memory)
                    .await
                    .map_err(|message| StoreError::Connect {
                        url: url.clone(),
                        message,
                    })?
            }
            DatabaseUrl::Memory | DatabaseUrl::Remote(_) => {
                let any = match &settings.url {
                    DatabaseUrl::Memory => {
                        let config =
                            surrealdb::opt::Config::new().capabilities(connection::capabilities());
                        surrealdb::engine::any::connect((url.as_str(), config)).await
                    }
                    _ => surrealdb::engine::any::connect(url.as_str()).await,
                }
                .map_err(connect_error)?;
                if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
                    let credentials = Root {
                        username: username.clone(),
                        password: password.expose_secret().to_owned(),
                    };
                    any.signin(credentials).await.map_err(connect_error)?;
                }
                let deadline =
                    matches!(settings.url, DatabaseUrl::Remote(_)).then_some(settings.call_timeout);
                Connection::Any(any, deadline)
            }
        };
        apply_schema(&db, &settings.namespace, &settings.database)
            .await
            .map_err(connect_error)?;
        // SurrealKV closes in the background after its last handle goes; RocksDB closes when
        // the datastore is dropped, inside `close`.
        let lock_file = match &settings.url {
            DatabaseUrl::SurrealKv(path) => Some(path.join("LOCK")),
            _ => None,
        };
        Ok(Self {
            db: Arc::new(db),
            lock_file,
            sealer: None,
            cache: Arc::new(contact_cache::ContactCache::new(
                settings.memory.contact_cache_bytes,
            )),
            payloads: Arc::default(),
        })
    }

    /// This store, sealing sensitive values with `sealer` (the service's encryption key).
    pub fn with_sealer(mut self, sealer: Arc<dyn Sealer>) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// The sealer of sensitive values, when the store was given one.
    pub fn sealer(&self) -> Option<&Arc<dyn Sealer>> {
        self.sealer.as_ref()
    }

    /// The workspace's attribute registry, sealing sensitive values as it parses them.
    pub async fn attribute_registry(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<AttributeRegistry, StoreError> {
        let definitions = self.attribute_definitions(workspace).await?;
        Ok(AttributeRegistry::new(definitions).with_sealer(self.sealer.clone()))
    }

    /// Closes this handle and, for an embedded datastore, waits until it has shut down and
    /// released its files, so that the same data directory can be opened again at once.
    /// SurrealDB shuts an embedded datastore down in the background once its last handle is
    /// dropped; every other clone must be gone before this is called.
    pub async fn close(self) {
        let Self { db, lock_file, .. } = self;
        db.close().await;
        let Some(lock_file) = lock_file else { return };
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while Instant::now() < deadline {
            let released = match std::fs::File::open(&lock_file) {
                Ok(file) => file.try_lock().is_ok(),
                Err(_) => true,
            };
            if released {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        warn!(path = %lock_file.display(), "the store did not release its lock in time");
    }

    /// Every record of a small per-workspace table (served by its `workspace` index), ordered.
    async fn workspace_records<R: surrealdb::types::SurrealValue>(
        &self,
        table: &'static str,
        workspace: &WorkspaceId,
        order_by: &'static str,
    ) -> Result<Vec<R>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT * FROM {table} WHERE workspace = $workspace ORDER BY {order_by}"
            ))
            .bind(("workspace", workspace.as_str().to_owned()))
            .await
            .map_err(StoreError::from_surreal)?;
        response.take(0).map_err(StoreError::from_surreal)
    }

    /// `CREATE` or `UPSERT` one catalogue record of `workspace` with its whole content, bumping
    /// the workspace's catalogue version in the same transaction.
    async fn write_catalog_record<R: surrealdb::types::SurrealValue>(
        &self,
        workspace: &WorkspaceId,
        statement: &'static str,
        id: surrealdb::types::RecordId,
        record: R,
    ) -> Result<(), StoreError> {
        let mut write = catalog_versions::CatalogWrite::new(workspace);
        let id = write.bind(id);
        let record = write.bind(record);
        write.statement(format!("{statement} {id} CONTENT {record} RETURN NONE"));
        self.commit_catalog(write).await
    }

    /// Answers when the datastore executes a trivial statement.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .query("RETURN true")
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}
