//! The long crash check (`scripts/kill-loop.sh`, RELIABILITY.md): the real binary on one data
//! directory, killed with SIGKILL at a random moment while an import, upserts and merges run,
//! restarted, again and again. After every restart, whatever was acknowledged is there (each
//! upsert's value, at least the import rows reported committed, every merge), no external id
//! is held twice, and the index counts what the store holds; at the end `check` agrees.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::process::{ADMIN_KEY, Service, client_with_key};

/// Facts the service acknowledged, to be found after every crash.
#[derive(Default)]
struct Ledger {
    /// External id and the `plan` an acknowledged upsert wrote (each id written once).
    upserts: Vec<(String, String)>,
    /// Per iteration: the prefix of its import rows and how many were reported committed.
    imports: Vec<(String, u64)>,
    /// Iteration, survivor and absorbed id of every acknowledged merge.
    merges: Vec<(u64, String, String)>,
}

/// How often (in iterations) the whole store is exported and checked.
const EXPORT_EVERY: u64 = 10;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by scripts/kill-loop.sh (RELIABILITY.md)"]
async fn kill_loop_keeps_everything_acknowledged() {
    let iterations = env_number("QWRY_KILL_ITERATIONS", 5);
    let seed = env_number("QWRY_KILL_SEED", 7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // With QWRY_KILL_KEEP_DIR set, the data directory outlives a failure, for `check`.
    if std::env::var_os("QWRY_KILL_KEEP_DIR").is_some() {
        eprintln!("data directory: {}", dir.path().display());
    }
    let dir = KeptDir(Some(dir));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    let mut last_export = 0;
    for iteration in 0..iterations {
        let starting = Instant::now();
        let service = start(dir.path()).await;
        let start_took = starting.elapsed();
        if iteration == 0 {
            service
                .graphql(
                    "mutation { defineAttribute(input: { name: \"plan\", type: STRING }) { attribute { name } } }",
                    json!({}),
                )
                .await;
        }
        let verifying = Instant::now();
        // The whole store is exported (uniqueness, import rows, the index's count) every
        // EXPORT_EVERY iterations and at the end, covering the imports since the last time;
        // what one iteration acknowledged is checked one by one at every start.
        let export_from = (iteration % EXPORT_EVERY == 0).then_some(last_export);
        if export_from.is_some() {
            last_export = iteration.saturating_sub(1);
        }
        let contacts = verify(&service, &ledger, iteration.saturating_sub(1), export_from).await;
        let verify_took = verifying.elapsed();
        let workload = Workload::start(&service, iteration, &ledger);
        let delay = Duration::from_millis(rng.random_range(150..1_500));
        tokio::time::sleep(delay).await;
        service.kill();
        workload.stop().await;
        eprintln!(
            "iteration {iteration}: killed after {delay:?} ({:?} in all; start {start_took:?}, check of {contacts} contacts {verify_took:?})",
            started.elapsed()
        );
    }
    let service = start(dir.path()).await;
    verify(&service, &ledger, 0, Some(0)).await;
    let ledger = ledger.lock().unwrap();
    eprintln!(
        "{iterations} iterations: {} upserts, {} import rows, {} merges acknowledged and found",
        ledger.upserts.len(),
        ledger.imports.iter().map(|(_, rows)| rows).sum::<u64>(),
        ledger.merges.len()
    );
    service.terminate();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .env("DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The service on `dir`, without the per-key rate limit (the final check reads every fact).
async fn start(dir: &std::path::Path) -> Service {
    Service::start_with(
        dir,
        &[("RATE_LIMIT_PER_SECOND", "0")],
        std::process::Stdio::inherit(),
    )
    .await
}

/// The writers of one iteration, each recording what the service acknowledged.
struct Workload {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Workload {
    fn start(service: &Service, iteration: u64, ledger: &Arc<Mutex<Ledger>>) -> Self {
        let base = service.base.clone();
        let tasks = vec![
            tokio::spawn(import(base.clone(), iteration, Arc::clone(ledger))),
            tokio::spawn(upserts(base.clone(), iteration, Arc::clone(ledger))),
            tokio::spawn(merges(base, iteration, Arc::clone(ledger))),
        ];
        Self { tasks }
    }

    async fn stop(self) {
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn graphql(base: &str, query: &str, variables: Value) -> Option<Value> {
    let response = client_with_key(ADMIN_KEY)
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body.get("errors").is_none().then(|| body["data"].clone())
}

/// One import of 5,000 rows; the committed count is polled while it runs.
async fn import(base: String, iteration: u64, ledger: Arc<Mutex<Ledger>>) {
    let prefix = format!("i{iteration}-r");
    let rows: String = (0..5_000)
        .map(|n| {
            format!(
                "{{\"externalId\":\"{prefix}{n:05}\",\"plan\":\"p{}\"}}\n",
                n % 5
            )
        })
        .collect();
    let url = format!("{base}/v1/contacts/import");
    let upload =
        tokio::spawn(async move { client_with_key(ADMIN_KEY).post(url).body(rows).send().await });
    let slot = {
        let mut ledger = ledger.lock().unwrap();
        ledger.imports.push((prefix, 0));
        ledger.imports.len() - 1
    };
    loop {
        if let Some(data) = graphql(&base, "{ importJobs { created status } }", json!({})).await {
            let created = data["importJobs"][0]["created"].as_u64().unwrap_or(0);
            let mut ledger = ledger.lock().unwrap();
            let recorded = &mut ledger.imports[slot].1;
            *recorded = (*recorded).max(created);
        }
        if upload.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Upserts, one new external id each, until the process dies.
async fn upserts(base: String, iteration: u64, ledger: Arc<Mutex<Ledger>>) {
    let query =
        "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
    for n in 0.. {
        let external_id = format!("i{iteration}-u{n}");
        let plan = format!("v{n}");
        let input =
            json!({ "input": { "externalId": external_id, "attributes": { "plan": plan } } });
        if graphql(&base, query, input).await.is_some() {
            ledger.lock().unwrap().upserts.push((external_id, plan));
        }
    }
}

/// A visitor and a customer, then the visitor merged into the customer, over and over.
async fn merges(base: String, iteration: u64, ledger: Arc<Mutex<Ledger>>) {
    for n in 0.. {
        let customer = graphql(
            &base,
            "mutation($id: String!) { upsertContact(input: { externalId: $id }) { contact { id } } }",
            json!({ "id": format!("i{iteration}-m{n}") }),
        )
        .await;
        let visitor = graphql(
            &base,
            "mutation($id: String!) { trackVisitor(input: { anonymousId: $id }) { contact { id } } }",
            json!({ "id": format!("i{iteration}-v{n}") }),
        )
        .await;
        let (Some(customer), Some(visitor)) = (customer, visitor) else {
            continue;
        };
        let survivor = customer["upsertContact"]["contact"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let absorbed = visitor["trackVisitor"]["contact"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let merged = graphql(
            &base,
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": survivor, "a": absorbed }),
        )
        .await;
        if merged.is_some() {
            ledger
                .lock()
                .unwrap()
                .merges
                .push((iteration, survivor, absorbed));
        }
    }
}

/// Checks the upserts and merges the ledger holds from iteration `from` on and, with
/// `export_from`, exports the store to check that no external id is held twice, that the
/// imports since that iteration kept every row they reported, and that the index counts what
/// the store holds; returns how many contacts were exported (0 without).
async fn verify(
    service: &Service,
    ledger: &Arc<Mutex<Ledger>>,
    from: u64,
    export_from: Option<u64>,
) -> usize {
    let (upserts, imports, merges) = {
        let ledger = ledger.lock().unwrap();
        let since = |id: &str| since_iteration(id, from);
        (
            ledger
                .upserts
                .iter()
                .filter(|(id, _)| since(id))
                .cloned()
                .collect::<Vec<_>>(),
            ledger
                .imports
                .iter()
                .filter(|(prefix, _)| export_from.is_some_and(|from| since_iteration(prefix, from)))
                .cloned()
                .collect::<Vec<_>>(),
            ledger
                .merges
                .iter()
                .filter(|(iteration, ..)| *iteration >= from)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    for (external_id, plan) in &upserts {
        let found = service
            .graphql(
                "query($id: String!) { contact(externalId: $id) { attributes } }",
                json!({ "id": external_id }),
            )
            .await;
        assert_eq!(
            found["data"]["contact"]["attributes"]["plan"], *plan,
            "acknowledged upsert of `{external_id}` lost: {found}"
        );
    }
    for (_, survivor, absorbed) in &merges {
        let resolved = service
            .graphql(
                "query($id: ID!) { contact(id: $id) { id } }",
                json!({ "id": absorbed }),
            )
            .await;
        assert_eq!(
            resolved["data"]["contact"]["id"], *survivor,
            "acknowledged merge lost: {resolved}"
        );
    }
    if export_from.is_none() {
        return 0;
    }
    let exported = service.export().await;
    let external_ids: Vec<&str> = exported
        .iter()
        .filter_map(|contact| contact["externalId"].as_str())
        .collect();
    let unique: HashSet<&str> = external_ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        external_ids.len(),
        "an external id is held twice"
    );
    for (prefix, acknowledged) in &imports {
        let stored = unique
            .iter()
            .filter(|id| id.starts_with(prefix.as_str()))
            .count();
        assert!(
            stored as u64 >= *acknowledged,
            "{prefix}: {stored} rows stored < {acknowledged} reported committed"
        );
    }
    let indexed = service
        .graphql(
            "{ contacts(segment: \"created_at exists\", consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        indexed["data"]["contacts"]["totalCount"],
        exported.len(),
        "the index caught up with the store"
    );
    exported.len()
}

/// Whether the id or prefix `i<iteration>-…` was written in iteration `from` or later.
fn since_iteration(id: &str, from: u64) -> bool {
    id.strip_prefix('i')
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n >= from)
}

/// A temporary directory removed on drop, unless QWRY_KILL_KEEP_DIR asks to keep it.
struct KeptDir(Option<tempfile::TempDir>);

impl KeptDir {
    fn path(&self) -> &std::path::Path {
        self.0.as_ref().map(tempfile::TempDir::path).unwrap()
    }
}

impl Drop for KeptDir {
    fn drop(&mut self) {
        if std::env::var_os("QWRY_KILL_KEEP_DIR").is_some()
            && let Some(dir) = self.0.take()
        {
            let _ = dir.keep();
        }
    }
}
