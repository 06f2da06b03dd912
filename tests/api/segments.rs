//! Segments over HTTP: validation, members, structured input, saved segments, membership,
//! explanations and index freshness.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Declares the attributes the tests use and creates five contacts.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    for (name, value_type) in [
        ("plan", "STRING"),
        ("ltv", "NUMBER"),
        ("tags", "STRING_LIST"),
        ("vip", "BOOL"),
    ] {
        app.define_attribute(name, value_type).await;
    }
    let people = [
        (
            "u1",
            "ada@acme.io",
            json!({ "plan": "pro", "ltv": 120, "tags": ["vip"] }),
        ),
        ("u2", "bob@example.com", json!({ "plan": "pro", "ltv": 80 })),
        (
            "u3",
            "cy@acme.io",
            json!({ "plan": "free", "ltv": 300, "tags": ["beta"] }),
        ),
        ("u4", "di@other.org", json!({ "vip": true })),
        (
            "u5",
            "ed@acme.io",
            json!({ "plan": "enterprise", "ltv": 1000 }),
        ),
    ];
    for (external_id, email, attributes) in people {
        app.upsert(json!({ "externalId": external_id, "email": email, "attributes": attributes }))
            .await;
    }
    // Read-your-writes: later reads without LATEST see the seeded contacts.
    assert_eq!(members(&app, "created_at exists").await.1, 5);
    app
}

/// External ids of a segment's members (read-your-writes).
async fn members(app: &TestApp, segment: &str) -> (Vec<String>, u64) {
    let query =
        "query($segment: String!) { contacts(segment: $segment, first: 100, consistency: LATEST) {
        totalCount edges { node { externalId } } } }";
    let data = app.data(query, json!({ "segment": segment })).await;
    let ids = data["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["externalId"].as_str().unwrap().to_owned())
        .collect();
    (ids, data["contacts"]["totalCount"].as_u64().unwrap())
}

#[tokio::test]
async fn segment_members_follow_the_language() {
    let app = seeded().await;
    assert_eq!(
        members(&app, "plan = \"pro\"").await,
        (vec!["u1".into(), "u2".into()], 2)
    );
    assert_eq!(
        members(&app, "plan = \"pro\" and ltv >= 100").await.0,
        vec!["u1"]
    );
    assert_eq!(
        members(&app, "tags has any [\"vip\", \"beta\"] or vip = true")
            .await
            .0,
        vec!["u1", "u3", "u4"]
    );
    assert_eq!(
        members(&app, "email ends_with \"@ACME.io\" and not plan = \"free\"")
            .await
            .0,
        vec!["u1", "u5"]
    );
    // Missing values: `!=` and `not in` match contacts without the attribute.
    assert_eq!(
        members(&app, "plan != \"pro\"").await.0,
        vec!["u3", "u4", "u5"]
    );
    assert_eq!(
        members(&app, "plan not in [\"pro\", \"free\"]").await.0,
        vec!["u4", "u5"]
    );
    assert_eq!(
        members(&app, "ltv between 80 and 120").await.0,
        vec!["u1", "u2"]
    );
    assert_eq!(
        members(&app, "created_at within 1d and plan exists")
            .await
            .1,
        4
    );
}

#[tokio::test]
async fn writes_reach_segments_and_deleted_contacts_leave_them() {
    let app = seeded().await;
    let changed = app
        .upsert(json!({ "externalId": "u3", "attributes": { "plan": "pro" } }))
        .await;
    assert_eq!(
        members(&app, "plan = \"pro\"").await.0,
        vec!["u1", "u2", "u3"]
    );
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": changed["id"] }),
    )
    .await;
    assert_eq!(members(&app, "plan = \"pro\"").await.0, vec!["u1", "u2"]);

    // Without LATEST the write still shows up shortly (the indexer commits in the background).
    app.upsert(json!({ "externalId": "u6", "attributes": { "plan": "pro" } }))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let query = "{ contacts(segment: \"plan = \\\"pro\\\"\") { totalCount } }";
    while app.data(query, json!({})).await["contacts"]["totalCount"] != 3 {
        assert!(
            Instant::now() < deadline,
            "the write never reached the index"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = app
        .data(
            "{ indexStatus { pendingChanges lagMs documents built lastAppliedChange } }",
            json!({}),
        )
        .await;
    assert_eq!(status["indexStatus"]["pendingChanges"], 0);
    assert_eq!(status["indexStatus"]["documents"], 5);
    assert_eq!(status["indexStatus"]["built"], true);
}

#[tokio::test]
async fn segment_pages_neither_skip_nor_repeat() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    for n in 0..23 {
        app.upsert(json!({ "externalId": format!("p{n}"), "attributes": { "plan": "pro" } }))
            .await;
    }
    let query = "query($after: String) { contacts(segment: \"plan = \\\"pro\\\"\", first: 10, after: $after, consistency: LATEST) {
        totalCount edges { node { externalId } } pageInfo { hasNextPage endCursor } } }";
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    loop {
        let page = app.data(query, json!({ "after": after })).await["contacts"].clone();
        seen.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["externalId"].as_str().unwrap().to_owned()),
        );
        if seen.len() == 10 {
            // Writes during the iteration: a member changes (and must not repeat), an early member
            // leaves, and a new member joins (newer ids sort after the cursor).
            app.upsert(json!({ "externalId": "p0", "name": "changed" }))
                .await;
            app.upsert(json!({ "externalId": "p1", "attributes": { "plan": "free" } }))
                .await;
            app.upsert(json!({ "externalId": "late", "attributes": { "plan": "pro" } }))
                .await;
        }
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut expected: Vec<String> = (0..23).map(|n| format!("p{n}")).collect();
    expected.push("late".to_owned());
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn structured_input_equals_text() {
    let app = seeded().await;
    let tree = json!({ "and": [
        { "condition": { "field": "plan", "operator": "EQ", "value": { "string": "pro" } } },
        { "or": [
            { "condition": { "field": "ltv", "operator": "GE", "value": { "number": 100 } } },
            { "not": { "condition": { "field": "tags", "operator": "EXISTS" } } }
        ] }
    ] });
    let query = "query($tree: SegmentExprInput!) { contacts(where: $tree, consistency: LATEST) { totalCount edges { node { externalId } } } }";
    let data = app.data(query, json!({ "tree": tree })).await;
    let ids: Vec<&str> = data["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["u1", "u2"]);
    let text = "plan = \"pro\" and (ltv >= 100 or not tags exists)";
    assert_eq!(members(&app, text).await.0, vec!["u1", "u2"]);
    // Text converts to the same tree.
    let validation = app
        .data(
            "query($t: String!) { validateSegment(text: $t) { canonical expr } }",
            json!({ "t": text }),
        )
        .await;
    assert_eq!(validation["validateSegment"]["expr"], tree);
    assert_eq!(validation["validateSegment"]["canonical"], text);
}

#[tokio::test]
async fn validation_reports_spans_codes_and_hints() {
    let app = seeded().await;
    let query = "query($t: String!) { validateSegment(text: $t) { valid canonical count estimatedCount errors { message errorCode start end hint } } }";
    let ok = app
        .data(query, json!({ "t": "plan = \"pro\" AND ltv>=100" }))
        .await["validateSegment"]
        .clone();
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["errors"], json!([]));
    assert_eq!(ok["count"], 1);
    // The deprecated name, one release more.
    assert_eq!(ok["estimatedCount"], 1);

    let unknown =
        app.data(query, json!({ "t": "plna = \"pro\"" })).await["validateSegment"].clone();
    assert_eq!(unknown["valid"], false);
    assert_eq!(
        unknown["errors"],
        json!([{ "message": "unknown attribute `plna`, did you mean `plan`?", "errorCode": "UNKNOWN_FIELD", "start": 0, "end": 4,
                 "hint": "declare the attribute with `defineAttribute`, or check its spelling" }])
    );
    let mismatch =
        app.data(query, json!({ "t": "ltv contains \"1\"" })).await["validateSegment"]["errors"][0]
            .clone();
    assert_eq!(
        (mismatch["errorCode"].as_str(), mismatch["message"].as_str()),
        (
            Some("TYPE_MISMATCH"),
            Some("`ltv` is a number; `contains` works on text")
        )
    );
    let syntax = app.data(query, json!({ "t": "plan = " })).await["validateSegment"].clone();
    assert_eq!(syntax["errors"][0]["errorCode"], "SYNTAX");
    assert_eq!(syntax["canonical"], Value::Null);

    // Every problem at once: the parser goes on past a syntax error, and the conditions that
    // parsed are checked; the common slips come with the fix as a suggestion.
    app.define_attribute("country", "STRING").await;
    let text = "plna = \"pro\" and contry in [\"DE\",\"FR\"] and last_seen_at within 30 days";
    let all = app.data(query, json!({ "t": text })).await["validateSegment"].clone();
    let found: Vec<(String, String)> = all["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            let (start, end) = (
                error["start"].as_u64().unwrap() as usize,
                error["end"].as_u64().unwrap() as usize,
            );
            (
                error["errorCode"].as_str().unwrap().to_owned(),
                text[start..end].to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("UNKNOWN_FIELD".to_owned(), "plna".to_owned()),
            ("UNKNOWN_FIELD".to_owned(), "contry".to_owned()),
            ("SYNTAX".to_owned(), "30 days".to_owned()),
        ],
        "{all}"
    );
    assert!(
        all["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `country`?")
    );
    assert!(
        all["errors"][2]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `30d`?")
    );
    let parens = app
        .data(query, json!({ "t": "country in (\"DE\",\"FR\")" }))
        .await["validateSegment"]["errors"][0]
        .clone();
    assert!(
        parens["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `[\"DE\",\"FR\"]`?"),
        "{parens}"
    );

    let error = app
        .error(
            "{ contacts(segment: \"plna = 1\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error["extensions"]["code"], "INVALID_SEGMENT");
    assert_eq!(
        error["extensions"]["diagnostics"][0]["code"],
        "UNKNOWN_FIELD"
    );
}

const SAVE: &str = "mutation($input: UpsertSegmentInput!) { upsertSegment(input: $input) { segment { slug name text count } } }";

/// `saveSegment`, deprecated for `upsertSegment`, still saves for one release.
#[tokio::test]
async fn the_deprecated_save_segment_still_saves() {
    let app = seeded().await;
    let saved = app
        .data(
            "mutation($input: SaveSegmentInput!) { saveSegment(input: $input) { slug count } }",
            json!({ "input": { "slug": "pros", "name": "Pro plan", "text": "plan = 'pro'" } }),
        )
        .await;
    assert_eq!(saved["saveSegment"], json!({ "slug": "pros", "count": 2 }));
    let read = app
        .data("{ segment(slug: \"pros\") { name } }", json!({}))
        .await;
    assert_eq!(read["segment"]["name"], "Pro plan");
    app.stop().await;
}

#[tokio::test]
async fn saved_segments_compose_and_refuse_cycles() {
    let app = seeded().await;
    let saved = app
        .data(
            SAVE,
            json!({ "input": { "slug": "pros", "name": "Pro plan", "text": "plan = 'pro'" } }),
        )
        .await;
    assert_eq!(
        saved["upsertSegment"]["segment"],
        json!({ "slug": "pros", "name": "Pro plan", "text": "plan = \"pro\"", "count": 2 })
    );
    let big = json!({ "slug": "big-pros", "name": "Big pros", "text": "in segment \"pros\" and ltv > 100" });
    app.data(SAVE, json!({ "input": big })).await;
    let segment = app
        .data(
            "{ segment(slug: \"big-pros\") { count members { edges { node { externalId } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(segment["segment"]["count"], 1);
    assert_eq!(
        segment["segment"]["members"]["edges"][0]["node"]["externalId"],
        "u1"
    );

    let cycle = app.error(SAVE, json!({ "input": { "slug": "pros", "name": "Pro", "text": "in segment \"big-pros\"" } })).await;
    assert_eq!(cycle["extensions"]["code"], "INVALID_SEGMENT");
    assert_eq!(
        cycle["extensions"]["diagnostics"][0]["code"],
        "SEGMENT_CYCLE"
    );
    let unknown = app
        .error(
            SAVE,
            json!({ "input": { "slug": "x", "name": "X", "text": "in segment \"nope\"" } }),
        )
        .await;
    assert_eq!(
        unknown["extensions"]["diagnostics"][0]["code"],
        "UNKNOWN_SEGMENT"
    );

    let in_use = app
        .error(
            "mutation { deleteSegment(input: { slug: \"pros\" }) { deletedSlug } }",
            json!({}),
        )
        .await;
    assert_eq!(in_use["extensions"]["code"], "CONFLICT");
    app.data(
        "mutation { deleteSegment(input: { slug: \"big-pros\" }) { deletedSlug } }",
        json!({}),
    )
    .await;
    let deleted = app
        .data(
            "mutation { deleteSegment(input: { slug: \"pros\" }) { deletedSlug } }",
            json!({}),
        )
        .await;
    assert_eq!(deleted["deleteSegment"]["deletedSlug"], "pros");
    assert_eq!(
        app.data("{ segments { nodes { slug } } }", json!({})).await["segments"]["nodes"],
        json!([])
    );
    assert_eq!(
        app.error_code("{ segment(slug: \"pros\") { slug } }", json!({}))
            .await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn a_contact_knows_its_segments_and_why() {
    let app = seeded().await;
    for (slug, text) in [
        ("pros", "plan = \"pro\""),
        ("rich", "ltv >= 100"),
        ("tagged", "tags exists"),
    ] {
        app.data(
            SAVE,
            json!({ "input": { "slug": slug, "name": slug, "text": text } }),
        )
        .await;
    }
    let ada = app
        .data(
            "{ contact(externalId: \"u1\") { id segments { nodes { slug } } } }",
            json!({}),
        )
        .await["contact"]
        .clone();
    assert_eq!(
        ada["segments"]["nodes"],
        json!([{ "slug": "pros" }, { "slug": "rich" }, { "slug": "tagged" }])
    );
    let bob = app
        .data(
            "{ contact(externalId: \"u2\") { segments { nodes { slug } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        bob["contact"]["segments"]["nodes"],
        json!([{ "slug": "pros" }])
    );

    let query = "query($id: ID!) { explainMembership(contact: { id: $id }, of: { text: \"plan = 'pro' and ltv > 200\" }) {
        matched nodes { id parentId part text matched value } } }";
    let explanation =
        app.data(query, json!({ "id": ada["id"] })).await["explainMembership"].clone();
    assert_eq!(explanation["matched"], false);
    assert_eq!(
        explanation["nodes"],
        json!([
            { "id": 0, "parentId": null, "part": "AND", "text": "plan = \"pro\" and ltv > 200", "matched": false, "value": null },
            { "id": 1, "parentId": 0, "part": "CONDITION", "text": "plan = \"pro\"", "matched": true, "value": "pro" },
            { "id": 2, "parentId": 0, "part": "CONDITION", "text": "ltv > 200", "matched": false, "value": 120 }
        ])
    );
    let by_slug = app
        .data(
            "query($id: ID!) { explainMembership(contactId: $id, slug: \"rich\") { matched } }",
            json!({ "id": ada["id"] }),
        )
        .await;
    assert_eq!(by_slug["explainMembership"]["matched"], true);
    // `contactId`, `segment` and `slug` are deprecated for `contact` and `of`; the new form
    // explains a structured segment too, and takes exactly one segment.
    let by_tree = app
        .data(
            "query($id: ID!) { explainMembership(contact: { id: $id }, of: { where: { condition: { field: \"ltv\", operator: GT, value: { number: 200 } } } }) { matched } }",
            json!({ "id": ada["id"] }),
        )
        .await;
    assert_eq!(by_tree["explainMembership"]["matched"], false);
    let twice = "query($id: ID!) { explainMembership(contact: { id: $id }, of: { slug: \"rich\" }, slug: \"rich\") { matched } }";
    assert_eq!(
        app.error_code(twice, json!({ "id": ada["id"] })).await,
        "INVALID_INPUT"
    );
}

/// A saved segment lists the saved segments it names and those that name it.
#[tokio::test]
async fn saved_segments_show_what_they_use_and_what_uses_them() {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    for (slug, text) in [
        ("pro", "plan = \"pro\""),
        ("free", "plan = \"free\""),
        ("paying", "in segment \"pro\" and not in segment \"free\""),
        ("loyal", "in segment \"paying\""),
    ] {
        app.data(
            "mutation($slug: String!, $text: String!) { upsertSegment(input: {slug: $slug, name: $slug, text: $text}) { segment { slug } } }",
            json!({ "slug": slug, "text": text }),
        )
        .await;
    }
    let slugs = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    let query = "query($slug: String!) { segment(slug: $slug) { references { nodes { slug } } referencedBy { nodes { slug } } } }";
    let paying = app.data(query, json!({ "slug": "paying" })).await;
    assert_eq!(
        slugs(&paying["segment"]["references"]["nodes"]),
        ["free", "pro"]
    );
    assert_eq!(
        slugs(&paying["segment"]["referencedBy"]["nodes"]),
        ["loyal"]
    );
    let pro = app.data(query, json!({ "slug": "pro" })).await;
    assert!(slugs(&pro["segment"]["references"]["nodes"]).is_empty());
    assert_eq!(slugs(&pro["segment"]["referencedBy"]["nodes"]), ["paying"]);
}

/// A field condition names its operator and window `operator` and `within`, as an event
/// condition does; `expr` answers in those names. The old `op` and `duration` are deprecated
/// and still read; giving a field both ways is INVALID_INPUT.
#[tokio::test]
async fn a_condition_names_operator_and_window_as_event_conditions_do() {
    let app = seeded().await;
    app.data(
        "mutation { upsertSegment(input: { slug: \"recent-pros\", name: \"Recent pros\", text: \"plan = \\\"pro\\\" and updated_at within 30d\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    let expr = app
        .data("{ segment(slug: \"recent-pros\") { expr } }", json!({}))
        .await["segment"]["expr"]
        .clone();
    let conditions = expr["and"].as_array().unwrap();
    assert_eq!(conditions[0]["condition"]["operator"], "EQ", "{expr}");
    assert_eq!(conditions[1]["condition"]["operator"], "WITHIN", "{expr}");
    assert_eq!(conditions[1]["condition"]["within"], "30d", "{expr}");
    assert!(conditions[1]["condition"].get("op").is_none(), "{expr}");

    let count = "query($tree: SegmentExprInput!) { contacts(where: $tree, consistency: LATEST) { totalCount } }";
    let by_expr = app.data(count, json!({ "tree": expr })).await["contacts"]["totalCount"].clone();
    assert_eq!(by_expr, 2, "u1 and u2 are pros, both written just now");
    let old_names = json!({ "and": [
        { "condition": { "field": "plan", "op": "EQ", "value": { "string": "pro" } } },
        { "condition": { "field": "updated_at", "op": "WITHIN", "duration": "30d" } }
    ] });
    let by_old_names =
        app.data(count, json!({ "tree": old_names })).await["contacts"]["totalCount"].clone();
    assert_eq!(by_old_names, by_expr);
    for both in [
        json!({ "condition": { "field": "plan", "op": "EQ", "operator": "EQ", "value": { "string": "pro" } } }),
        json!({ "condition": { "field": "updated_at", "operator": "WITHIN", "within": "30d", "duration": "30d" } }),
        json!({ "condition": { "field": "plan", "value": { "string": "pro" } } }),
    ] {
        let error = app.error(count, json!({ "tree": both })).await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{both}: {error}"
        );
    }
}

/// Values of a field for suggestions, counted per workspace; and the hint for a literal that
/// matches nothing but differs only in case from values contacts hold.
#[tokio::test]
async fn field_values_suggest_literals_and_a_case_slip_is_hinted() {
    let app = seeded().await;
    let values = |field: &str, prefix: &str| {
        let app = &app;
        let (field, prefix) = (field.to_owned(), prefix.to_owned());
        async move {
            app.data(
                "query($f: String!, $p: String!) { fieldValues(field: $f, prefix: $p, first: 5) { value count } }",
                json!({ "f": field, "p": prefix }),
            )
            .await["fieldValues"]
                .clone()
        }
    };
    let plans = values("plan", "").await;
    assert_eq!(plans[0]["value"], "pro", "{plans}");
    assert_eq!(plans[0]["count"], 2, "{plans}");
    assert_eq!(values("plan", "fr").await.as_array().unwrap().len(), 1);
    assert_eq!(
        values("tags", "v").await,
        json!([{ "value": "vip", "count": 1 }])
    );
    for (field, code) in [("ltv", "INVALID_INPUT"), ("nope", "INVALID_INPUT")] {
        let error = app
            .error(
                "query($f: String!) { fieldValues(field: $f) { value } }",
                json!({ "f": field }),
            )
            .await;
        assert_eq!(error["extensions"]["code"], code, "{field}: {error}");
    }
    let (reader, _) = app
        .create_key(&["segments:read"], json!({ "attributes": ["ltv"] }))
        .await;
    assert_eq!(
        app.error_code_as(
            &reader,
            "{ fieldValues(field: \"plan\") { value } }",
            json!({})
        )
        .await,
        "FORBIDDEN"
    );

    let query =
        "query($t: String!) { validateSegment(text: $t) { count hints { message start end } } }";
    let text = "tags has \"VIP\"";
    let validation = app.data(query, json!({ "t": text })).await["validateSegment"].clone();
    assert_eq!(validation["count"], 0);
    let hint = &validation["hints"][0];
    assert!(
        hint["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `\"vip\"`?"),
        "{validation}"
    );
    let (start, end) = (
        hint["start"].as_u64().unwrap() as usize,
        hint["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], "\"VIP\"");
    // A literal that matches, or no variant at all: no hint.
    for quiet in ["tags has \"vip\"", "tags has \"nobody\""] {
        let validation = app.data(query, json!({ "t": quiet })).await["validateSegment"].clone();
        assert_eq!(validation["hints"], json!([]), "{quiet}: {validation}");
    }
}

/// How members spread over a field: the most held values of text and lists, bars of numbers,
/// and the members without a value; computed for a segment or for every contact.
#[tokio::test]
async fn distributions_count_members_by_value_and_by_bar() {
    let app = seeded().await;
    let query = "query($s: String, $f: String!, $b: Int) { segmentDistribution(segment: $s, field: $f, buckets: $b) { members missing values { value count } otherValues bars { low high count } } }";
    let spread = |segment: Value, field: &str, buckets: u32| {
        let app = &app;
        let field = field.to_owned();
        async move {
            app.data(query, json!({ "s": segment, "f": field, "b": buckets }))
                .await["segmentDistribution"]
                .clone()
        }
    };
    let everyone = spread(Value::Null, "plan", 10).await;
    let total = app.total_count().await;
    assert_eq!(everyone["members"], total);
    let held: u64 = everyone["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        held + everyone["missing"].as_u64().unwrap(),
        total,
        "{everyone}"
    );
    assert_eq!(everyone["values"][0], json!({ "value": "pro", "count": 2 }));

    let pros = spread(json!("plan = \"pro\""), "ltv", 2).await;
    assert_eq!(pros["members"], 2);
    let bars = pros["bars"].as_array().unwrap();
    assert_eq!(bars.len(), 2, "{pros}");
    assert_eq!(
        (bars[0]["low"].as_f64(), bars[1]["high"].as_f64()),
        (Some(80.0), Some(120.0))
    );
    assert_eq!(
        bars.iter()
            .map(|bar| bar["count"].as_u64().unwrap())
            .sum::<u64>(),
        2
    );

    let top_one = spread(Value::Null, "plan", 1).await;
    assert_eq!(top_one["values"].as_array().unwrap().len(), 1);
    assert_eq!(
        top_one["otherValues"].as_u64().unwrap(),
        held - 2,
        "the values left out are counted: {top_one}"
    );
    let error = app.error(query, json!({ "f": "vip" })).await;
    assert_eq!(
        error["extensions"]["code"], "INVALID_INPUT",
        "booleans: {error}"
    );
}
