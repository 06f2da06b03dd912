//! The store's schema version, and the migrations that bring an older store up to it.
//!
//! The version is kept in `schema_version:store`. A store without that record is either new
//! (no contact and no identity yet: it starts at [`SCHEMA_VERSION`]) or was written before
//! versions were kept (version 1). Start-up migrates an older store in place, one version at a
//! time. A migration works in pages of idempotent writes, recording after each page how far it
//! got, so a crash resumes at the page it interrupted. A store of a newer version is refused:
//! this release does not know its shape.
//!
//! Versions:
//! 1. identities as records only; "the identities of a contact" came from a secondary index
//!    on their owner (`contact_identity_owner`).
//! 2. identities also listed on their contact's record (`identities`), the owner index gone.
//! 3. no unique index on the contacts' external ids (`contact_external_id`): an external id is
//!    unique through its identity record, which every write of one creates in its transaction
//!    (the migration creates the record for any contact that lacks it).
//! 4. a contact's field sources kept as one JSON string (`sources`) instead of a map of one
//!    value per field (`field_sources`). Records are not rewritten: reads take either, and
//!    each contact's next write stores the new form. The version keeps an older release,
//!    which would read no sources from a rewritten contact, off the store.
//! 5. the webhook outbox read through a cursor and a retry lane (`outbox`); the index on the
//!    deliveries' status (`webhook_delivery_pending`) is gone. Nothing is rewritten: an
//!    endpoint without a cursor reads its log from the start once, and its pending deliveries
//!    join the lanes as they are found.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, RecordIdKey, SurrealValue};
use tracing::info;

use super::batch::IDENTITIES_FIELD;
use super::identities::{IDENTITY_TABLE, IdentityEntry, IdentityRecord};
use super::records::{CONTACT_TABLE, contact_key, contact_key_parts};
use super::{Store, StoreError, WriteBatch};
use crate::domain::{ContactId, Identity, IdentityKey, IdentityKind, Provenance, WorkspaceId};

/// The schema version this release writes.
pub const SCHEMA_VERSION: i64 = 5;
/// Contacts migrated per transaction.
const PAGE: usize = 500;
const VERSION_TABLE: &str = "schema_version";
/// The owner index of version 1, removed by the migration to version 2.
const OWNER_INDEX: &str = "contact_identity_owner";
/// The contacts' unique index on external ids of version 2, removed by the migration to 3.
const EXTERNAL_ID_INDEX: &str = "contact_external_id";
/// The index on the webhook deliveries' status of version 4, removed by the migration to 5.
const DELIVERY_STATUS_INDEX: &str = "webhook_delivery_pending ON webhook_delivery";

/// `schema_version:store`.
fn version_key() -> RecordId {
    RecordId::new(VERSION_TABLE, RecordIdKey::String("store".to_owned()))
}

/// The version record: the store's version and, during a migration, the last contact done.
#[derive(Debug, SurrealValue)]
struct VersionRecord {
    version: i64,
    migrated_until: Option<RecordId>,
}

/// How far [`Store::migrate`] may go (tests stop it part-way, as a crash would).
#[derive(Debug, Clone, Copy)]
pub struct MigrationLimits {
    /// Contacts per transaction.
    pub page: usize,
    /// Stop after this many pages, as if the process died there.
    pub stop_after_pages: Option<usize>,
}

impl Default for MigrationLimits {
    fn default() -> Self {
        Self {
            page: PAGE,
            stop_after_pages: None,
        }
    }
}

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// The store is at [`SCHEMA_VERSION`].
    Current {
        /// The version it was at before.
        from: i64,
    },
    /// Stopped by [`MigrationLimits::stop_after_pages`] before the end.
    Stopped,
}

impl Store {
    /// The schema version the store records (1 for a store with data and no record; the
    /// current version for an empty one).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let record = self.version_record().await?;
        Ok(self
            .version_of(record.as_ref())
            .await?
            .unwrap_or(SCHEMA_VERSION))
    }

    /// Brings the store to [`SCHEMA_VERSION`], resuming a migration a crash interrupted;
    /// refuses a store of a newer version ([`StoreError::NewerSchema`]).
    pub async fn migrate(&self, limits: MigrationLimits) -> Result<Migrated, StoreError> {
        let record = self.version_record().await?;
        let Some(from) = self.version_of(record.as_ref()).await? else {
            self.record_version(SCHEMA_VERSION, None, "").await?;
            return Ok(Migrated::Current {
                from: SCHEMA_VERSION,
            });
        };
        if from > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: from,
                supported: SCHEMA_VERSION,
            });
        }
        // Where the step of the recorded version had got to (the later steps start afresh).
        let resume_of = |version: i64| {
            record
                .as_ref()
                .filter(|record| record.version == version)
                .and_then(|record| record.migrated_until.clone())
        };
        if from == 1 {
            if resume_of(1).is_none() {
                info!(
                    "migrating the store from schema version 1 to 2: identities listed on their contacts"
                );
            }
            if !self
                .list_identities_on_contacts(resume_of(1), limits)
                .await?
            {
                return Ok(Migrated::Stopped);
            }
            self.finish_migration(
                2,
                &format!("REMOVE INDEX IF EXISTS {OWNER_INDEX} ON {IDENTITY_TABLE};"),
            )
            .await?;
        }
        if from <= 2 {
            if !self
                .ensure_external_id_identities(resume_of(2), limits)
                .await?
            {
                return Ok(Migrated::Stopped);
            }
            self.finish_migration(
                3,
                &format!("REMOVE INDEX IF EXISTS {EXTERNAL_ID_INDEX} ON {CONTACT_TABLE};"),
            )
            .await?;
        }
        if from <= 3 {
            self.finish_migration(4, "").await?;
        }
        if from <= 4 {
            self.finish_migration(
                5,
                &format!("REMOVE INDEX IF EXISTS {DELIVERY_STATUS_INDEX};"),
            )
            .await?;
        }
        Ok(Migrated::Current { from })
    }

    /// The version `record` says, 1 for a store with data and no record, `None` for an empty
    /// store (nothing to migrate).
    async fn version_of(&self, record: Option<&VersionRecord>) -> Result<Option<i64>, StoreError> {
        Ok(match record {
            Some(record) => Some(record.version),
            None => self
                .first_table_with_records(&[CONTACT_TABLE, IDENTITY_TABLE])
                .await?
                .map(|_| 1),
        })
    }

    /// Runs `statements` and records `version` in one transaction.
    async fn finish_migration(&self, version: i64, statements: &str) -> Result<(), StoreError> {
        self.record_version(version, None, statements).await?;
        info!(version, "the store is at schema version {version}");
        Ok(())
    }

    /// Version 2 to 3, after `resume`: every contact with an external id gets the identity
    /// record of it if it lacks one (a store older than identities could), as version 3 keeps
    /// external ids unique through those records alone. False when stopped early.
    async fn ensure_external_id_identities(
        &self,
        resume: Option<RecordId>,
        limits: MigrationLimits,
    ) -> Result<bool, StoreError> {
        let projection = "id, external_id, created_at";
        self.in_pages(
            2,
            projection,
            resume,
            limits,
            async |rows: Vec<ExternalIdRow>| {
                let mut wanted: HashMap<WorkspaceId, Vec<(ContactId, Identity)>> = HashMap::new();
                for row in rows {
                    let (workspace, contact) = contact_key_parts(&row.id)?;
                    if let Some(value) = row.external_id {
                        let identity = Identity {
                            key: IdentityKey::from_trusted(IdentityKind::ExternalId, value),
                            provenance: Provenance::Api,
                            created_at: row.created_at,
                        };
                        wanted
                            .entry(workspace)
                            .or_default()
                            .push((contact, identity));
                    }
                }
                for (workspace, identities) in wanted {
                    let keys: Vec<IdentityKey> = identities
                        .iter()
                        .map(|(_, identity)| identity.key.clone())
                        .collect();
                    let held: Vec<IdentityKey> = self
                        .identity_holders(&workspace, &keys)
                        .await?
                        .into_iter()
                        .map(|held| held.identity.key)
                        .collect();
                    let missing: Vec<(ContactId, Identity)> = identities
                        .into_iter()
                        .filter(|(_, identity)| !held.contains(&identity.key))
                        .collect();
                    if !missing.is_empty() {
                        let mut batch = WriteBatch::new(&workspace);
                        batch.create_identities(&missing);
                        self.commit(batch).await?;
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Version 1 to 2, after `resume`: each contact's identities (found by the owner index
    /// version 1 has) written as its `identities` list. False when stopped early.
    async fn list_identities_on_contacts(
        &self,
        resume: Option<RecordId>,
        limits: MigrationLimits,
    ) -> Result<bool, StoreError> {
        self.in_pages(1, "VALUE id", resume, limits, async |keys: Vec<RecordId>| {
            let mut by_workspace: HashMap<WorkspaceId, Vec<ContactId>> = HashMap::new();
            for key in &keys {
                let (workspace, contact) = contact_key_parts(key)?;
                by_workspace.entry(workspace).or_default().push(contact);
            }
            let mut lists = Vec::with_capacity(keys.len());
            for (workspace, contacts) in by_workspace {
                for (contact, entries) in self.owned_identities(&workspace, &contacts).await? {
                    lists.push(ContactList {
                        contact: contact_key(&workspace, &contact),
                        entries,
                    });
                }
            }
            self.db
                .query(format!(
                    "FOR $list IN $lists {{ UPDATE $list.contact SET {IDENTITIES_FIELD} = $list.entries RETURN NONE; }};"
                ))
                .bind(("lists", lists))
                .await
                .and_then(|response| response.check())
                .map(|_| ())
                .map_err(StoreError::from_surreal)
        })
        .await
    }

    /// The step from `version`, page by page: `projection` of the next `limits.page`
    /// contacts (every workspace, in key order) after `resume`, given to `migrate_page`, then
    /// the page's last contact recorded as how far the step got. A page's writes must be
    /// idempotent: a crash between them and that record redoes the page. False when stopped by
    /// [`MigrationLimits::stop_after_pages`].
    async fn in_pages<Row: PageRow>(
        &self,
        version: i64,
        projection: &'static str,
        mut resume: Option<RecordId>,
        limits: MigrationLimits,
        mut migrate_page: impl AsyncFnMut(Vec<Row>) -> Result<(), StoreError>,
    ) -> Result<bool, StoreError> {
        let mut pages = 0;
        loop {
            if limits.stop_after_pages.is_some_and(|stop| pages >= stop) {
                return Ok(false);
            }
            let rows: Vec<Row> = self
                .contact_rows_after(projection, resume.as_ref(), limits.page)
                .await?;
            let Some(last) = rows.last().map(|row| row.record().clone()) else {
                return Ok(true);
            };
            migrate_page(rows).await?;
            self.record_version(version, Some(last.clone()), "").await?;
            resume = Some(last);
            pages += 1;
        }
    }

    /// The identities each of `contacts` owns, through version 1's owner index (one
    /// statement per contact, one round trip).
    async fn owned_identities(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
    ) -> Result<Vec<(ContactId, Vec<IdentityEntry>)>, StoreError> {
        let statements: String = (0..contacts.len())
            .map(|n| {
                format!(
                    "SELECT * FROM {IDENTITY_TABLE} WHERE workspace = $workspace AND contact = $c{n};"
                )
            })
            .collect();
        let mut query = self
            .db
            .query(statements)
            .bind(("workspace", workspace.as_str().to_owned()));
        for (n, contact) in contacts.iter().enumerate() {
            query = query.bind((format!("c{n}"), contact.to_string()));
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let mut owned = Vec::with_capacity(contacts.len());
        for (n, contact) in contacts.iter().enumerate() {
            let records: Vec<IdentityRecord> =
                response.take(n).map_err(StoreError::from_surreal)?;
            let entries = records
                .into_iter()
                .map(|record| {
                    record
                        .into_held()
                        .map(|held| IdentityEntry::new(&held.identity))
                })
                .collect::<Result<Vec<_>, _>>()?;
            owned.push((*contact, entries));
        }
        Ok(owned)
    }

    async fn version_record(&self) -> Result<Option<VersionRecord>, StoreError> {
        self.db
            .select(version_key())
            .await
            .map_err(StoreError::from_surreal)
    }

    /// Deletes the version record (a restore brings the backup's).
    pub(super) async fn forget_schema_version(&self) -> Result<(), StoreError> {
        self.db
            .query("DELETE $key RETURN NONE")
            .bind(("key", version_key()))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }

    /// Runs `statements` (none: `""`) and records `version`, with how far its migration got
    /// (`until`; `None` once done), in one transaction.
    pub(super) async fn record_version(
        &self,
        version: i64,
        until: Option<RecordId>,
        statements: &str,
    ) -> Result<(), StoreError> {
        self.db
            .query(format!(
                "BEGIN TRANSACTION; {statements} \
                 UPSERT $key CONTENT {{ version: $version, migrated_until: $until }} RETURN NONE; \
                 COMMIT TRANSACTION;"
            ))
            .bind(("key", version_key()))
            .bind(("version", version))
            .bind(("until", until))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}

/// A row of a migration's page: it knows its contact's record id.
trait PageRow: SurrealValue {
    fn record(&self) -> &RecordId;
}

impl PageRow for RecordId {
    fn record(&self) -> &RecordId {
        self
    }
}

impl PageRow for ExternalIdRow {
    fn record(&self) -> &RecordId {
        &self.id
    }
}

/// A contact's external id, as the migration to version 3 reads it.
#[derive(Debug, SurrealValue)]
struct ExternalIdRow {
    id: RecordId,
    external_id: Option<String>,
    created_at: DateTime<Utc>,
}

/// One contact's identities list, as the migration writes it.
#[derive(Debug, SurrealValue)]
struct ContactList {
    contact: RecordId,
    entries: Vec<IdentityEntry>,
}
