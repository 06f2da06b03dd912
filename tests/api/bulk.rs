//! Bulk import and export over HTTP: good and bad rows, idempotent re-runs, CSV and NDJSON,
//! matching by email, dry runs, segment exports.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The failed rows of an import report, as (line, code).
pub fn row_errors(report: &Value) -> Vec<(u64, &str)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["code"].as_str().unwrap()))
        .collect()
}

impl TestApp {
    /// Posts an import; returns the report.
    pub async fn import(&self, query: &str, body: impl Into<String>) -> Value {
        self.import_with(&self.client, query, body).await
    }

    /// Posts an import authenticated with `key`; returns the report.
    pub async fn import_as(&self, key: &str, query: &str, body: impl Into<String>) -> Value {
        self.import_with(&crate::helpers::client_with_key(key), query, body)
            .await
    }

    async fn import_with(
        &self,
        client: &reqwest::Client,
        query: &str,
        body: impl Into<String>,
    ) -> Value {
        let response = client
            .post(self.url(&format!("/v1/contacts/import{query}")))
            .body(body.into())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Streams an export; returns its lines.
    pub async fn export(&self, query: &str) -> Vec<Value> {
        let response = self
            .client
            .get(self.url(&format!("/v1/contacts/export{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{query}");
        let text = response.text().await.unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn counts(report: &Value) -> [u64; 6] {
    [
        "processed",
        "created",
        "updated",
        "unchanged",
        "failed",
        "conflicts",
    ]
    .map(|key| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report:#}"))
    })
}

fn external_ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|line| line["externalId"].as_str().unwrap().to_owned())
        .collect()
}

const ROWS: &str = r#"{"externalId":"u1","email":"Ada@Example.com","name":"Ada","plan":"pro","ltv":120}
{"externalId":"u2","attributes":{"plan":"free","tags":["a","b"]}}
not json at all
{"email":"nobody@example.com"}
{"externalId":"u3","plna":"x"}

{"externalId":"u4","ltv":"lots"}
{"externalId":"u5","phone":"+49 30 1234567"}
"#;

async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("ltv", "NUMBER").await;
    app.define_attribute("tags", "STRING_LIST").await;
    app
}

#[tokio::test]
async fn a_row_with_several_problems_lists_every_one() {
    let app = seeded().await;
    let report = app
        .import(
            "",
            "{\"externalId\":\"u1\",\"email\":\"not-an-email\",\"ltv\":\"lots\",\"plna\":\"x\"}\n",
        )
        .await;
    assert_eq!(
        report["failed"], 1,
        "one row, however many problems: {report:#}"
    );
    let error = &report["errors"][0];
    let problems: Vec<&str> = error["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|problem| problem["message"].as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{report:#}");
    assert_eq!(error["message"], problems[0]);
    assert!(
        problems.iter().any(|m| m.contains("not-an-email")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|m| m.contains("ltv")), "{problems:?}");
    assert!(problems.iter().any(|m| m.contains("plna")), "{problems:?}");
    // A row with one problem keeps the short form.
    let report = app
        .import("", "{\"externalId\":\"u2\",\"ltv\":\"lots\"}\n")
        .await;
    assert!(report["errors"][0].get("problems").is_none(), "{report:#}");
}

#[tokio::test]
async fn an_import_applies_good_rows_and_reports_bad_ones_by_line() {
    let app = seeded().await;
    let report = app.import("", ROWS).await;
    assert_eq!(report["status"], "COMPLETED");
    assert_eq!(counts(&report), [7, 3, 0, 0, 4, 0]);
    assert_eq!(
        row_errors(&report),
        vec![
            (3, "INVALID_INPUT"),
            (4, "INVALID_INPUT"),
            (5, "INVALID_ATTRIBUTE"),
            (7, "INVALID_ATTRIBUTE")
        ]
    );
    let ada = app.data("{ contact(externalId: \"u1\") { email name attributes identities { nodes { kind provenance } } } }", json!({})).await;
    assert_eq!(ada["contact"]["email"], "ada@example.com");
    assert_eq!(
        ada["contact"]["attributes"],
        json!({ "plan": "pro", "ltv": 120 })
    );
    assert!(
        ada["contact"]["identities"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["provenance"] == "IMPORTED")
    );
    assert_eq!(app.total_count().await, 3);

    // The job can be fetched afterwards.
    let job = app
        .data("query($id: ID!) { importJob(id: $id) { status processed created failed errors { line code errorCode } } }",
            json!({ "id": report["id"] }))
        .await;
    assert_eq!(job["importJob"]["status"], "COMPLETED");
    assert_eq!(job["importJob"]["created"], 3);
    assert_eq!(job["importJob"]["errors"][0]["line"], 3);
    // The code as an enum value is its wire spelling, for every row.
    for row in job["importJob"]["errors"].as_array().unwrap() {
        assert_eq!(row["errorCode"], row["code"], "{row}");
    }
    assert_eq!(
        job["importJob"]["errors"][2]["errorCode"],
        "INVALID_ATTRIBUTE"
    );
}

#[tokio::test]
async fn re_running_an_import_changes_nothing() {
    let app = seeded().await;
    app.import("", ROWS).await;
    let before = app.export("").await;
    let again = app.import("", ROWS).await;
    assert_eq!(counts(&again), [7, 0, 0, 3, 4, 0]);
    assert_eq!(app.export("").await, before, "not even updatedAt moves");

    let changed = app
        .import(
            "",
            "{\"externalId\":\"u2\",\"plan\":\"pro\",\"tags\":null}\n",
        )
        .await;
    assert_eq!(counts(&changed), [1, 0, 1, 0, 0, 0]);
    let u2 = app
        .data("{ contact(externalId: \"u2\") { attributes } }", json!({}))
        .await;
    assert_eq!(
        u2["contact"]["attributes"],
        json!({ "plan": "pro" }),
        "null unsets"
    );
}

/// A batch (up to `CHUNK_ROWS` rows) is split into parallel transactions (one per core).
/// Every row must still land exactly once, with its identities, whichever part it fell into,
/// and updates, creations and identity conflicts must be counted as in one transaction.
#[tokio::test]
async fn large_batches_commit_in_parallel_parts_without_losing_or_doubling_rows() {
    let app = seeded().await;
    let existing: String = (0..300)
        .map(|n| format!("{{\"externalId\":\"p{n:04}\",\"plan\":\"free\"}}\n"))
        .collect();
    assert_eq!(app.import("", existing).await["created"], 300);

    // Rows 0..300 update, 300..1000 create; every 100th new row claims an email that row
    // 0's contact already holds, so it is imported without it.
    let rows: String = (0..1000)
        .map(|n| {
            let email = if n >= 300 && n % 100 == 50 {
                "p0000@example.com".to_owned()
            } else {
                format!("p{n:04}@example.com")
            };
            format!("{{\"externalId\":\"p{n:04}\",\"email\":\"{email}\",\"plan\":\"pro\",\"ltv\":{n}}}\n")
        })
        .collect();
    let report = app.import("", rows.clone()).await;
    assert_eq!(counts(&report), [1000, 700, 300, 0, 0, 7], "{report:#}");
    assert_eq!(app.total_count().await, 1000);

    // Neighbouring rows fall into different parts; both got their contact and identities.
    for n in [0, 1, 498, 499, 500, 501, 998, 999] {
        let email = format!("p{n:04}@example.com");
        let found = app
            .data(
                "query($email: String!) { contact(identity: { kind: EMAIL, value: $email }) { externalId attributes } }",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(found["contact"]["externalId"], format!("p{n:04}"));
        assert_eq!(found["contact"]["attributes"]["ltv"], f64::from(n));
    }
    let pro = app
        .data(
            "{ contacts(segment: \"plan = \\\"pro\\\"\", first: 0, consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        pro["contacts"]["totalCount"], 1000,
        "the index saw every part"
    );

    // A re-run changes nothing; the rows whose email another contact holds report it again.
    let again = app.import("", rows).await;
    assert_eq!(counts(&again), [1000, 0, 0, 1000, 0, 7], "{again:#}");
}

/// Two jobs importing the same rows at once, one of them back to front, race for the contacts
/// where they meet: a part that loses is planned again, so each contact is created exactly once
/// and the other job finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_of_the_same_rows_create_each_contact_once() {
    const ROWS: u64 = 3000;
    let app = seeded().await;
    let lines: Vec<String> = (0..ROWS)
        .map(|n| format!("{{\"externalId\":\"c{n:04}\",\"email\":\"c{n:04}@example.com\",\"plan\":\"pro\"}}\n"))
        .collect();
    let forwards: String = lines.concat();
    let backwards: String = lines.iter().rev().map(String::as_str).collect();
    let (first, second) = tokio::join!(app.import("", forwards), app.import("", backwards));
    for report in [&first, &second] {
        assert_eq!(report["status"], "COMPLETED", "{report:#}");
        assert_eq!(report["processed"], ROWS);
        for error in report["errors"].as_array().unwrap() {
            assert_eq!(
                error["code"], "CONFLICT",
                "only lost races may fail a row: {report:#}"
            );
        }
    }
    let sum = |key: &str| first[key].as_u64().unwrap() + second[key].as_u64().unwrap();
    assert_eq!(sum("created"), ROWS, "{first:#} {second:#}");
    assert_eq!(sum("created") + sum("unchanged") + sum("failed"), 2 * ROWS);
    assert_eq!(sum("updated"), 0);
    assert_eq!(app.total_count().await, ROWS, "no contact twice");
    for n in [0, ROWS / 2, ROWS - 1] {
        let found = app
            .data(
                "query($email: String!) { contact(identity: { kind: EMAIL, value: $email }) { externalId } }",
                json!({ "email": format!("c{n:04}@example.com") }),
            )
            .await;
        assert_eq!(found["contact"]["externalId"], format!("c{n:04}"));
    }
}

#[tokio::test]
async fn csv_cells_are_typed_by_the_registry() {
    let app = seeded().await;
    let csv = "external_id,email,plan,ltv,tags\n\
               c1,c1@example.com,pro,10.5,a|b\n\
               c2,,free,,\"[\"\"x\"\"]\"\n\
               c3,not-an-email,pro,1,\n\
               c4,c4@example.com,pro,many,\n";
    let report = app.import("?format=csv", csv).await;
    assert_eq!(counts(&report), [4, 2, 0, 0, 2, 0], "{report:#}");
    assert_eq!(report["errors"][0]["line"], 4);
    assert_eq!(report["errors"][1]["line"], 5);
    let lines = app.export("").await;
    assert_eq!(external_ids(&lines), vec!["c1", "c2"]);
    assert_eq!(
        lines[0]["attributes"],
        json!({ "plan": "pro", "ltv": 10.5, "tags": ["a", "b"] })
    );
    assert_eq!(
        lines[1]["attributes"],
        json!({ "plan": "free", "tags": ["x"] }),
        "blank cells are left out"
    );
    assert!(lines[1]["email"].is_null());
}

#[tokio::test]
async fn rows_can_match_by_email_and_dry_runs_write_nothing() {
    let app = seeded().await;
    let existing = app
        .upsert(json!({ "externalId": "crm-1", "email": "known@example.com" }))
        .await;
    let rows = "{\"email\":\"KNOWN@example.com\",\"plan\":\"pro\"}\n\
                {\"email\":\"new@example.com\",\"plan\":\"free\"}\n\
                {\"externalId\":\"other\",\"email\":\"known@example.com\"}\n";
    let dry = app.import("?matchBy=email&dryRun=true", rows).await;
    assert_eq!(dry["dryRun"], true);
    assert_eq!(counts(&dry), [3, 1, 1, 0, 1, 0], "{dry:#}");
    assert_eq!(dry["errors"][0]["code"], "CONFLICT");
    assert_eq!(app.total_count().await, 1, "a dry run writes nothing");

    let report = app.import("?matchBy=email", rows).await;
    assert_eq!(counts(&report), [3, 1, 1, 0, 1, 0]);
    let known = app.contact(existing["id"].as_str().unwrap()).await;
    assert_eq!(known["attributes"], json!({ "plan": "pro" }));
    assert_eq!(app.total_count().await, 2);
    let lead = app
        .data("{ contact(identity: { kind: EMAIL, value: \"new@example.com\" }) { externalId attributes } }", json!({}))
        .await;
    assert!(
        lead["contact"]["externalId"].is_null(),
        "a lead without external id"
    );

    // Without matchBy, rows need an external id.
    let strict = app.import("", "{\"email\":\"known@example.com\"}\n").await;
    assert_eq!(counts(&strict), [1, 0, 0, 0, 1, 0]);
}

#[tokio::test]
async fn exports_stream_every_contact_or_a_segment_and_resume_after_a_cursor() {
    let app = seeded().await;
    let rows: String = (0..1200)
        .map(|n| {
            format!(
                "{{\"externalId\":\"e{n:04}\",\"plan\":\"{}\",\"ltv\":{n}}}\n",
                if n % 3 == 0 { "pro" } else { "free" }
            )
        })
        .collect();
    let report = app.import("", rows).await;
    assert_eq!(report["created"], 1200);

    let all = app.export("").await;
    assert_eq!(all.len(), 1200);
    let ids: Vec<&str> = all
        .iter()
        .map(|line| line["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ascending by id"
    );

    let query = "query($after: String) { contacts(segment: \"plan = \\\"pro\\\" and ltv >= 600\", first: 100, after: $after, consistency: LATEST) {
        edges { node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut members = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app.data(query, json!({ "after": after })).await["contacts"].clone();
        members.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let segment = "?segment=plan%20%3D%20%22pro%22%20and%20ltv%20%3E%3D%20600";
    let exported = app.export(segment).await;
    let exported_ids: Vec<String> = exported
        .iter()
        .map(|line| line["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported_ids.len(), 200);
    assert_eq!(
        exported_ids, members,
        "a segment export equals the segment's members"
    );

    let resumed = app
        .export(&format!("{segment}&after={}", exported_ids[149]))
        .await;
    assert_eq!(resumed.len(), 50);
    assert_eq!(resumed[0]["id"], exported[150]["id"]);

    // Bad input is refused before anything streams.
    let response = app
        .client
        .get(app.url("/v1/contacts/export?segment=plna%20%3D%201"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "INVALID_SEGMENT");
    // The same error, diagnostics and all, as GraphQL gives for the same segment: one mapping.
    let graphql = app
        .error(
            "{ contacts(segment: \"plna = 1\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["message"], graphql["message"]);
    assert_eq!(body["errors"][0]["extensions"], graphql["extensions"]);
    assert_eq!(
        body["errors"][0]["extensions"]["diagnostics"][0]["code"],
        "UNKNOWN_FIELD"
    );

    // An export imports back unchanged.
    let lines: String = all.iter().map(|line| format!("{line}\n")).collect();
    let back = app.import("", lines).await;
    assert_eq!(back["unchanged"], 1200, "{back:#}");
}

/// The store is read for the next batch while one is written. Batches that reach what an
/// earlier one wrote (the same contact, an identity it claimed) must still see those writes:
/// each row lands as if the file were imported one row at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_later_batches_see_what_earlier_batches_wrote() {
    // One batch's worth of rows: each of the four below is a batch of its own.
    const N: usize = qwry_contacts::service::CHUNK_ROWS;
    let app = seeded().await;
    let seed: String = (0..N)
        .map(|n| {
            format!("{{\"externalId\":\"s{n}\",\"email\":\"s{n}@example.com\",\"plan\":\"pro\"}}\n")
        })
        .collect();
    assert_eq!(app.import("", seed).await["created"], N as u64);

    // Four batches: the first gives each seeded contact a new email and plan
    // `free`; the second creates contacts claiming those new emails (taken: imported without
    // them); the third sets the seeded contacts back to `pro` (unchanged against a read older
    // than the first batch); the fourth gives the new contacts emails of their own.
    let batch = |line: &dyn Fn(usize) -> String| (0..N).map(line).collect::<String>();
    let rows = [
        batch(&|n| {
            format!(
                "{{\"externalId\":\"s{n}\",\"email\":\"moved{n}@example.com\",\"plan\":\"free\"}}\n"
            )
        }),
        batch(&|n| {
            format!(
                "{{\"externalId\":\"t{n}\",\"email\":\"moved{n}@example.com\",\"plan\":\"pro\"}}\n"
            )
        }),
        batch(&|n| format!("{{\"externalId\":\"s{n}\",\"plan\":\"pro\"}}\n")),
        batch(&|n| {
            format!(
                "{{\"externalId\":\"t{n}\",\"email\":\"t{n}@example.com\",\"plan\":\"free\"}}\n"
            )
        }),
    ]
    .concat();
    let report = app.import("", rows).await;
    let n = N as u64;
    assert_eq!(counts(&report), [4 * n, n, 3 * n, 0, 0, n], "{report:#}");

    let by_email = |email: String| {
        let app = &app;
        async move {
            app.data(
                "query($email: String!) { contact(identity: { kind: EMAIL, value: $email }) { externalId email attributes } }",
                json!({ "email": email }),
            )
            .await["contact"]
                .clone()
        }
    };
    for n in [0, 1, 250, N - 1] {
        let seeded = by_email(format!("moved{n}@example.com")).await;
        assert_eq!(seeded["externalId"], format!("s{n}"));
        assert_eq!(seeded["email"], format!("moved{n}@example.com"));
        assert_eq!(seeded["attributes"]["plan"], "pro");
        let old = by_email(format!("s{n}@example.com")).await;
        assert_eq!(
            old["externalId"],
            format!("s{n}"),
            "an old email still resolves"
        );
        let created = by_email(format!("t{n}@example.com")).await;
        assert_eq!(created["externalId"], format!("t{n}"));
        assert_eq!(created["attributes"]["plan"], "free");
    }
    let pro = app
        .data(
            "{ contacts(segment: \"plan = \\\"pro\\\"\", first: 0, consistency: LATEST) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(pro["contacts"]["totalCount"], n);
}

/// A whole `NUMBER` value reads back as it was written (`9`, not `9.0`), over GraphQL and in
/// exports; a fractional one keeps its fraction.
#[tokio::test]
async fn whole_numbers_read_back_as_written_in_graphql_and_exports() {
    let app = TestApp::spawn().await;
    app.define_attribute("visits", "NUMBER").await;
    app.define_attribute("ltv", "NUMBER").await;
    app.upsert(json!({ "externalId": "n1", "attributes": { "visits": 9, "ltv": 9.5 } }))
        .await;
    let graphql = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ contact(externalId: \"n1\") { attributes } }" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let export = app
        .get_text_as(crate::helpers::ADMIN_KEY, "/v1/contacts/export")
        .await;
    for body in [graphql, export] {
        assert!(body.contains(r#""visits":9"#), "{body}");
        assert!(!body.contains(r#""visits":9.0"#), "{body}");
        assert!(body.contains(r#""ltv":9.5"#), "{body}");
    }
}

/// The product's example record imports as written: `user_id` is the verified user id and must
/// equal `external_id`; a row where they differ is a row error, the others go in.
#[tokio::test]
async fn the_example_record_with_user_id_imports_as_written() {
    let app = TestApp::spawn().await;
    let rows = concat!(
        r#"{"external_id": "customer_12345", "user_id": "customer_12345", "email": "jane@example.com", "name": "Jane Doe"}"#,
        "\n",
        r#"{"external_id": "customer_1", "user_id": "customer_2", "email": "x@example.com"}"#,
        "\n",
    );
    let report = app.import("", rows).await;
    assert_eq!(counts(&report), [2, 1, 0, 0, 1, 0], "{report}");
    assert_eq!(report["errors"][0]["line"], 2, "{report}");
    assert_eq!(report["errors"][0]["code"], "INVALID_INPUT", "{report}");
    let jane = app
        .data(
            "{ contact(externalId: \"customer_12345\") { email name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        jane["contact"],
        json!({ "email": "jane@example.com", "name": "Jane Doe" })
    );
}
