//! Which store the black-box tests run on. `QWRY_TEST_STORE=server` runs them against a real
//! SurrealDB server (the workspace's `surreal-test-server`, started once per test process on a
//! free port, in memory), each service in a database of its own over `ws://`; unset or
//! `embedded`, they run on the embedded store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qwry_contacts::config::{DatabaseUrl, StoreSettings};

/// The environment variable that picks the store.
pub const STORE_VARIABLE: &str = "QWRY_TEST_STORE";

/// Whether this test process runs against a SurrealDB server.
pub fn server_mode() -> bool {
    match std::env::var(STORE_VARIABLE).as_deref() {
        Err(_) | Ok("") | Ok("embedded") => false,
        Ok("server") => true,
        Ok(other) => panic!("{STORE_VARIABLE}={other}: use `embedded` or `server`"),
    }
}

/// A fresh, empty store: in memory, or a new database on the test server.
pub fn fresh_store() -> StoreSettings {
    if server_mode() {
        server_database()
    } else {
        StoreSettings::new(DatabaseUrl::Memory)
    }
}

/// A fresh store that outlives the service (for restarts): on disk under `dir`, or a new
/// database on the test server.
pub fn durable_store(dir: &Path) -> StoreSettings {
    if server_mode() {
        server_database()
    } else {
        StoreSettings::new(DatabaseUrl::RocksDb(dir.join("rocksdb")))
    }
}

/// A database of its own on the shared test server, as root.
pub fn server_database() -> StoreSettings {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = TestServer::shared();
    let mut store = StoreSettings::new(DatabaseUrl::parse(&server.url).unwrap());
    store.username = Some("root".to_owned());
    store.password = Some("root".into());
    store.database = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    store
}

/// A SurrealDB server process on 127.0.0.1.
pub struct TestServer {
    /// `ws://127.0.0.1:PORT`.
    pub url: String,
}

impl TestServer {
    /// The server this test process shares, started on first use. It dies with the process.
    pub fn shared() -> &'static TestServer {
        static SHARED: OnceLock<TestServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (started, receive) = std::sync::mpsc::channel();
            // The server is killed when the thread that started it ends (PR_SET_PDEATHSIG),
            // so it is started from a thread that lives as long as the process.
            std::thread::spawn(move || {
                let child = start_server(&["memory"]);
                started.send(child.1).unwrap();
                let _keep = child.0;
                loop {
                    std::thread::park();
                }
            });
            TestServer {
                url: receive.recv().expect("the test server starts"),
            }
        })
    }
}

/// Starts the test server with `storage` (`memory`, or `rocksdb://PATH` on disk) on a free port and
/// waits until it accepts connections; returns the process and its `ws://` URL.
pub fn start_server(storage: &[&str]) -> (Child, String) {
    let bind = format!("127.0.0.1:{}", free_port());
    let child = start_server_on(&bind, storage);
    (child, format!("ws://{bind}"))
}

/// Starts the test server with `storage` on `bind` (`127.0.0.1:PORT`; a restart reuses the
/// address) and waits until it accepts connections.
pub fn start_server_on(bind: &str, storage: &[&str]) -> Child {
    // As docs/operations.md asks of a server (SurrealDB 3.3.5 range scans and LIMIT).
    start_server_planned(bind, "compute-only", storage)
}

/// [`start_server_on`] with SurrealDB's `--planner-strategy` set to `planner`.
pub fn start_server_planned(bind: &str, planner: &str, storage: &[&str]) -> Child {
    let mut command = Command::new(server_binary());
    command
        .args(["start", "--bind", bind, "--user", "root", "--pass", "root"])
        .args(["--planner-strategy", planner])
        .args(["--log", "warn", "--no-banner"])
        .args(storage)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    die_with_parent(&mut command);
    let child = command.spawn().expect("the test server starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(bind).is_err() {
        assert!(
            Instant::now() < deadline,
            "the test server never listened on {bind}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Kills the child with SIGKILL when the thread that spawned it ends.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The `surreal-test-server` binary beside this test binary (`cargo test --workspace` builds
/// it), or `QWRY_SURREAL_SERVER`; built with cargo when missing.
fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("QWRY_SURREAL_SERVER") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/api-<hash> → target/<profile>/surreal-test-server
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let binary = profile_dir.join("surreal-test-server");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "surreal-test-server"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success() && binary.exists(),
            "could not build {}",
            binary.display()
        );
    }
    binary
}
