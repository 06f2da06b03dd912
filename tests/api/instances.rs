//! Two service instances over one SurrealDB server (one database), each with its own index:
//! what one writes reaches the other's segment results, catalogue changes (attributes, saved
//! segments, new keys, field policies, key revocations) reach the other, and concurrent writers on both keep one contact
//! per external id.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::test_store::server_database;

/// How long the other instance may take in this test (the aim is 1 s; a loaded CI machine
/// gets some slack).
const CONVERGE_WITHIN: Duration = Duration::from_secs(5);

/// Fetches with `fetch` until `done` holds of what it got, within [`CONVERGE_WITHIN`].
async fn poll_until<T: std::fmt::Debug, F: Future<Output = T>>(
    what: &str,
    fetch: impl Fn() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let got = fetch().await;
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what}: {got:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `query` on `app` until `done` holds of its answer.
async fn eventually(app: &TestApp, what: &str, query: &str, done: impl Fn(&Value) -> bool) {
    poll_until(what, || app.graphql(query, json!({})), done).await;
}

/// Two instances over one new server database (an index directory each, kept by the returned
/// guards), with the attribute `plan` and the saved segment `pros` (`plan = "pro"`) made on the
/// first and arrived at the second.
async fn two_instances_with_pros() -> (TestApp, TestApp, [tempfile::TempDir; 2]) {
    let store = server_database();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = TestApp::spawn_on(store.clone(), dirs[0].path().to_owned()).await;
    let b = TestApp::spawn_on(store, dirs[1].path().to_owned()).await;
    a.define_attribute("plan", "STRING").await;
    a.data(
        "mutation { upsertSegment(input: { slug: \"pros\", name: \"Pros\", text: \"plan = \\\"pro\\\"\" }) { segment { slug } } }",
        json!({}),
    )
    .await;
    eventually(
        &b,
        "the segment reaches b",
        "{ segments { nodes { slug } } }",
        |data| data["data"]["segments"]["nodes"] == json!([{ "slug": "pros" }]),
    )
    .await;
    (a, b, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_over_one_server_converge() {
    let (a, b, _dirs) = two_instances_with_pros().await;
    eventually(
        &b,
        "the attribute reaches b",
        "{ attributes { name } }",
        |data| data["data"]["attributes"] == json!([{ "name": "plan" }]),
    )
    .await;

    // A write on one is in the other's segment results.
    a.upsert(json!({ "externalId": "ada", "attributes": { "plan": "pro" } }))
        .await;
    let pros = "{ segment(slug: \"pros\") { count } contacts(first: 0) { totalCount } }";
    eventually(&b, "a's write is in b's results", pros, |data| {
        data["data"]["segment"]["count"] == 1
    })
    .await;

    // Concurrent writers on both, over the same external ids.
    let writes = (0..40usize).map(|n| {
        let app = if n.is_multiple_of(2) { &a } else { &b };
        let plan = if n % 3 == 0 { "pro" } else { "free" };
        async move {
            app.upsert(
                json!({ "externalId": format!("u{}", n % 10), "attributes": { "plan": plan } }),
            )
            .await
        }
    });
    futures::future::join_all(writes).await;
    // Both indexes settle on the store's truth: ten contacts (and ada), the same members.
    let truth = a
        .latest("{ contacts(first: 100) { edges { node { externalId attributes } } } }")
        .await;
    let edges = truth["contacts"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 11, "one contact per external id: {truth}");
    let pro_count = edges
        .iter()
        .filter(|edge| edge["node"]["attributes"]["plan"] == "pro")
        .count();
    for (name, app) in [("a", &a), ("b", &b)] {
        eventually(
            app,
            &format!("{name} agrees with the store"),
            pros,
            |data| {
                data["data"]["segment"]["count"] == pro_count
                    && data["data"]["contacts"]["totalCount"] == 11
            },
        )
        .await;
    }

    // One owner per identity: both instances give one email to different contacts at once.
    let claims = (0..10usize).map(|n| {
        let app = if n.is_multiple_of(2) { &a } else { &b };
        async move {
            app.graphql(
                "mutation($input: UpsertContactInput!) { upsertContact(input: $input) { contact { id } } }",
                json!({ "input": { "externalId": format!("e{n}"), "email": "same@example.com" } }),
            )
            .await
        }
    });
    futures::future::join_all(claims).await;
    let owners = a
        .latest(
            "{ contacts(segment: \"email = \\\"same@example.com\\\"\", first: 10) { totalCount } }",
        )
        .await;
    assert_eq!(owners["contacts"]["totalCount"], 1, "{owners}");

    // A key made on one works on the other; revoked on one, the other refuses it.
    let (key, id) = a.create_key(&["contacts:read"], json!({})).await;
    let status = |app: &TestApp, key: String| {
        let url = app.url("/graphql");
        async move {
            crate::helpers::client_with_key(&key)
                .post(url)
                .json(&json!({ "query": "{ contacts(first: 0) { totalCount } }" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let deadline = Instant::now() + CONVERGE_WITHIN;
    while status(&b, key.clone()).await != 200 {
        assert!(Instant::now() < deadline, "a's new key never worked on b");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A field policy narrowed on one applies on the other.
    a.upsert(json!({ "externalId": "ada", "name": "Ada" }))
        .await;
    let read = "{ contact(externalId: \"ada\") { externalId name } }";
    poll_until(
        "b shows ada's name to the key",
        || b.data_as(&key, read, json!({})),
        |data| data["contact"]["name"] == "Ada",
    )
    .await;
    a.data(
        "mutation($input: UpdateApiKeyInput!) { updateApiKey(input: $input) { apiKey { grantedScopes } } }",
        json!({ "input": { "id": id, "fieldPolicy": { "fields": ["external_id"] } } }),
    )
    .await;
    poll_until(
        "b applies the narrowed field policy",
        || b.data_as(&key, read, json!({})),
        |data| data["contact"] == json!({ "externalId": "ada", "name": null }),
    )
    .await;
    a.data(
        "mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } } }",
        json!({ "id": id }),
    )
    .await;
    let deadline = Instant::now() + CONVERGE_WITHIN;
    while status(&b, key.clone()).await != 401 {
        assert!(Instant::now() < deadline, "b still takes the key a revoked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// Every entry of `slug`'s feed as (contact, kind), read through `app`.
async fn feed(app: &TestApp, slug: &str) -> Vec<(String, String)> {
    let data = app
        .data(
            "query($slug: String!) { segmentChanges(slug: $slug, first: 100) { edges { node { contactId kind } } } }",
            json!({ "slug": slug }),
        )
        .await;
    data["segmentChanges"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (
                edge["node"]["contactId"].as_str().unwrap().to_owned(),
                edge["node"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Waits until `slug`'s feed, read through `app`, holds `count` entries.
async fn feed_of_length(app: &TestApp, slug: &str, count: usize) -> Vec<(String, String)> {
    poll_until(
        "the feed",
        || feed(app, slug),
        |entries| entries.len() >= count,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_record_each_membership_change_once() {
    let (a, b, _dirs) = two_instances_with_pros().await;
    let write = |n: usize, plan: &'static str| {
        let app = if n.is_multiple_of(2) { &a } else { &b };
        async move {
            app.upsert(json!({ "externalId": format!("u{n}"), "attributes": { "plan": plan } }))
                .await
        }
    };
    futures::future::join_all((0..6).map(|n| write(n, "pro"))).await;
    feed_of_length(&a, "pros", 6).await;
    futures::future::join_all((0..3).map(|n| write(n, "free"))).await;
    feed_of_length(&b, "pros", 9).await;
    // Both instances follow the log; only one records. Nothing arrives twice later either.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let entries = feed(&a, "pros").await;
    let enters = entries.iter().filter(|(_, kind)| kind == "ENTER").count();
    let exits = entries.iter().filter(|(_, kind)| kind == "EXIT").count();
    assert_eq!((enters, exits), (6, 3), "{entries:?}");
    assert_eq!(feed(&b, "pros").await, entries);
    a.stop().await;
    b.stop().await;
}
