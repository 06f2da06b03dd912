//! Migrations on a real store written by an older release: `tests/fixtures/store-schema-1.tar.gz`
//! (see `scripts/make-store-fixture.sh`), RocksDB on disk as the service keeps it.

use std::path::Path;

use super::{Migrated, MigrationLimits, SCHEMA_VERSION, Store, StoreError, WriteBatch};
use crate::config::{DatabaseUrl, StoreSettings};
use crate::domain::{ContactId, ExternalId, IdentityKey, IdentityKind, Provenance, WorkspaceId};

/// The fixture's data directory, unpacked into `into`; the store's settings.
fn unpacked_fixture(into: &Path) -> StoreSettings {
    let archive =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-schema-1.tar.gz");
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
    let external_id = ExternalId::parse(external_id).unwrap();
    store
        .contact_by_external_id(&workspace(), &external_id)
        .await
        .unwrap()
        .expect("the fixture's contact")
        .id
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
    let settings = unpacked_fixture(dir.path());

    let store = Store::connect_unmigrated(&settings).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 1);
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
    let mut info = store
        .db
        .query("INFO FOR TABLE contact_identity")
        .await
        .unwrap();
    let info: Option<surrealdb::types::Value> = info.take(0).unwrap();
    assert!(
        !format!("{info:?}").contains("contact_identity_owner"),
        "the owner index is gone: {info:?}"
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

#[tokio::test]
async fn a_new_store_starts_current_and_a_newer_one_is_refused() {
    let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
        .await
        .unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.set_version(SCHEMA_VERSION + 1).await.unwrap();
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
