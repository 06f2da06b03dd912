//! What outside probes found, each closed: query cost bounded before validation, sensitive
//! values and unapproved fields unreadable through segments and lookups, writes that show only
//! what the key may read, unknown keys limited by address, and index status per workspace.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, client_with_key};

/// `{ ...F0 }` where each fragment spreads the next one twice: the document is about a
/// kilobyte, its expansion 2^levels selections.
fn doubling_chain(levels: usize) -> String {
    doubling_fragments(levels, "", "Query", "indexStatus { documents }")
}

/// `operation { ...F0 }` where each fragment (on `root`) spreads the next one twice, the last
/// selecting `leaf`: about a kilobyte of text, 2^levels selections once expanded.
pub(crate) fn doubling_fragments(levels: usize, operation: &str, root: &str, leaf: &str) -> String {
    let mut query = format!("{operation} {{ ...F0 }}\n");
    for level in 0..levels {
        let next = level + 1;
        query.push_str(&format!(
            "fragment F{level} on {root} {{ ...F{next} ...F{next} }}\n"
        ));
    }
    query.push_str(&format!("fragment F{levels} on {root} {{ {leaf} }}"));
    query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exponentially_expanding_fragments_are_refused_at_once() {
    let app = TestApp::spawn().await;
    // Before the bound, validation walked every expansion: 56 s of CPU for 29 levels.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for levels in [29, 30, 64] {
        let query = doubling_chain(levels);
        assert!(query.len() < 3_000, "{} bytes", query.len());
        let started = Instant::now();
        let response: Value = client
            .post(app.url("/graphql"))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("answered before the client's timeout")
            .json()
            .await
            .unwrap();
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
            "{levels}: {response:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{levels} levels took {:?}",
            started.elapsed()
        );
    }
    // A small chain still runs, and a fragment cycle is a clear input error.
    let small = app.data(&doubling_chain(3), json!({})).await;
    assert!(small["indexStatus"]["documents"].is_u64(), "{small:#}");
    let cycle = app
        .error(
            "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }",
            json!({}),
        )
        .await;
    assert_eq!(cycle["extensions"]["code"], "INVALID_INPUT", "{cycle:#}");
    // Aliases count where fragments expand: 4 aliases spread 8 times.
    let aliased = "{ ...G ...G ...G ...G ...G ...G ...G ...G } fragment G on QueryRoot { a: attributes { name } b: attributes { name } c: attributes { name } d: attributes { name } }";
    let error = app.error(aliased, json!({})).await;
    assert_eq!(
        error["extensions"]["code"], "QUERY_TOO_COMPLEX",
        "{error:#}"
    );
}

/// An app with a sensitive `ssn`, a `plan`, and a segment naming both, saved by the admin.
async fn app_with_sensitive_segment() -> TestApp {
    let app = TestApp::spawn().await;
    app.data(
        "mutation { defineAttribute(input: { name: \"ssn\", type: STRING, sensitive: true }) { attribute { name } } }",
        json!({}),
    )
    .await;
    app.define_attribute("plan", "STRING").await;
    app.upsert(json!({ "externalId": "u-1", "email": "ada@example.com", "attributes": { "ssn": "111-22-3333", "plan": "pro" } }))
        .await;
    app.data(
        "mutation($input: UpsertSegmentInput!) { upsertSegment(input: $input) { segment { slug } } }",
        json!({ "input": { "slug": "ssn-pros", "name": "SSN pros",
                           "text": "ssn = \"111-22-3333\" and plan = \"pro\"" } }),
    )
    .await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_values_are_neither_shown_nor_testable_without_pii_read() {
    let app = app_with_sensitive_segment().await;
    let (reader, _) = app
        .create_key(&["contacts:read", "segments:read"], json!({}))
        .await;

    let listed = app
        .data_as(
            &reader,
            "{ segments { nodes { slug text expr } } }",
            json!({}),
        )
        .await;
    let segment = &listed["segments"]["nodes"][0];
    assert_eq!(
        segment["text"], "ssn = \"***\" and plan = \"pro\"",
        "{listed:#}"
    );
    assert!(
        !segment["expr"].to_string().contains("111-22"),
        "{listed:#}"
    );
    let admin_view = app
        .data("{ segment(slug: \"ssn-pros\") { text } }", json!({}))
        .await;
    assert_eq!(
        admin_view["segment"]["text"],
        "ssn = \"111-22-3333\" and plan = \"pro\""
    );

    // Every way of testing the value is refused, not answered with a count.
    let probes = [
        "{ segment(slug: \"ssn-pros\") { count } }",
        "{ segment(slug: \"ssn-pros\") { members { edges { node { id } } } } }",
        "{ contacts(segment: \"ssn = \\\"111-22-3333\\\"\") { totalCount } }",
        "{ contacts(segment: \"ssn exists\") { totalCount } }",
        "{ contacts(where: { condition: { field: \"ssn\", op: EQ, value: { string: \"111-22-3333\" } } }) { totalCount } }",
    ];
    for probe in probes {
        let code = app.error_code_as(&reader, probe, json!({})).await;
        assert_eq!(code, "FORBIDDEN", "{probe}");
    }
    let validation = app
        .data_as(
            &reader,
            "{ validateSegment(text: \"ssn = \\\"111-22-3333\\\"\") { valid count errors { errorCode message } } }",
            json!({}),
        )
        .await["validateSegment"]
        .clone();
    assert_eq!(validation["valid"], false);
    assert_eq!(validation["count"], Value::Null);
    assert_eq!(validation["errors"][0]["errorCode"], "FIELD_NOT_APPROVED");
    assert!(
        validation["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("pii:read"),
        "{validation:#}"
    );
    let segments = app
        .data_as(
            &reader,
            "{ contact(externalId: \"u-1\") { segments { nodes { slug } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        segments["contact"]["segments"]["nodes"],
        json!([]),
        "membership of a segment over a sensitive value is not listed"
    );

    // With pii:read the same key shape tests and sees it (once the index holds the contact: the
    // count below is read from it).
    app.latest("{ __typename }").await;
    let (pii, _) = app
        .create_key(&["contacts:read", "segments:read", "pii:read"], json!({}))
        .await;
    let counted = app
        .data_as(
            &pii,
            "{ segment(slug: \"ssn-pros\") { text count } }",
            json!({}),
        )
        .await;
    assert_eq!(counted["segment"]["count"], 1);
    assert!(
        counted["segment"]["text"]
            .as_str()
            .unwrap()
            .contains("111-22-3333")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_by_a_field_need_that_field_and_segment_text_masks_the_rest() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    let ada = app
        .upsert(json!({ "externalId": "u-1", "email": "ada@example.com",
                        "phone": "+44 20 7946 0958", "name": "Ada", "attributes": { "plan": "pro" } }))
        .await;
    let id = ada["id"].as_str().unwrap();
    app.data(
        "mutation { trackVisitor(input: { anonymousId: \"visitor-1\" }) { contact { id } } }",
        json!({}),
    )
    .await;
    app.data(
        "mutation($input: UpsertSegmentInput!) { upsertSegment(input: $input) { segment { slug } } }",
        json!({ "input": { "slug": "pros-at-x", "name": "Pros at x",
                           "text": "plan = \"pro\" and email ends_with \"@example.com\"" } }),
    )
    .await;
    let (narrow, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["name"], "attributes": ["plan"] }),
        )
        .await;

    let refused = [
        "{ contact(identity: { kind: EMAIL, value: \"ada@example.com\" }) { name } }",
        "{ contact(identity: { kind: PHONE, value: \"+442079460958\" }) { name } }",
        "{ contact(identity: { kind: EXTERNAL_ID, value: \"u-1\" }) { name } }",
        "{ contact(externalId: \"u-1\") { name } }",
    ];
    for lookup in refused {
        let code = app.error_code_as(&narrow, lookup, json!({})).await;
        assert_eq!(code, "FORBIDDEN", "{lookup}");
    }
    let by_id = app
        .data_as(
            &narrow,
            "query($id: ID!) { contact(id: $id) { name email } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(by_id["contact"], json!({ "name": "Ada", "email": null }));
    let by_visitor = app
        .data_as(
            &narrow,
            "{ contact(identity: { kind: ANONYMOUS_ID, value: \"visitor-1\" }) { id } }",
            json!({}),
        )
        .await;
    assert!(by_visitor["contact"]["id"].is_string());

    let listed = app
        .data_as(&narrow, "{ segments { nodes { text expr } } }", json!({}))
        .await;
    assert_eq!(
        listed["segments"]["nodes"][0]["text"], "plan = \"pro\" and email ends_with \"***\"",
        "{listed:#}"
    );
    assert!(
        !listed["segments"]["nodes"][0]["expr"]
            .to_string()
            .contains("example.com")
    );
}

const ALL_FIELDS: &str = "id externalId email name phone company attributes lastSeenAt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_results_show_write_only_keys_only_what_they_wrote() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("tier", "STRING").await;
    let ada = app
        .upsert(
            json!({ "externalId": "u-1", "email": "ada@example.com", "phone": "+44 20 7946 0958",
                        "company": "Engines", "attributes": { "plan": "pro", "tier": "gold" } }),
        )
        .await;
    let id = ada["id"].as_str().unwrap();
    let (writer, _) = app.create_key(&["contacts:write"], json!({})).await;

    let upserted = app
        .data_as(
            &writer,
            &format!("mutation($input: UpsertContactInput!) {{ upsertContact(input: $input) {{ contact {{ {ALL_FIELDS} }} }} }}"),
            json!({ "input": { "externalId": "u-1", "name": "Ada L", "attributes": { "tier": "platinum" } } }),
        )
        .await["upsertContact"]["contact"]
        .clone();
    assert_eq!(
        upserted,
        json!({ "id": id, "externalId": "u-1", "email": null, "name": "Ada L", "phone": null,
                "company": null, "attributes": { "tier": "platinum" }, "lastSeenAt": null })
    );
    let updated = app
        .data_as(
            &writer,
            &format!(
                "mutation($id: ID!) {{ updateContact(input: {{ id: $id, patch: {{}} }}) {{ contact {{ {ALL_FIELDS} }} }} }}"
            ),
            json!({ "id": id }),
        )
        .await["updateContact"]["contact"]
        .clone();
    assert_eq!(
        updated,
        json!({ "id": id, "externalId": null, "email": null, "name": null, "phone": null,
                "company": null, "attributes": {}, "lastSeenAt": null })
    );
    for nested in ["identities { nodes { value } }", "mergedFrom"] {
        let query = format!(
            "mutation($id: ID!) {{ updateContact(input: {{ id: $id, patch: {{}} }}) {{ contact {{ id {nested} }} }} }}"
        );
        let code = app
            .error_code_as(&writer, &query, json!({ "id": id }))
            .await;
        assert_eq!(code, "FORBIDDEN", "{nested}");
    }

    // A chat widget's backend key: a known visitor's profile does not come back.
    app.data(
        "mutation { trackVisitor(input: { anonymousId: \"visitor-9\", email: \"eve@example.com\", name: \"Eve\" }) { contact { id } } }",
        json!({}),
    )
    .await;
    let (widget, _) = app.create_key(&["identity:write"], json!({})).await;
    let tracked = app
        .data_as(
            &widget,
            &format!("mutation {{ trackVisitor(input: {{ anonymousId: \"visitor-9\", company: \"Acme\" }}) {{ contact {{ {ALL_FIELDS} }} }} }}"),
            json!({}),
        )
        .await["trackVisitor"]["contact"]
        .clone();
    assert_eq!(tracked["email"], Value::Null, "{tracked:#}");
    assert_eq!(tracked["name"], Value::Null, "{tracked:#}");
    assert_eq!(tracked["company"], "Acme");
    assert_eq!(tracked["attributes"], json!({}));

    app.data(
        "mutation { setIdentityVerification(input: { hmacSecret: \"0123456789abcdef-secret\" }) { identitySettings { secretSet } } }",
        json!({}),
    )
    .await;
    let hash = hmac_hex("0123456789abcdef-secret", "u-1");
    let identified = app
        .data_as(
            &widget,
            &format!("mutation($hash: String!) {{ identify(input: {{ anonymousId: \"visitor-10\", externalId: \"u-1\", userHash: $hash }}) {{ contact {{ {ALL_FIELDS} }} }} }}"),
            json!({ "hash": hash }),
        )
        .await["identify"]["contact"]
        .clone();
    assert_eq!(identified["id"], id);
    assert_eq!(identified["externalId"], "u-1");
    assert_eq!(identified["email"], Value::Null, "{identified:#}");
    assert_eq!(identified["attributes"], json!({}), "{identified:#}");
}

fn hmac_hex(secret: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_sending_unknown_keys_is_limited_before_authentication() {
    let app = TestApp::spawn_adjusted(|settings| {
        settings.api.auth_failures_per_second = 1;
        settings.api.auth_failures_burst = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        let response = client_with_key(&format!("qwry_guess_{attempt}"))
            .post(app.url("/graphql"))
            .json(&json!({ "query": "{ indexStatus { built } }" }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
            statuses.push(429);
        } else {
            statuses.push(response.status().as_u16());
        }
    }
    assert!(
        statuses[..5].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // Refused before the key is looked at: a valid key from the same address waits too.
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ indexStatus { built } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let data = app.data("{ indexStatus { built } }", json!({})).await;
    assert_eq!(data["indexStatus"]["built"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_status_counts_only_the_callers_workspace() {
    use qwry_contacts::config::DatabaseUrl;
    let dir = tempfile::tempdir().unwrap();
    let other = crate::tenancy::cli_key(dir.path(), "other", "admin");
    let app = TestApp::spawn_with(
        DatabaseUrl::RocksDb(dir.path().join("rocksdb")),
        dir.path().into(),
    )
    .await;
    for n in 0..3 {
        app.upsert(json!({ "externalId": format!("ours-{n}") }))
            .await;
    }
    app.data_as(
        &other,
        "mutation { upsertContact(input: { externalId: \"theirs\" }) { contact { id } } }",
        json!({}),
    )
    .await;
    // The fields of one query resolve concurrently: wait for the index first.
    let latest =
        "{ contacts(segment: \"external_id exists\", consistency: LATEST) { totalCount } }";
    assert_eq!(
        app.data(latest, json!({})).await["contacts"]["totalCount"],
        3
    );
    app.data_as(&other, latest, json!({})).await;
    let query = "{ indexStatus { documents pendingChanges lastAppliedChange } }";
    let ours = app.data(query, json!({})).await;
    assert_eq!(ours["indexStatus"]["documents"], 3, "{ours:#}");
    assert_eq!(ours["indexStatus"]["pendingChanges"], 0, "{ours:#}");
    let theirs = app.data_as(&other, query, json!({})).await;
    assert_eq!(theirs["indexStatus"]["documents"], 1, "{theirs:#}");
    assert_ne!(
        ours["indexStatus"]["lastAppliedChange"], theirs["indexStatus"]["lastAppliedChange"],
        "each workspace sees its own position"
    );
    app.stop().await;
}
