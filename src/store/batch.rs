//! Writes that belong together: contacts, identities, aliases and merge records changed in one
//! SurrealDB transaction, with one change-log entry naming every contact touched (an identity
//! touches its owners), so the index and other instances' caches follow. Guards (expected
//! revisions, owners) abort the whole batch when another writer got there first; the caller
//! re-reads and plans again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, SurrealValue, Value};

use super::changes::ChangeRecord;
use super::identities::{IDENTITY_TABLE, IdentityEntry, IdentityRecord, identity_key};
use super::merges::{
    ALIAS_TABLE, AliasRecord, MERGE_TABLE, MergeRecordStored, alias_key, merge_key,
};
use super::records::{CONTACT_TABLE, ContactRecord, contact_key};
use super::{Store, StoreError};
use crate::actor::current_actor;
use crate::domain::{Contact, ContactId, Identity, IdentityKey, MergeId, MergeRecord, WorkspaceId};

/// The contact record's list of its identities (see [`super::identities`]).
pub(super) const IDENTITIES_FIELD: &str = "identities";

/// Entries to append to one contact's identities list.
#[derive(Debug, SurrealValue)]
struct ListAddition {
    contact: RecordId,
    entries: Vec<IdentityEntry>,
}

/// Thrown inside a transaction when a guard fails (a revision or an owner moved on).
const STALE: &str = "qwry:stale";
/// Thrown inside a transaction when a record that must exist does not.
const MISSING: &str = "qwry:missing";

/// A set of writes committed atomically by [`Store::commit`].
#[derive(Debug)]
pub struct WriteBatch {
    workspace: WorkspaceId,
    /// Who writes: stamped on every contact the batch writes.
    actor: String,
    statements: Vec<String>,
    params: Vec<(String, Value)>,
    touched: Vec<ContactId>,
    /// The states the batch stores of contacts it creates or replaces (not those it deletes),
    /// handed to the indexer once committed (see [`super::change_payloads`]).
    written: Vec<Contact>,
    /// Tests: the moment the change-log key is taken at (a write that commits late).
    #[cfg(test)]
    change_at: Option<DateTime<Utc>>,
}

impl WriteBatch {
    /// An empty batch of writes inside `workspace`, by the task's current actor.
    pub fn new(workspace: &WorkspaceId) -> Self {
        Self {
            workspace: workspace.clone(),
            actor: current_actor(),
            statements: Vec::new(),
            params: Vec::new(),
            touched: Vec::new(),
            written: Vec::new(),
            #[cfg(test)]
            change_at: None,
        }
    }

    /// Tests: keys the batch's change-log entry at `at`, as if it had taken its key then and
    /// committed only now.
    #[cfg(test)]
    pub fn keyed_at(mut self, at: DateTime<Utc>) -> Self {
        self.change_at = Some(at);
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The workspace every write of the batch is in.
    pub(super) fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// Adds a statement that must not fail.
    pub(super) fn push_statement(&mut self, statement: String) {
        self.statements.push(statement);
    }

    /// Binds `value` as a fresh parameter and returns its `$name`.
    pub(super) fn bind(&mut self, value: impl SurrealValue) -> String {
        let name = format!("p{}", self.params.len());
        self.params.push((name.clone(), value.into_value()));
        format!("${name}")
    }

    /// Adds `statement` (which returns the affected rows); the batch fails with `thrown` if
    /// it affects none.
    fn guarded(&mut self, statement: String, thrown: &str) {
        let var = format!("$g{}", self.statements.len());
        self.statements.push(format!(
            "LET {var} = ({statement}); IF array::len({var}) = 0 {{ THROW '{thrown}' }};"
        ));
    }

    fn touch(&mut self, contact: &Contact) {
        if !self.touched.contains(&contact.id) {
            self.touched.push(contact.id);
        }
    }

    /// Records `contact` (as it is stored) as the state the batch leaves it in.
    fn wrote(&mut self, contact: &Contact) {
        self.written.retain(|written| written.id != contact.id);
        self.written.push(contact.clone());
    }

    fn touch_id(&mut self, id: ContactId) {
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
    }

    /// Creates `contact`, recording the batch's actor on it.
    pub fn create_contact(&mut self, contact: &mut Contact) {
        contact.record_writer(&self.actor);
        let key = self.bind(contact_key(&self.workspace, &contact.id));
        let record = self.bind(ContactRecord::from_contact(contact));
        self.statements
            .push(format!("CREATE {key} CONTENT {record} RETURN NONE;"));
        self.touch(contact);
        self.wrote(contact);
    }

    /// Creates many contacts with one statement (fails if any id is taken; an external id is taken through its identity),
    /// recording the batch's actor on each; `identities` (of these contacts only) are created
    /// with a second statement and kept in the contacts' records as they are created.
    pub fn create_contacts(
        &mut self,
        contacts: &mut [Contact],
        identities: &[(ContactId, Identity)],
    ) {
        if contacts.is_empty() {
            return;
        }
        let mut lists: HashMap<ContactId, Vec<IdentityEntry>> = HashMap::new();
        for (owner, identity) in identities {
            lists
                .entry(*owner)
                .or_default()
                .push(IdentityEntry::new(identity));
        }
        let records: Vec<Value> = contacts
            .iter_mut()
            .map(|contact| {
                contact.record_writer(&self.actor);
                let mut record = ContactRecord::from_contact(contact).into_value();
                if let (Value::Object(fields), Some(list)) =
                    (&mut record, lists.remove(&contact.id))
                {
                    fields.insert(IDENTITIES_FIELD.to_owned(), list.into_value());
                }
                record
            })
            .collect();
        let records = self.bind(records);
        self.statements.push(format!(
            "INSERT INTO {CONTACT_TABLE} {records} RETURN NONE;"
        ));
        for contact in contacts.iter() {
            self.touch(contact);
            self.wrote(contact);
        }
        self.insert_identity_records(identities);
    }

    /// Gives each owner (an existing contact) its new identity, with one statement for the
    /// identities and one for the owners' lists (fails if any is held meanwhile).
    pub fn create_identities(&mut self, identities: &[(ContactId, Identity)]) {
        if identities.is_empty() {
            return;
        }
        self.insert_identity_records(identities);
        let mut lists: Vec<(ContactId, Vec<IdentityEntry>)> = Vec::new();
        for (owner, identity) in identities {
            let entry = IdentityEntry::new(identity);
            match lists.iter_mut().find(|(listed, _)| listed == owner) {
                Some((_, list)) => list.push(entry),
                None => lists.push((*owner, vec![entry])),
            }
        }
        let additions: Vec<ListAddition> = lists
            .into_iter()
            .map(|(owner, entries)| ListAddition {
                contact: contact_key(&self.workspace, &owner),
                entries,
            })
            .collect();
        let additions = self.bind(additions);
        self.statements.push(format!(
            "FOR $addition IN {additions} {{ UPDATE $addition.contact SET {IDENTITIES_FIELD} = ({IDENTITIES_FIELD} ?? []) + $addition.entries RETURN NONE; }};"
        ));
    }

    /// The identity records of `identities`, one statement (fails if any is held).
    fn insert_identity_records(&mut self, identities: &[(ContactId, Identity)]) {
        if identities.is_empty() {
            return;
        }
        for (owner, _) in identities {
            self.touch_id(*owner);
        }
        let records: Vec<IdentityRecord> = identities
            .iter()
            .map(|(owner, identity)| IdentityRecord::new(&self.workspace, owner, identity))
            .collect();
        let records = self.bind(records);
        self.statements.push(format!(
            "INSERT INTO {IDENTITY_TABLE} {records} RETURN NONE;"
        ));
    }

    /// Replaces `contact` if it is still at `expected_revision`, recording the batch's actor.
    pub fn replace_contact(&mut self, contact: &mut Contact, expected_revision: u64) {
        contact.record_writer(&self.actor);
        let key = self.bind(contact_key(&self.workspace, &contact.id));
        let record = self.bind(ContactRecord::from_contact(contact));
        let expected = self.bind(revision(expected_revision));
        self.guarded(
            // The identities list is the record's own: kept as it is now.
            format!(
                "UPDATE {key} CONTENT object::extend({record}, {{ {IDENTITIES_FIELD}: {IDENTITIES_FIELD} }}) WHERE revision = {expected} RETURN VALUE id"
            ),
            STALE,
        );
        self.touch(contact);
        self.wrote(contact);
    }

    /// Deletes the contact `id`: if it is still at `expected_revision`, or, with `None`, if it
    /// exists at all (otherwise the batch fails with [`StoreError::Missing`]).
    pub fn delete_contact(&mut self, id: &ContactId, expected_revision: Option<u64>) {
        let key = self.bind(contact_key(&self.workspace, id));
        match expected_revision {
            Some(expected) => {
                let expected = self.bind(revision(expected));
                self.guarded(
                    format!("DELETE {key} WHERE revision = {expected} RETURN BEFORE"),
                    STALE,
                );
            }
            None => self.guarded(format!("DELETE {key} RETURN BEFORE"), MISSING),
        }
        self.written.retain(|written| written.id != *id);
        self.touch_id(*id);
    }

    /// Gives `owner` a new identity (fails if another contact holds it meanwhile).
    pub fn create_identity(&mut self, owner: &ContactId, identity: &Identity) {
        let key = self.bind(identity_key(&self.workspace, &identity.key));
        let record = self.bind(IdentityRecord::new(&self.workspace, owner, identity));
        self.statements
            .push(format!("CREATE {key} CONTENT {record} RETURN NONE;"));
        let contact = self.bind(contact_key(&self.workspace, owner));
        let entry = self.bind(IdentityEntry::new(identity));
        self.statements.push(format!(
            "UPDATE {contact} SET {IDENTITIES_FIELD} = ({IDENTITIES_FIELD} ?? []) + [{entry}] RETURN NONE;"
        ));
        self.touch_id(*owner);
    }

    /// Moves an identity from `from` to `to` (fails unless `from` still holds it).
    pub fn move_identity(&mut self, key: &IdentityKey, from: &ContactId, to: &ContactId) {
        self.touch_id(*from);
        self.touch_id(*to);
        let record = self.bind(identity_key(&self.workspace, key));
        let from_key = self.bind(contact_key(&self.workspace, from));
        let to_key = self.bind(contact_key(&self.workspace, to));
        let from = self.bind(from.to_string());
        let to = self.bind(to.to_string());
        self.guarded(
            format!("UPDATE {record} SET contact = {to} WHERE contact = {from} RETURN VALUE id"),
            STALE,
        );
        self.unlist(&from_key, key);
        self.statements.push(format!(
            "UPDATE {to_key} SET {IDENTITIES_FIELD} = ({IDENTITIES_FIELD} ?? []) + (SELECT kind, value, provenance, created_at FROM {record}) RETURN NONE;"
        ));
    }

    /// Records a stronger provenance for an identity `owner` holds.
    pub fn upgrade_identity(&mut self, key: &IdentityKey, owner: &ContactId, identity: &Identity) {
        self.touch_id(*owner);
        let record = self.bind(identity_key(&self.workspace, key));
        let contact = self.bind(contact_key(&self.workspace, owner));
        let owner = self.bind(owner.to_string());
        let provenance = self.bind(identity.provenance.as_str().to_owned());
        self.guarded(
            format!(
                "UPDATE {record} SET provenance = {provenance} WHERE contact = {owner} RETURN VALUE id"
            ),
            STALE,
        );
        let kind = self.bind(key.kind.as_str().to_owned());
        let value = self.bind(key.value.clone());
        self.statements.push(format!(
            "UPDATE {contact} SET {IDENTITIES_FIELD} = ({IDENTITIES_FIELD} ?? []).map(|$entry| IF $entry.kind = {kind} AND $entry.value = {value} {{ object::extend($entry, {{ provenance: {provenance} }}) }} ELSE {{ $entry }}) RETURN NONE;"
        ));
    }

    /// Deletes an identity if `owner` holds it.
    pub fn delete_identity(&mut self, key: &IdentityKey, owner: &ContactId) {
        self.touch_id(*owner);
        let record = self.bind(identity_key(&self.workspace, key));
        let contact = self.bind(contact_key(&self.workspace, owner));
        let owner = self.bind(owner.to_string());
        self.guarded(
            format!("DELETE {record} WHERE contact = {owner} RETURN BEFORE"),
            MISSING,
        );
        self.unlist(&contact, key);
    }

    /// Takes `key` out of the identities list of `contact` (a bound contact key).
    fn unlist(&mut self, contact: &str, key: &IdentityKey) {
        let kind = self.bind(key.kind.as_str().to_owned());
        let value = self.bind(key.value.clone());
        self.statements.push(format!(
            "UPDATE {contact} SET {IDENTITIES_FIELD} = ({IDENTITIES_FIELD} ?? [])[WHERE !(kind = {kind} AND value = {value})] RETURN NONE;"
        ));
    }

    /// Deletes every identity of `contact` (those its list names); comes before the contact's
    /// own deletion in the batch.
    pub fn delete_identities_of(&mut self, contact: &ContactId) {
        self.touch_id(*contact);
        let workspace = self.bind(self.workspace.as_str().to_owned());
        let key = self.bind(contact_key(&self.workspace, contact));
        let owner = self.bind(contact.to_string());
        let held = format!("$held{}", self.statements.len());
        self.statements.push(format!(
            "LET {held} = (SELECT VALUE {IDENTITIES_FIELD} FROM ONLY {key}) ?? []; \
             DELETE {held}.map(|$entry| type::record('{IDENTITY_TABLE}', [{workspace}, $entry.kind, $entry.value])) WHERE contact = {owner} RETURN NONE;"
        ));
    }

    /// Makes `absorbed` resolve to `survivor`.
    pub fn create_alias(&mut self, absorbed: &ContactId, survivor: &ContactId, merge: &MergeId) {
        let key = self.bind(alias_key(&self.workspace, absorbed));
        let record = self.bind(AliasRecord::new(&self.workspace, absorbed, survivor, merge));
        self.statements
            .push(format!("UPSERT {key} CONTENT {record} RETURN NONE;"));
    }

    /// Stops `absorbed` resolving elsewhere.
    pub fn delete_alias(&mut self, absorbed: &ContactId) {
        let key = self.bind(alias_key(&self.workspace, absorbed));
        self.statements.push(format!("DELETE {key} RETURN NONE;"));
    }

    /// Deletes every alias that resolves to `survivor`.
    pub fn delete_aliases_to(&mut self, survivor: &ContactId) {
        let workspace = self.bind(self.workspace.as_str().to_owned());
        let survivor = self.bind(survivor.to_string());
        self.statements.push(format!(
            "DELETE {ALIAS_TABLE} WHERE workspace = {workspace} AND survivor = {survivor} RETURN NONE;"
        ));
    }

    /// Stores the audit record of a merge.
    pub fn record_merge(&mut self, merge: &MergeRecord) {
        let key = self.bind(merge_key(&self.workspace, &merge.id));
        let record = self.bind(MergeRecordStored::from_merge(merge));
        self.statements
            .push(format!("CREATE {key} CONTENT {record} RETURN NONE;"));
    }

    /// Marks a merge undone (fails if it was undone meanwhile).
    pub fn mark_unmerged(&mut self, merge: &MergeId, at: DateTime<Utc>, actor: &str) {
        let key = self.bind(merge_key(&self.workspace, merge));
        let at = self.bind(at);
        let actor = self.bind(actor.to_owned());
        self.guarded(
            format!(
                "UPDATE {key} SET undone = true, undone_at = {at}, undone_by = {actor} WHERE undone = false RETURN VALUE id"
            ),
            STALE,
        );
    }

    /// Deletes every merge record naming `contact` (they hold snapshots of its data).
    pub fn delete_merges_of(&mut self, contact: &ContactId) {
        let workspace = self.bind(self.workspace.as_str().to_owned());
        let contact = self.bind(contact.to_string());
        self.statements.push(format!(
            "DELETE {MERGE_TABLE} WHERE workspace = {workspace} AND (survivor = {contact} OR absorbed = {contact}) RETURN NONE;"
        ));
    }
}

fn revision(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Commits `batch` as one transaction with its change-log entry. A failed guard, or an
    /// identity (an external id too) another writer created first, is
    /// [`StoreError::WriteConflict`] (re-read and retry); a missing record
    /// [`StoreError::Missing`]; nothing is written on error.
    pub async fn commit(&self, mut batch: WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut committed_key = None;
        if !batch.touched.is_empty() {
            let change = ChangeRecord::new(&batch.workspace, &batch.touched);
            #[cfg(test)]
            let change = match batch.change_at {
                Some(at) => change.keyed_at(at),
                None => change,
            };
            committed_key = Some(change.key()?);
            let key = batch.bind(change.id());
            let record = batch.bind(change);
            batch
                .statements
                .push(format!("CREATE {key} CONTENT {record} RETURN NONE;"));
        }
        let text = format!(
            "BEGIN TRANSACTION; {} COMMIT TRANSACTION;",
            batch.statements.join(" ")
        );
        let mut query = self.db.query(text);
        for param in batch.params {
            query = query.bind(param);
        }
        let outcome = query.await;
        // Whatever the outcome (an error may come after the commit), what was kept of the
        // touched contacts may be stale now.
        self.cache.forget(&batch.touched);
        let mut response = outcome.map_err(|error| classify(&error))?;
        let errors: Vec<surrealdb::Error> = response.take_errors().into_values().collect();
        if errors.is_empty() {
            if let Some(key) = committed_key {
                self.payloads.keep(key, batch.written);
            }
            return Ok(());
        }
        Err(classify_all(&errors))
    }
}

/// Maps the statement errors of a failed batch (one cause; the other statements report that
/// they were not executed or were cancelled) to the store's error vocabulary.
fn classify_all(errors: &[surrealdb::Error]) -> StoreError {
    let thrown = |marker: &str| errors.iter().any(|error| throws(error, marker));
    if thrown(STALE) {
        return StoreError::WriteConflict;
    }
    if thrown(MISSING) {
        return StoreError::Missing;
    }
    let conflicted = errors.iter().any(|error| {
        error.is_already_exists()
            || matches!(StoreError::classify(error), StoreError::WriteConflict)
    });
    if conflicted {
        return StoreError::WriteConflict;
    }
    StoreError::classify(super::cause_of(errors))
}

/// Whether `error` is the `THROW` of a guard of this batch with `marker` (the one text a
/// SurrealDB error carries of our own making).
fn throws(error: &surrealdb::Error, marker: &str) -> bool {
    error.is_thrown() && error.message().ends_with(marker)
}

/// Maps an error of the whole request (before any statement ran).
fn classify(error: &surrealdb::Error) -> StoreError {
    classify_all(std::slice::from_ref(error))
}
