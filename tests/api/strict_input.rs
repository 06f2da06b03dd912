//! Strict input: every malformed import row or file is a clear, coded error with its line, the
//! same in both formats; oversized records are refused in bounded memory; an email or phone that
//! identifies another contact is never silently half-taken.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Posts raw bytes as an import; returns the report.
async fn import_bytes(app: &TestApp, query: &str, body: Vec<u8>) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/v1/contacts/import{query}")))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn error_lines(report: &Value) -> Vec<u64> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_rows_are_strict_about_encoding_and_types() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let mut body = b"\xEF\xBB\xBF{\"externalId\":\"u1\",\"name\":\"Ada\"}\n".to_vec();
    body.extend_from_slice(b"{\"externalId\":\"u2\",\"name\":\"Caf\xE9\"}\n");
    body.extend_from_slice(b"{\"externalId\":\"u3\",\"name\":123}\n");
    body.extend_from_slice(b"{\"externalId\":42}\n");
    body.extend_from_slice(b"{\"externalId\":\"u5\",\"name\":true}\n");
    body.extend_from_slice(
        b"{\"externalId\":\"u6\",\"plan\":\"pro\",\"attributes\":{\"plan\":\"free\"}}\n",
    );
    body.extend_from_slice(b"{\"externalId\":\"u7\",\"name\":\"Bob\"}\n");
    let report = import_bytes(&app, "?format=ndjson", body).await;
    assert_eq!(report["status"], "COMPLETED", "{report:#}");
    assert_eq!(report["created"], 2, "{report:#}");
    assert_eq!(report["failed"], 5, "{report:#}");
    assert_eq!(error_lines(&report), vec![2, 3, 4, 5, 6]);
    let errors = report["errors"].as_array().unwrap();
    assert!(errors[0]["message"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(errors[1]["code"], "INVALID_INPUT");
    assert!(errors[2]["message"].as_str().unwrap().contains("\"42\""));
    assert_eq!(errors[4]["code"], "INVALID_ATTRIBUTE");
    assert!(errors[4]["message"].as_str().unwrap().contains("twice"));
    let ada = app
        .data("{ contact(externalId: \"u1\") { name } }", json!({}))
        .await;
    assert_eq!(ada["contact"]["name"], "Ada", "a BOM does not fail row 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_headers_fail_the_file_once_and_lines_count_right_with_crlf() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;

    let duplicate = "external_id,plan,plan\nu1,pro,free\nu2,pro,free\n";
    let report = import_bytes(&app, "?format=csv", duplicate.into()).await;
    assert_eq!(report["status"], "FAILED", "{report:#}");
    assert_eq!(report["processed"], 0);
    assert_eq!(error_lines(&report), vec![1]);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`plan` appears twice")
    );

    let mut unknown = String::from("external_id,plna\n");
    for n in 0..1_000 {
        unknown.push_str(&format!("u{n},pro\n"));
    }
    let report = import_bytes(&app, "?format=csv", unknown.into()).await;
    assert_eq!(report["status"], "FAILED", "{report:#}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report:#}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `plan`"),
        "{report:#}"
    );
    assert_eq!(app.total_count().await, 0);

    let crlf = "external_id,email\r\nu1,a@example.com\r\nu2,not-an-email\r\nu3,c@example.com\r\nu4,nope\r\n";
    let report = import_bytes(&app, "?format=csv", crlf.into()).await;
    assert_eq!(report["status"], "COMPLETED", "{report:#}");
    assert_eq!(error_lines(&report), vec![3, 5]);

    let mut invalid = b"external_id,name\nu5,Ok\nu6,Caf".to_vec();
    invalid.extend_from_slice(b"\xE9\nu7,Fine\n");
    let report = import_bytes(&app, "?format=csv", invalid).await;
    assert_eq!(error_lines(&report), vec![3], "{report:#}");
    assert_eq!(report["created"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_is_refused_in_both_formats() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let csv = format!("external_id,name\nu1,\"{huge}\"\nu2,Bob\n");
    let report = import_bytes(&app, "?format=csv", csv.into()).await;
    assert_eq!(report["status"], "FAILED", "{report:#}");
    assert_eq!(error_lines(&report), vec![2]);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    let ndjson = format!(
        "{{\"externalId\":\"u1\",\"name\":\"{huge}\"}}\n{{\"externalId\":\"u2\",\"name\":\"Bob\"}}\n"
    );
    let report = import_bytes(&app, "?format=ndjson", ndjson.into()).await;
    assert_eq!(report["status"], "COMPLETED", "{report:#}");
    assert_eq!(error_lines(&report), vec![1]);
    assert_eq!(report["created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_or_phone_of_another_contact_is_refused_or_left_out() {
    let app = TestApp::spawn().await;
    let ada = app
        .upsert(
            json!({ "externalId": "a", "email": "ada@example.com", "phone": "+44 20 7946 0958" }),
        )
        .await;
    let bob = app
        .upsert(json!({ "externalId": "b", "email": "bob@example.com" }))
        .await;
    let upsert = "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { email } } }";

    for input in [
        json!({ "externalId": "a", "email": "bob@example.com" }),
        json!({ "externalId": "b", "phone": "+44 20 7946 0958" }),
        json!({ "externalId": "c", "email": "bob@example.com" }),
    ] {
        let error = app.error(upsert, json!({ "input": input })).await;
        assert_eq!(
            error["extensions"]["code"], "CONFLICT",
            "{input}: {error:#}"
        );
        assert!(error["extensions"]["holderId"].is_string(), "{error:#}");
    }
    let error = app
        .error(
            upsert,
            json!({ "input": { "externalId": "a", "email": "bob@example.com" } }),
        )
        .await;
    assert_eq!(error["extensions"]["holderId"], bob["id"]);
    assert_eq!(error["extensions"]["field"], "email");

    let (writer, _) = app.create_key(&["contacts:write"], json!({})).await;
    let response = app
        .graphql_as(
            &writer,
            "mutation { upsertContact(input: { externalId: \"a\", email: \"bob@example.com\" }) { contact { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(response["errors"][0]["extensions"]["code"], "CONFLICT");
    assert_eq!(
        response["errors"][0]["extensions"]["holderId"],
        Value::Null,
        "a key that may not read contacts is not told who holds it"
    );

    // Nothing changed, and field and identity still agree.
    let ada_now = app.contact(ada["id"].as_str().unwrap()).await;
    assert_eq!(ada_now["email"], "ada@example.com");
    assert_eq!(app.total_count().await, 2, "contact `c` was not created");

    // An import row does not take it either: the field keeps its value.
    let report = import_bytes(
        &app,
        "?format=ndjson",
        b"{\"externalId\":\"a\",\"email\":\"bob@example.com\",\"name\":\"Ada\"}\n".to_vec(),
    )
    .await;
    assert_eq!(report["conflicts"], 1, "{report:#}");
    let ada_now = app.contact(ada["id"].as_str().unwrap()).await;
    assert_eq!(ada_now["email"], "ada@example.com");
    assert_eq!(ada_now["name"], "Ada");
    let holder = app
        .data(
            "{ contact(identity: { kind: EMAIL, value: \"bob@example.com\" }) { id email } }",
            json!({}),
        )
        .await;
    assert_eq!(holder["contact"]["id"], bob["id"]);
    assert_eq!(holder["contact"]["email"], "bob@example.com");
}
