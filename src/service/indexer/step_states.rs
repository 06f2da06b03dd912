//! What one indexer step indexes for each contact its change-log entries name: the state the
//! write committed, handed over in memory with the entry (see `store::change_payloads`), where
//! that is safe, and otherwise the contact's current state read back from the store.
//!
//! Entry keys are taken before a transaction begins, so two entries naming one contact may
//! become visible in the opposite order of their keys, and applying payloads in key order
//! could put an older state over a newer one. Three rules prevent it:
//! - revisions: two committed writes of one contact are ordered (each checks the revision the
//!   other bumped), so a payload replaces a document only when its revision is higher than the
//!   indexed one;
//! - a contact that the step's own entries name without a payload (a deletion, a merge, an
//!   identity change, another instance's write) and every late entry (found below the
//!   watermark) are read back, and the read-back state is newer than any payload of the step;
//! - a contact whose document a step removed is remembered until the watermark passes the
//!   moment of that step: a payload committed before the removal (whose entry is keyed before
//!   that moment) finds no document to compare with, so it is read back instead.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::Utc;

use super::error::IndexerError;
use crate::domain::{Contact, ContactId, WorkspaceId};
use crate::index::{IndexChange, SegmentIndex};
use crate::store::{Change, Store, change_key_at};

/// Contacts read back per store query.
const READ_CHUNK: usize = 1_000;

type ContactKey = (WorkspaceId, ContactId);

/// Contacts whose documents steps removed, with the change-log key of the moment they did.
#[derive(Debug, Default)]
pub struct RecentRemovals {
    removed_at: HashMap<ContactKey, String>,
}

impl RecentRemovals {
    fn note(&mut self, contact: ContactKey, at_key: &str) {
        self.removed_at.insert(contact, at_key.to_owned());
    }

    fn contains(&self, contact: &ContactKey) -> bool {
        self.removed_at.contains_key(contact)
    }

    /// Forgets the removals made before `watermark`: every entry keyed before them is applied.
    pub fn forget_before(&mut self, watermark: &str) {
        self.removed_at.retain(|_, at| at.as_str() >= watermark);
    }
}

/// The states taken by steps whose commit is still to come, newer than the index's: per
/// contact, the revision of the last one (`None`: removed). A payload is compared with these
/// before the index.
pub type Uncommitted = HashMap<ContactKey, Option<u64>>;

/// How the states of one step were found (for the step's trace line and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateSources {
    /// Contacts indexed from a payload.
    pub from_payload: usize,
    /// Contacts read back from the store.
    pub read_back: usize,
}

/// The index changes of `pending` (one per contact its entries name, in the order they first
/// name it) and where their states came from. `read_from` is the watermark the step read
/// from: entries keyed below it are late. `uncommitted` holds what earlier steps took and the
/// index has not committed yet.
pub async fn resolve(
    store: &Store,
    index: &Arc<SegmentIndex>,
    removals: &Mutex<RecentRemovals>,
    uncommitted: &Uncommitted,
    pending: &[Change],
    read_from: Option<&str>,
) -> Result<(Vec<IndexChange>, StateSources), IndexerError> {
    let mut payload_states: HashMap<ContactKey, Contact> = HashMap::new();
    let mut to_read: HashSet<ContactKey> = HashSet::new();
    for change in pending {
        let late = read_from.is_some_and(|watermark| change.key.as_str() < watermark);
        let payload = store.take_change_payload(&change.key).filter(|_| !late);
        let Some(payload) = payload else {
            // Another instance may have written them: what memory keeps of them may be older.
            store.forget_contacts(&change.contacts);
            to_read.extend(
                change
                    .contacts
                    .iter()
                    .map(|id| (change.workspace.clone(), *id)),
            );
            continue;
        };
        let mut by_id: HashMap<ContactId, Contact> = payload
            .into_iter()
            .map(|contact| (contact.id, contact))
            .collect();
        for id in &change.contacts {
            let key = (change.workspace.clone(), *id);
            match by_id.remove(id) {
                Some(state) => {
                    let newer = payload_states
                        .get(&key)
                        .is_none_or(|kept| kept.revision < state.revision);
                    if newer {
                        payload_states.insert(key, state);
                    }
                }
                None => {
                    to_read.insert(key);
                }
            }
        }
    }
    payload_states.retain(|key, _| !to_read.contains(key));
    for key in refused_payloads(index, removals, uncommitted, &payload_states).await? {
        payload_states.remove(&key);
        to_read.insert(key);
    }
    let mut read_back = read_back(store, &to_read).await?;
    let removed_at = change_key_at(Utc::now());
    if let Ok(mut removals) = removals.lock() {
        for key in &to_read {
            if !read_back.contains_key(key) {
                removals.note(key.clone(), &removed_at);
            }
        }
    }
    let sources = StateSources {
        from_payload: payload_states.len(),
        read_back: to_read.len(),
    };
    let mut changes = Vec::new();
    let mut emitted = HashSet::new();
    for change in pending {
        for id in &change.contacts {
            let key = (change.workspace.clone(), *id);
            if !emitted.insert(key.clone()) {
                continue;
            }
            let state = payload_states
                .remove(&key)
                .or_else(|| read_back.remove(&key));
            changes.push(match state {
                Some(contact) => IndexChange::upsert(contact),
                None => IndexChange::Remove(key.0, key.1),
            });
        }
    }
    Ok((changes, sources))
}

/// The payload states that must not be applied: not newer than the state an earlier step
/// took (when its commit is still to come) or than the indexed document, or of a contact
/// without a document that a step removed recently (or an earlier step removes).
async fn refused_payloads(
    index: &Arc<SegmentIndex>,
    removals: &Mutex<RecentRemovals>,
    uncommitted: &Uncommitted,
    states: &HashMap<ContactKey, Contact>,
) -> Result<Vec<ContactKey>, IndexerError> {
    let mut refused = Vec::new();
    let mut by_workspace: HashMap<WorkspaceId, Vec<(ContactId, u64)>> = HashMap::new();
    for (key, state) in states {
        match uncommitted.get(key) {
            Some(Some(taken)) if *taken < state.revision => {}
            Some(_) => refused.push(key.clone()),
            None => by_workspace
                .entry(key.0.clone())
                .or_default()
                .push((key.1, state.revision)),
        }
    }
    if by_workspace.is_empty() {
        return Ok(refused);
    }
    let index = Arc::clone(index);
    let indexed = tokio::task::spawn_blocking(move || {
        by_workspace
            .into_iter()
            .map(|(workspace, states)| {
                let ids: Vec<ContactId> = states.iter().map(|(id, _)| *id).collect();
                let revisions = index.indexed_revisions(&workspace, &ids)?;
                Ok((workspace, states, revisions))
            })
            .collect::<Result<Vec<_>, crate::index::IndexError>>()
    })
    .await
    .map_err(IndexerError::Task)??;
    let removals = removals
        .lock()
        .map_err(|_| IndexerError::Poisoned("removals"))?;
    for (workspace, states, revisions) in indexed {
        for (id, revision) in states {
            let key = (workspace.clone(), id);
            let safe = match revisions.get(&id) {
                Some(indexed) => *indexed < revision,
                None => !removals.contains(&key),
            };
            if !safe {
                refused.push(key);
            }
        }
    }
    Ok(refused)
}

/// The current state of each of `contacts` that exists, read from the store.
async fn read_back(
    store: &Store,
    contacts: &HashSet<ContactKey>,
) -> Result<HashMap<ContactKey, Contact>, IndexerError> {
    let mut by_workspace: HashMap<&WorkspaceId, Vec<ContactId>> = HashMap::new();
    for (workspace, id) in contacts {
        by_workspace.entry(workspace).or_default().push(*id);
    }
    let mut found = HashMap::with_capacity(contacts.len());
    for (workspace, mut ids) in by_workspace {
        ids.sort_unstable();
        for chunk in ids.chunks(READ_CHUNK) {
            for contact in store.fresh_contacts_by_ids(workspace, chunk).await? {
                found.insert((workspace.clone(), contact.id), contact);
            }
        }
    }
    Ok(found)
}
