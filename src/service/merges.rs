//! Merge use cases: preview a plan, merge two contacts in one transaction with an audit record,
//! undo a merge, list a contact's merge history.

use chrono::Utc;
use tracing::info;

use super::catalog_cache::Catalogs;
use super::indexer::ChangeNotifier;
use crate::domain::{
    Contact, ContactId, MergeId, MergePlan, MergeRecord, MergeStrategy, WorkspaceId, plan_merge,
};
use crate::service::contention::{Attempts, WRITE_ATTEMPTS};
use crate::service::error::ServiceError;
use crate::store::{Store, StoreError, WriteBatch};

/// Why a merge happened, as recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeReason {
    /// `mergeContacts`.
    Requested,
    /// `identify` linked an anonymous visitor to the identified contact.
    Identify,
    /// Two trusted claims of one email or phone.
    AutoLink,
}

impl MergeReason {
    /// The audit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "merge",
            Self::Identify => "identify",
            Self::AutoLink => "auto-link",
        }
    }
}

/// A merge plan with the two contacts it was computed from.
#[derive(Debug, Clone)]
pub struct MergePreview {
    /// The contact that would remain, as it is now.
    pub survivor: Contact,
    /// The contact that would be merged away, as it is now.
    pub absorbed: Contact,
    /// The result, field by field.
    pub plan: MergePlan,
}

/// Merge use cases over the store.
#[derive(Clone)]
pub struct MergeService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
}

impl MergeService {
    /// Merge use cases backed by `store`; `notifier` wakes the indexer after every write.
    pub fn new(store: Store, catalogs: Catalogs, notifier: ChangeNotifier) -> Self {
        Self {
            store,
            catalogs,
            notifier,
        }
    }

    /// What merging `absorbed` into `survivor` would produce, without writing anything.
    pub async fn preview(
        &self,
        workspace: &WorkspaceId,
        survivor: &ContactId,
        absorbed: &ContactId,
        strategy: MergeStrategy,
    ) -> Result<MergePreview, ServiceError> {
        let survivor = self.live_contact(workspace, survivor, "survivorId").await?;
        let absorbed = self.live_contact(workspace, absorbed, "absorbedId").await?;
        self.plan(workspace, survivor, absorbed, strategy).await
    }

    /// Merges `absorbed` into `survivor` exactly as [`MergeService::preview`] shows: one
    /// transaction writes the survivor, deletes the absorbed contact, moves its identities,
    /// makes its id resolve to the survivor, and stores the audit record.
    pub async fn merge(
        &self,
        workspace: &WorkspaceId,
        survivor: &ContactId,
        absorbed: &ContactId,
        strategy: MergeStrategy,
        actor: &str,
        reason: MergeReason,
    ) -> Result<MergeRecord, ServiceError> {
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let preview = self
                .preview(workspace, survivor, absorbed, strategy)
                .await?;
            if let Some(record) = self.apply(preview, strategy, actor, reason).await? {
                return Ok(record);
            }
        }
        Err(ServiceError::Conflict(format!(
            "contacts `{survivor}` and `{absorbed}` are being changed by many requests at once; retry the merge"
        )))
    }

    /// Writes a previewed merge; `None` means another write changed either contact first.
    pub(super) async fn apply(
        &self,
        preview: MergePreview,
        strategy: MergeStrategy,
        actor: &str,
        reason: MergeReason,
    ) -> Result<Option<MergeRecord>, ServiceError> {
        let MergePreview {
            survivor,
            absorbed,
            plan,
        } = preview;
        let workspace = survivor.workspace.clone();
        let moved_identities = self.store.identities_of(&workspace, &absorbed.id).await?;
        let mut record = MergeRecord {
            id: MergeId::generate(),
            workspace: workspace.clone(),
            survivor: survivor.id,
            absorbed: absorbed.id,
            actor: actor.to_owned(),
            reason: reason.as_str().to_owned(),
            merged_at: Utc::now(),
            strategy,
            survivor_after: plan.merged.clone(),
            moved_identities,
            survivor_before: survivor,
            absorbed_before: absorbed,
            undone_at: None,
            undone_by: None,
        };
        let mut batch = WriteBatch::new(&workspace);
        batch.delete_contact(&record.absorbed, Some(record.absorbed_before.revision));
        batch.replace_contact(&mut record.survivor_after, record.survivor_before.revision);
        for identity in &record.moved_identities {
            batch.move_identity(&identity.key, &record.absorbed, &record.survivor);
        }
        batch.move_activity(&record.absorbed, &record.survivor, &record.id);
        batch.create_alias(&record.absorbed, &record.survivor, &record.id);
        batch.record_merge(&record);
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                info!(
                    merge = %record.id, survivor = %record.survivor, absorbed = %record.absorbed,
                    reason = record.reason, "contacts merged"
                );
                Ok(Some(record))
            }
            Err(StoreError::WriteConflict) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    /// Merge `id` of `workspace`, as audited; NOT_FOUND if it has none with that id.
    pub async fn get(
        &self,
        workspace: &WorkspaceId,
        id: &MergeId,
    ) -> Result<MergeRecord, ServiceError> {
        self.store
            .merge_record(workspace, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("merge `{id}` does not exist")))
    }

    /// Restores both contacts of merge `id` as they were before it, when the survivor has not
    /// changed since in a way the restore would lose (only `lastSeenAt` may have moved on).
    pub async fn unmerge(
        &self,
        workspace: &WorkspaceId,
        id: &MergeId,
        actor: &str,
    ) -> Result<MergeRecord, ServiceError> {
        let record = self
            .store
            .merge_record(workspace, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("merge `{id}` does not exist")))?;
        if record.undone_at.is_some() {
            return Err(ServiceError::Conflict(format!(
                "merge `{id}` was already undone"
            )));
        }
        let current = self
            .store
            .contact(workspace, &record.survivor)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "contact `{}` no longer exists (deleted or merged into another contact since); undo the later merge first",
                    record.survivor
                ))
            })?;
        if record.survivor_changed_since(&current) {
            return Err(ServiceError::Conflict(format!(
                "contact `{}` changed after merge `{id}`; undoing it would lose those changes",
                record.survivor
            )));
        }
        let now = Utc::now();
        let mut survivor = record.survivor_before.clone();
        if current.fields.last_seen_at != record.survivor_after.fields.last_seen_at {
            survivor.fields.last_seen_at = current.fields.last_seen_at;
        }
        survivor.revision = current.revision + 1;
        survivor.updated_at = now;
        let mut absorbed = record.absorbed_before.clone();
        absorbed.revision += 1;
        absorbed.updated_at = now;
        // Conversations recorded since the merge stay with the survivor; what the merge
        // brought goes back (a conversation recorded meanwhile moves the survivor's revision,
        // so the guarded replace below catches it).
        let (kept, returned) = self
            .store
            .activity_split(workspace, &record.survivor, id)
            .await?;
        // First sightings: each side's own from before the merge, and its conversations'.
        survivor.activity = kept.seen_by(record.survivor_before.first_seen_at());
        absorbed.activity = returned.seen_by(record.absorbed_before.first_seen_at());

        let mut batch = WriteBatch::new(workspace);
        batch.replace_contact(&mut survivor, current.revision);
        batch.create_contact(&mut absorbed);
        for identity in &record.moved_identities {
            let still_held = self
                .store
                .identity_holder(workspace, &identity.key)
                .await?
                .is_some_and(|held| held.contact == record.survivor);
            if still_held {
                batch.move_identity(&identity.key, &record.survivor, &record.absorbed);
            }
        }
        batch.return_activity(&record.survivor, &record.absorbed, id);
        batch.delete_alias(&record.absorbed);
        batch.mark_unmerged(id, now, actor);
        match self.store.commit(batch).await {
            Ok(()) => {
                self.notifier.notify();
                info!(merge = %id, "merge undone");
                Ok(MergeRecord {
                    undone_at: Some(now),
                    undone_by: Some(actor.to_owned()),
                    ..record
                })
            }
            Err(StoreError::WriteConflict | StoreError::DuplicateExternalId(_)) => {
                Err(ServiceError::Conflict(format!(
                    "the contacts of merge `{id}` changed while it was being undone; retry"
                )))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Every merge `contact` took part in, newest first.
    pub async fn history(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<MergeRecord>, ServiceError> {
        Ok(self.store.merges_of(workspace, contact).await?)
    }

    /// The merge plan for two loaded contacts.
    pub(super) async fn plan(
        &self,
        workspace: &WorkspaceId,
        survivor: Contact,
        absorbed: Contact,
        strategy: MergeStrategy,
    ) -> Result<MergePreview, ServiceError> {
        if survivor.id == absorbed.id {
            return Err(ServiceError::invalid(
                "absorbedId",
                format!("contact `{}` cannot be merged into itself", survivor.id),
            ));
        }
        let registry = self.catalogs.registry(workspace);
        let rule_of = |name: &crate::domain::AttributeName| {
            registry
                .get(name.as_str())
                .map(|definition| definition.merge_rule)
        };
        let plan = plan_merge(&survivor, &absorbed, &rule_of, strategy, Utc::now())
            .map_err(|conflict| ServiceError::Conflict(conflict.to_string()))?;
        Ok(MergePreview {
            survivor,
            absorbed,
            plan,
        })
    }

    /// A contact that exists as itself: NOT_FOUND if unknown, CONFLICT if merged away.
    async fn live_contact(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
        argument: &str,
    ) -> Result<Contact, ServiceError> {
        if let Some(contact) = self.store.contact(workspace, id).await? {
            return Ok(contact);
        }
        match self.store.alias_target(workspace, id).await? {
            Some(survivor) => Err(ServiceError::Conflict(format!(
                "`{argument}` `{id}` was merged into contact `{survivor}`; use that id instead"
            ))),
            None => Err(ServiceError::NotFound(format!(
                "contact `{id}` does not exist"
            ))),
        }
    }
}
