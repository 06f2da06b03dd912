//! A SurrealDB server for tests: `surreal-test-server start --bind 127.0.0.1:PORT --user root
//! --pass root memory` (or `rocksdb://PATH`, `surrealkv://PATH`), the same command line as `surreal`.

// The server's request types nest deeply enough to overflow the default limit.
#![recursion_limit = "256"]

fn main() -> std::process::ExitCode {
    // In the workspace's build, jsonwebtoken has both of its crypto backends (SurrealDB asks
    // for aws-lc-rs, the service for RustCrypto), so it cannot pick one by itself: sign-in would
    // panic. SurrealDB's own choice is installed.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    surrealdb_server::init(surrealdb_server::core::CommunityComposer())
}
