//! Conversation history and events: recorded idempotently, read newest first in pages, moved
//! by merges and back by unmerges, deleted and exported with their contact.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const RECORD_CONVERSATION: &str = "mutation($input: RecordConversationInput!) { recordConversation(input: $input) { outcome conversation { id contactId channel startedAt endedAt summary outcome } } }";
const RECORD_EVENT: &str = "mutation($input: RecordEventInput!) { recordEvent(input: $input) { outcome event { id contactId name at properties } } }";
const ACTIVITY: &str = "query($id: ID!, $first: Int, $after: String, $name: String) { contact(id: $id) { conversationCount lastConversationAt conversations(first: $first, after: $after) { edges { cursor node { id startedAt } } pageInfo { hasNextPage endCursor } } events(first: $first, after: $after, name: $name) { nodes { id name } pageInfo { hasNextPage endCursor } } } }";

async fn conversation(app: &TestApp, input: Value) -> Value {
    app.data(RECORD_CONVERSATION, json!({ "input": input }))
        .await["recordConversation"]
        .clone()
}

async fn event(app: &TestApp, input: Value) -> Value {
    app.data(RECORD_EVENT, json!({ "input": input })).await["recordEvent"].clone()
}

fn ids(connection: &Value, list: &str) -> Vec<String> {
    let items = match list {
        "edges" => connection["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"].clone())
            .collect::<Vec<_>>(),
        _ => connection["nodes"].as_array().unwrap().clone(),
    };
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_are_recorded_once_and_read_newest_first() {
    let app = TestApp::spawn().await;
    let ann = app.upsert(json!({ "externalId": "ann" })).await;
    let id = ann["id"].as_str().unwrap();
    for (n, day) in [(1, "01"), (2, "03"), (3, "02")] {
        let recorded = conversation(
            &app,
            json!({ "externalId": "ann", "conversationId": format!("conv-{n}"), "channel": "web",
                    "startedAt": format!("2026-11-{day}T10:00:00Z"), "summary": "Asked about\nrefunds" }),
        )
        .await;
        assert_eq!(recorded["outcome"], "CREATED");
        assert_eq!(recorded["conversation"]["contactId"], id);
    }
    // The same again changes nothing; an end later updates it.
    let same = conversation(
        &app,
        json!({ "externalId": "ann", "conversationId": "conv-1", "channel": "web",
                "startedAt": "2026-11-01T10:00:00Z", "summary": "Asked about\nrefunds" }),
    )
    .await;
    assert_eq!(same["outcome"], "UNCHANGED");
    let ended = conversation(
        &app,
        json!({ "contactId": id, "conversationId": "conv-1", "channel": "web",
                "startedAt": "2026-11-01T10:00:00Z", "endedAt": "2026-11-01T10:20:00Z",
                "summary": "Asked about\nrefunds", "outcome": "resolved" }),
    )
    .await;
    assert_eq!(ended["outcome"], "UPDATED");
    assert_eq!(ended["conversation"]["outcome"], "resolved");

    let first = app.data(ACTIVITY, json!({ "id": id, "first": 2 })).await["contact"].clone();
    assert_eq!(first["conversationCount"], 3);
    assert_eq!(first["lastConversationAt"], "2026-11-03T10:00:00+00:00");
    assert_eq!(ids(&first["conversations"], "edges"), ["conv-2", "conv-3"]);
    assert_eq!(first["conversations"]["pageInfo"]["hasNextPage"], true);
    let after = first["conversations"]["pageInfo"]["endCursor"].clone();
    let rest = app
        .data(ACTIVITY, json!({ "id": id, "first": 2, "after": after }))
        .await["contact"]["conversations"]
        .clone();
    assert_eq!(ids(&rest, "edges"), ["conv-1"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);

    // Moving a start re-counts the latest conversation.
    conversation(
        &app,
        json!({ "externalId": "ann", "conversationId": "conv-2", "startedAt": "2026-10-01T10:00:00Z" }),
    )
    .await;
    let moved = app.data(ACTIVITY, json!({ "id": id })).await["contact"].clone();
    assert_eq!(moved["conversationCount"], 3);
    assert_eq!(moved["lastConversationAt"], "2026-11-02T10:00:00+00:00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_idempotent_by_id_and_filter_by_name() {
    let app = TestApp::spawn().await;
    let id = app.upsert(json!({ "externalId": "ann" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let purchase = json!({ "externalId": "ann", "eventId": "order-1", "name": "purchase",
                           "at": "2026-11-05T09:00:00Z", "properties": { "sku": "A1", "total": 42.5 } });
    assert_eq!(event(&app, purchase.clone()).await["outcome"], "CREATED");
    let again = event(&app, purchase).await;
    assert_eq!(again["outcome"], "UNCHANGED");
    assert_eq!(again["event"]["properties"]["total"], 42.5);
    event(
        &app,
        json!({ "contactId": id, "name": "page.view", "at": "2026-11-06T09:00:00Z" }),
    )
    .await;
    event(
        &app,
        json!({ "contactId": id, "eventId": "order-2", "name": "purchase", "at": "2026-11-07T09:00:00Z" }),
    )
    .await;
    let all = app.data(ACTIVITY, json!({ "id": id })).await["contact"]["events"].clone();
    let names: Vec<&str> = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["purchase", "page.view", "purchase"]);
    let purchases = app
        .data(
            ACTIVITY,
            json!({ "id": id, "name": "purchase", "first": 1 }),
        )
        .await["contact"]["events"]
        .clone();
    assert_eq!(ids(&purchases, "nodes"), ["order-2"]);
    let after = purchases["pageInfo"]["endCursor"].clone();
    let older = app
        .data(
            ACTIVITY,
            json!({ "id": id, "name": "purchase", "after": after }),
        )
        .await["contact"]["events"]
        .clone();
    assert_eq!(ids(&older, "nodes"), ["order-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_move_activity_to_the_survivor_and_unmerges_bring_it_back() {
    let app = TestApp::spawn().await;
    let customer = app.upsert(json!({ "externalId": "ann" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A visitor first seen through a conversation.
    let visitor = conversation(
        &app,
        json!({ "anonymousId": "anon-7", "conversationId": "v-1", "startedAt": "2026-11-02T08:00:00Z" }),
    )
    .await["conversation"]["contactId"]
    .as_str()
    .unwrap()
    .to_owned();
    assert_ne!(visitor, customer);
    event(
        &app,
        json!({ "anonymousId": "anon-7", "name": "page.view" }),
    )
    .await;
    conversation(
        &app,
        json!({ "externalId": "ann", "conversationId": "c-1", "startedAt": "2026-11-01T08:00:00Z" }),
    )
    .await;

    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": customer, "a": visitor }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    let merged = app.data(ACTIVITY, json!({ "id": customer })).await["contact"].clone();
    assert_eq!(merged["conversationCount"], 2);
    assert_eq!(merged["lastConversationAt"], "2026-11-02T08:00:00+00:00");
    assert_eq!(ids(&merged["conversations"], "edges"), ["v-1", "c-1"]);
    assert_eq!(merged["events"]["nodes"].as_array().unwrap().len(), 1);
    // Recorded against the absorbed id after the merge: the survivor's, and it stays.
    conversation(
        &app,
        json!({ "contactId": visitor, "conversationId": "c-2", "startedAt": "2026-11-03T08:00:00Z" }),
    )
    .await;

    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merge }),
    )
    .await;
    let survivor = app.data(ACTIVITY, json!({ "id": customer })).await["contact"].clone();
    assert_eq!(ids(&survivor["conversations"], "edges"), ["c-2", "c-1"]);
    assert_eq!(survivor["conversationCount"], 2);
    assert_eq!(survivor["events"]["nodes"], json!([]));
    let restored = app.data(ACTIVITY, json!({ "id": visitor })).await["contact"].clone();
    assert_eq!(ids(&restored["conversations"], "edges"), ["v-1"]);
    assert_eq!(restored["conversationCount"], 1);
    assert_eq!(restored["events"]["nodes"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_is_exported_and_deleted_with_its_contact() {
    let app = TestApp::spawn().await;
    let id = app.upsert(json!({ "externalId": "ann" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    conversation(
        &app,
        json!({ "externalId": "ann", "conversationId": "c-1", "startedAt": "2026-11-01T08:00:00Z", "summary": "hello" }),
    )
    .await;
    event(
        &app,
        json!({ "externalId": "ann", "eventId": "e-1", "name": "signup" }),
    )
    .await;
    let export = app
        .data(
            "query($id: ID!) { exportContactData(id: $id) }",
            json!({ "id": id }),
        )
        .await["exportContactData"]
        .clone();
    assert_eq!(export["conversations"][0]["summary"], "hello");
    assert_eq!(export["events"][0]["id"], "e-1");

    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": id }),
    )
    .await;
    // A contact created again under the same external id starts without history, and the
    // old ids are free.
    let again = app.upsert(json!({ "externalId": "ann" })).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = app.data(ACTIVITY, json!({ "id": again })).await["contact"].clone();
    assert_eq!(fresh["conversationCount"], 0);
    assert_eq!(fresh["conversations"]["edges"], json!([]));
    assert_eq!(
        event(
            &app,
            json!({ "externalId": "ann", "eventId": "e-1", "name": "signup" })
        )
        .await["outcome"],
        "CREATED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_activity_input_gets_coded_errors_and_keys_see_what_they_may() {
    let app = TestApp::spawn().await;
    app.upsert(json!({ "externalId": "ann" })).await;
    app.upsert(json!({ "externalId": "bob" })).await;
    let start = "2026-11-01T08:00:00Z";
    let cases = [
        (
            RECORD_CONVERSATION,
            json!({ "externalId": "ann", "conversationId": "has space", "startedAt": start }),
            "INVALID_INPUT",
        ),
        (
            RECORD_CONVERSATION,
            json!({ "externalId": "ann", "anonymousId": "a1", "conversationId": "c", "startedAt": start }),
            "INVALID_INPUT",
        ),
        (
            RECORD_CONVERSATION,
            json!({ "externalId": "ann", "conversationId": "c", "startedAt": start, "endedAt": "2026-10-01T00:00:00Z" }),
            "INVALID_INPUT",
        ),
        (
            RECORD_CONVERSATION,
            json!({ "externalId": "nobody", "conversationId": "c", "startedAt": start }),
            "NOT_FOUND",
        ),
        (
            RECORD_EVENT,
            json!({ "externalId": "ann", "name": "Bad Name" }),
            "INVALID_INPUT",
        ),
        (
            RECORD_EVENT,
            json!({ "externalId": "ann", "name": "ok", "properties": [1, 2] }),
            "INVALID_INPUT",
        ),
    ];
    for (query, input, code) in cases {
        let error = app.error(query, json!({ "input": input })).await;
        assert_eq!(error["extensions"]["code"], code, "{input}: {error}");
    }
    conversation(
        &app,
        json!({ "externalId": "ann", "conversationId": "shared", "startedAt": start }),
    )
    .await;
    assert_eq!(
        app.error_code(
            RECORD_CONVERSATION,
            json!({ "input": { "externalId": "bob", "conversationId": "shared", "startedAt": start } })
        )
        .await,
        "CONFLICT"
    );

    // A chat backend's key records for visitors only.
    let (widget, _) = app.create_key(&["identity:write"], Value::Null).await;
    let by_visitor = json!({ "input": { "anonymousId": "anon-1", "conversationId": "w-1", "startedAt": start } });
    assert_eq!(
        app.data_as(&widget, RECORD_CONVERSATION, by_visitor).await["recordConversation"]["outcome"],
        "CREATED"
    );
    let by_customer =
        json!({ "input": { "externalId": "ann", "conversationId": "w-2", "startedAt": start } });
    assert_eq!(
        app.error_code_as(&widget, RECORD_CONVERSATION, by_customer)
            .await,
        "FORBIDDEN"
    );

    // A key whose policy does not approve `conversations` sees none.
    let (router, _) = app
        .create_key(&["contacts:read"], json!({ "fields": ["external_id"] }))
        .await;
    let seen = app
        .data_as(
            &router,
            "{ contact(externalId: \"ann\") { conversationCount conversations { edges { node { id } } } } }",
            json!({}),
        )
        .await["contact"]
        .clone();
    assert_eq!(seen["conversationCount"], Value::Null);
    assert_eq!(seen["conversations"]["edges"], json!([]));
}

/// The external ids of the contacts a query lists, in its order.
/// The external ids of the members of `segment`, sorted, once every earlier write is in.
async fn members_of(app: &TestApp, segment: &str) -> Vec<String> {
    let query = format!(
        "{{ contacts(segment: {segment:?}, first: 10, consistency: LATEST) {{ nodes {{ externalId }} }} }}"
    );
    let mut ids = external_ids(&app.data(&query, json!({})).await["contacts"]);
    ids.sort();
    ids
}

fn external_ids(contacts: &Value) -> Vec<String> {
    contacts["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["externalId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_test_and_order_by_activity() {
    let app = TestApp::spawn().await;
    // ann: two conversations, first seen at the earlier one; bob: one, but a visit before
    // it; cid: a visit only; dan: nothing.
    app.upsert(json!({ "externalId": "ann" })).await;
    app.upsert(json!({ "externalId": "bob", "lastSeenAt": "2026-10-01T00:00:00Z" }))
        .await;
    app.upsert(json!({ "externalId": "cid", "lastSeenAt": "2026-11-20T00:00:00Z" }))
        .await;
    app.upsert(json!({ "externalId": "dan" })).await;
    for (who, id, at) in [
        ("ann", "a-1", "2026-11-05T09:00:00Z"),
        ("ann", "a-2", "2026-11-15T09:00:00Z"),
        ("bob", "b-1", "2026-11-10T09:00:00Z"),
    ] {
        conversation(
            &app,
            json!({ "externalId": who, "conversationId": id, "startedAt": at }),
        )
        .await;
    }
    // A later visit moves lastSeenAt, not the first sighting.
    app.upsert(json!({ "externalId": "bob", "lastSeenAt": "2026-11-25T00:00:00Z" }))
        .await;

    let members = |segment: &'static str| members_of(&app, segment);
    assert_eq!(members("conversation_count >= 2").await, ["ann"]);
    assert_eq!(members("conversation_count = 0").await, ["cid", "dan"]);
    assert_eq!(
        members("last_conversation_at after 2026-11-12").await,
        ["ann"]
    );
    assert_eq!(members("last_conversation_at exists").await, ["ann", "bob"]);
    assert_eq!(
        members("first_seen_at before 2026-11-06").await,
        ["ann", "bob"]
    );
    assert_eq!(members("not first_seen_at exists").await, ["dan"]);
    // The evaluator agrees with the index (matchSegments tests one contact in memory).
    app.data(
        "mutation { upsertSegment(input: { slug: \"regulars\", name: \"Regulars\", text: \"conversation_count >= 2\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    let matched = app
        .data(
            "{ matchSegments(externalId: \"ann\", slugs: [\"regulars\"]) { slugs } }",
            json!({}),
        )
        .await;
    assert_eq!(matched["matchSegments"]["slugs"], json!(["regulars"]));

    let first_two_by = |field: &str| {
        let query = format!(
            "{{ contacts(orderBy: {{ field: {field:?}, direction: DESC }}, first: 4, consistency: LATEST) {{ nodes {{ externalId }} }} }}"
        );
        let app = &app;
        async move { external_ids(&app.data(&query, json!({})).await["contacts"])[..2].to_vec() }
    };
    assert_eq!(first_two_by("conversation_count").await, ["ann", "bob"]);
    // Contacts without a value come last.
    assert_eq!(first_two_by("last_conversation_at").await, ["ann", "bob"]);

    let seen = app
        .data(
            "{ contact(externalId: \"bob\") { firstSeenAt lastSeenAt conversationCount } }",
            json!({}),
        )
        .await["contact"]
        .clone();
    assert_eq!(seen["firstSeenAt"], "2026-10-01T00:00:00+00:00");
    assert_eq!(seen["lastSeenAt"], "2026-11-25T00:00:00+00:00");
    assert_eq!(seen["conversationCount"], 1);

    // Testing activity needs the `conversations` field; a first sighting, `last_seen_at`.
    let (router, _) = app
        .create_key(
            &["contacts:read", "segments:read"],
            json!({ "fields": ["external_id", "last_seen_at"] }),
        )
        .await;
    let segment_query = |segment: &str| {
        format!(
            "{{ contacts(segment: {segment:?}, first: 1, consistency: LATEST) {{ totalCount }} }}"
        )
    };
    assert_eq!(
        app.error_code_as(&router, &segment_query("conversation_count > 0"), json!({}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        app.data_as(&router, &segment_query("first_seen_at exists"), json!({}))
            .await["contacts"]["totalCount"],
        3
    );
    // Built-in names are reserved for attributes.
    assert_eq!(
        app.error_code(
            "mutation { defineAttribute(input: { name: \"conversation_count\", type: NUMBER }) { attribute { name } } }",
            json!({})
        )
        .await,
        "INVALID_ATTRIBUTE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_take_the_earlier_first_sighting_and_unmerges_give_it_back() {
    let app = TestApp::spawn().await;
    let customer = app
        .upsert(json!({ "externalId": "ann", "lastSeenAt": "2026-11-10T00:00:00Z" }))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = conversation(
        &app,
        json!({ "anonymousId": "anon-9", "conversationId": "v-1", "startedAt": "2026-11-02T08:00:00Z" }),
    )
    .await["conversation"]["contactId"]
    .as_str()
    .unwrap()
    .to_owned();
    let first_seen = |id: String| {
        let app = &app;
        async move {
            app.data(
                "query($id: ID!) { contact(id: $id) { firstSeenAt } }",
                json!({ "id": id }),
            )
            .await["contact"]["firstSeenAt"]
                .clone()
        }
    };
    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": customer, "a": visitor }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    assert_eq!(
        first_seen(customer.clone()).await,
        "2026-11-02T08:00:00+00:00"
    );
    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merge }),
    )
    .await;
    assert_eq!(first_seen(customer).await, "2026-11-10T00:00:00+00:00");
    assert_eq!(first_seen(visitor).await, "2026-11-02T08:00:00+00:00");
}

#[tokio::test]
async fn events_import_records_ndjson_lines_and_reports_bad_ones_by_line() {
    let app = TestApp::spawn().await;
    let ann = app.upsert(json!({ "externalId": "ann" })).await["id"].clone();
    let body = [
        json!({ "externalId": "ann", "name": "purchase", "eventId": "o-1", "at": "2026-11-01T10:00:00Z", "properties": { "total": 42 } }).to_string(),
        json!({ "contactId": ann, "name": "purchase", "eventId": "o-2" }).to_string(),
        String::new(),
        "{ not json".to_owned(),
        json!({ "externalId": "ann", "name": "Bad Name" }).to_string(),
        json!({ "externalId": "ann", "name": "purchase", "colour": "red" }).to_string(),
        json!({ "contactId": "01JD0000000000000000000000", "name": "purchase" }).to_string(),
        json!({ "anonymousId": "visitor-7", "name": "page.view" }).to_string(),
    ]
    .join("\n");
    let post = |body: String| {
        app.client
            .post(app.url("/v1/events/import"))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let report: Value = post(body.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(report["rows"], 7, "{report}");
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["failed"], 4, "{report}");
    assert_eq!(
        crate::bulk::row_errors(&report),
        [
            (4, "INVALID_INPUT"),
            (5, "INVALID_INPUT"),
            (6, "INVALID_INPUT"),
            (7, "NOT_FOUND"),
        ],
        "{report}"
    );
    let events = app
        .data(
            ACTIVITY,
            json!({ "id": ann, "first": 10, "name": "purchase" }),
        )
        .await;
    let names: Vec<&str> = events["contact"]["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["o-2", "o-1"], "newest first: {events}");

    // Sending the same file again records nothing twice: events with ids are unchanged.
    let again: Value = post(body).await.unwrap().json().await.unwrap();
    assert_eq!(again["unchanged"], 2, "{again}");
    assert_eq!(
        again["created"], 1,
        "the events without an id are new each time: {again}"
    );

    // A key that may not record activity is refused as a whole.
    let (reader, _) = app.create_key(&["contacts:read"], Value::Null).await;
    let refused = crate::helpers::client_with_key(&reader)
        .post(app.url("/v1/events/import"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_test_events_by_count_and_window_and_merges_add_them_up() {
    let app = TestApp::spawn().await;
    for who in ["ann", "bob", "cid"] {
        app.upsert(json!({ "externalId": who })).await;
    }
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(2)).to_rfc3339();
    for (who, id, at) in [
        ("ann", "o-1", recent.as_str()),
        ("ann", "o-2", recent.as_str()),
        ("bob", "o-3", "2026-01-10T09:00:00Z"),
    ] {
        event(
            &app,
            json!({ "externalId": who, "eventId": id, "name": "purchase", "at": at }),
        )
        .await;
    }
    event(&app, json!({ "externalId": "cid", "name": "page.view" })).await;
    let members = |segment: &'static str| members_of(&app, segment);
    assert_eq!(members(r#"event "purchase" exists"#).await, ["ann", "bob"]);
    assert_eq!(members(r#"event "purchase" not exists"#).await, ["cid"]);
    assert_eq!(members(r#"event "purchase" count >= 2"#).await, ["ann"]);
    assert_eq!(members(r#"event "purchase" count = 1"#).await, ["bob"]);
    assert_eq!(members(r#"event "purchase" within 30d"#).await, ["ann"]);
    assert_eq!(
        members(r#"event "purchase" count >= 2 within 7d"#).await,
        ["ann"]
    );
    assert_eq!(
        members(r#"event "purchase" count < 2 within 7d"#).await,
        ["bob", "cid"]
    );
    assert_eq!(
        members(r#"event "page.view" exists and not event "purchase" exists"#).await,
        ["cid"]
    );

    // The structured input builders send means the same.
    let tree = json!({ "event": { "name": "purchase", "test": "COUNT", "operator": "GE", "count": 2, "within": "7d" } });
    let structured = app
        .data(
            "query($tree: SegmentExprInput!) { contacts(where: $tree, consistency: LATEST) { nodes { externalId } } }",
            json!({ "tree": tree }),
        )
        .await;
    assert_eq!(external_ids(&structured["contacts"]), ["ann"]);

    // A merge adds the absorbed contact's events to the survivor's.
    let id_of = |who: &'static str| {
        let app = &app;
        async move {
            app.data(
                "query($e: String!) { contact(externalId: $e) { id } }",
                json!({ "e": who }),
            )
            .await["contact"]["id"]
                .clone()
        }
    };
    let (bob, cid) = (id_of("bob").await, id_of("cid").await);
    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a, strategy: { externalId: SURVIVOR } }) { merge { id } } }",
            json!({ "s": cid, "a": bob }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    assert_eq!(members(r#"event "purchase" count = 1"#).await, ["cid"]);
    // Undoing it takes them back.
    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merge }),
    )
    .await;
    assert_eq!(members(r#"event "purchase" count = 1"#).await, ["bob"]);
    assert_eq!(members(r#"event "page.view" exists"#).await, ["cid"]);

    // Mistakes get coded diagnostics with a span and a hint.
    let query = "query($s: String!) { contacts(segment: $s) { totalCount } }";
    let misspelt = app
        .error(query, json!({ "s": "event \"purchase\" cont >= 2" }))
        .await;
    assert_eq!(
        misspelt["extensions"]["code"], "INVALID_SEGMENT",
        "{misspelt}"
    );
    assert!(
        misspelt.to_string().contains("did you mean `count`?"),
        "{misspelt}"
    );
    let too_many = app
        .error(
            query,
            json!({ "s": "event \"purchase\" count >= 50 within 30d" }),
        )
        .await;
    assert_eq!(
        too_many["extensions"]["code"], "INVALID_SEGMENT",
        "{too_many}"
    );
    app.stop().await;
}
