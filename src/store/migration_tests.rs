//! Migrations on real stores written by older releases: `tests/fixtures/store-schema-N.tar.gz`
//! (see `scripts/make-store-fixture.sh`), RocksDB on disk as the service keeps it.

use std::path::Path;

use super::{Migrated, MigrationLimits, SCHEMA_VERSION, Store, StoreError, WriteBatch};
use crate::config::{DatabaseUrl, StoreSettings};
use crate::domain::{ContactId, IdentityKey, IdentityKind, Provenance, WorkspaceId};

/// The data directory of the fixture of schema `version`, unpacked into `into`; the store's
/// settings.
fn unpacked_fixture(into: &Path, version: i64) -> StoreSettings {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/store-schema-{version}.tar.gz"));
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar runs");
    assert!(status.success(), "unpacking {}", archive.display());
    StoreSettings::new(DatabaseUrl::RocksDb(into.join("rocksdb")))
}

fn workspace() -> WorkspaceId {
    WorkspaceId::from_trusted(WorkspaceId::DEFAULT.to_owned())
}

async fn contact_id(store: &Store, external_id: &str) -> ContactId {
    let key = IdentityKey::from_trusted(IdentityKind::ExternalId, external_id.to_owned());
    store
        .identity_holder(&workspace(), &key)
        .await
        .unwrap()
        .expect("the fixture's contact")
        .contact
}

/// `(kind, value, provenance)` of each identity of `contact`, as the store lists them.
async fn identities(store: &Store, contact: &ContactId) -> Vec<(String, String, String)> {
    store
        .identities_of(&workspace(), contact)
        .await
        .unwrap()
        .into_iter()
        .map(|identity| {
            (
                identity.key.kind.as_str().to_owned(),
                identity.key.value,
                identity.provenance.as_str().to_owned(),
            )
        })
        .collect()
}

fn listed(entries: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    entries
        .iter()
        .map(|(kind, value, provenance)| {
            (
                (*kind).to_owned(),
                (*value).to_owned(),
                (*provenance).to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_version_1_store_migrates_in_place_and_resumes_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let settings = unpacked_fixture(dir.path(), 1);

    let store = Store::connect_unmigrated(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
    let before = table_info(&store, "contact_identity").await;
    assert!(before.contains("contact_identity_owner"), "{before}");
    // Stopped after one contact, as a crash would stop it.
    let stopped = store
        .migrate(MigrationLimits {
            page: 1,
            stop_after_pages: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(stopped, Migrated::Stopped);
    assert_eq!(store.schema_version().await.unwrap(), 1);
    store.close().await;

    // The next start resumes and finishes.
    let store = Store::connect_unmigrated(&settings).await.unwrap();
    let finished = store
        .migrate(MigrationLimits {
            page: 1,
            stop_after_pages: None,
        })
        .await
        .unwrap();
    assert_eq!(finished, Migrated::Current { from: 1 });
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(
        !table_info(&store, "contact_identity")
            .await
            .contains("contact_identity_owner"),
        "the owner index is gone"
    );

    let ada = contact_id(&store, "u1").await;
    assert_eq!(
        identities(&store, &ada).await,
        listed(&[
            ("anonymous_id", "visitor-1", "self_asserted"),
            ("email", "ada@example.com", "api"),
            ("email", "cy@example.com", "self_asserted"),
            ("external_id", "u1", "api"),
        ])
    );
    let bob = contact_id(&store, "u2").await;
    assert_eq!(
        identities(&store, &bob).await,
        listed(&[
            ("email", "bob@example.com", "api"),
            ("external_id", "u2", "api"),
            ("phone", "+14155550100", "api"),
        ])
    );

    // Writes keep both sides: deleting a contact deletes what its list names.
    let mut batch = WriteBatch::new(&workspace());
    batch.delete_identities_of(&bob);
    batch.delete_contact(&bob, None);
    store.commit(batch).await.unwrap();
    let email = IdentityKey::from_trusted(IdentityKind::Email, "bob@example.com".to_owned());
    assert_eq!(
        store.identity_holder(&workspace(), &email).await.unwrap(),
        None
    );
    // Moving an identity moves its list entry with its provenance.
    let mut batch = WriteBatch::new(&workspace());
    let cy = IdentityKey::from_trusted(IdentityKind::Email, "cy@example.com".to_owned());
    let visitor_2 = store
        .identity_holder(
            &workspace(),
            &IdentityKey::from_trusted(IdentityKind::AnonymousId, "visitor-2".to_owned()),
        )
        .await
        .unwrap()
        .unwrap()
        .contact;
    batch.move_identity(&cy, &ada, &visitor_2);
    store.commit(batch).await.unwrap();
    assert_eq!(
        identities(&store, &visitor_2).await,
        listed(&[
            ("anonymous_id", "visitor-2", "self_asserted"),
            ("email", "cy@example.com", "self_asserted"),
        ])
    );
    assert_eq!(identities(&store, &ada).await.len(), 3);
    assert_eq!(
        store
            .identity_holder(&workspace(), &cy)
            .await
            .unwrap()
            .map(|held| (held.contact, held.identity.provenance)),
        Some((visitor_2, Provenance::SelfAsserted))
    );
    store.close().await;
}

/// What `INFO FOR TABLE` says of `table`, as text.
async fn table_info(store: &Store, table: &str) -> String {
    let mut info = store
        .db
        .query(format!("INFO FOR TABLE {table}"))
        .await
        .unwrap();
    let info: Option<surrealdb::types::Value> = info.take(0).unwrap();
    format!("{info:?}")
}

#[tokio::test]
async fn a_version_2_store_loses_the_external_id_index_and_keeps_its_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let settings = unpacked_fixture(dir.path(), 2);
    let store = Store::connect_unmigrated(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 2);
    let before = table_info(&store, "contact").await;
    assert!(before.contains("contact_external_id"), "{before}");
    // A contact with an external id and no identity record of it, as a store older than
    // identities could hold: the migration gives it one.
    let legacy = ContactId::generate();
    store
        .db
        .query("CREATE $key CONTENT { workspace: 'default', external_id: 'legacy-1', created_at: time::now(), updated_at: time::now(), revision: 1, attributes: {} } RETURN NONE")
        .bind(("key", super::records::contact_key(&workspace(), &legacy)))
        .await
        .unwrap()
        .check()
        .unwrap();
    store.close().await;

    let store = Store::connect(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(
        !table_info(&store, "contact")
            .await
            .contains("contact_external_id"),
        "the contacts' external id index is gone"
    );
    let ada = contact_id(&store, "u1").await;
    assert_eq!(identities(&store, &ada).await.len(), 4);
    assert_eq!(contact_id(&store, "legacy-1").await, legacy);
    assert_eq!(
        identities(&store, &legacy).await,
        listed(&[("external_id", "legacy-1", "api")])
    );
    // A second contact with a taken external id is refused by the identity record.
    let mut twin = crate::domain::Contact::new(
        workspace(),
        crate::domain::ContactFields {
            external_id: Some(crate::domain::ExternalId::parse("u1").unwrap()),
            ..Default::default()
        },
        chrono::Utc::now(),
    );
    let mut batch = WriteBatch::new(&workspace());
    batch.create_contact(&mut twin);
    batch.create_identity(
        &twin.id,
        &crate::domain::Identity {
            key: IdentityKey::from_trusted(IdentityKind::ExternalId, "u1".to_owned()),
            provenance: Provenance::Api,
            created_at: chrono::Utc::now(),
        },
    );
    assert!(
        matches!(store.commit(batch).await, Err(StoreError::WriteConflict)),
        "a taken external id is a conflict to retry"
    );
    assert_eq!(contact_id(&store, "u1").await, ada);
    store.close().await;
}

#[tokio::test]
async fn a_new_store_starts_current_and_a_newer_one_is_refused() {
    let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store
        .record_version(SCHEMA_VERSION + 1, None, "")
        .await
        .unwrap();
    let refused = store.migrate(MigrationLimits::default()).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::NewerSchema { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{refused:?}"
    );
    assert!(
        refused
            .to_string()
            .contains("newer than this release knows"),
        "{refused}"
    );
}

#[tokio::test]
async fn field_sources_of_an_older_record_are_read_and_rewritten_as_one_value() {
    let dir = tempfile::tempdir().unwrap();
    let settings = unpacked_fixture(dir.path(), 2);
    let store = Store::connect(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let ada = contact_id(&store, "u1").await;
    let raw_sources = |store: &Store| {
        let store = store.clone();
        async move {
            let mut response = store
                .db
                .query(
                    "SELECT VALUE [type::is_string(sources), field_sources != NONE] FROM ONLY $key",
                )
                .bind(("key", super::records::contact_key(&workspace(), &ada)))
                .await
                .unwrap();
            let shape: Vec<bool> = response.take(0).unwrap();
            shape
        }
    };
    assert_eq!(
        raw_sources(&store).await,
        [false, true],
        "the fixture's map"
    );
    let mut contact = store
        .fresh_contacts_by_ids(&workspace(), &[ada])
        .await
        .unwrap()
        .remove(0);
    assert!(
        !contact.field_sources.is_empty(),
        "the sources are read from the older map"
    );
    let sources = contact.field_sources.clone();
    let expected = contact.revision;
    contact.revision += 1;
    let mut batch = WriteBatch::new(&workspace());
    batch.replace_contact(&mut contact, expected);
    store.commit(batch).await.unwrap();
    assert_eq!(raw_sources(&store).await, [true, false], "one string now");
    let reread = store
        .fresh_contacts_by_ids(&workspace(), &[ada])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(reread.field_sources, sources);
    store.close().await;
}

#[tokio::test]
async fn webhook_deliveries_of_a_version_4_store_reach_the_outbox_lanes_without_the_status_index() {
    use crate::domain::DeliveryStatus;
    let dir = tempfile::tempdir().unwrap();
    let settings = unpacked_fixture(dir.path(), 4);
    let store = Store::connect_unmigrated(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 4);
    let index = "webhook_delivery_pending";
    assert!(table_info(&store, "webhook_delivery").await.contains(index));

    let migrated = store.migrate(MigrationLimits::default()).await.unwrap();
    assert_eq!(migrated, Migrated::Current { from: 4 });
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert!(
        !table_info(&store, "webhook_delivery").await.contains(index),
        "the status index is gone"
    );

    let hook = store.webhooks(&workspace()).await.unwrap().remove(0);
    let log = store
        .webhook_deliveries(&workspace(), &hook.id, None, 100)
        .await
        .unwrap();
    let pending = |attempted: bool| {
        log.iter()
            .any(|d| d.status == DeliveryStatus::Pending && (d.attempts > 0) == attempted)
    };
    assert!(
        pending(true),
        "the fixture holds a refused delivery: {log:#?}"
    );
    assert!(pending(false), "and one waiting behind it: {log:#?}");
    let mut waiting: Vec<String> = log
        .iter()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .map(|d| d.id.clone())
        .collect();
    waiting.sort();

    // Without a cursor, the endpoint's log is the fresh lane from its start.
    let read = store
        .read_outbox(&workspace(), &hook.id, 100)
        .await
        .unwrap();
    assert!(read.retrying.is_empty());
    let fresh: Vec<String> = read.fresh.iter().map(|d| d.id.clone()).collect();
    assert_eq!(fresh, waiting);
    assert_eq!(read.read_through.as_ref(), waiting.last());
    store.close().await;
}
