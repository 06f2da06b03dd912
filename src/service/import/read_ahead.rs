//! Reading ahead: while one group of rows is planned and committed, the store is already read
//! for the next one (or two), so that the reads and the previous batch's planning and commits
//! use the cores at the same time.
//!
//! A read taken ahead may miss what the groups before it wrote while it ran. It is used only if
//! none of those groups reached what it read: the identities its rows name and the contacts it
//! found. Otherwise the group is read again in its turn. Rows are imported in file order either
//! way; the commit guards (revisions, identity owners) still catch other writers.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::{JoinError, JoinHandle};

use super::planner::{Reads, row_identities};
use super::report::RowError;
use crate::domain::{ContactId, IdentityKey, ParsedRow};

/// How many settled groups are remembered; a read taken ahead of more is read again.
const REMEMBERED_GROUPS: usize = 8;

/// What a group of rows reaches in the store: the identities its rows name and the contacts
/// its reads found (the only contacts it can write besides those it creates, which only its
/// rows' identities find).
#[derive(Debug, Default)]
pub(super) struct Footprint {
    keys: HashSet<IdentityKey>,
    contacts: HashSet<ContactId>,
}

impl Footprint {
    /// The identities `rows` name.
    pub(super) fn of_rows(rows: &[ParsedRow]) -> Self {
        Self {
            keys: rows.iter().flat_map(row_identities).collect(),
            contacts: HashSet::new(),
        }
    }

    /// Adds the contacts `reads` found.
    pub(super) fn add_reads(&mut self, reads: &Reads) {
        self.contacts.extend(reads.contacts.keys().copied());
    }
}

/// A chunk of the input, split into groups that can each be planned against one read.
pub(super) struct PreparedChunk {
    /// The chunk's first group, with the store read for it ahead of its turn.
    pub first: Option<FirstGroup>,
    /// The chunk's later groups, read in their turn.
    pub rest: Vec<PreparedGroup>,
    /// Rows that failed to read or validate.
    pub failures: Vec<RowError>,
    /// An error that ends the job after this chunk.
    pub fatal: Option<RowError>,
}

/// A chunk's first group: the end of the task that read it, or that task still reading.
pub(super) enum FirstGroup {
    Read(Result<PreparedGroup, JoinError>),
    Reading(JoinHandle<PreparedGroup>),
}

/// A group of rows, with the store read for it ahead of its turn when that was worth it.
pub(super) struct PreparedGroup {
    pub rows: Vec<ParsedRow>,
    pub ahead: Option<ReadAhead>,
}

/// Reads taken before the groups ahead of theirs had settled.
pub(super) struct ReadAhead {
    reads: Reads,
    /// How many groups had settled when the read began.
    settled_before: u64,
}

impl ReadAhead {
    pub(super) fn new(reads: Reads, settled_before: u64) -> Self {
        Self {
            reads,
            settled_before,
        }
    }
}

/// The groups settled so far, in order, with the footprints of the last few: whether a read
/// taken ahead is still current. The count is shared with the task that reads ahead.
#[derive(Default)]
pub(super) struct SettledGroups {
    count: Arc<AtomicU64>,
    recent: VecDeque<(u64, Footprint)>,
}

impl SettledGroups {
    /// The shared count of settled groups, for the task that reads ahead.
    pub(super) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.count)
    }

    /// Records that the next group settled, having reached `footprint`.
    pub(super) fn settle(&mut self, footprint: Footprint) {
        let sequence = self.count.load(Ordering::Acquire);
        if self.recent.len() == REMEMBERED_GROUPS {
            self.recent.pop_front();
        }
        self.recent.push_back((sequence, footprint));
        self.count.store(sequence + 1, Ordering::Release);
    }

    /// The reads of `ahead` for the next group, if no group that settled since the read began
    /// reached what they cover: the identities the group's rows name (`rows`) or the contacts
    /// the reads found.
    pub(super) fn current(&self, rows: &Footprint, ahead: ReadAhead) -> Option<Reads> {
        let settled = self.count.load(Ordering::Acquire);
        if settled == ahead.settled_before {
            return Some(ahead.reads);
        }
        let oldest_remembered = self
            .recent
            .front()
            .map_or(settled, |(sequence, _)| *sequence);
        if ahead.settled_before < oldest_remembered {
            return None;
        }
        let found = &ahead.reads.contacts;
        let overlapped = self
            .recent
            .iter()
            .filter(|(sequence, _)| *sequence >= ahead.settled_before)
            .any(|(_, settled)| {
                !settled.keys.is_disjoint(&rows.keys)
                    || settled.contacts.iter().any(|id| found.contains_key(id))
            });
        (!overlapped).then_some(ahead.reads)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::{
        AttributeRegistry, Contact, ContactFields, Identity, IdentityKind, ImportRow, Provenance,
        WorkspaceId,
    };
    use crate::store::HeldIdentity;

    fn row(line: u64, external_id: &str, email: &str) -> ParsedRow {
        let values = json!({ "externalId": external_id, "email": email });
        ImportRow {
            line,
            values: values.as_object().unwrap().clone(),
            text_cells: false,
        }
        .parse(&AttributeRegistry::new([]))
        .unwrap()
    }

    fn email(value: &str) -> IdentityKey {
        IdentityKey::from_trusted(IdentityKind::Email, value.to_owned())
    }

    /// Reads in which `contact` holds `key`.
    fn reads_finding(contact: &Contact, key: IdentityKey) -> Reads {
        let mut reads = Reads::default();
        let identity = Identity {
            key: key.clone(),
            provenance: Provenance::Imported,
            created_at: Utc::now(),
        };
        let held = HeldIdentity {
            identity,
            contact: contact.id,
        };
        reads.holders.insert(key, held);
        reads.contacts.insert(contact.id, contact.clone());
        reads
    }

    #[test]
    fn a_read_ahead_is_used_when_nothing_settled_since_it_began() {
        let settled = SettledGroups::default();
        let rows = vec![row(1, "a", "a@example.com")];
        let ahead = ReadAhead::new(Reads::default(), 0);
        assert!(settled.current(&Footprint::of_rows(&rows), ahead).is_some());
    }

    #[test]
    fn a_read_ahead_is_dropped_when_a_group_settled_since_then_named_one_of_its_identities() {
        let mut settled = SettledGroups::default();
        let earlier = vec![row(1, "a", "shared@example.com")];
        settled.settle(Footprint::of_rows(&earlier));
        let rows = vec![row(2, "b", "shared@example.com")];
        assert!(
            settled
                .current(
                    &Footprint::of_rows(&rows),
                    ReadAhead::new(Reads::default(), 0)
                )
                .is_none()
        );
        let unrelated = vec![row(3, "c", "c@example.com")];
        assert!(
            settled
                .current(
                    &Footprint::of_rows(&unrelated),
                    ReadAhead::new(Reads::default(), 0)
                )
                .is_some()
        );
        // A read that began after that group settled saw its writes.
        assert!(
            settled
                .current(
                    &Footprint::of_rows(&rows),
                    ReadAhead::new(Reads::default(), 1)
                )
                .is_some()
        );
    }

    #[test]
    fn a_read_ahead_is_dropped_when_a_group_settled_since_then_read_one_of_its_contacts() {
        let workspace = WorkspaceId::default();
        let contact = Contact::new(workspace, ContactFields::default(), Utc::now());
        let old_email = email("old@example.com");
        // The earlier group changed the contact's email; the later read still saw its old one.
        let mut earlier = Footprint::of_rows(&[row(1, "a", "new@example.com")]);
        earlier.add_reads(&reads_finding(&contact, old_email.clone()));
        let mut settled = SettledGroups::default();
        settled.settle(earlier);
        let rows = vec![row(2, "b", "old@example.com")];
        let ahead = ReadAhead::new(reads_finding(&contact, old_email), 0);
        assert!(settled.current(&Footprint::of_rows(&rows), ahead).is_none());
    }

    #[test]
    fn a_read_ahead_of_more_groups_than_are_remembered_is_read_again() {
        let mut settled = SettledGroups::default();
        for line in 0..=REMEMBERED_GROUPS as u64 {
            let rows = vec![row(
                line,
                &format!("x{line}"),
                &format!("x{line}@example.com"),
            )];
            settled.settle(Footprint::of_rows(&rows));
        }
        let rows = vec![row(99, "y", "y@example.com")];
        assert!(
            settled
                .current(
                    &Footprint::of_rows(&rows),
                    ReadAhead::new(Reads::default(), 0)
                )
                .is_none()
        );
        let recent = REMEMBERED_GROUPS as u64 - 1;
        assert!(
            settled
                .current(
                    &Footprint::of_rows(&rows),
                    ReadAhead::new(Reads::default(), recent)
                )
                .is_some()
        );
    }
}
