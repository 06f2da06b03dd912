//! The server is built (this test is what makes `cargo test --workspace` build the binary the
//! service's server-mode tests start) and is the SDK's exact version.

use std::process::Command;

#[test]
fn the_server_reports_the_sdk_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_surreal-test-server"))
        .arg("version")
        .output()
        .expect("the test server runs");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "version failed: {output:?}");
    assert!(printed.contains("3.3.5"), "unexpected version: {printed}");
}
