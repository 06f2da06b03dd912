//! Contacts and identities served from memory: a read after any kind of write sees the write,
//! even when the contact was read (and kept) just before it.

use serde_json::{Value, json};

use crate::helpers::TestApp;

const FIELDS: &str = "id name email identities { nodes { kind value } }";

/// The contact by id and the same contact as a node of the unfiltered page (both kept in
/// memory once read), asserting that the two agree.
async fn read_twice(app: &TestApp, id: &Value) -> Value {
    let one = app
        .data(
            &format!("query($id: ID!) {{ contact(id: $id) {{ {FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await["contact"]
        .clone();
    let page = app
        .data(
            &format!("{{ contacts(first: 50, consistency: LATEST) {{ edges {{ node {{ {FIELDS} }} }} }} }}"),
            json!({}),
        )
        .await;
    let in_page = page["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .find(|node| node["id"] == one["id"]);
    assert_eq!(in_page.as_ref(), Some(&one), "page and point read agree");
    one
}

fn identity_values(contact: &Value) -> Vec<String> {
    let mut values: Vec<String> = contact["identities"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|identity| identity["value"].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_kept_in_memory_follow_every_kind_of_write() {
    let app = TestApp::spawn().await;
    let ann = app
        .upsert(json!({ "externalId": "ann", "email": "ann@example.com", "name": "Ann" }))
        .await;
    let bob = app
        .upsert(json!({ "externalId": "bob", "email": "bob@example.com" }))
        .await;
    let ann_id = ann["id"].clone();
    let bob_id = bob["id"].clone();
    assert_eq!(read_twice(&app, &ann_id).await["name"], "Ann");

    // A change of a field.
    app.upsert(json!({ "externalId": "ann", "name": "Anna" }))
        .await;
    assert_eq!(read_twice(&app, &ann_id).await["name"], "Anna");

    // A change of a contact point, which gives the contact another identity.
    app.upsert(json!({ "externalId": "ann", "email": "anna@example.org" }))
        .await;
    let read = read_twice(&app, &ann_id).await;
    assert_eq!(read["email"], "anna@example.org");
    assert!(identity_values(&read).contains(&"anna@example.org".to_owned()));

    // A merge: the absorbed id resolves to the survivor, whose identities grew.
    let visitor = app
        .data(
            "mutation { trackVisitor(input: { anonymousId: \"visitor-9\" }) { contact { id } } }",
            json!({}),
        )
        .await["trackVisitor"]["contact"]["id"]
        .clone();
    let before_merge = read_twice(&app, &visitor).await;
    assert_eq!(identity_values(&before_merge), ["visitor-9"]);
    let identities_before_merge = identity_values(&read_twice(&app, &ann_id).await);
    let merge = app
        .data(
            "mutation($s: ID!, $a: ID!) { mergeContacts(input: { survivorId: $s, absorbedId: $a }) { merge { id } } }",
            json!({ "s": ann_id, "a": visitor }),
        )
        .await["mergeContacts"]["merge"]["id"]
        .clone();
    let resolved = app
        .data(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": visitor }),
        )
        .await;
    assert_eq!(resolved["contact"]["id"], ann_id);
    let merged = read_twice(&app, &ann_id).await;
    assert!(identity_values(&merged).contains(&"visitor-9".to_owned()));

    // An unmerge gives both back as they were.
    app.data(
        "mutation($m: ID!) { unmergeContacts(input: { mergeId: $m }) { merge { id } } }",
        json!({ "m": merge }),
    )
    .await;
    assert_eq!(read_twice(&app, &visitor).await, before_merge);
    assert_eq!(
        identity_values(&read_twice(&app, &ann_id).await),
        identities_before_merge
    );

    // A deletion.
    read_twice(&app, &bob_id).await;
    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedId } }",
        json!({ "id": bob_id }),
    )
    .await;
    assert_eq!(
        app.error_code(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": bob_id })
        )
        .await,
        "NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_never_bring_back_an_older_state() {
    let app = TestApp::spawn().await;
    let contact = app
        .upsert(json!({ "externalId": "racer", "name": "n0" }))
        .await;
    let id = contact["id"].clone();
    // Readers keep reading while a writer renames the contact; after each write is
    // acknowledged, every read that starts must see it (or a later one).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let client = app.client.clone();
        let url = app.url("/graphql");
        let id = id.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                client
                    .post(&url)
                    .json(
                        &json!({ "query": "query($id: ID!) { contact(id: $id) { name } }",
                                   "variables": { "id": id } }),
                    )
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for n in 1..=40 {
        let name = format!("n{n}");
        app.upsert(json!({ "externalId": "racer", "name": name }))
            .await;
        let read = app
            .data(
                "query($id: ID!) { contact(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(read["contact"]["name"], name.as_str(), "write {n}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}
