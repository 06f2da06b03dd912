//! The connection to SurrealDB: a server or `mem://` through the SDK's `any` engine, or an
//! embedded RocksDB (or SurrealKV) datastore built here so that its memory (block cache, write
//! buffers) can be bounded, which the SDK's connection strings cannot reach.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use surrealdb::engine::any::Any;
use surrealdb::engine::local::Db;
use surrealdb::method::Query;
use surrealdb::opt::capabilities::{Capabilities, PlannerStrategy};
use surrealdb::types::{Object, RecordId, SurrealValue, Value};
use surrealdb::{IndexedResults, Surreal};
use surrealdb_cnf::ConfigMap;
use surrealdb_core::kvs::Datastore;

use crate::config::{DatabaseUrl, StoreMemory};

/// How long [`Connection::close`] waits for the SDK to release an embedded datastore.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One handle on the datastore, whichever way it was opened.
#[derive(Clone)]
pub(super) enum Connection {
    /// Through `engine::any` (`mem://`, `ws://`, `wss://`), with the longest a call to a
    /// server may take (none for `mem://`).
    Any(Surreal<Any>, Option<Duration>),
    /// An embedded datastore opened with this service's settings, and the datastore itself
    /// (to shut it down in order, inside the runtime, when the store closes).
    Local(Surreal<Db>, Arc<Datastore>),
}

/// The capabilities of a datastore this service opens (embedded or `mem://`): SurrealDB's
/// defaults, with every statement run by its compute executor. SurrealDB 3.3.5's streaming
/// executor reads a record-id range to its end before it applies `LIMIT`
/// (surrealdb/surrealdb#7474), so one page of a range cost the memory of the whole table (21 GB
/// for `check` at 10M contacts); the compute executor stops at the limit. A SurrealDB server
/// needs the same setting: `--planner-strategy compute-only` (docs/operations.md).
pub(super) fn capabilities() -> Capabilities {
    Capabilities::default().with_planner_strategy(PlannerStrategy::ComputeOnly)
}

/// Opens the embedded datastore at `url` (`rocksdb://` or `surrealkv://`) with `memory`'s
/// bounds, as the SDK's own local engine does (version check, bootstrap, then maintenance
/// tasks).
pub(super) async fn open_embedded(
    url: &DatabaseUrl,
    memory: &StoreMemory,
) -> Result<Connection, String> {
    let config = engine_settings(url, memory)
        .into_iter()
        .fold(ConfigMap::empty(), |config, (key, value)| {
            config.with_key_value(key, value)
        });
    if matches!(url, DatabaseUrl::RocksDb(_)) {
        compactions_yield_to_requests()?;
    }
    let datastore: Arc<Datastore> = Datastore::builder()
        .with_config(config)
        .with_auth(false)
        .with_capabilities(capabilities().into())
        .without_maintenance_tasks()
        .build_with_path(&url.endpoint())
        .await
        .map_err(|error| error.to_string())?;
    datastore
        .check_version()
        .await
        .map_err(|error| error.to_string())?;
    datastore
        .bootstrap()
        .await
        .map_err(|error| error.to_string())?;
    datastore.start_maintenance_tasks();
    let db = Surreal::<Db>::unstable_from_datastore(Arc::clone(&datastore), None)
        .await
        .map_err(|error| error.to_string())?;
    Ok(Connection::Local(db, datastore))
}

/// Runs RocksDB's compactions (its low-priority thread pool, process-wide) at the lowest CPU
/// priority (nice 19). After a bulk load they take a whole core for minutes, and on a small
/// machine requests then wait behind them; flushes (the high-priority pool) keep their priority,
/// so writes are not held back.
fn compactions_yield_to_requests() -> Result<(), String> {
    let mut env = rocksdb::Env::new().map_err(|error| error.to_string())?;
    env.lower_thread_pool_cpu_priority();
    Ok(())
}

/// The settings this service opens an embedded datastore at `url` with, as SurrealDB's
/// configuration keys and values: its memory bounds, then its write path. Public so that
/// benches can open bare SurrealDB on the same terms.
pub fn engine_settings(url: &DatabaseUrl, memory: &StoreMemory) -> Vec<(&'static str, String)> {
    let mut settings = memory_bounds(url, memory);
    settings.extend(write_path_settings());
    settings
}

/// The engine's settings that bound its memory: the block cache, and the write buffers.
fn memory_bounds(url: &DatabaseUrl, memory: &StoreMemory) -> Vec<(&'static str, String)> {
    let cache = memory.block_cache_bytes.to_string();
    let buffer = memory.memtable_bytes.to_string();
    match url {
        DatabaseUrl::RocksDb(_) => vec![
            ("rocksdb_block_cache_size", cache),
            ("rocksdb_write_buffer_size", buffer),
            ("rocksdb_max_write_buffer_number", "2".to_owned()),
        ],
        _ => vec![
            ("surrealkv_block_cache_capacity", cache),
            ("surrealkv_max_memtable_size", buffer),
        ],
    }
}

/// SurrealDB marks every RocksDB file with a run of deletions for compaction (500-key
/// window, 25 deletions, or half of a file). This service deletes each change-log entry once
/// the index applied it, so every flushed file qualifies, and at 1M contacts each mark makes
/// a lower level rewrite 70-120 MB it shares a key range with, a core for 5-7 s every
/// memtable flush (BENCHMARKS, issue #12). Off here; the scans that start below deleted
/// entries seek past them instead (the indexer's sweep starts at its floor).
fn write_path_settings() -> [(&'static str, String); 2] {
    [
        ("rocksdb_deletion_factory_window_size", "0".to_owned()),
        ("rocksdb_deletion_factory_ratio", "0".to_owned()),
    ]
}

/// Shuts `datastore` down although something still holds it, saying so.
async fn shut_down_in_use(datastore: &Datastore) {
    tracing::warn!("the embedded store is still in use; shutting it down anyway");
    if let Err(error) = datastore.shutdown().await {
        tracing::warn!(%error, "the embedded store did not shut down cleanly");
    }
}

impl Connection {
    /// A query to run, with parameters bound by [`StoreQuery::bind`].
    pub(super) fn query(&self, text: impl Into<String>) -> StoreQuery<'_> {
        let text = text.into();
        match self {
            Self::Any(db, deadline) => StoreQuery::Any(db.query(text), *deadline),
            Self::Local(db, _) => StoreQuery::Local(db.query(text)),
        }
    }

    /// The record `id`, if it exists.
    pub(super) async fn select<R>(&self, id: RecordId) -> surrealdb::Result<Option<R>>
    where
        R: SurrealValue,
    {
        match self {
            Self::Any(db, deadline) => within(*deadline, db.select(id)).await,
            Self::Local(db, _) => db.select(id).await,
        }
    }

    /// Closes the handle. For an embedded datastore, dropping the last handle makes the SDK's
    /// session task shut the datastore down (tasks stopped, storage flushed and closed); this
    /// waits, bounded, until that task has let go of it, so that the storage engine is closed
    /// inside the runtime rather than dropped with it. Clones of the store share the
    /// connection: for an embedded datastore, this first waits (bounded) until they are gone.
    pub(super) async fn close(self: Arc<Self>) {
        let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
        let mut shared = self;
        let connection = loop {
            let Self::Local(_, datastore) = &*shared else {
                // A remote or in-memory connection has nothing to shut down.
                return;
            };
            if std::time::Instant::now() >= deadline {
                shut_down_in_use(datastore).await;
                return;
            }
            match Arc::try_unwrap(shared) {
                Ok(connection) => break connection,
                Err(still_shared) => {
                    shared = still_shared;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        if let Self::Local(db, datastore) = connection {
            drop(db);
            let deadline = std::time::Instant::now() + SHUTDOWN_WAIT;
            while Arc::strong_count(&datastore) > 1 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            if Arc::strong_count(&datastore) > 1 {
                shut_down_in_use(&datastore).await;
            }
        }
    }

    /// Writes the selected database (definitions and records) to `path` as SurrealQL.
    pub(super) async fn export_to(&self, path: &std::path::Path) -> surrealdb::Result<()> {
        match self {
            Self::Any(db, _) => db.export(path).await,
            Self::Local(db, _) => db.export(path).await,
        }
    }

    /// Runs the SurrealQL file at `path` (an export) against the selected database.
    pub(super) async fn import_from(&self, path: &std::path::Path) -> surrealdb::Result<()> {
        match self {
            Self::Any(db, _) => db.import(path).await,
            Self::Local(db, _) => db.import(path).await,
        }
    }

    /// Selects the namespace and database every statement runs in.
    pub(super) async fn use_database(
        &self,
        namespace: &str,
        database: &str,
    ) -> surrealdb::Result<()> {
        match self {
            Self::Any(db, _) => db.use_ns(namespace).use_db(database).await.map(|_| ()),
            Self::Local(db, _) => db.use_ns(namespace).use_db(database).await.map(|_| ()),
        }
    }
}

/// A query being built on either kind of connection.
pub(super) enum StoreQuery<'a> {
    Any(Query<'a, Any>, Option<Duration>),
    Local(Query<'a, Db>),
}

/// `call`, failing as a connection error when it takes longer than `deadline`. The SDK holds a
/// call while it reconnects to a server that went away (every second, for as long as it takes);
/// this bounds what a request waits for it.
async fn within<T>(
    deadline: Option<Duration>,
    call: impl IntoFuture<Output = surrealdb::Result<T>>,
) -> surrealdb::Result<T> {
    let Some(deadline) = deadline else {
        return call.await;
    };
    match tokio::time::timeout(deadline, call.into_future()).await {
        Ok(answer) => answer,
        Err(_) => Err(surrealdb::Error::connection(
            format!(
                "the SurrealDB server did not answer within {} ms",
                deadline.as_millis()
            ),
            surrealdb::types::ConnectionError::ConnectionFailed,
        )),
    }
}

impl StoreQuery<'_> {
    /// Binds the parameter `name` to `value`. The SDK's own tuple form goes through an array
    /// of the key and the value and clones the value once more on the way (a batch of 500
    /// contacts deep-copied per write); a one-entry object is taken as it is.
    pub(super) fn bind(self, (name, value): (impl Into<String>, impl SurrealValue)) -> Self {
        let mut object = Object::new();
        object.insert(name, value);
        let variables = Value::Object(object);
        match self {
            Self::Any(query, deadline) => Self::Any(query.bind(variables), deadline),
            Self::Local(query) => Self::Local(query.bind(variables)),
        }
    }
}

impl<'a> IntoFuture for StoreQuery<'a> {
    type Output = surrealdb::Result<IndexedResults>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        match self {
            Self::Any(query, deadline) => Box::pin(within(deadline, query)),
            Self::Local(query) => Box::pin(query.into_future()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{DatabaseUrl, StoreSettings};
    use crate::store::Store;

    /// Both embedded datastores, and `mem://`, stop a page of a record-id range at its limit.
    #[tokio::test]
    async fn the_stores_this_service_opens_stop_range_pages_at_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        for url in [
            DatabaseUrl::Memory,
            DatabaseUrl::RocksDb(dir.path().join("rocksdb")),
            DatabaseUrl::SurrealKv(dir.path().join("surrealkv")),
        ] {
            let store = Store::connect(&StoreSettings::new(url.clone()))
                .await
                .unwrap();
            assert!(
                store.range_pages_stop_at_their_limit().await.unwrap(),
                "{url:?}"
            );
            store.close().await;
        }
    }
}
