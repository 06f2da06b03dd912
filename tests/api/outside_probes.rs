//! The smaller holes outside probes found beside the socket: persisted queries bounded by
//! bytes, events imports in bounded lines with per-row errors, a CONFLICT naming its holder only
//! to keys that may read the field, security headers on every page, metrics behind a key with
//! labels drawn from the schema, and import jobs kept per workspace.

use qwry_contacts::config::DatabaseUrl;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ADMIN_KEY, TestApp, client_with_key};
use crate::tenancy::cli_key;

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_are_bounded_by_bytes() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.persisted_query_bytes = 1024 * 1024;
    })
    .await;
    // 300 distinct documents of about 10 KB: 3 MB of text against a 1 MiB budget.
    let documents: Vec<String> = (0..300)
        .map(|n| {
            let padding = "#".repeat(10 * 1024);
            format!("query Q{n} {{ indexStatus {{ built }} }}\n{padding}")
        })
        .collect();
    for document in &documents {
        let registered = app
            .post_json(json!({ "query": document, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(document) } } }))
            .await;
        assert_eq!(
            registered["data"]["indexStatus"]["built"], true,
            "{registered}"
        );
    }
    let mut forgotten = 0;
    for document in &documents {
        let by_hash = app
            .post_json(json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(document) } } }))
            .await;
        if by_hash["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND" {
            forgotten += 1;
        } else {
            assert_eq!(by_hash["data"]["indexStatus"]["built"], true, "{by_hash}");
        }
    }
    assert!(
        forgotten >= 150,
        "{forgotten} of 300 forgotten: the budget holds about 100"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_import_bounds_its_lines_and_loses_no_valid_row() {
    let app = TestApp::spawn().await;
    app.upsert(json!({ "externalId": "ann" })).await;
    let event =
        |id: &str| json!({ "externalId": "ann", "name": "purchase", "eventId": id }).to_string();
    let mut body = Vec::new();
    body.extend(event("e-1").as_bytes());
    body.push(b'\n');
    body.extend(vec![b'x'; 8 * 1024 * 1024]);
    body.push(b'\n');
    body.extend(event("e-2").as_bytes());
    body.push(b'\n');
    body.extend(b"{\"externalId\":\"ann\",\"name\":\"purchase\",\"eventId\":\"\xff\xfe\"}\n");
    body.extend(event("e-3").as_bytes());
    body.push(b'\n');
    let report: Value = app
        .client
        .post(app.url("/v1/events/import"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["rows"], 5, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    assert_eq!(report["message"], Value::Null, "{report}");
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4], "{report}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_names_its_holder_only_to_keys_that_may_read_the_field() {
    let app = TestApp::spawn().await;
    let bob = app
        .upsert(
            json!({ "externalId": "b", "email": "bob@example.com", "phone": "+44 20 7946 0958" }),
        )
        .await;
    app.upsert(json!({ "externalId": "a" })).await;
    let (blind, _) = app
        .create_key(
            &["contacts:read", "contacts:write"],
            json!({ "fields": ["name", "external_id"] }),
        )
        .await;
    let (sighted, _) = app
        .create_key(
            &["contacts:read", "contacts:write"],
            json!({ "fields": ["name", "external_id", "email"] }),
        )
        .await;
    let upsert =
        "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }";
    for input in [
        json!({ "externalId": "a", "email": "bob@example.com" }),
        json!({ "externalId": "a", "phone": "+44 20 7946 0958" }),
    ] {
        let response = app
            .graphql_as(&blind, upsert, json!({ "input": input }))
            .await;
        let error = &response["errors"][0];
        assert_eq!(error["extensions"]["code"], "CONFLICT", "{response}");
        assert_eq!(error["extensions"]["holderId"], Value::Null, "{response}");
    }
    let response = app
        .graphql_as(
            &sighted,
            upsert,
            json!({ "input": { "externalId": "a", "email": "bob@example.com" } }),
        )
        .await;
    assert_eq!(response["errors"][0]["extensions"]["holderId"], bob["id"]);
    let response = app
        .graphql_as(
            &sighted,
            upsert,
            json!({ "input": { "externalId": "a", "phone": "+44 20 7946 0958" } }),
        )
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["holderId"],
        Value::Null,
        "it may read emails, not phones: {response}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cannot_be_framed_or_sniffed() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in ["/", "/graphiql/", "/graphql"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    for path in ["/console/console.js", "/graphiql/graphiql.min.css"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    let api = client_with_key(ADMIN_KEY)
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ indexStatus { built } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert!(
        api.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_an_admin_key_or_the_metrics_token_and_hide_operation_names() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.metrics_token = Some("scraper-token-0123456789".into());
    })
    .await;
    app.post_json(json!({
        "query": "query AcmeLayoffsList2027 { contacts(first: 1) { totalCount } }",
        "operationName": "AcmeLayoffsList2027"
    }))
    .await;
    let status_of = |key: Option<&str>| {
        let client = match key {
            Some(key) => client_with_key(key),
            None => reqwest::Client::new(),
        };
        let url = app.url("/metrics");
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status_of(None).await, 401);
    assert_eq!(status_of(Some("qwry_not_a_key")).await, 401);
    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    assert_eq!(status_of(Some(&reader)).await, 403);
    assert_eq!(status_of(Some("scraper-token-0123456789")).await, 200);
    let text = app.get_text_as(ADMIN_KEY, "/metrics").await;
    assert!(text.contains("operation=\"query contacts\""), "{text}");
    assert!(
        !text.contains("AcmeLayoffsList2027"),
        "a tenant's name leaked: {text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workspaces_imports_never_push_out_anothers_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let other = cli_key(dir.path(), "other", "admin");
    let app = TestApp::spawn_with(
        DatabaseUrl::RocksDb(dir.path().join("rocksdb")),
        dir.path().into(),
    )
    .await;
    let ours = app.import("", "{\"externalId\":\"kept\"}\n").await;
    let job = ours["id"].as_str().unwrap().to_owned();
    for n in 0..105 {
        let report = app
            .import_as(
                &other,
                "?dryRun=true",
                format!("{{\"externalId\":\"d-{n}\"}}\n"),
            )
            .await;
        assert_eq!(report["status"], "COMPLETED", "{report}");
    }
    let found = app
        .data(
            "query($id: ID!) { importJob(id: $id) { id status } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(found["importJob"]["id"], job.as_str(), "{found}");
    let theirs = app
        .data_as(&other, "{ importJobs { id } }", json!({}))
        .await;
    assert_eq!(theirs["importJobs"].as_array().unwrap().len(), 100);
    app.stop().await;
}
