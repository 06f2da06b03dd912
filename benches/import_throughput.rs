//! `import_throughput`: bulk import end to end into the embedded store (SurrealKV on disk) and
//! the segment index, with the store's share and the index's share timed separately.
//!
//! Data: `benches/data` (seed 42, 20 custom attributes), written as NDJSON with an external id
//! per row; `QWRY_BENCH_CONTACTS` rows (default 100000). The store share is the import job
//! (parse, validate, batched transactions of 500 rows with identities and the change log); the
//! index share is the indexer replaying that change log into tantivy, as the service does after
//! a crash. Then a re-import of the same file (nothing changes), and the end-to-end run as the
//! service does it: the indexer follows the import concurrently, and the clock stops when the
//! last row is searchable. Prints the figures; not a criterion loop (one import of 1M rows takes
//! minutes).
//! Run: `cargo bench --bench import_throughput` (add `QWRY_BENCH_CONTACTS=1000000` for 1M).

#[allow(dead_code)]
mod data;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use qwry_contacts::config::{DEFAULT_INDEX_COMMIT_DELAY, DatabaseUrl, StoreSettings};
use qwry_contacts::domain::{AttributeName, AttributeType, WorkspaceId};
use qwry_contacts::index::SegmentIndex;
use qwry_contacts::service::indexer::{ChangeNotifier, Indexer};
use qwry_contacts::service::{
    AttributeService, ImportFormat, ImportOptions, ImportReport, ImportService, MatchBy,
    contact_json,
};
use qwry_contacts::store::Store;
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

fn per_second(rows: usize, took: Duration) -> f64 {
    rows as f64 / took.as_secs_f64()
}

/// The service's allocator, so that the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // As in the service: a subscriber whose filter turns trace spans off (without one,
    // SurrealDB formats every key it reads for spans nobody records).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let size: usize = std::env::var("QWRY_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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
        // 1. The shares, one after the other: the import alone, then the indexer catching up.
        let shares = Target::open(&dir.path().join("shares"), &workspace, Duration::ZERO).await;
        let started = Instant::now();
        let report = shares.import(&workspace, &file).await;
        let store_share = started.elapsed();
        assert_eq!(report.created as usize, size, "{report:?}");
        let started = Instant::now();
        let applied = shares.indexer.catch_up().await.unwrap();
        let index_share = started.elapsed();
        let status = shares.indexer.status().await.unwrap();
        assert_eq!(status.documents as usize, size);
        eprintln!(
            "shares of {size} rows: store {:.1?} ({:.0} rows/s), index {:.1?} ({:.0} rows/s, {applied} change-log entries), sum {:.1?} ({:.0} rows/s)",
            store_share,
            per_second(size, store_share),
            index_share,
            per_second(size, index_share),
            store_share + index_share,
            per_second(size, store_share + index_share),
        );

        // 2. A re-import of the same file: every row unchanged, nothing written.
        let started = Instant::now();
        let replay = shares.import(&workspace, &file).await;
        let replay_time = started.elapsed();
        assert_eq!(replay.unchanged as usize, size);
        eprintln!(
            "re-import of the same file (nothing changes): {:.1?} ({:.0} rows/s)",
            replay_time,
            per_second(size, replay_time)
        );
        shares.close().await;

        // 3. End to end as the service runs it: the indexer follows the import concurrently;
        //    the clock stops when the last row is searchable.
        let service = Target::open(
            &dir.path().join("service"),
            &workspace,
            DEFAULT_INDEX_COMMIT_DELAY,
        )
        .await;
        let (stop, stopped) = watch::channel(false);
        let follower = tokio::spawn(Arc::clone(&service.indexer).run(stopped));
        let started = Instant::now();
        let report = service.import(&workspace, &file).await;
        let imported = started.elapsed();
        assert_eq!(report.created as usize, size, "{report:?}");
        service.indexer.catch_up().await.unwrap();
        let searchable = started.elapsed();
        let _ = stop.send(true);
        follower.await.unwrap();
        assert_eq!(
            service.indexer.status().await.unwrap().documents as usize,
            size
        );
        eprintln!(
            "end to end with the indexer following: all rows stored after {:.1?}, all searchable after {:.1?} ({:.0} rows/s)",
            imported,
            searchable,
            per_second(size, searchable),
        );
        service.close().await;
    });
}

/// A store and an index in a directory of their own, with the bench's attributes declared.
struct Target {
    store: Store,
    indexer: Arc<Indexer>,
    imports: ImportService,
}

impl Target {
    async fn open(dir: &Path, workspace: &WorkspaceId, commit_delay: Duration) -> Self {
        let settings = StoreSettings::new(DatabaseUrl::SurrealKv(dir.join("store")));
        let store = Store::connect(&settings).await.unwrap();
        let attributes = AttributeService::new(store.clone());
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
        let imports = ImportService::new(store.clone(), notifier);
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
