//! Merging contacts: plans, conflict rules, audit, unmerge, redirects and the segment index.

use serde_json::{Value, json};

use crate::helpers::{CONTACT_FIELDS, TestApp};

const MERGE_FIELDS: &str = "id survivorId absorbedId actor reason cause undoneAt \
    survivor { id externalId email name phone company attributes createdAt lastSeenAt mergedFrom identities { nodes { kind value } } }";

async fn merge(app: &TestApp, survivor: &Value, absorbed: &Value, strategy: Value) -> Value {
    let query = format!(
        "mutation($s: ID!, $a: ID!, $strategy: MergeStrategyInput) {{
            mergeContacts(input: {{ survivorId: $s, absorbedId: $a, strategy: $strategy }}) {{ merge {{ {MERGE_FIELDS} }} }} }}"
    );
    app.data(
        &query,
        json!({ "s": survivor["id"], "a": absorbed["id"], "strategy": strategy }),
    )
    .await["mergeContacts"]["merge"]
        .clone()
}

async fn merge_error(app: &TestApp, survivor: &Value, absorbed: &Value) -> Value {
    app.error(
        "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
        json!({ "s": survivor["id"], "a": absorbed["id"] }),
    )
    .await
}

/// Two contacts with overlapping data and attributes of every merge rule.
async fn pair(app: &TestApp) -> (Value, Value) {
    app.define_attribute("tags", "STRING_LIST").await;
    app.data(
        "mutation { a: defineAttribute(input: { name: \"visits\", type: NUMBER, mergeRule: SUM }) { attribute { name } }
                    b: defineAttribute(input: { name: \"plan\", type: STRING, mergeRule: MOST_RECENT }) { attribute { name } }
                    c: defineAttribute(input: { name: \"source\", type: STRING, mergeRule: OLDEST }) { attribute { name } }
                    d: defineAttribute(input: { name: \"color\", type: STRING }) { attribute { name } } }",
        json!({}),
    )
    .await;
    app.upsert(json!({
            "externalId": "old-crm-id", "email": "ada@example.com", "name": "A. Lovelace",
            "company": "Engines Ltd", "lastSeenAt": "2026-11-20T10:00:00Z",
            "attributes": { "tags": ["b", "c"], "visits": 3, "source": "referral", "color": "blue", "plan": "free" }
        }))
        .await;
    let survivor = app
        .upsert(json!({
            "externalId": "user-1", "name": "Ada", "lastSeenAt": "2026-11-01T10:00:00Z",
            "attributes": { "tags": ["a", "b"], "visits": 2, "source": "ads", "color": "red" }
        }))
        .await;
    // The absorbed contact is updated last, so its plan is the most recent.
    let absorbed = app
        .upsert(json!({ "externalId": "old-crm-id", "attributes": { "plan": "pro" } }))
        .await;
    (survivor, absorbed)
}

#[tokio::test]
async fn merge_rules_decide_field_by_field_and_preview_equals_merge() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    let preview = app
        .data(
            "query($s: ID!, $a: ID!) { previewMerge(survivorId: $s, absorbedId: $a,
                strategy: { externalId: SURVIVOR }) {
                survivorId absorbedId result { name email company externalId attributes createdAt lastSeenAt }
                fields { field isAttribute value source rule } } }",
            json!({ "s": survivor["id"], "a": absorbed["id"] }),
        )
        .await["previewMerge"]
        .clone();
    let decision = |field: &str| {
        preview["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["field"] == field)
            .unwrap_or_else(|| panic!("no decision for {field}"))
            .clone()
    };
    let expect = |field: &str, value: Value, source: &str, rule: &str| {
        let d = decision(field);
        assert_eq!(
            (d["value"].clone(), d["source"].as_str(), d["rule"].as_str()),
            (value, Some(source), Some(rule)),
            "{field}: {d:#}"
        );
    };
    expect("name", json!("Ada"), "SURVIVOR", "SURVIVOR");
    expect("email", json!("ada@example.com"), "ABSORBED", "SURVIVOR");
    expect("company", json!("Engines Ltd"), "ABSORBED", "SURVIVOR");
    expect("phone", Value::Null, "NEITHER", "SURVIVOR");
    expect("externalId", json!("user-1"), "SURVIVOR", "STRATEGY");
    expect(
        "lastSeenAt",
        json!("2026-11-20T10:00:00+00:00"),
        "ABSORBED",
        "LATEST",
    );
    expect(
        "createdAt",
        absorbed["createdAt"].clone(),
        "ABSORBED",
        "EARLIEST",
    );
    expect("tags", json!(["a", "b", "c"]), "BOTH", "UNION");
    expect("visits", json!(5), "BOTH", "SUM");
    expect("plan", json!("pro"), "ABSORBED", "MOST_RECENT");
    expect("source", json!("referral"), "ABSORBED", "OLDEST");
    expect("color", json!("red"), "SURVIVOR", "SURVIVOR");
    assert!(decision("tags")["isAttribute"].as_bool().unwrap());

    // Nothing was written by the preview.
    assert_eq!(app.total_count().await, 2);
    let merged = merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "SURVIVOR" }),
    )
    .await;
    let result = &merged["survivor"];
    for field in [
        "name",
        "email",
        "company",
        "externalId",
        "attributes",
        "createdAt",
        "lastSeenAt",
    ] {
        assert_eq!(
            result[field], preview["result"][field],
            "{field}: the merge applies the preview"
        );
    }
    assert_eq!(merged["reason"], "merge");
    assert_eq!(merged["cause"], "REQUESTED");
    let admin_key = app.data("{ apiKeys { nodes { id } } }", json!({})).await["apiKeys"]["nodes"]
        [0]["id"]
        .clone();
    assert_eq!(merged["actor"], admin_key, "the acting API key is recorded");
    assert_eq!(result["mergedFrom"], json!([absorbed["id"]]));
    assert_eq!(app.total_count().await, 1);

    // Both external ids resolve to the survivor; the absorbed id redirects.
    for external_id in ["user-1", "old-crm-id"] {
        let query = format!("{{ contact(externalId: \"{external_id}\") {{ id }} }}");
        assert_eq!(
            app.data(&query, json!({})).await["contact"]["id"],
            survivor["id"]
        );
    }
    assert_eq!(
        app.contact(absorbed["id"].as_str().unwrap()).await["id"],
        survivor["id"]
    );
    // A later upsert by the absorbed external id updates the survivor, creating nothing.
    let upserted = app
        .upsert(json!({ "externalId": "old-crm-id", "phone": "+49 30 1234567" }))
        .await;
    assert_eq!(upserted["id"], survivor["id"]);
    assert_eq!(app.total_count().await, 1);
}

#[tokio::test]
async fn conflicting_external_ids_and_bad_pairs_are_refused_without_writes() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    let error = merge_error(&app, &survivor, &absorbed).await;
    assert_eq!(error["extensions"]["code"], "CONFLICT");
    assert!(
        error["message"].as_str().unwrap().contains("externalId"),
        "{error:#}"
    );
    assert_eq!(
        merge_error(&app, &survivor, &survivor).await["extensions"]["code"],
        "INVALID_INPUT"
    );
    let missing = json!({ "id": "01JD0000000000000000000000" });
    assert_eq!(
        merge_error(&app, &survivor, &missing).await["extensions"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(app.total_count().await, 2);
    let after = app.contact(absorbed["id"].as_str().unwrap()).await;
    assert_eq!(after["externalId"], "old-crm-id");

    // With a strategy the absorbed id can win; merging into the absorbed contact then fails.
    let merged = merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "ABSORBED" }),
    )
    .await;
    assert_eq!(merged["survivor"]["externalId"], "old-crm-id");
    let third = app.upsert(json!({ "externalId": "third" })).await;
    let error = merge_error(&app, &absorbed, &third).await;
    assert_eq!(error["extensions"]["code"], "CONFLICT", "{error:#}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("was merged into")
    );
    let error = merge_error(&app, &third, &absorbed).await;
    assert_eq!(error["extensions"]["code"], "CONFLICT", "{error:#}");
}

#[tokio::test]
async fn unmerge_restores_both_contacts() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    let merged = merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "SURVIVOR" }),
    )
    .await;
    let query = "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id undoneAt undoneBy } } }";
    let undone =
        app.data(query, json!({ "m": merged["id"] })).await["unmergeContacts"]["merge"].clone();
    assert!(undone["undoneAt"].is_string());
    assert_eq!(app.total_count().await, 2);
    let strip = |mut contact: Value| {
        let object = contact.as_object_mut().unwrap();
        object.remove("updatedAt");
        contact
    };
    for before in [&survivor, &absorbed] {
        let now = app.contact(before["id"].as_str().unwrap()).await;
        assert_eq!(strip(now), strip(before.clone()), "restored as it was");
    }
    for (external_id, owner) in [("user-1", &survivor), ("old-crm-id", &absorbed)] {
        let query = format!(
            "{{ contact(externalId: \"{external_id}\") {{ id identities {{ nodes {{ value }} }} mergedFrom }} }}"
        );
        let found = app.data(&query, json!({})).await["contact"].clone();
        assert_eq!(
            found["id"], owner["id"],
            "{external_id} resolves to its own contact again"
        );
        assert_eq!(found["mergedFrom"], json!([]));
    }
    assert_eq!(
        app.error_code(query, json!({ "m": merged["id"] })).await,
        "CONFLICT",
        "undone twice"
    );
    let history = app
        .data(
            "query($id: ID!) { contactHistory(id: $id) { nodes { id undoneAt } } }",
            json!({ "id": absorbed["id"] }),
        )
        .await;
    assert!(history["contactHistory"]["nodes"][0]["undoneAt"].is_string());
}

#[tokio::test]
async fn unmerge_refuses_to_lose_later_changes() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    let merged = merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "SURVIVOR" }),
    )
    .await;
    app.upsert(json!({ "externalId": "user-1", "name": "Ada Lovelace" }))
        .await;
    let query = "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }";
    let error = app.error(query, json!({ "m": merged["id"] })).await;
    assert_eq!(error["extensions"]["code"], "CONFLICT");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("changed after merge"),
        "{error:#}"
    );
    assert_eq!(app.total_count().await, 1, "nothing was restored");
    assert_eq!(
        app.error_code(query, json!({ "m": "01JD0000000000000000000000" }))
            .await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn segments_see_merges() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    let members = |segment: &'static str| {
        let app = &app;
        async move {
            let query = "query($s: String!) { contacts(segment: $s, consistency: LATEST) { edges { node { id } } } }";
            app.data(query, json!({ "s": segment })).await["contacts"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|edge| edge["node"]["id"].clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        members("tags has \"c\"").await,
        vec![absorbed["id"].clone()]
    );
    merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "SURVIVOR" }),
    )
    .await;
    assert_eq!(
        members("tags has \"c\"").await,
        vec![survivor["id"].clone()],
        "merged attributes count"
    );
    assert_eq!(members("visits = 5").await, vec![survivor["id"].clone()]);
    assert_eq!(
        members("visits exists").await,
        vec![survivor["id"].clone()],
        "the absorbed contact left"
    );
    let segments = app
        .data(
            "mutation { upsertSegment(input: { slug: \"referred\", name: \"Referred\", text: \"source = \\\"referral\\\"\" }) { segment { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(segments["upsertSegment"]["segment"]["slug"], "referred");
    let query = format!(
        "query($id: ID!) {{ contact(id: $id) {{ {CONTACT_FIELDS} segments {{ nodes {{ slug }} }} }} }}"
    );
    let contact = app.data(&query, json!({ "id": absorbed["id"] })).await["contact"].clone();
    assert_eq!(contact["id"], survivor["id"]);
    assert_eq!(
        contact["segments"]["nodes"],
        json!([{ "slug": "referred" }])
    );
}

#[tokio::test]
async fn deleting_a_survivor_purges_its_identities_aliases_and_history() {
    let app = TestApp::spawn().await;
    let (survivor, absorbed) = pair(&app).await;
    merge(
        &app,
        &survivor,
        &absorbed,
        json!({ "externalId": "SURVIVOR" }),
    )
    .await;
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": survivor["id"] }),
    )
    .await;
    for id in [&survivor["id"], &absorbed["id"]] {
        let query = "query($id: ID!) { contact(id: $id) { id } }";
        assert_eq!(
            app.error_code(query, json!({ "id": id })).await,
            "NOT_FOUND"
        );
        let history = app
            .data(
                "query($id: ID!) { contactHistory(id: $id) { nodes { id } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(history["contactHistory"]["nodes"], json!([]));
    }
    // The external ids are free again.
    let fresh = app.upsert(json!({ "externalId": "old-crm-id" })).await;
    assert_ne!(fresh["id"], absorbed["id"]);
    assert_eq!(app.total_count().await, 1);
}
