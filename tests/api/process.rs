//! The real binary: configured by environment, stopped by SIGTERM, restarted on the same data.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use crate::helpers::{ADMIN_KEY, client_with_key};

/// A `qwry-contacts` process listening on a free loopback port.
pub struct Service {
    child: Child,
    pub base: String,
}

impl Service {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[], Stdio::inherit()).await
    }

    /// The binary on `data_dir` with `extra` environment variables, its stderr to `stderr`.
    pub async fn start_with(data_dir: &Path, extra: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .env("ADMIN_API_KEY", ADMIN_KEY)
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("binary starts");
        let service = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        service.wait_until_ready().await;
        service
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(format!("{}/readyz", self.base)).await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("service did not become ready within 30 s");
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables });
        let client = client_with_key(ADMIN_KEY);
        let response = client
            .post(format!("{}/graphql", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    /// Every contact, streamed by the export endpoint.
    pub async fn export(&self) -> Vec<Value> {
        let text = client_with_key(ADMIN_KEY)
            .get(format!("{}/v1/contacts/export", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(self) {
        self.terminate_within(Duration::from_secs(30));
    }

    /// Sends SIGTERM and waits, at most `patience`, for a clean exit.
    pub fn terminate_within(mut self, patience: Duration) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + patience;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                assert!(exit.success(), "service exited with {exit} after SIGTERM");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "service ignored SIGTERM for {patience:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Service {
    /// Kills the process with SIGKILL, as a crash or an OOM killer would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Service {
    /// A failed assertion must not leave the process running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_stops_gracefully_and_data_survives_the_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let service = Service::start(data_dir.path()).await;
    let upsert = "mutation { upsertContact(input: { externalId: \"u1\", name: \"Ada\" }) { contact { id name } } }";
    let written =
        service.graphql(upsert, json!({})).await["data"]["upsertContact"]["contact"].clone();
    assert_eq!(written["name"], "Ada");
    service.terminate();
    assert!(
        data_dir.path().join("rocksdb").exists(),
        "the default store lives under DATA_DIR"
    );

    let restarted = Service::start(data_dir.path()).await;
    let read = restarted
        .graphql("{ contact(externalId: \"u1\") { id name } }", json!({}))
        .await;
    assert_eq!(read["data"]["contact"], written);
    restarted.terminate();
}

#[test]
fn segment_check_prints_the_canonical_form_or_the_problems() {
    let data_dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir.path())
            .args(["segment", "check"])
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["--syntax-only", "PLAN = 'pro' AND ltv>=1"]);
    assert!(ok.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "PLAN = \"pro\" and ltv >= 1\n"
    );

    let bad = run(&["--syntax-only", "plan = "]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 | plan = \n  |        ^"));

    // Against the (empty) store: the attribute is unknown.
    let unknown = run(&["plan = 'pro'"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("error: unknown attribute `plan`"));
    let builtin = run(&["email ends_with '@acme.io'"]);
    assert!(
        builtin.status.success(),
        "{}",
        String::from_utf8_lossy(&builtin.stderr)
    );
}

/// Commands that open the embedded store while the service runs on it say so, and how to go
/// on, instead of RocksDB's lock error; they change nothing.
#[tokio::test]
async fn commands_on_a_store_the_service_holds_say_it_is_in_use() {
    let data_dir = tempfile::tempdir().unwrap();
    let service = Service::start(data_dir.path()).await;
    for args in [&["keys", "list"][..], &["check"], &["export"]] {
        let run = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!run.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("is in use by another process") && stderr.contains("--database-url"),
            "{args:?}: {stderr}"
        );
    }
    let alive = service
        .graphql("{ contacts { totalCount } }", json!({}))
        .await;
    assert_eq!(alive["data"]["contacts"]["totalCount"], 0);
    service.terminate();
}

/// The binary on a store written by the release before schema versions (the fixture of
/// `scripts/make-store-fixture.sh`) migrates it at start: identities read from their contacts,
/// the fixture's merge undone with its identities going back, and a restart finds it current.
#[tokio::test]
async fn a_store_of_the_previous_release_is_migrated_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let archive = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-schema-1.tar.gz"
    );
    let unpacked = Command::new("tar")
        .args(["-xzf", archive, "-C"])
        .arg(data_dir.path())
        .status()
        .unwrap();
    assert!(unpacked.success());
    let service = Service::start(data_dir.path()).await;
    let ada = service
        .graphql(
            "{ contact(externalId: \"u1\") { id identities { nodes { kind value } } } }",
            json!({}),
        )
        .await;
    let identities: Vec<String> = ada["data"]["contact"]["identities"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{ada}"))
        .iter()
        .map(|identity| {
            format!(
                "{}:{}",
                identity["kind"].as_str().unwrap(),
                identity["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        identities,
        [
            "ANONYMOUS_ID:visitor-1",
            "EMAIL:ada@example.com",
            "EMAIL:cy@example.com",
            "EXTERNAL_ID:u1"
        ]
    );
    let id = ada["data"]["contact"]["id"].as_str().unwrap().to_owned();
    let history = service
        .graphql(
            "query($id: ID!) { contactHistory(id: $id) { nodes { id } } }",
            json!({ "id": id }),
        )
        .await;
    let merge = history["data"]["contactHistory"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{history}"))
        .to_owned();
    let undone = service
        .graphql(
            "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
            json!({ "m": merge }),
        )
        .await;
    assert!(undone["errors"].is_null(), "{undone}");
    service.terminate();

    let restarted = Service::start(data_dir.path()).await;
    let visitor = restarted
        .graphql(
            "{ contact(identity: { kind: ANONYMOUS_ID, value: \"visitor-1\" }) { id identities { nodes { kind value } } } ada: contact(externalId: \"u1\") { identities { nodes { value } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        visitor["data"]["contact"]["identities"]["nodes"],
        json!([
            { "kind": "ANONYMOUS_ID", "value": "visitor-1" },
            { "kind": "EMAIL", "value": "cy@example.com" }
        ]),
        "{visitor}"
    );
    assert_eq!(
        visitor["data"]["ada"]["identities"]["nodes"],
        json!([{ "value": "ada@example.com" }, { "value": "u1" }]),
        "{visitor}"
    );
    restarted.terminate();
}

/// `import FILE` on the store itself reports rows and rows/s, then waits for the segment
/// index and says how many of the written rows it has applied; the contacts are then there
/// for the service.
#[tokio::test]
async fn a_local_import_shows_rows_and_waits_for_the_index() {
    let data_dir = tempfile::tempdir().unwrap();
    let file = data_dir.path().join("contacts.ndjson");
    std::fs::write(
        &file,
        "{\"externalId\":\"u1\",\"email\":\"ada@example.com\"}\n{\"externalId\":\"u2\"}\n{\"externalId\":\"u3\",\"email\":\"nope\"}\n",
    )
    .unwrap();
    let imported = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .args(["import", file.to_str().unwrap()])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&imported.stdout);
    let errors = String::from_utf8_lossy(&imported.stderr);
    assert_eq!(imported.status.code(), Some(2), "{printed} {errors}");
    assert!(
        printed.contains("3 rows: 2 created, 0 updated, 0 unchanged, 1 failed"),
        "{printed}"
    );
    let phases: Vec<&str> = errors
        .lines()
        .filter(|line| line.starts_with("imported ") || line.starts_with("indexed "))
        .collect();
    assert_eq!(phases.len(), 2, "{errors}");
    assert!(
        phases[0].starts_with("imported 3 rows in ") && phases[0].ends_with(" rows/s)"),
        "{errors}"
    );
    assert!(phases[1].starts_with("indexed 2 of 2 rows in "), "{errors}");

    let service = Service::start(data_dir.path()).await;
    let total = service
        .graphql("{ contacts { totalCount } }", json!({}))
        .await;
    assert_eq!(total["data"]["contacts"]["totalCount"], 2, "{total}");
    service.terminate();
}

/// `import` and `export` with `--url` and `--api-key` work through the running service while
/// it holds the embedded store.
#[tokio::test]
async fn import_and_export_work_through_the_running_service() {
    let data_dir = tempfile::tempdir().unwrap();
    let service = Service::start(data_dir.path()).await;
    let file = data_dir.path().join("contacts.ndjson");
    std::fs::write(
        &file,
        "{\"externalId\":\"u1\",\"email\":\"ada@example.com\"}\n{\"externalId\":\"u2\"}\n{\"externalId\":\"u3\",\"email\":\"nope\"}\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir.path())
            .args(args)
            .args(["--url", &service.base, "--api-key", ADMIN_KEY])
            .output()
            .unwrap()
    };
    let imported = cli(&["import", file.to_str().unwrap()]);
    let printed = String::from_utf8_lossy(&imported.stdout);
    let errors = String::from_utf8_lossy(&imported.stderr);
    assert_eq!(
        imported.status.code(),
        Some(2),
        "a row failed: {printed} {errors}"
    );
    assert!(
        printed.contains("3 rows: 2 created, 0 updated, 0 unchanged, 1 failed"),
        "{printed}"
    );
    assert!(errors.contains("line 3: INVALID_INPUT"), "{errors}");
    assert!(errors.contains("imported 3 rows in "), "{errors}");
    assert!(errors.contains("indexed 2 of 2 rows in "), "{errors}");
    // Counts come from the index, which follows the store within moments.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let total = service
            .graphql("{ contacts { totalCount } }", json!({}))
            .await;
        if total["data"]["contacts"]["totalCount"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the imported contacts: {total}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let exported = cli(&["export", "--segment", "email exists"]);
    assert!(exported.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&exported.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["externalId"], "u1");

    let refused = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .args([
            "export",
            "--url",
            &service.base,
            "--api-key",
            "wrong-key-0123456789abcdef",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("UNAUTHENTICATED"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    service.terminate();
}

/// `backup` then `restore` into an empty store gives back the same answers: contacts with
/// their identities, merges and sealed attributes, the registry, saved segments (and their
/// members, from the rebuilt index) and keys. A restore into a store with data is refused.
#[tokio::test]
async fn backup_and_restore_round_trip() {
    let cli = |data_dir: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let snapshot = "{ attributes { name type sensitive } segments { nodes { slug text count } } \
        contacts(first: 10, consistency: LATEST) { totalCount nodes { id externalId email attributes \
        identities { nodes { kind value provenance } } mergedFrom } } apiKeys { nodes { id name grantedScopes revokedAt } } }";
    let source = tempfile::tempdir().unwrap();
    let service = Service::start(source.path()).await;
    for step in [
        "mutation { defineAttribute(input: {name: \"plan\", type: STRING}) { attribute { name } } }",
        "mutation { defineAttribute(input: {name: \"tax_id\", type: STRING, sensitive: true}) { attribute { name } } }",
        "mutation { upsertContact(input: {externalId: \"u1\", email: \"ada@example.com\", attributes: {plan: \"pro\", tax_id: \"DE-123\"}}) { contact { id } } }",
        "mutation { trackVisitor(input: {anonymousId: \"visitor-2\", attributes: {plan: \"free\"}}) { contact { id } } }",
        "mutation { upsertSegment(input: {slug: \"pro\", name: \"Pro\", text: \"plan = \\\"pro\\\"\"}) { segment { slug } } }",
        "mutation { createApiKey(input: {name: \"router\", scopes: [\"segments:read\"]}) { apiKey { id } } }",
    ] {
        let done = service.graphql(step, json!({})).await;
        assert!(done.get("errors").is_none(), "{done}");
    }
    let ids = service
        .graphql(
            "{ a: contact(externalId: \"u1\") { id } b: contact(identity: {kind: ANONYMOUS_ID, value: \"visitor-2\"}) { id } }",
            json!({}),
        )
        .await;
    let merged = service
        .graphql(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": ids["data"]["a"]["id"], "a": ids["data"]["b"]["id"] }),
        )
        .await;
    assert!(merged.get("errors").is_none(), "{merged}");
    // Counts are read from the index: both sides first wait until it holds every write.
    let sync = "{ contacts(first: 0, consistency: LATEST) { totalCount } }";
    service.graphql(sync, json!({})).await;
    let before = service.graphql(snapshot, json!({})).await;
    assert!(before.get("errors").is_none(), "{before}");
    service.terminate();

    let file = source.path().join("backup.surql");
    let backup = cli(source.path(), &["backup", file.to_str().unwrap()]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        !written.contains("DE-123"),
        "sensitive values stay sealed in the backup"
    );

    let target = tempfile::tempdir().unwrap();
    std::fs::copy(
        source.path().join("encryption.key"),
        target.path().join("encryption.key"),
    )
    .unwrap();
    let restore = cli(target.path(), &["restore", file.to_str().unwrap()]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let again = cli(target.path(), &["restore", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("refusing to restore into a store that holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let restored = Service::start(target.path()).await;
    // Counts are served by the index once it holds every change (as after any start).
    restored
        .graphql(
            "{ contacts(first: 0, consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    let after = restored.graphql(snapshot, json!({})).await;
    assert_eq!(after, before);
    assert_eq!(before["data"]["segments"]["nodes"][0]["count"], 1);
    let contacts = before["data"]["contacts"]["nodes"].to_string();
    assert!(contacts.contains("DE-123"), "{contacts}");
    restored.terminate();
}

/// `backup` and `restore` against a SurrealDB server (`DATABASE_URL=ws://…`; SurrealDB's export
/// and import go over HTTP to the same address): a restore into another database answers as the
/// original did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_work_against_a_surrealdb_server() {
    let source = crate::test_store::server_database();
    let dir = tempfile::tempdir().unwrap();
    let app = crate::helpers::TestApp::spawn_on(source.clone(), dir.path().join("a")).await;
    app.define_attribute("plan", "STRING").await;
    app.upsert(json!({ "externalId": "u1", "attributes": { "plan": "pro" } }))
        .await;
    app.upsert(json!({ "externalId": "u2", "attributes": { "plan": "free" } }))
        .await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    let question = "{ contacts(first: 10) { totalCount edges { node { externalId attributes } } } segment(slug: \"pros\") { count } attributes { name type } }";
    let answer = app.latest(question).await;
    app.stop().await;

    let file = dir.path().join("backup.surql");
    let target = crate::test_store::server_database();
    let cli = |database: &str, data_dir: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", dir.path().join(data_dir))
            .env("DATABASE_URL", source.url.endpoint())
            .env("SURREAL_USER", "root")
            .env("SURREAL_PASS", "root")
            .env("SURREAL_DB", database)
            .env("RUST_LOG", "warn")
            .args(args)
            .output()
            .unwrap()
    };
    let backup = cli(&source.database, "a", &["backup", file.to_str().unwrap()]);
    assert!(backup.status.success(), "{backup:?}");
    let restore = cli(&target.database, "b", &["restore", file.to_str().unwrap()]);
    assert!(restore.status.success(), "{restore:?}");
    let again = cli(&target.database, "b", &["restore", file.to_str().unwrap()]);
    assert!(!again.status.success(), "a store with data is refused");

    let restored = crate::helpers::TestApp::spawn_on(target, dir.path().join("b")).await;
    assert_eq!(restored.latest(question).await, answer);
    restored.stop().await;
}

/// Over a SurrealDB server the commands work beside a running service (with a DATA_DIR of
/// their own for the index); sharing the service's DATA_DIR, they say the index is in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_against_a_server_work_beside_the_running_service() {
    let store = crate::test_store::server_database();
    let url = store.url.endpoint();
    let remote = [
        ("DATABASE_URL", url.as_str()),
        ("SURREAL_USER", "root"),
        ("SURREAL_PASS", "root"),
        ("SURREAL_DB", store.database.as_str()),
    ];
    let service_dir = tempfile::tempdir().unwrap();
    let service = Service::start_with(service_dir.path(), &remote, Stdio::inherit()).await;
    let own_dir = tempfile::tempdir().unwrap();
    let run = |data_dir: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", data_dir)
            .env("RUST_LOG", "error")
            .envs(remote)
            .args(args)
            .output()
            .unwrap()
    };
    let keys = run(own_dir.path(), &["keys", "list"]);
    assert!(keys.status.success(), "{keys:?}");
    assert!(String::from_utf8_lossy(&keys.stdout).contains("ADMIN_API_KEY"));
    let check = run(own_dir.path(), &["check"]);
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("store and index agree"));
    let shared = run(service_dir.path(), &["check"]);
    assert!(!shared.status.success());
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(stderr.contains("is in use by another process"), "{stderr}");
    service.terminate();
}

/// Starts the binary in production mode listening on `listen` (a port of 127.0.0.1 reachable
/// either way), waits until it is ready, stops it and returns what it logged.
/// A SurrealDB server on its default (streaming) planner reads a whole record-id range for each
/// page: the service names the setting to change when it connects; on the setting
/// docs/operations.md asks for, it says nothing.
#[test]
fn a_server_that_reads_whole_ranges_per_page_is_named_at_connect() {
    let bind = format!("127.0.0.1:{}", crate::test_store::free_port());
    let mut server = crate::test_store::start_server_planned(&bind, "best-effort", &["memory"]);
    let check_on = |url: &str| {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("DATA_DIR", dir.path())
            .env("RUST_LOG", "warn")
            .env("DATABASE_URL", url)
            .env("SURREAL_USER", "root")
            .env("SURREAL_PASS", "root")
            .arg("check")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let streaming = check_on(&format!("ws://{bind}"));
    assert!(
        streaming.contains("--planner-strategy compute-only"),
        "{streaming}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let compute = check_on(&crate::test_store::TestServer::shared().url);
    assert!(!compute.contains("planner-strategy"), "{compute}");
}

async fn production_log(listen_ip: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .env("LISTEN_ADDR", format!("{listen_ip}:{port}"))
        .env("DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .env("MODE", "production")
        .env(
            "ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && response.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "service did not become ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn production_on_plain_http_beyond_loopback_warns_loudly() {
    let exposed = production_log("0.0.0.0").await;
    assert!(exposed.contains("PLAIN HTTP"), "{exposed}");
    assert!(exposed.contains("TLS_CERT_FILE"), "{exposed}");
    let local = production_log("127.0.0.1").await;
    assert!(!local.contains("PLAIN HTTP"), "loopback only: {local}");
}
