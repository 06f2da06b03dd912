//! The black-box suite against a real SurrealDB server over `ws://`: this test runs this same
//! test binary again with `QWRY_TEST_STORE=server`, so `cargo test` covers both stores.

use std::process::Command;

use crate::test_store::{STORE_VARIABLE, server_mode};

/// Areas that only make sense on the embedded store (its files, its process, its locks), that
/// do not depend on the store, or that start their own server databases.
const EMBEDDED_ONLY: &[&str] = &[
    "crash::",
    "instances::",
    "kill_loop::",
    "process::",
    "schema::",
    "server_mode::",
];

#[test]
fn the_suite_passes_against_a_surrealdb_server() {
    if server_mode() {
        return;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    // Backtraces would bury the panic messages the report below leads with.
    command
        .env(STORE_VARIABLE, "server")
        .env("RUST_BACKTRACE", "0");
    for area in EMBEDDED_ONLY {
        command.args(["--skip", area]);
    }
    let output = command.output().expect("the test binary runs again");
    let printed = String::from_utf8_lossy(&output.stdout);
    let summary = printed
        .lines()
        .rfind(|line| line.starts_with("test result:"))
        .unwrap_or("no summary")
        .to_owned();
    assert!(
        output.status.success(),
        "the suite failed against a SurrealDB server: {summary}\n{}\n{}",
        failure_reports(&printed).unwrap_or(&printed),
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = summary
        .split_whitespace()
        .skip_while(|word| *word != "ok.")
        .nth(1)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 80,
        "too few tests ran against the server: {summary}"
    );
    println!("against a SurrealDB server: {summary}");
}

/// The panic reports of the failed tests (the `---- name stdout ----` sections), without the
/// list of passing tests, so a truncated log still shows why.
fn failure_reports(printed: &str) -> Option<&str> {
    let reports = &printed[printed.find("\n---- ")?..];
    let end = reports.find("\nfailures:\n").unwrap_or(reports.len());
    Some(&reports[..end])
}
