//! Crash safety: a real process killed with SIGKILL in the middle of an import keeps every
//! acknowledged row, duplicates nothing, and its index converges to the store on restart.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{ADMIN_KEY, Service, client_with_key};

const ROWS: usize = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_import_loses_no_acknowledged_row_and_the_index_converges() {
    let data_dir = tempfile::tempdir().unwrap();
    let service = Service::start(data_dir.path()).await;
    service
        .graphql(
            "mutation { defineAttribute(input: { name: \"plan\", type: STRING }) { attribute { name } } }",
            json!({}),
        )
        .await;
    let rows: String = (0..ROWS)
        .map(|n| format!("{{\"externalId\":\"k{n:05}\",\"plan\":\"p{}\"}}\n", n % 7))
        .collect();
    let url = format!("{}/v1/contacts/import", service.base);
    let body = rows.clone();
    let upload =
        tokio::spawn(async move { client_with_key(ADMIN_KEY).post(url).body(body).send().await });

    // Wait until some batches are acknowledged, then kill the process mid-import.
    let deadline = Instant::now() + Duration::from_secs(60);
    let acknowledged = loop {
        let jobs = service
            .graphql("{ importJobs { processed created status } }", json!({}))
            .await;
        let job = &jobs["data"]["importJobs"][0];
        if job["created"].as_u64().unwrap_or(0) >= 2_000 {
            break job["created"].as_u64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the import never got going: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    service.kill();
    let _ = upload.await;
    assert!(acknowledged < ROWS as u64, "the kill must land mid-import");

    let restarted = Service::start(data_dir.path()).await;
    let lines = restarted.export().await;
    let ids: HashSet<&str> = lines
        .iter()
        .map(|l| l["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), lines.len(), "no external id twice");
    assert!(
        lines.len() as u64 >= acknowledged,
        "{} stored < {acknowledged} acknowledged",
        lines.len()
    );
    let query = "{ contacts(segment: \"external_id exists\", consistency: LATEST) { totalCount } }";
    let indexed = restarted.graphql(query, json!({})).await;
    assert_eq!(
        indexed["data"]["contacts"]["totalCount"],
        lines.len(),
        "the index caught up"
    );

    // Re-running the file completes it without duplicates.
    let report: Value = client_with_key(ADMIN_KEY)
        .post(format!("{}/v1/contacts/import", restarted.base))
        .body(rows)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["failed"], 0, "{report:#}");
    assert_eq!(
        report["created"].as_u64().unwrap() + report["unchanged"].as_u64().unwrap(),
        ROWS as u64
    );
    assert_eq!(restarted.export().await.len(), ROWS);
    restarted.terminate();

    // The check command agrees: store and index hold the same contacts.
    let check = Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
        .env_clear()
        .env("DATA_DIR", data_dir.path())
        .env("RUST_LOG", "warn")
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&format!("store: {ROWS} contacts; index: {ROWS} documents")),
        "{stdout}"
    );
}
