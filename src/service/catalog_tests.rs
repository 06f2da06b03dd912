//! Property: the catalogue held in memory after any sequence of changes equals the one loaded
//! fresh from the store, on the instance that made the changes (it reloads before answering)
//! and on a second instance over the same store once it has followed the versions.

use std::sync::Arc;

use chrono::Utc;
use proptest::prelude::*;
use secrecy::SecretString;

use super::attributes::AttributeService;
use super::catalog_cache::{Catalogs, WorkspaceState};
use super::keys::{KeyChange, KeyService};
use crate::config::{DatabaseUrl, StoreSettings};
use crate::domain::{
    AttributeName, AttributeType, FieldPolicy, SavedSegment, Scopes, Slug, Text, WorkspaceId,
    WorkspaceSettings,
};
use crate::store::Store;

/// One change to a workspace's catalogue.
#[derive(Debug, Clone)]
enum Change {
    CreateKey(u8),
    RevokeKey(u8),
    NarrowKey(u8),
    DefineAttribute(u8, bool),
    SaveSegment(u8, u8),
    DeleteSegment(u8),
    SetSecret(u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0u8..4).prop_map(Change::CreateKey),
        (0u8..4).prop_map(Change::RevokeKey),
        (0u8..4).prop_map(Change::NarrowKey),
        (0u8..4, any::<bool>()).prop_map(|(n, described)| Change::DefineAttribute(n, described)),
        (0u8..3, 0u8..3).prop_map(|(n, version)| Change::SaveSegment(n, version)),
        (0u8..3).prop_map(Change::DeleteSegment),
        (0u8..3).prop_map(Change::SetSecret),
    ]
}

struct Instance {
    catalogs: Catalogs,
    keys: KeyService,
    attributes: AttributeService,
    store: Store,
}

impl Instance {
    async fn over(store: &Store) -> Self {
        let catalogs = Catalogs::load(store.clone()).await.unwrap();
        Self {
            keys: KeyService::new(store.clone(), catalogs.clone()),
            attributes: AttributeService::new(store.clone(), catalogs.clone()),
            catalogs,
            store: store.clone(),
        }
    }

    /// Applies `change` as the use cases do (write, then reload); refusals are fine.
    async fn apply(&self, workspace: &WorkspaceId, change: &Change) {
        let key_named = |n: u8| {
            self.keys
                .list(workspace)
                .into_iter()
                .find(|key| key.name == format!("key {n}"))
        };
        match change {
            Change::CreateKey(n) => {
                let policy = FieldPolicy::unrestricted();
                let _ = self
                    .keys
                    .create(
                        workspace,
                        super::NewKey {
                            name: &format!("key {n}"),
                            scopes: Scopes::all(),
                            policy,
                            rate: None,
                        },
                        "test",
                    )
                    .await;
            }
            Change::RevokeKey(n) => {
                if let Some(key) = key_named(*n) {
                    self.keys.revoke(workspace, &key.id).await.unwrap();
                }
            }
            Change::NarrowKey(n) => {
                if let Some(key) = key_named(*n) {
                    let change = KeyChange {
                        policy: Some(FieldPolicy::parse(Some(vec!["name".into()]), None).unwrap()),
                        ..KeyChange::default()
                    };
                    self.keys.update(workspace, &key.id, change).await.unwrap();
                }
            }
            Change::DefineAttribute(n, described) => {
                let name = AttributeName::parse(&format!("attr{n}")).unwrap();
                let description = described.then(|| Text::parse("description", "d").unwrap());
                let _ = self
                    .attributes
                    .define(
                        workspace,
                        name,
                        AttributeType::String,
                        description,
                        None,
                        false,
                    )
                    .await;
            }
            Change::SaveSegment(n, version) => {
                let segment = SavedSegment {
                    workspace: workspace.clone(),
                    slug: Slug::parse(&format!("s{n}")).unwrap(),
                    name: Text::parse("name", &format!("v{version}")).unwrap(),
                    description: None,
                    text: format!("name = \"{version}\""),
                    names_sensitive_values: false,
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                };
                self.store.put_segment(&segment).await.unwrap();
                self.catalogs.refresh(workspace).await.unwrap();
            }
            Change::DeleteSegment(n) => {
                let slug = Slug::parse(&format!("s{n}")).unwrap();
                self.store.delete_segment(workspace, &slug).await.unwrap();
                self.catalogs.refresh(workspace).await.unwrap();
            }
            Change::SetSecret(n) => {
                let settings = WorkspaceSettings {
                    workspace: workspace.clone(),
                    identity_secret: Some(SecretString::from(format!("secret-{n}-0123456789"))),
                    blocked_identity_values: vec![format!("blocked-{n}")],
                    previous_identity_secret: (*n % 2 == 0)
                        .then(|| SecretString::from(format!("previous-{n}-0123456789"))),
                    user_hash_disabled: *n % 3 == 0,
                    verification_lifetime_secs: Some(u64::from(*n) + 1),
                    ..WorkspaceSettings::default()
                };
                self.store.save_workspace_settings(&settings).await.unwrap();
                self.catalogs.refresh(workspace).await.unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_catalogue_in_memory_equals_a_fresh_load(
        changes in proptest::collection::vec(change(), 1..12),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory)).await.unwrap();
            let writer = Instance::over(&store).await;
            let follower = Instance::over(&store).await;
            let workspace = WorkspaceId::parse("acme").unwrap();
            for change in &changes {
                writer.apply(&workspace, change).await;
                let fresh = WorkspaceState::load(&store, &workspace).await.unwrap();
                prop_assert_eq!(&*writer.catalogs.workspace(&workspace), &fresh, "after {:?}", change);
            }
            follower.catalogs.catch_up().await.unwrap();
            let fresh = Arc::new(WorkspaceState::load(&store, &workspace).await.unwrap());
            prop_assert_eq!(&*follower.catalogs.workspace(&workspace), &*fresh);
            // Every key authenticates on both instances exactly when it is not revoked.
            for stored in &fresh.keys {
                let expected = stored.key.revoked_at.is_none();
                prop_assert_eq!(writer.catalogs.caller(&stored.secret_hash).is_some(), expected);
                prop_assert_eq!(follower.catalogs.caller(&stored.secret_hash).is_some(), expected);
            }
            Ok(())
        })?;
    }
}
