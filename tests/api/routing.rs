//! Routing reads: which saved segments one contact is in, in one call, and members ordered by
//! a field so that a router takes the best N.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const SAVE: &str = "mutation($slug: String!, $text: String!) { upsertSegment(input: { slug: $slug, name: $slug, text: $text }) { segment { slug } } }";
const MATCH: &str = "query($id: ID, $ext: String, $slugs: [String!]) { matchSegments(contactId: $id, externalId: $ext, slugs: $slugs) { contactId slugs segments { nodes { slug } } results { nodes { slug member } } } }";

async fn routing_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.define_attribute("plan", "STRING").await;
    app.define_attribute("ltv", "NUMBER").await;
    app.define_attribute("renewal_at", "DATETIME").await;
    for (slug, text) in [
        ("pros", "plan = \"pro\""),
        ("big", "ltv >= 1000"),
        ("big-pros", "in segment \"pros\" and in segment \"big\""),
    ] {
        app.data(SAVE, json!({ "slug": slug, "text": text })).await;
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_segments_answers_for_one_contact_in_one_call() {
    let app = routing_app().await;
    let id = app
        .upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro", "ltv": 50 } }))
        .await["id"]
        .clone();

    let all = app.data(MATCH, json!({ "ext": "ann" })).await["matchSegments"].clone();
    assert_eq!(all["contactId"], id);
    assert_eq!(all["slugs"], json!(["pros"]));
    assert_eq!(all["segments"]["nodes"], json!([{ "slug": "pros" }]));

    // The given slugs, in the order given, members or not.
    let some = app
        .data(
            MATCH,
            json!({ "id": id, "slugs": ["big-pros", "pros", "big"] }),
        )
        .await["matchSegments"]
        .clone();
    assert_eq!(
        some["results"]["nodes"],
        json!([
            { "slug": "big-pros", "member": false },
            { "slug": "pros", "member": true },
            { "slug": "big", "member": false },
        ])
    );

    // A write shows at once (evaluated in memory, not read from the index).
    app.upsert(json!({ "externalId": "ann", "attributes": { "ltv": 5000 } }))
        .await;
    let after = app
        .data(MATCH, json!({ "ext": "ann", "slugs": ["big-pros", "big"] }))
        .await["matchSegments"]
        .clone();
    assert_eq!(after["slugs"], json!(["big-pros", "big"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_segments_refuses_unknown_slugs_hidden_fields_and_unknown_contacts() {
    let app = routing_app().await;
    app.upsert(json!({ "externalId": "ann", "attributes": { "plan": "pro" } }))
        .await;
    let unknown = app
        .error(MATCH, json!({ "ext": "ann", "slugs": ["pros", "nope"] }))
        .await;
    assert_eq!(unknown["extensions"]["code"], "NOT_FOUND", "{unknown}");
    assert!(unknown["message"].as_str().unwrap().contains("nope"));
    assert_eq!(
        app.error_code(MATCH, json!({ "ext": "nobody" })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        app.error_code(MATCH, json!({ "slugs": ["pros"] })).await,
        "INVALID_INPUT"
    );

    // A key that may read `plan` but not `ltv`: `big` would reveal ltv.
    let (router, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["external_id"], "attributes": ["plan"] }),
        )
        .await;
    assert_eq!(
        app.error_code_as(&router, MATCH, json!({ "ext": "ann", "slugs": ["big"] }))
            .await,
        "FORBIDDEN"
    );
    // Unasked, such segments are left out.
    let visible =
        app.data_as(&router, MATCH, json!({ "ext": "ann" })).await["matchSegments"].clone();
    assert_eq!(
        visible["results"]["nodes"],
        json!([{ "slug": "pros", "member": true }])
    );
}

async fn ordered_ids(app: &TestApp, order: Value, segment: Option<&str>, first: u32) -> Vec<Value> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .data(
                "query($order: ContactOrderInput, $segment: String, $first: Int!, $after: String) { contacts(orderBy: $order, segment: $segment, first: $first, after: $after, consistency: LATEST) { totalCount edges { cursor node { externalId } } pageInfo { hasNextPage endCursor } } }",
                json!({ "order": order, "segment": segment, "first": first, "after": after }),
            )
            .await["contacts"]
            .clone();
        for edge in page["edges"].as_array().unwrap() {
            ids.push(edge["node"]["externalId"].clone());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return ids;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_in_the_order_of_a_number_or_datetime_missing_values_last() {
    let app = routing_app().await;
    let rows = [
        ("a", Some(300.0), Some("2027-03-01T00:00:00Z"), "pro"),
        ("b", Some(-2.5), None, "pro"),
        ("c", None, Some("2026-01-01T00:00:00Z"), "pro"),
        ("d", Some(300.0), Some("2026-06-01T00:00:00Z"), "free"),
        ("e", Some(9000.0), None, "pro"),
        ("f", Some(12.0), Some("2030-01-01T00:00:00Z"), "pro"),
    ];
    for (ext, ltv, renewal, plan) in rows {
        let mut attributes = json!({ "plan": plan });
        if let Some(ltv) = ltv {
            attributes["ltv"] = json!(ltv);
        }
        if let Some(renewal) = renewal {
            attributes["renewal_at"] = json!(renewal);
        }
        app.upsert(json!({ "externalId": ext, "attributes": attributes }))
            .await;
    }
    let ltv_desc = json!({ "field": "ltv", "direction": "DESC" });
    // Pages of 2 walk the whole order without skipping or repeating (ties by id: a, d were
    // created in that order).
    assert_eq!(
        ordered_ids(&app, ltv_desc.clone(), None, 2).await,
        json!(["e", "a", "d", "f", "b", "c"])
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(
        ordered_ids(&app, json!({ "field": "ltv" }), Some("plan = \"pro\""), 100).await,
        json!(["b", "f", "a", "e", "c"]).as_array().unwrap().clone()
    );
    assert_eq!(
        ordered_ids(
            &app,
            json!({ "field": "renewal_at", "direction": "DESC" }),
            None,
            4
        )
        .await,
        json!(["f", "a", "d", "c", "b", "e"])
            .as_array()
            .unwrap()
            .clone()
    );
    let by_creation = ordered_ids(&app, json!({ "field": "createdAt" }), None, 5).await;
    assert_eq!(
        by_creation,
        json!(["a", "b", "c", "d", "e", "f"])
            .as_array()
            .unwrap()
            .clone()
    );
    // The segment spelling of a built-in still reads.
    assert_eq!(
        ordered_ids(&app, json!({ "field": "created_at" }), None, 5).await,
        by_creation
    );
    let count = app
        .data(
            "{ contacts(orderBy: { field: \"ltv\" }, segment: \"plan = \\\"pro\\\"\", first: 1) { totalCount } }",
            json!({}),
        )
        .await["contacts"]["totalCount"]
        .clone();
    assert_eq!(count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_refuses_text_unknown_and_hidden_fields() {
    let app = routing_app().await;
    app.data(
        "mutation { defineAttribute(input: { name: \"ssn\", type: STRING, sensitive: true }) { attribute { name } } }",
        json!({}),
    )
    .await;
    let query =
        "query($order: ContactOrderInput) { contacts(orderBy: $order, first: 5) { totalCount } }";
    for field in ["plan", "email", "nope", "ssn"] {
        let error = app
            .error(query, json!({ "order": { "field": field } }))
            .await;
        assert_eq!(
            error["extensions"]["code"], "INVALID_INPUT",
            "{field}: {error}"
        );
    }
    let mixed =
        "{ contacts(orderBy: { field: \"ltv\" }, search: \"ann\", first: 5) { totalCount } }";
    assert_eq!(app.error_code(mixed, json!({})).await, "INVALID_INPUT");
    let bad_cursor =
        "{ contacts(orderBy: { field: \"ltv\" }, after: \"bm9wZQ\", first: 5) { totalCount } }";
    assert_eq!(app.error_code(bad_cursor, json!({})).await, "INVALID_INPUT");

    let (router, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["external_id"], "attributes": ["plan"] }),
        )
        .await;
    assert_eq!(
        app.error_code_as(&router, query, json!({ "order": { "field": "ltv" } }))
            .await,
        "FORBIDDEN"
    );
}
