//! The indexer over a real store and index: entries committed later than the grace still
//! reach the index, applied entries leave the log in the background, and a replay after a
//! crash between the feed and the index records each membership change once, and a check finds
//! each difference between store and index whatever its page size.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{ChangeNotifier, Indexer};
use crate::config::{DatabaseUrl, StoreSettings};
use crate::domain::{Contact, ContactFields, WorkspaceId};
use crate::index::SegmentIndex;
use crate::store::{Store, WriteBatch};

/// An empty in-memory store and index.
async fn store_and_index() -> (Store, Arc<SegmentIndex>) {
    let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
        .await
        .unwrap();
    (store, Arc::new(SegmentIndex::open_in_ram().unwrap()))
}

async fn indexer() -> (Store, Indexer) {
    let (store, index) = store_and_index().await;
    let indexer = over(&store, &index);
    indexer.ensure_built().await.unwrap();
    (store, indexer)
}

/// An indexer over `store` and `index` as a (re)started process makes it.
fn over(store: &Store, index: &Arc<SegmentIndex>) -> Indexer {
    Indexer::new(
        store.clone(),
        Arc::clone(index),
        ChangeNotifier::default(),
        Duration::ZERO,
    )
    .unwrap()
}

/// A new contact, committed; its change-log key taken `late_by` ago when given.
async fn create(
    store: &Store,
    workspace: &WorkspaceId,
    late_by: Option<chrono::Duration>,
) -> Contact {
    let mut contact = Contact::new(workspace.clone(), ContactFields::default(), Utc::now());
    let mut batch = WriteBatch::new(workspace);
    batch.create_contact(&mut contact);
    if let Some(late_by) = late_by {
        batch = batch.keyed_at(Utc::now() - late_by);
    }
    store.commit(batch).await.unwrap();
    contact
}

#[tokio::test]
async fn an_entry_committed_later_than_the_grace_is_applied_by_the_sweep() {
    let (store, indexer) = indexer().await;
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    create(&store, &workspace, None).await;
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    // Keyed a minute ago, visible only now: below the watermark, so a step does not read it.
    create(&store, &workspace, Some(chrono::Duration::seconds(60))).await;
    assert_eq!(indexer.try_apply_next().await.unwrap(), 0);
    assert_eq!(indexer.backlog().await.unwrap().pending, 0);
    let drift = indexer.compare(5).await.unwrap();
    // `compare` catches up first, sweep included: the late entry is in the index.
    assert!(drift.is_clean(), "{drift:?}");
    assert_eq!(drift.indexed, 2);
}

#[tokio::test]
async fn applied_entries_leave_the_log_and_nothing_unapplied_does() {
    let (store, indexer) = indexer().await;
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    // Old keys, so that the watermark passes them at once.
    for _ in 0..3 {
        create(&store, &workspace, Some(chrono::Duration::seconds(30))).await;
    }
    assert_eq!(indexer.catch_up().await.unwrap(), 3);
    // The applied entries are below the watermark now: a sweep hands them to a deletion.
    indexer.sweep().await.unwrap();
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = store.changes_from(None, 100).await.unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "applied entries are deleted");
    // A late entry found by the same kind of sweep is applied, not deleted.
    create(&store, &workspace, Some(chrono::Duration::seconds(60))).await;
    indexer.sweep().await.unwrap();
    assert_eq!(store.changes_from(None, 100).await.unwrap().len(), 1);
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    assert!(indexer.compare(5).await.unwrap().is_clean());
}

#[tokio::test]
async fn a_restart_applies_and_then_deletes_what_the_last_run_left_in_the_log() {
    let (store, index) = store_and_index().await;
    let first = over(&store, &index);
    first.ensure_built().await.unwrap();
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    for _ in 0..4 {
        create(&store, &workspace, Some(chrono::Duration::seconds(30))).await;
    }
    create(&store, &workspace, None).await;
    assert_eq!(first.settle().await.unwrap(), 5);
    // The run is killed before any background deletion: the next start finds the entries.
    create(&store, &workspace, None).await;
    drop(first);
    assert_eq!(store.changes_from(None, 100).await.unwrap().len(), 6 - 4);
    let second = over(&store, &index);
    second.settle().await.unwrap();
    let left = store.changes_from(None, 100).await.unwrap();
    // Only entries above the watermark (the last 5 s) may stay; none of them is unapplied.
    assert!(left.len() <= 2, "{left:?}");
    assert_eq!(second.backlog().await.unwrap().pending, 0);
    let drift = second.compare(5).await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
    assert_eq!(drift.indexed, 6);
}

/// The indexer with a membership engine over `store` and `index`, the saved segments of the
/// store's catalogue loaded, as a (re)started process wires them.
async fn with_engine(
    store: &Store,
    index: &Arc<SegmentIndex>,
) -> (Indexer, Arc<crate::service::membership::MembershipEngine>) {
    let catalogs = crate::service::catalog_cache::Catalogs::load(store.clone())
        .await
        .unwrap();
    let engine = Arc::new(crate::service::membership::MembershipEngine::new(
        store.clone(),
        Arc::clone(index),
        crate::service::segment::CompiledCatalogs::new(catalogs, None),
        crate::service::membership::DEFAULT_FEED_RETENTION,
    ));
    let indexer = over(store, index);
    indexer.attach(Arc::clone(&engine));
    indexer.ensure_built().await.unwrap();
    (indexer, engine)
}

/// The saved segment `pros` (`name = "pro"`) of the workspace `acme`, stored.
async fn save_pros(store: &Store) -> (WorkspaceId, crate::domain::Slug) {
    use crate::domain::{SavedSegment, Slug, Text};
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    let pros = Slug::parse("pros").unwrap();
    store
        .put_segment(&SavedSegment {
            workspace: workspace.clone(),
            slug: pros.clone(),
            name: Text::parse("name", "Pros").unwrap(),
            description: None,
            text: "name = \"pro\"".to_owned(),
            names_sensitive_values: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        })
        .await
        .unwrap();
    (workspace, pros)
}

/// Contact fields with only `name`.
fn named_fields(name: &str) -> ContactFields {
    ContactFields {
        name: Some(crate::domain::Text::parse("name", name).unwrap()),
        ..ContactFields::default()
    }
}

#[tokio::test]
async fn a_replay_after_a_crash_between_feed_and_index_records_each_change_once() {
    use crate::domain::MembershipKind;
    use crate::index::IndexChange;

    let (store, index) = store_and_index().await;
    let (workspace, pros) = save_pros(&store).await;
    let (indexer, engine) = with_engine(&store, &index).await;
    let mut cy = Contact::new(workspace.clone(), named_fields("pro"), Utc::now());
    let mut batch = WriteBatch::new(&workspace);
    batch.create_contact(&mut cy);
    store.commit(batch).await.unwrap();
    assert_eq!(indexer.catch_up().await.unwrap(), 1);

    // Leaves the segment: the feed records the EXIT, and the process dies before the index
    // commits (the index still holds "pro").
    let revision = cy.revision;
    cy.fields = named_fields("free");
    let mut batch = WriteBatch::new(&workspace);
    batch.replace_contact(&mut cy, revision);
    store.commit(batch).await.unwrap();
    let log = store.changes_from(None, 10).await.unwrap();
    let exit = log.last().unwrap().clone();
    let stored = store
        .fresh_contacts_by_ids(&workspace, &[cy.id])
        .await
        .unwrap();
    engine
        .before_batch(&[exit], &[IndexChange::upsert(stored[0].clone())], 1)
        .await
        .unwrap();
    drop((indexer, engine));

    // The restart replays the whole log over the index as it was (the entry that made cy
    // enter is applied again, now with cy's later state).
    let (restarted, _engine) = with_engine(&store, &index).await;
    restarted.settle().await.unwrap();
    let kinds: Vec<MembershipKind> = store
        .membership_changes(&workspace, &pros, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|change| change.kind)
        .collect();
    assert_eq!(kinds, [MembershipKind::Enter, MembershipKind::Exit]);
    assert!(restarted.compare(1).await.unwrap().is_clean());
}

#[tokio::test]
async fn the_feed_runs_ahead_of_the_index_and_each_write_is_compared_with_the_last_one_fed() {
    use crate::domain::MembershipKind;

    let (store, index) = store_and_index().await;
    let (workspace, pros) = save_pros(&store).await;
    let (indexer, _engine) = with_engine(&store, &index).await;
    let kinds = || async {
        store
            .membership_changes(&workspace, &pros, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|change| change.kind)
            .collect::<Vec<_>>()
    };
    use MembershipKind::{Enter, Exit};

    // In, out and in again, each taken by a step of its own while the index commits none.
    let mut cy = Contact::new(workspace.clone(), named_fields("pro"), Utc::now());
    let mut batch = WriteBatch::new(&workspace);
    batch.create_contact(&mut cy);
    store.commit(batch).await.unwrap();
    assert_eq!(indexer.take_next().await.unwrap(), 1);
    for name in ["free", "pro"] {
        let revision = cy.revision;
        cy.fields = named_fields(name);
        let mut batch = WriteBatch::new(&workspace);
        batch.replace_contact(&mut cy, revision);
        store.commit(batch).await.unwrap();
        assert_eq!(indexer.take_next().await.unwrap(), 1);
    }
    assert_eq!(kinds().await, [Enter, Exit, Enter]);
    assert_eq!(index.num_docs(), 0, "the index committed none of them");
    assert_eq!(indexer.backlog().await.unwrap().pending, 3);

    // Committed, the index holds the last state and answers for the next write.
    assert_eq!(indexer.catch_up().await.unwrap(), 0);
    assert_eq!(indexer.backlog().await.unwrap().pending, 0);
    assert!(indexer.compare(1).await.unwrap().is_clean());
    let revision = cy.revision;
    cy.fields = named_fields("free");
    let mut batch = WriteBatch::new(&workspace);
    batch.replace_contact(&mut cy, revision);
    store.commit(batch).await.unwrap();
    assert_eq!(indexer.catch_up().await.unwrap(), 1);
    assert_eq!(kinds().await, [Enter, Exit, Enter, Exit]);
}

fn shared(retention: chrono::TimeDelta) -> super::LogSharing {
    super::LogSharing::Shared { retention }
}

#[tokio::test]
async fn a_shared_log_keeps_applied_entries_until_its_retention_ends() {
    let (store, index) = store_and_index().await;
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    // An entry older than the retention (the build covers its contact), and two recent ones.
    create(&store, &workspace, Some(chrono::Duration::hours(2))).await;
    let indexer = Arc::new(over(&store, &index).sharing(shared(chrono::TimeDelta::hours(1))));
    indexer.ensure_built().await.unwrap();
    for _ in 0..2 {
        create(&store, &workspace, Some(chrono::Duration::seconds(30))).await;
    }
    assert_eq!(indexer.catch_up().await.unwrap(), 2);
    indexer.sweep().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.changes_from(None, 10).await.unwrap().len(),
        3,
        "applied entries stay for the other instances"
    );
    // The running indexer purges what is older than the retention, and only that.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Arc::clone(&indexer).run(stopped));
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = store.changes_from(None, 10).await.unwrap().len();
        if left == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(left, 2);
}

#[tokio::test]
async fn an_index_further_behind_than_the_shared_log_keeps_is_rebuilt() {
    let (store, index) = store_and_index().await;
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    let first = over(&store, &index).sharing(shared(chrono::TimeDelta::hours(1)));
    first.ensure_built().await.unwrap();
    create(&store, &workspace, None).await;
    assert_eq!(first.catch_up().await.unwrap(), 1);
    drop(first);
    // A contact whose entry another instance purged before this index applied it.
    create(&store, &workspace, Some(chrono::Duration::hours(2))).await;
    let log = store.changes_from(None, 10).await.unwrap();
    store.delete_changes(&[log[0].key.clone()]).await.unwrap();

    // Within the retention, nothing says the index missed it.
    let within = over(&store, &index).sharing(shared(chrono::TimeDelta::hours(1)));
    within.ensure_built().await.unwrap();
    assert_eq!(within.compare(1).await.unwrap().missing, 1);
    drop(within);
    // Its watermark (a few seconds old) is older than a one-second retention: rebuilt.
    let behind = over(&store, &index).sharing(shared(chrono::TimeDelta::seconds(1)));
    behind.ensure_built().await.unwrap();
    let drift = behind.compare(1).await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
    assert_eq!(drift.indexed, 2);
}

/// Renames `contact` (one revision on) and commits it, its change-log key taken `keyed_before`
/// now when given (as if taken before another write's transaction began).
async fn rename(
    store: &Store,
    contact: &mut Contact,
    name: &str,
    keyed_before: Option<chrono::Duration>,
) {
    let expected = contact.revision;
    contact.revision += 1;
    contact.fields.name = Some(crate::domain::Text::parse("name", name).unwrap());
    let mut batch = WriteBatch::new(&contact.workspace);
    batch.replace_contact(contact, expected);
    if let Some(before) = keyed_before {
        batch = batch.keyed_at(Utc::now() - before);
    }
    store.commit(batch).await.unwrap();
}

fn indexed_revision(index: &SegmentIndex, contact: &Contact) -> Option<u64> {
    index
        .indexed_revisions(&contact.workspace, &[contact.id])
        .unwrap()
        .get(&contact.id)
        .copied()
}

#[tokio::test]
async fn written_states_reach_the_index_without_reading_the_contacts_back() {
    let (store, index) = store_and_index().await;
    let indexer = over(&store, &index);
    indexer.ensure_built().await.unwrap();
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    let mut first = create(&store, &workspace, None).await;
    let second = create(&store, &workspace, None).await;
    rename(&store, &mut first, "Ada", None).await;
    indexer.catch_up().await.unwrap();
    let sources = indexer.state_sources();
    assert_eq!((sources.from_payload, sources.read_back), (2, 0));
    for contact in [&first, &second] {
        let stored = store
            .fresh_contacts_by_ids(&workspace, &[contact.id])
            .await
            .unwrap();
        assert_eq!(indexed_revision(&index, contact), Some(stored[0].revision));
        assert_eq!(&stored[0], contact, "the payload is the stored state");
    }
    // A deletion has no payload: its contact is read back (and found gone).
    let mut batch = WriteBatch::new(&workspace);
    batch.delete_contact(&second.id, Some(second.revision));
    store.commit(batch).await.unwrap();
    indexer.catch_up().await.unwrap();
    assert_eq!(indexer.state_sources().read_back, 1);
    assert_eq!(indexed_revision(&index, &second), None);
    assert!(indexer.compare(1).await.unwrap().is_clean());
}

#[tokio::test]
async fn an_older_state_keyed_after_a_newer_one_never_replaces_it() {
    let (store, index) = store_and_index().await;
    let indexer = over(&store, &index).with_batch_size(1);
    indexer.ensure_built().await.unwrap();
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    let mut contact = create(&store, &workspace, None).await;
    indexer.catch_up().await.unwrap();
    rename(&store, &mut contact, "second", None).await;
    // Commits after "second" but took its key a second earlier: key order puts it first.
    rename(
        &store,
        &mut contact,
        "third",
        Some(chrono::Duration::seconds(1)),
    )
    .await;
    let before = indexer.state_sources();
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    assert_eq!(indexed_revision(&index, &contact), Some(contact.revision));
    // The older state's payload is refused: the contact is read back, still the newer state.
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    assert_eq!(indexed_revision(&index, &contact), Some(contact.revision));
    let after = indexer.state_sources();
    assert_eq!(after.from_payload - before.from_payload, 1);
    assert_eq!(after.read_back - before.read_back, 1);
}

#[tokio::test]
async fn a_contact_deleted_under_an_earlier_key_is_not_brought_back_by_its_creation() {
    let (store, index) = store_and_index().await;
    let indexer = over(&store, &index).with_batch_size(1);
    indexer.ensure_built().await.unwrap();
    let workspace = WorkspaceId::from_trusted("acme".to_owned());
    let contact = create(&store, &workspace, None).await;
    // Deleted after its creation committed, under a key taken a second before it.
    let mut batch = WriteBatch::new(&workspace).keyed_at(Utc::now() - chrono::Duration::seconds(1));
    batch.delete_contact(&contact.id, Some(contact.revision));
    store.commit(batch).await.unwrap();
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    // The creation's payload finds no document, but the removal is remembered: read back.
    assert_eq!(indexer.try_apply_next().await.unwrap(), 1);
    assert_eq!(indexed_revision(&index, &contact), None);
    let sources = indexer.state_sources();
    assert_eq!((sources.from_payload, sources.read_back), (0, 2));
    let drift = indexer.compare(1).await.unwrap();
    assert!(drift.is_clean(), "{drift:?}");
}

/// The comparison behind `check`, in pages smaller than a workspace and with workspaces the
/// other side lacks: every contact is counted once and each difference found, in any page size.
#[tokio::test]
async fn pages_across_workspaces_find_every_missing_and_stale_contact() {
    let (store, index) = store_and_index().await;
    let (a, b, c) = (
        WorkspaceId::from_trusted("a".into()),
        WorkspaceId::from_trusted("b".into()),
        WorkspaceId::from_trusted("c".into()),
    );
    for workspace in [&a, &a, &a, &a, &b, &b, &b, &c] {
        create(&store, workspace, None).await;
    }
    over(&store, &index).ensure_built().await.unwrap();
    // Written after the index was built and never applied: missing from it.
    let missing = [
        create(&store, &a, None).await,
        create(&store, &c, None).await,
    ];
    // Deleted from the store only: stale in the index.
    let stale = store.contact_keys_page(None, 2).await.unwrap()[1].clone();
    let mut batch = WriteBatch::new(&stale.0);
    batch.delete_contact(&stale.1, None);
    store.commit(batch).await.unwrap();
    for page in [1, 2, 3, 100] {
        let drift = super::drift::compare(&store, &index, 10, page)
            .await
            .unwrap();
        assert_eq!((drift.stored, drift.indexed), (9, 8), "page {page}");
        let mut found = drift.missing_sample.clone();
        found.sort();
        let expected: Vec<_> = missing
            .iter()
            .map(|contact| (contact.workspace.clone(), contact.id))
            .collect();
        assert_eq!(found, expected, "page {page}");
        assert_eq!(drift.stale_sample, vec![stale.clone()], "page {page}");
        assert_eq!((drift.missing, drift.stale), (2, 1), "page {page}");
    }
}
