//! `import_throughput`: bulk import end to end into the embedded store (RocksDB on disk) and
//! the segment index, with the store's share and the index's share timed separately, against a
//! bare-SurrealDB baseline.
//!
//! Data: `benches/data` (seed 42, 20 custom attributes), written as NDJSON with an external id
//! per row; `QWRY_BENCH_CONTACTS` rows (default 100000). The baseline inserts those rows as bare
//! SurrealDB documents (one writer, then two; then two on a RocksDB opened with the service's
//! engine settings, whose memory is bounded where SurrealDB's defaults size it from the
//! machine's), and as the service's three documents per row
//! without the service (two writers), then reads each row's identity and contact back by key
//! (two readers, 500 rows a read: the least a re-import that changes nothing reads). The store
//! share is the import job (parse,
//! validate, batches of 1,000 rows with identities and the change log, each committed as one
//! transaction per core); the index share is the indexer replaying that change log into tantivy,
//! as the service does after a crash. The service's write path alone writes the same rows as
//! the import stores them (generated contacts, the file's external ids, sources `imported`)
//! through `WriteBatch` (same records, identities and change log) into a store of its own,
//! without the import job: it splits the store share into SurrealDB's cost of these records
//! and the job's. Then a re-import of the same file (nothing changes), and
//! the end-to-end run as the service does it: the indexer follows the import concurrently, and
//! the clock stops when the last row is searchable. Before each step after the baselines the
//! bench syncs the disk and pauses, so that no step pays for the writeback or the shutdown of
//! the one before. Each run prints wall time, rows/s and the process's CPU time per row; not a
//! criterion loop (one import of 1M rows takes minutes).
//! Run: `cargo bench --bench import_throughput` (add `QWRY_BENCH_CONTACTS=1000000` for 1M;
//! `RUST_LOG=qwry_contacts::service::indexer=debug` prints each indexer step;
//! `QWRY_BENCH_STEPS=shares,reimport` runs only the named steps of `baseline`, `shares`,
//! `write_path`, `reimport` (which needs `shares`) and `end_to_end`, e.g. to profile one).

#[allow(dead_code)]
mod data;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use surrealdb::Surreal;
use surrealdb_cnf::ConfigMap;
use surrealdb_core::kvs::Datastore;

use qwry_contacts::config::{DEFAULT_INDEX_COMMIT_DELAY, DatabaseUrl, StoreMemory, StoreSettings};
use qwry_contacts::domain::{
    AttributeName, AttributeType, Contact, ContactId, ExternalId, Identity, IdentityKey,
    IdentityKind, Provenance, WorkspaceId,
};
use qwry_contacts::index::SegmentIndex;
use qwry_contacts::service::indexer::{ChangeNotifier, Indexer};
use qwry_contacts::service::{
    AttributeService, Catalogs, ImportFormat, ImportOptions, ImportReport, ImportService, MatchBy,
    contact_json,
};
use qwry_contacts::store::{Store, WriteBatch, engine_settings};
use qwry_segment::FieldType;

fn attribute_type(field: FieldType) -> AttributeType {
    match field {
        FieldType::String => AttributeType::String,
        FieldType::Number => AttributeType::Number,
        FieldType::Bool => AttributeType::Bool,
        FieldType::Datetime => AttributeType::Datetime,
        FieldType::StringList => AttributeType::StringList,
    }
}

/// Wall time and the process's CPU time (all threads) since a start.
struct Clock {
    started: Instant,
    cpu: Duration,
}

impl Clock {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            cpu: process_cpu_time(),
        }
    }

    /// "12.3s (8130 rows/s), CPU 15.1s = 1.23 cores, 151 core-µs per row".
    fn report(&self, rows: usize) -> String {
        let wall = self.started.elapsed();
        let cpu = process_cpu_time().saturating_sub(self.cpu);
        format!(
            "{wall:.1?} ({:.0} rows/s), CPU {cpu:.1?} = {:.2} cores, {:.0} core-µs per row",
            rows as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / rows as f64,
        )
    }
}

/// User plus system CPU time of the whole process so far.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The service's allocator, so that the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As in the service: no transparent huge pages, and a subscriber whose filter turns trace
    // spans off (without one, SurrealDB formats every key it reads for spans nobody records).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    qwry_contacts::huge_pages::turn_off_transparent_huge_pages();
    let size: usize = std::env::var("QWRY_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let steps = std::env::var("QWRY_BENCH_STEPS").ok();
    let runs = |step: &str| {
        steps
            .as_deref()
            .is_none_or(|steps| steps.split(',').any(|s| s.trim() == step))
    };
    let workspace = WorkspaceId::parse("bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("contacts.ndjson");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for (n, contact) in data::contacts(&workspace, size, 42).iter().enumerate() {
            let mut line = contact_json(contact);
            let object = line.as_object_mut().unwrap();
            object.remove("id");
            object.insert("externalId".into(), format!("ext-{n:07}").into());
            serde_json::to_writer(&mut out, &line).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
    }
    let file_bytes = std::fs::metadata(&file).unwrap().len();
    eprintln!(
        "generated {size} rows, {:.1} MB of NDJSON",
        file_bytes as f64 / 1e6
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // 0. The baseline: the same rows as bare SurrealDB documents, no service in between,
        //    with one writer and with two writers in parallel (the machine's two cores).
        for writers in [1, 2].into_iter().filter(|_| runs("baseline")) {
            let db = bare_surrealdb(&dir.path().join(format!("bare-{writers}"))).await;
            let clock = Clock::start();
            bare_surrealdb_insert(&db, &file, writers, Documents::One).await;
            eprintln!(
                "baseline, bare SurrealDB with {writers} writer(s): {size} rows as one document each, {}",
                clock.report(size)
            );
        }
        // 0a. The same two writers on a RocksDB opened with the service's engine settings
        //     (its memory bounds: SurrealDB's own defaults size the block cache and write
        //     buffers from the machine's memory), so the store share compares on equal terms.
        if runs("baseline") {
            let db = bare_surrealdb_as_service(&dir.path().join("bare-bounded")).await;
            let clock = Clock::start();
            bare_surrealdb_insert(&db, &file, 2, Documents::One).await;
            eprintln!(
                "baseline, bare SurrealDB with 2 writer(s) and the service's engine settings: {size} rows as one document each, {}",
                clock.report(size)
            );
        }
        // 0b. The service's data model without the service: each row as its contact and its
        //     two identity records (external id, email), two writers.
        //     Then the least a re-import reads: each row's external-id identity and its
        //     contact, 500 rows per read, two readers, the values left undecoded.
        if runs("baseline") {
            let db = bare_surrealdb(&dir.path().join("bare-model")).await;
            let clock = Clock::start();
            bare_surrealdb_insert(&db, &file, 2, Documents::WithIdentities).await;
            eprintln!(
                "baseline, bare SurrealDB with 2 writer(s): {size} rows as the service's three documents each, {}",
                clock.report(size)
            );
            let clock = Clock::start();
            bare_surrealdb_reread(&db, &file, 2).await;
            eprintln!(
                "baseline, bare SurrealDB with 2 reader(s): {size} rows' identity and contact read back by key, {}",
                clock.report(size)
            );
        }

        // 1. The shares, one after the other: the import alone, then the indexer catching up.
        if runs("baseline") {
            settle().await;
        }
        let shares = if runs("shares") {
            let shares =
                Target::open(&dir.path().join("shares"), &workspace, Duration::ZERO).await;
            let clock = Clock::start();
            let report = shares.import(&workspace, &file).await;
            let store_share = clock.report(size);
            assert_eq!(report.created as usize, size, "{report:?}");
            let clock = Clock::start();
            let applied = shares.indexer.catch_up().await.unwrap();
            let index_share = clock.report(size);
            let status = shares.indexer.status(&workspace).await.unwrap();
            assert_eq!(status.documents as usize, size);
            eprintln!("store share of {size} rows: {store_share}");
            let sources = shares.indexer.state_sources();
            eprintln!(
                "index share ({applied} change-log entries; contact states from payloads {}, read back {}): {index_share}",
                sources.from_payload, sources.read_back
            );
            Some(shares)
        } else {
            None
        };

        // 1b. The service's own write path without the import job: the rows as contacts (the
        //     generator's, with the file's external ids and every value's source `imported`,
        //     as the import stores them) written into a fresh store through `WriteBatch` (the
        //     same records, identities and change-log entry), 500 per transaction, two
        //     writers; no parsing, validation or reads.
        if runs("write_path") {
            settle().await;
            let generated = generated_contacts(&workspace, size);
            let clock = Clock::start();
            write_batches_bare(&dir.path().join("write-path"), &workspace, generated).await;
            eprintln!(
                "the service's write path alone (WriteBatch, 2 writers): {size} rows, {}",
                clock.report(size)
            );
        }

        // 2. A re-import of the same file: every row unchanged, nothing written.
        if let Some(shares) = shares {
            if runs("reimport") {
                settle().await;
                let clock = Clock::start();
                let replay = shares.import(&workspace, &file).await;
                assert_eq!(replay.unchanged as usize, size);
                eprintln!(
                    "re-import of the same file (nothing changes): {}",
                    clock.report(size)
                );
            }
            shares.close().await;
        }

        // 3. End to end as the service runs it: the indexer follows the import concurrently;
        //    the clock stops when the last row is searchable.
        if runs("end_to_end") {
            settle().await;
            end_to_end(&dir.path().join("service"), &workspace, &file, size).await;
        }
    });
}

/// Lets what the steps before left running settle before the next step is timed: the
/// shutdowns of their dropped stores, and the writeback of what they wrote. The service commits
/// with fsync, so a step timed while gigabytes of an earlier step's dirty pages are still being
/// written back pays for them. Prints how long the sync took.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    // SAFETY: sync(2) takes no arguments and only schedules and waits for writeback.
    unsafe { libc::sync() };
    eprintln!(
        "settled before the next step: sync took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Imports `file` into a fresh service at `dir` while its indexer follows, and prints how long
/// until the last row was searchable.
async fn end_to_end(dir: &Path, workspace: &WorkspaceId, file: &Path, size: usize) {
    let service = Target::open(dir, workspace, DEFAULT_INDEX_COMMIT_DELAY).await;
    let (stop, stopped) = watch::channel(false);
    let follower = tokio::spawn(Arc::clone(&service.indexer).run(stopped));
    let clock = Clock::start();
    let report = service.import(workspace, file).await;
    let imported = clock.started.elapsed();
    assert_eq!(report.created as usize, size, "{report:?}");
    service.indexer.catch_up().await.unwrap();
    let searchable = clock.report(size);
    let _ = stop.send(true);
    follower.await.unwrap();
    assert_eq!(
        service.indexer.status(workspace).await.unwrap().documents as usize,
        size
    );
    let sources = service.indexer.state_sources();
    eprintln!(
        "end to end with the indexer following: all rows stored after {imported:.1?}, all searchable (contact states from payloads {}, read back {}): {searchable}",
        sources.from_payload, sources.read_back
    );
    service.close().await;
}

/// The bench's rows as the import makes them: the generator's contacts with the file's
/// external ids, every present value's source `imported`.
fn generated_contacts(workspace: &WorkspaceId, size: usize) -> Vec<Contact> {
    let mut contacts = data::contacts(workspace, size, 42);
    for (n, contact) in contacts.iter_mut().enumerate() {
        contact.fields.external_id = Some(ExternalId::parse(&format!("ext-{n:07}")).unwrap());
        contact.fill_sources(Provenance::Imported);
    }
    contacts
}

/// Writes `contacts` with their external id and email identities into a fresh store of its
/// own through [`WriteBatch`], 500 per transaction, on two writers.
async fn write_batches_bare(dir: &Path, workspace: &WorkspaceId, contacts: Vec<Contact>) {
    let settings = StoreSettings::new(DatabaseUrl::RocksDb(dir.join("rocksdb")));
    let store = Store::connect(&settings).await.unwrap();
    let mut lanes: [Vec<Vec<Contact>>; 2] = [Vec::new(), Vec::new()];
    let mut contacts = contacts.into_iter().peekable();
    let mut lane = 0;
    while contacts.peek().is_some() {
        lanes[lane % 2].push(contacts.by_ref().take(500).collect());
        lane += 1;
    }
    let writers: Vec<_> = lanes
        .into_iter()
        .map(|chunks| {
            let (store, workspace) = (store.clone(), workspace.clone());
            tokio::spawn(async move {
                for mut chunk in chunks {
                    let identities: Vec<(ContactId, Identity)> = chunk
                        .iter()
                        .flat_map(|contact| {
                            let fields = &contact.fields;
                            let keys =
                                [
                                    fields.external_id.as_ref().map(|id| {
                                        (IdentityKind::ExternalId, id.as_str().to_owned())
                                    }),
                                    fields.email.as_ref().map(|email| {
                                        (IdentityKind::Email, email.as_str().to_owned())
                                    }),
                                ];
                            keys.into_iter().flatten().map(|(kind, value)| {
                                let identity = Identity {
                                    key: IdentityKey::from_trusted(kind, value),
                                    provenance: Provenance::Imported,
                                    created_at: contact.created_at,
                                };
                                (contact.id, identity)
                            })
                        })
                        .collect();
                    let mut batch = WriteBatch::new(&workspace);
                    batch.create_contacts(&mut chunk, &identities);
                    store.commit(batch).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    store.close().await;
}

/// What a bare baseline writes per row.
#[derive(Clone, Copy)]
enum Documents {
    /// The row as one document, with a unique (workspace, external id) index.
    One,
    /// The row as the service's contact record (keyed by workspace and a ULID, listing its
    /// identities) and its `EXTERNAL_ID` and `EMAIL` identity records keyed by their value,
    /// which is what makes them unique; no contact index.
    WithIdentities,
}

/// Bare SurrealDB on a RocksDB store of its own at `dir`, as the SDK opens it (SurrealDB's
/// default engine settings).
async fn bare_surrealdb(dir: &Path) -> Surreal<surrealdb::engine::any::Any> {
    let db = surrealdb::engine::any::connect(format!("rocksdb://{}", dir.display()))
        .await
        .unwrap();
    db.use_ns("bench").use_db("bench").await.unwrap();
    db
}

/// Bare SurrealDB on a RocksDB store of its own at `dir`, opened with the engine settings the
/// service opens its store with ([`engine_settings`], default memory); nothing of the service.
async fn bare_surrealdb_as_service(dir: &Path) -> Surreal<surrealdb::engine::local::Db> {
    let url = DatabaseUrl::RocksDb(dir.to_path_buf());
    let config = engine_settings(&url, &StoreMemory::default())
        .into_iter()
        .fold(ConfigMap::empty(), |config, (key, value)| {
            config.with_key_value(key, value)
        });
    let datastore: Arc<Datastore> = Datastore::builder()
        .with_config(config)
        .with_auth(false)
        .without_maintenance_tasks()
        .build_with_path(&url.endpoint())
        .await
        .unwrap();
    datastore.check_version().await.unwrap();
    datastore.bootstrap().await.unwrap();
    datastore.start_maintenance_tasks();
    let db = Surreal::unstable_from_datastore(datastore, None)
        .await
        .unwrap();
    db.use_ns("bench").use_db("bench").await.unwrap();
    db
}

/// The store's ceiling for this data: each NDJSON row inserted as SurrealDB documents (see
/// [`Documents`]) into `db`, a store of its own, 500 rows per transaction; no reads, no
/// change log, no validation. `writers` tasks insert disjoint chunks in parallel.
async fn bare_surrealdb_insert<C: surrealdb::Connection>(
    db: &Surreal<C>,
    file: &Path,
    writers: usize,
    documents: Documents,
) {
    let schema = match documents {
        Documents::One => {
            "DEFINE TABLE contact SCHEMALESS; DEFINE INDEX contact_external_id ON contact FIELDS workspace, externalId UNIQUE;"
        }
        Documents::WithIdentities => {
            "DEFINE TABLE contact SCHEMALESS; DEFINE TABLE contact_identity SCHEMALESS;"
        }
    };
    db.query(schema).await.unwrap().check().unwrap();
    let work = {
        let db = db.clone();
        move |rows: Chunk| {
            let db = db.clone();
            async move {
                let query = match documents {
                    Documents::One => db
                        .query("INSERT INTO contact $rows RETURN NONE")
                        .bind(("rows", serde_json::Value::Array(rows))),
                    Documents::WithIdentities => {
                        let (rows, identities) = with_identities(rows);
                        db.query(
                            "BEGIN; INSERT INTO contact $rows RETURN NONE; \
                             INSERT INTO contact_identity $identities RETURN NONE; COMMIT;",
                        )
                        .bind(("rows", rows))
                        .bind(("identities", identities))
                    }
                };
                query.await.unwrap().check().unwrap();
            }
        }
    };
    let in_workspace = |mut row: serde_json::Value| {
        row.as_object_mut()
            .unwrap()
            .insert("workspace".into(), "bench".into());
        row
    };
    on_workers(file, writers, in_workspace, work).await;
}

/// Reads back, from a store written with [`Documents::WithIdentities`], each row of `file`'s
/// external-id identity record and then its contact record, 500 rows per read on `readers`
/// concurrent readers: the reads a re-import that changes nothing cannot do without.
async fn bare_surrealdb_reread(
    db: &Surreal<surrealdb::engine::any::Any>,
    file: &Path,
    readers: usize,
) {
    use surrealdb::types::{Array, RecordId, RecordIdKey};
    let key = |table: &str, parts: Vec<String>| {
        RecordId::new(table, RecordIdKey::Array(Array::from(parts)))
    };
    let db = db.clone();
    let work = move |rows: Chunk| {
        let db = db.clone();
        async move {
            let identities: Vec<RecordId> = rows
                .iter()
                .map(|row| {
                    let external_id = row["externalId"].as_str().unwrap().to_owned();
                    let parts = vec!["bench".into(), "EXTERNAL_ID".into(), external_id];
                    key("contact_identity", parts)
                })
                .collect();
            let mut held = db
                .query("SELECT VALUE contact FROM $ids")
                .bind(("ids", identities))
                .await
                .unwrap();
            let owners: Vec<String> = held.take(0).unwrap();
            let contacts: Vec<RecordId> = owners
                .into_iter()
                .map(|owner| key("contact", vec!["bench".into(), owner]))
                .collect();
            let mut read = db
                .query("SELECT * FROM $ids")
                .bind(("ids", contacts))
                .await
                .unwrap();
            let contacts: Vec<surrealdb::types::Value> = read.take(0).unwrap();
            assert_eq!(contacts.len(), rows.len());
        }
    };
    on_workers(file, readers, |row| row, work).await;
}

/// Hands `file`'s rows, each as `row` makes it, in chunks of 500 to `workers` concurrent tasks
/// that each run `work` on the chunks they take, and waits until they are done.
async fn on_workers<W, F>(
    file: &Path,
    workers: usize,
    row: impl Fn(serde_json::Value) -> serde_json::Value,
    work: W,
) where
    W: Fn(Chunk) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use std::io::BufRead;
    let (sender, receiver) = async_channel(workers);
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (receiver, work) = (Arc::clone(&receiver), work.clone());
            tokio::spawn(async move {
                loop {
                    let Some(rows) = receiver.lock().await.recv().await else {
                        return;
                    };
                    work(rows).await;
                }
            })
        })
        .collect();
    let lines = std::io::BufReader::new(std::fs::File::open(file).unwrap()).lines();
    let mut chunk = Vec::with_capacity(500);
    for line in lines {
        chunk.push(row(serde_json::from_str(&line.unwrap()).unwrap()));
        if chunk.len() == 500 {
            sender.send(std::mem::take(&mut chunk)).await.unwrap();
        }
    }
    if !chunk.is_empty() {
        sender.send(chunk).await.unwrap();
    }
    drop(sender);
    for task in tasks {
        task.await.unwrap();
    }
}

/// `rows` as contact records keyed by (workspace, ULID) listing their identities, and those
/// identities' records keyed by (workspace, kind, value).
fn with_identities(rows: Chunk) -> (serde_json::Value, serde_json::Value) {
    let mut contacts = Vec::with_capacity(rows.len());
    let mut identities = Vec::with_capacity(rows.len() * 2);
    for mut row in rows {
        let id = ulid::Ulid::new().to_string();
        let object = row.as_object_mut().unwrap();
        let mut listed = Vec::new();
        for (kind, field) in [("EXTERNAL_ID", "externalId"), ("EMAIL", "email")] {
            let Some(value) = object.get(field).and_then(|v| v.as_str()) else {
                continue;
            };
            let entry = serde_json::json!({
                "kind": kind, "value": value, "provenance": "IMPORT", "created_at": "2026-12-05T00:00:00Z"
            });
            identities.push(serde_json::json!({
                "id": ["bench", kind, value], "workspace": "bench", "kind": kind, "value": value,
                "contact": id, "provenance": "IMPORT", "created_at": "2026-12-05T00:00:00Z"
            }));
            listed.push(entry);
        }
        object.insert("id".into(), serde_json::json!(["bench", id]));
        object.insert("identities".into(), serde_json::Value::Array(listed));
        contacts.push(row);
    }
    (
        serde_json::Value::Array(contacts),
        serde_json::Value::Array(identities),
    )
}

type Chunk = Vec<serde_json::Value>;

/// A bounded channel whose receiver several writer tasks share.
fn async_channel(
    capacity: usize,
) -> (
    tokio::sync::mpsc::Sender<Chunk>,
    Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Chunk>>>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(capacity);
    (sender, Arc::new(tokio::sync::Mutex::new(receiver)))
}

/// A store and an index in a directory of their own, with the bench's attributes declared.
struct Target {
    store: Store,
    indexer: Arc<Indexer>,
    imports: ImportService,
}

impl Target {
    async fn open(dir: &Path, workspace: &WorkspaceId, commit_delay: Duration) -> Self {
        let settings = StoreSettings::new(DatabaseUrl::RocksDb(dir.join("rocksdb")));
        let store = Store::connect(&settings).await.unwrap();
        let catalogs = Catalogs::load(store.clone()).await.unwrap();
        let attributes = AttributeService::new(store.clone(), catalogs.clone());
        for (name, field) in data::ATTRIBUTES {
            let name = AttributeName::parse(name).unwrap();
            attributes
                .define(workspace, name, attribute_type(*field), None, None, false)
                .await
                .unwrap();
        }
        let index = Arc::new(SegmentIndex::open_in_dir(&dir.join("index")).unwrap());
        let notifier = ChangeNotifier::default();
        let indexer = Indexer::new(store.clone(), index, notifier.clone(), commit_delay).unwrap();
        indexer.ensure_built().await.unwrap();
        let imports = ImportService::new(store.clone(), catalogs, notifier);
        Self {
            store,
            indexer: Arc::new(indexer),
            imports,
        }
    }

    async fn import(&self, workspace: &WorkspaceId, file: &Path) -> ImportReport {
        let options = ImportOptions {
            format: ImportFormat::Ndjson,
            match_by: MatchBy::ExternalId,
            dry_run: false,
        };
        let job = self.imports.begin(workspace, options);
        let input = std::fs::File::open(file).unwrap();
        self.imports.run(workspace, &job, options, input).await
    }

    async fn close(self) {
        let Self {
            store,
            indexer,
            imports,
        } = self;
        drop(imports);
        drop(indexer);
        store.close().await;
    }
}
