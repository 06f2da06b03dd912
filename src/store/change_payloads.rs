//! The contact states a committed change-log entry wrote, kept in this process for the indexer.
//!
//! A write knows the state it commits: [`super::Store::commit`] hands the contacts a batch
//! created or replaced, under the key of the batch's change-log entry, once the transaction
//! has committed. The indexer takes them when it applies that entry instead of reading the
//! contacts back. The stored entry itself names only the contacts, so what is kept here is an
//! optimisation and never the record: an entry whose payload is gone (evicted, written by
//! another instance, or read again after a restart) is applied by reading its contacts back.
//! The indexer decides, with each contact's revision, whether a payload may be applied (see
//! `service::indexer`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::contact_cache::contact_bytes;
use crate::domain::Contact;

/// Memory the kept states take at most (as [`contact_bytes`] estimates it): tens of thousands
/// of contacts, several seconds of a bulk import's rows. Entries that would exceed it are not
/// kept.
const PAYLOAD_BYTES: u64 = 128 * 1024 * 1024;

/// Committed contact states by change-log key.
#[derive(Debug)]
pub(super) struct ChangePayloads {
    kept: Mutex<Kept>,
    budget: u64,
}

impl Default for ChangePayloads {
    fn default() -> Self {
        Self::with_budget(PAYLOAD_BYTES)
    }
}

#[derive(Debug, Default)]
struct Kept {
    /// Each entry's states and their estimated bytes.
    by_key: BTreeMap<String, (Vec<Contact>, u64)>,
    bytes: u64,
}

impl ChangePayloads {
    /// Payloads taking up to `budget` bytes.
    fn with_budget(budget: u64) -> Self {
        Self {
            kept: Mutex::default(),
            budget,
        }
    }

    /// Keeps `contacts` as what the entry `key` committed, unless the budget is spent.
    pub(super) fn keep(&self, key: String, contacts: Vec<Contact>) {
        if contacts.is_empty() {
            return;
        }
        let bytes: u64 = contacts.iter().map(contact_bytes).sum();
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.bytes + bytes > self.budget {
            return;
        }
        kept.bytes += bytes;
        if let Some((_, replaced)) = kept.by_key.insert(key, (contacts, bytes)) {
            kept.bytes -= replaced;
        }
    }

    /// Takes what the entry `key` committed, if it is kept.
    pub(super) fn take(&self, key: &str) -> Option<Vec<Contact>> {
        let mut kept = self.kept.lock().ok()?;
        let (taken, bytes) = kept.by_key.remove(key)?;
        kept.bytes -= bytes;
        Some(taken)
    }

    /// Drops what entries keyed before `key` committed (the indexer applied them, or will find
    /// them late and read them back).
    pub(super) fn forget_before(&self, key: &str) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let later = kept.by_key.split_off(key);
        let dropped: u64 = kept.by_key.values().map(|(_, bytes)| bytes).sum();
        kept.by_key = later;
        kept.bytes -= dropped;
    }

    /// Contacts kept now.
    #[cfg(test)]
    fn contacts(&self) -> usize {
        self.kept
            .lock()
            .map(|kept| kept.by_key.values().map(|(states, _)| states.len()).sum())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactFields, WorkspaceId};

    fn contacts(n: usize) -> Vec<Contact> {
        let workspace = WorkspaceId::from_trusted("acme".to_owned());
        let now = chrono::Utc::now();
        (0..n)
            .map(|_| Contact::new(workspace.clone(), ContactFields::default(), now))
            .collect()
    }

    #[test]
    fn payloads_are_taken_once_and_forgotten_below_a_key() {
        let payloads = ChangePayloads::default();
        payloads.keep("01A".to_owned(), contacts(2));
        payloads.keep("01B".to_owned(), contacts(3));
        payloads.keep("01C".to_owned(), contacts(1));
        assert_eq!(payloads.contacts(), 6);
        assert_eq!(payloads.take("01B").map(|c| c.len()), Some(3));
        assert!(payloads.take("01B").is_none());
        payloads.forget_before("01C");
        assert!(payloads.take("01A").is_none());
        assert_eq!(payloads.contacts(), 1);
        assert_eq!(payloads.take("01C").map(|c| c.len()), Some(1));
        assert_eq!(payloads.contacts(), 0);
    }

    #[test]
    fn an_entry_beyond_the_budget_is_not_kept() {
        let one = contact_bytes(&contacts(1)[0]);
        let payloads = ChangePayloads::with_budget(10 * one);
        payloads.keep("01A".to_owned(), contacts(9));
        payloads.keep("01B".to_owned(), contacts(2));
        assert!(payloads.take("01B").is_none());
        payloads.keep("01C".to_owned(), contacts(1));
        assert_eq!(payloads.contacts(), 10);
        // Taking frees the budget again.
        payloads.take("01A");
        payloads.keep("01D".to_owned(), contacts(2));
        assert_eq!(payloads.contacts(), 3);
    }
}
