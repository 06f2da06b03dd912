//! Merge audit records (`merge_audit:[workspace, id]`) and the aliases that keep absorbed
//! contact ids resolving (`contact_alias:[workspace, absorbed]`).

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue};

use super::identities::IdentityRecord;
use super::records::{ContactRecord, compound_key};
use super::{Store, StoreError};
use crate::domain::{ContactId, MergeId, MergeRecord, MergeSide, MergeStrategy, WorkspaceId};

pub(super) const MERGE_TABLE: &str = "merge_audit";
pub(super) const ALIAS_TABLE: &str = "contact_alias";
/// Longest chain of aliases followed (a contact absorbed into one later absorbed, …).
const MAX_ALIAS_HOPS: usize = 32;

/// `merge_audit:[workspace, id]`.
pub(super) fn merge_key(workspace: &WorkspaceId, id: &MergeId) -> RecordId {
    compound_key(MERGE_TABLE, workspace, id.to_string())
}

/// `contact_alias:[workspace, absorbed]`.
pub(super) fn alias_key(workspace: &WorkspaceId, absorbed: &ContactId) -> RecordId {
    compound_key(ALIAS_TABLE, workspace, absorbed.to_string())
}

/// An absorbed id and where it resolves now.
#[derive(Debug, SurrealValue)]
pub(super) struct AliasRecord {
    id: RecordId,
    workspace: String,
    absorbed: String,
    survivor: String,
    merge: String,
}

impl AliasRecord {
    pub(super) fn new(
        workspace: &WorkspaceId,
        absorbed: &ContactId,
        survivor: &ContactId,
        merge: &MergeId,
    ) -> Self {
        Self {
            id: alias_key(workspace, absorbed),
            workspace: workspace.as_str().to_owned(),
            absorbed: absorbed.to_string(),
            survivor: survivor.to_string(),
            merge: merge.to_string(),
        }
    }
}

/// A merge as stored.
#[derive(Debug, SurrealValue)]
pub(super) struct MergeRecordStored {
    id: RecordId,
    workspace: String,
    survivor: String,
    absorbed: String,
    actor: String,
    reason: String,
    merged_at: DateTime<Utc>,
    external_id_winner: Option<String>,
    survivor_before: ContactRecord,
    absorbed_before: ContactRecord,
    survivor_after: ContactRecord,
    moved_identities: Vec<IdentityRecord>,
    undone: bool,
    undone_at: Option<DateTime<Utc>>,
    undone_by: Option<String>,
}

impl MergeRecordStored {
    pub(super) fn from_merge(merge: &MergeRecord) -> Self {
        let winner = merge.strategy.external_id.map(|side| match side {
            MergeSide::Survivor => "survivor".to_owned(),
            MergeSide::Absorbed => "absorbed".to_owned(),
        });
        Self {
            id: merge_key(&merge.workspace, &merge.id),
            workspace: merge.workspace.as_str().to_owned(),
            survivor: merge.survivor.to_string(),
            absorbed: merge.absorbed.to_string(),
            actor: merge.actor.clone(),
            reason: merge.reason.clone(),
            merged_at: merge.merged_at,
            external_id_winner: winner,
            survivor_before: ContactRecord::from_contact(&merge.survivor_before),
            absorbed_before: ContactRecord::from_contact(&merge.absorbed_before),
            survivor_after: ContactRecord::from_contact(&merge.survivor_after),
            moved_identities: merge
                .moved_identities
                .iter()
                .map(|identity| IdentityRecord::new(&merge.workspace, &merge.absorbed, identity))
                .collect(),
            undone: merge.undone_at.is_some(),
            undone_at: merge.undone_at,
            undone_by: merge.undone_by.clone(),
        }
    }

    fn into_merge(self) -> Result<MergeRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("merge record {what}"));
        let id =
            MergeId::parse(&super::records::local_key(&self.id)?).map_err(|_| corrupt("id"))?;
        let external_id = match self.external_id_winner.as_deref() {
            None => None,
            Some("survivor") => Some(MergeSide::Survivor),
            Some("absorbed") => Some(MergeSide::Absorbed),
            Some(_) => return Err(corrupt("strategy")),
        };
        Ok(MergeRecord {
            id,
            workspace: WorkspaceId::from_trusted(self.workspace),
            survivor: ContactId::parse(&self.survivor).map_err(|_| corrupt("survivor"))?,
            absorbed: ContactId::parse(&self.absorbed).map_err(|_| corrupt("absorbed"))?,
            actor: self.actor,
            reason: self.reason,
            merged_at: self.merged_at,
            strategy: MergeStrategy { external_id },
            survivor_before: self.survivor_before.into_contact()?,
            absorbed_before: self.absorbed_before.into_contact()?,
            survivor_after: self.survivor_after.into_contact()?,
            moved_identities: self
                .moved_identities
                .into_iter()
                .map(|record| record.into_held().map(|held| held.identity))
                .collect::<Result<_, _>>()?,
            undone_at: self.undone_at,
            undone_by: self.undone_by,
        })
    }
}

impl Store {
    /// The merge `id` of `workspace`.
    pub async fn merge_record(
        &self,
        workspace: &WorkspaceId,
        id: &MergeId,
    ) -> Result<Option<MergeRecord>, StoreError> {
        let record: Option<MergeRecordStored> = self
            .db
            .select(merge_key(workspace, id))
            .await
            .map_err(StoreError::from_surreal)?;
        record.map(MergeRecordStored::into_merge).transpose()
    }

    /// Every merge in which `contact` survived or was absorbed, newest first.
    pub async fn merges_of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<MergeRecord>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT * FROM {MERGE_TABLE} WHERE workspace = $workspace AND survivor = $contact; \
                 SELECT * FROM {MERGE_TABLE} WHERE workspace = $workspace AND absorbed = $contact;"
            ))
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("contact", contact.to_string()))
            .await
            .map_err(StoreError::from_surreal)?;
        let mut records: Vec<MergeRecordStored> =
            response.take(0).map_err(StoreError::from_surreal)?;
        let absorbed: Vec<MergeRecordStored> =
            response.take(1).map_err(StoreError::from_surreal)?;
        records.extend(absorbed);
        let mut merges: Vec<MergeRecord> = records
            .into_iter()
            .map(MergeRecordStored::into_merge)
            .collect::<Result<_, _>>()?;
        merges.sort_by_key(|merge| std::cmp::Reverse(merge.id));
        merges.dedup_by(|a, b| a.id == b.id);
        Ok(merges)
    }

    /// Where `id` resolves after merges: the live contact its alias chain ends at, if any.
    pub async fn alias_target(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Option<ContactId>, StoreError> {
        let mut current = *id;
        let mut resolved = None;
        for _hop in 0..MAX_ALIAS_HOPS {
            let alias: Option<AliasRecord> = self
                .db
                .select(alias_key(workspace, &current))
                .await
                .map_err(StoreError::from_surreal)?;
            let Some(alias) = alias else {
                return Ok(resolved);
            };
            current = ContactId::parse(&alias.survivor)
                .map_err(|_| StoreError::Corrupt(format!("alias of {id}")))?;
            resolved = Some(current);
        }
        Ok(resolved)
    }

    /// For each of `survivors`, the ids merged into it (every one of them is a key).
    pub async fn merged_into_many(
        &self,
        workspace: &WorkspaceId,
        survivors: &[ContactId],
    ) -> Result<std::collections::HashMap<ContactId, Vec<ContactId>>, StoreError> {
        if survivors.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let statements: String = (0..survivors.len())
            .map(|n| {
                format!(
                    "SELECT VALUE absorbed FROM {ALIAS_TABLE} WHERE workspace = $workspace AND survivor = $s{n};"
                )
            })
            .collect();
        let mut query = self
            .db
            .query(statements)
            .bind(("workspace", workspace.as_str().to_owned()));
        for (n, survivor) in survivors.iter().enumerate() {
            query = query.bind((format!("s{n}"), survivor.to_string()));
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let mut found = std::collections::HashMap::with_capacity(survivors.len());
        for (n, survivor) in survivors.iter().enumerate() {
            let raw: Vec<String> = response.take(n).map_err(StoreError::from_surreal)?;
            let mut ids = raw
                .iter()
                .map(|raw| ContactId::parse(raw).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            found.insert(*survivor, ids);
        }
        Ok(found)
    }

    /// The ids that were merged into `survivor` and now resolve to it, oldest first.
    pub async fn merged_into(
        &self,
        workspace: &WorkspaceId,
        survivor: &ContactId,
    ) -> Result<Vec<ContactId>, StoreError> {
        let mut response = self
            .db
            .query(format!(
                "SELECT VALUE absorbed FROM {ALIAS_TABLE} WHERE workspace = $workspace AND survivor = $survivor"
            ))
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("survivor", survivor.to_string()))
            .await
            .map_err(StoreError::from_surreal)?;
        let ids: Vec<String> = response.take(0).map_err(StoreError::from_surreal)?;
        let mut ids: Vec<ContactId> = ids
            .iter()
            .map(|raw| ContactId::parse(raw).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        ids.sort();
        Ok(ids)
    }
}
