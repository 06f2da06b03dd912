//! Contact records: point reads, keyset pages, counts and revision-checked writes.

use std::ops::Bound;

use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange};

use super::records::{CONTACT_TABLE, ContactRecord, contact_key};
use super::{Store, StoreError, schema};
use crate::domain::{Contact, ContactId, ExternalId, WorkspaceId};

/// Sorts after every ULID (Crockford base32 is `0-9A-Z`): the exclusive end of a workspace's range.
const AFTER_ALL_IDS: &str = "~";

/// One page of contacts in id order, and whether more follow.
#[derive(Debug)]
pub struct ContactPage {
    /// The contacts, ascending by id.
    pub contacts: Vec<Contact>,
    /// Whether contacts exist after the last one.
    pub has_more: bool,
}

/// `contact:[ws, after]>..[ws, '~']`: the workspace's contacts after a cursor, in key order.
fn workspace_range(workspace: &WorkspaceId, after: Option<&ContactId>) -> RecordId {
    let bound =
        |local: String| RecordIdKey::Array(Array::from(vec![workspace.as_str().to_owned(), local]));
    let start = match after {
        Some(id) => Bound::Excluded(bound(id.to_string())),
        None => Bound::Included(bound(String::new())),
    };
    let end = Bound::Excluded(bound(AFTER_ALL_IDS.to_owned()));
    RecordId::new(
        CONTACT_TABLE,
        RecordIdKey::Range(Box::new(RecordIdKeyRange { start, end })),
    )
}

impl Store {
    /// The contact with `id` in `workspace`.
    pub async fn contact(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<Option<Contact>, StoreError> {
        let record: Option<ContactRecord> = self
            .db
            .select(contact_key(workspace, id))
            .await
            .map_err(StoreError::from_surreal)?;
        record.map(ContactRecord::into_contact).transpose()
    }

    /// The contact whose external id is `external_id` (served by the unique index).
    pub async fn contact_by_external_id(
        &self,
        workspace: &WorkspaceId,
        external_id: &ExternalId,
    ) -> Result<Option<Contact>, StoreError> {
        let mut response = self
            .db
            .query("SELECT * FROM contact WHERE workspace = $workspace AND external_id = $external_id LIMIT 1")
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("external_id", external_id.as_str().to_owned()))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ContactRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records
            .into_iter()
            .next()
            .map(ContactRecord::into_contact)
            .transpose()
    }

    /// Up to `limit` contacts after `after`, ascending by id: a key-range scan, stable under writes.
    pub async fn contact_page(
        &self,
        workspace: &WorkspaceId,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<ContactPage, StoreError> {
        let mut response = self
            .db
            .query("SELECT * FROM $range LIMIT $limit")
            .bind(("range", workspace_range(workspace, after)))
            .bind((
                "limit",
                i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
            ))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<ContactRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        let has_more = records.len() > limit;
        let contacts = records
            .into_iter()
            .take(limit)
            .map(ContactRecord::into_contact)
            .collect::<Result<_, _>>()?;
        Ok(ContactPage { contacts, has_more })
    }

    /// How many contacts the workspace holds.
    pub async fn count_contacts(&self, workspace: &WorkspaceId) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query("RETURN count(SELECT VALUE id FROM $range)")
            .bind(("range", workspace_range(workspace, None)))
            .await
            .map_err(StoreError::from_surreal)?;
        let count: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(count
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or_default())
    }

    /// Stores a new contact; a taken external id is [`StoreError::DuplicateExternalId`].
    pub async fn insert_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        self.db
            .query("CREATE $id CONTENT $record RETURN NONE")
            .bind(("id", contact_key(&contact.workspace, &contact.id)))
            .bind(("record", ContactRecord::from_contact(contact)))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(|error| write_error(error, contact))
    }

    /// Replaces a contact if it is still at `expected_revision`; otherwise [`StoreError::WriteConflict`].
    pub async fn update_contact(
        &self,
        contact: &Contact,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        let mut response = self
            .db
            .query("UPDATE $id CONTENT $record WHERE revision = $expected RETURN VALUE id")
            .bind(("id", contact_key(&contact.workspace, &contact.id)))
            .bind(("record", ContactRecord::from_contact(contact)))
            .bind((
                "expected",
                i64::try_from(expected_revision).unwrap_or(i64::MAX),
            ))
            .await
            .map_err(|error| write_error(error, contact))?;
        let updated: Vec<RecordId> = response
            .take(0)
            .map_err(|error| write_error(error, contact))?;
        if updated.is_empty() {
            return Err(StoreError::WriteConflict);
        }
        Ok(())
    }

    /// Removes a contact; returns whether it existed.
    pub async fn delete_contact(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Result<bool, StoreError> {
        let mut response = self
            .db
            .query("DELETE $id RETURN BEFORE")
            .bind(("id", contact_key(workspace, id)))
            .await
            .map_err(StoreError::from_surreal)?;
        let deleted: Vec<ContactRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(!deleted.is_empty())
    }
}

/// Maps a write failure, recognising violations of the external-id unique index.
fn write_error(error: surrealdb::Error, contact: &Contact) -> StoreError {
    if error.message().contains(schema::EXTERNAL_ID_INDEX)
        && let Some(external_id) = &contact.fields.external_id
    {
        return StoreError::DuplicateExternalId(external_id.clone());
    }
    StoreError::from_surreal(error)
}
