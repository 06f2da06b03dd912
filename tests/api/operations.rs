//! What operators rely on: metrics with the right names and counts, one access-log line per
//! request (JSON on request, no colour codes, never a key), a health check that needs no curl,
//! and production refusing unsafe configurations.

use std::process::{Command, Stdio};

use qwry_contacts::app::App;
use qwry_contacts::config::{Mode, Settings};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, TestApp, client_with_key, test_settings};
use crate::process::Service;

/// The value of the sample `name{labels}` in OpenMetrics text (0 when absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name_and_labels).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_sequence_of_requests() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let metrics = || app.get_text_as(ADMIN_KEY, "/metrics");
    let before = metrics().await;
    for _ in 0..3 {
        app.post_json(json!({ "query": "query Probe { contacts(segment: \"plan exists\", first: 0) { totalCount } }", "operationName": "Probe" }))
            .await;
    }
    for _ in 0..2 {
        let response = client_with_key("qwry_unknown")
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ indexStatus { built } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let report = app
        .import(
            "",
            "{\"externalId\":\"a\"}\n{\"externalId\":\"b\"}\n{\"email\":\"nope\"}\n",
        )
        .await;
    assert_eq!(report["created"], 2);
    // Once the index has the rows, the indexer took their states from the import's own writes.
    app.post_json(json!({ "query": "{ contacts(segment: \"plan exists\", first: 0, consistency: LATEST) { totalCount } }" }))
        .await;
    let after = metrics().await;

    let delta = |key: &str| sample(&after, key) - sample(&before, key);
    assert_eq!(
        delta(
            "qwry_http_request_duration_seconds_count{route=\"/graphql\",operation=\"query contacts\"}"
        ),
        4.0,
        "{after}"
    );
    assert_eq!(
        delta("qwry_http_responses_total{route=\"/graphql\",status=\"401\"}"),
        2.0
    );
    assert_eq!(
        delta("qwry_http_responses_total{route=\"/v1/contacts/import\",status=\"200\"}"),
        1.0
    );
    assert_eq!(delta("qwry_import_rows_total{kind=\"created\"}"), 2.0);
    assert_eq!(delta("qwry_import_rows_total{kind=\"failed\"}"), 1.0);
    assert!(
        delta("qwry_index_states{kind=\"payload\"}") >= 2.0,
        "{after}"
    );
    assert!(delta("qwry_segment_evaluation_seconds_count{kind=\"page\"}") >= 3.0);
    for name in [
        "qwry_index_lag_seconds",
        "qwry_index_lag_changes",
        "qwry_store_errors_total",
    ] {
        assert!(after.contains(name), "{name} missing: {after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_one_json_line_per_request_and_answers_its_health_check() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let service = Service::start_with(
        dir.path(),
        &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        Stdio::from(log),
    )
    .await;
    service
        .graphql("query Hello { indexStatus { built } }", json!({}))
        .await;
    let healthcheck = |listen: &str| {
        Command::new(env!("CARGO_BIN_EXE_qwry-contacts"))
            .env_clear()
            .env("LISTEN_ADDR", listen)
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    let listen = service.base.trim_start_matches("http://").to_owned();
    let healthy = healthcheck(&listen);
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stdout)
    );
    service.terminate();
    assert!(
        !healthcheck(&listen).status.success(),
        "nothing listens any more"
    );

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(!text.contains('\u{1b}'), "colour codes in a log file");
    assert!(!text.contains(ADMIN_KEY), "a key was logged");
    let access: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "access")
        .collect();
    let graphql = access
        .iter()
        .find(|line| line["fields"]["route"] == "/graphql")
        .unwrap_or_else(|| panic!("no access line for /graphql in {text}"));
    assert_eq!(graphql["fields"]["status"], 200);
    assert_eq!(graphql["fields"]["method"], "POST");
    assert!(
        graphql["fields"]["key_id"]
            .as_str()
            .unwrap()
            .starts_with("key_")
    );
    assert!(graphql["fields"]["duration_ms"].is_number());
    assert!(
        !text.contains("\"target\":\"tantivy"),
        "dependency INFO lines are filtered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_unsafely() {
    let dir = tempfile::tempdir().unwrap();
    let production = |encryption: bool, admin: bool| {
        let mut settings: Settings = test_settings();
        settings.api.mode = Mode::Production;
        settings.data_dir = dir.path().to_path_buf();
        settings.store =
            qwry_contacts::config::StoreSettings::new(qwry_contacts::config::DatabaseUrl::Memory);
        settings.encryption_key =
            encryption.then(|| "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        if !admin {
            settings.api.admin_api_key = None;
        }
        settings
    };
    let no_key = App::build(&production(false, true)).await.err().unwrap();
    assert!(no_key.to_string().contains("ENCRYPTION_KEY"), "{no_key}");
    let no_admin = App::build(&production(true, false)).await.err().unwrap();
    assert!(no_admin.to_string().contains("ADMIN_API_KEY"), "{no_admin}");
    let app = App::build(&production(true, true)).await.unwrap();
    app.close().await;
}
