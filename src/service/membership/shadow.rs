//! What a follower would have recorded: with several instances on one store, only the lease
//! holder records the feed, and an instance that takes the lease over from one that died must
//! record what the dead one had not. Its own index applied those changes already, so it cannot
//! evaluate them again afterwards; instead every follower evaluates each batch it takes, as the
//! holder does, and keeps the entries (its *shadows*) for [`SHADOW_KEEP`]. The holder marks the
//! change-log entries it fed in the store, in the transaction that records them; at a takeover
//! the new holder records the shadows of the contacts whose changes no holder marked.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::domain::{ContactId, MembershipChange, WorkspaceId};
use crate::service::lease::LEASE_TERM;

/// How long a follower keeps what it evaluated: a holder that dies stops renewing its lease,
/// which another instance takes [`LEASE_TERM`] later at most, and then records these.
pub(super) const SHADOW_KEEP: Duration = Duration::from_secs(3 * LEASE_TERM.num_seconds() as u64);

/// A contact of a workspace.
pub(super) type ContactKey = (WorkspaceId, ContactId);

/// One batch as a follower evaluated it.
pub(super) struct Shadow {
    /// When it was evaluated.
    pub taken: Instant,
    /// The change-log keys, not fed when read, that name each written contact.
    pub keys_of: HashMap<ContactKey, Vec<String>>,
    /// The entries the batch makes (positions not assigned yet).
    pub entries: Vec<MembershipChange>,
    /// The written contacts of workspaces with webhook endpoints (for their deliveries), as
    /// the batch left them (`None`: removed).
    pub written: HashMap<WorkspaceId, Vec<(ContactId, Option<crate::domain::Contact>)>>,
}

/// A follower's shadows, oldest first.
#[derive(Default)]
pub(super) struct Shadows {
    batches: VecDeque<Shadow>,
}

impl Shadows {
    /// Keeps `shadow`, forgetting those older than [`SHADOW_KEEP`].
    pub fn keep(&mut self, shadow: Shadow) {
        while self
            .batches
            .front()
            .is_some_and(|oldest| oldest.taken.elapsed() > SHADOW_KEEP)
        {
            self.batches.pop_front();
        }
        if !shadow.keys_of.is_empty() {
            self.batches.push_back(shadow);
        }
    }

    /// Every shadow kept, oldest first, leaving none.
    pub fn take(&mut self) -> Vec<Shadow> {
        self.batches.drain(..).collect()
    }

    /// Forgets every shadow (the instance records itself now).
    pub fn clear(&mut self) {
        self.batches.clear();
    }
}

/// The change-log keys `shadows` name.
pub(super) fn keys_of(shadows: &[Shadow]) -> Vec<String> {
    let keys: HashSet<&String> = shadows
        .iter()
        .flat_map(|shadow| shadow.keys_of.values().flatten())
        .collect();
    keys.into_iter().cloned().collect()
}

/// What no holder fed of `shadows`, given the keys that were (`fed`): the entries and written
/// contacts of each contact with a key not fed, in the order they were evaluated, and those
/// keys. A contact whose batch mixed fed and unfed keys is recorded (at least once beats a
/// change left out).
pub(super) fn unfed(
    shadows: Vec<Shadow>,
    fed: &HashSet<String>,
) -> (Vec<MembershipChange>, super::engine::Written, Vec<String>) {
    let mut entries = Vec::new();
    let mut written: super::engine::Written = HashMap::new();
    let mut keys = Vec::new();
    for shadow in shadows {
        let owed: HashSet<&ContactKey> = shadow
            .keys_of
            .iter()
            .filter(|(_, keys)| keys.iter().any(|key| !fed.contains(key)))
            .map(|(contact, _)| contact)
            .collect();
        if owed.is_empty() {
            continue;
        }
        keys.extend(
            owed.iter()
                .flat_map(|contact| &shadow.keys_of[*contact])
                .filter(|key| !fed.contains(*key))
                .cloned(),
        );
        entries.extend(
            shadow
                .entries
                .iter()
                .filter(|entry| owed.contains(&(entry.workspace.clone(), entry.contact)))
                .cloned(),
        );
        for (workspace, contacts) in shadow.written {
            let owed_here = contacts
                .into_iter()
                .filter(|(id, _)| owed.contains(&(workspace.clone(), *id)));
            written
                .entry(workspace.clone())
                .or_default()
                .extend(owed_here);
        }
    }
    keys.sort();
    keys.dedup();
    (entries, written, keys)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{MembershipCause, MembershipKind, Slug};

    fn entry(contact: ContactId) -> MembershipChange {
        MembershipChange {
            position: String::new(),
            workspace: WorkspaceId::default(),
            segment: Slug::parse("pros").unwrap(),
            contact,
            kind: MembershipKind::Enter,
            at: Utc::now(),
            cause: MembershipCause::ContactChanged,
        }
    }

    #[test]
    fn only_contacts_with_an_unfed_key_are_owed() {
        let (fed_one, unfed_one, mixed) = (
            ContactId::generate(),
            ContactId::generate(),
            ContactId::generate(),
        );
        let workspace = WorkspaceId::default();
        let shadow = Shadow {
            taken: Instant::now(),
            keys_of: HashMap::from([
                ((workspace.clone(), fed_one), vec!["k1".to_owned()]),
                ((workspace.clone(), unfed_one), vec!["k2".to_owned()]),
                (
                    (workspace.clone(), mixed),
                    vec!["k1".to_owned(), "k3".to_owned()],
                ),
            ]),
            entries: vec![entry(fed_one), entry(unfed_one), entry(mixed)],
            written: HashMap::new(),
        };
        let (entries, _, keys) = unfed(vec![shadow], &HashSet::from(["k1".to_owned()]));
        let contacts: Vec<ContactId> = entries.iter().map(|entry| entry.contact).collect();
        assert_eq!(contacts, vec![unfed_one, mixed]);
        assert_eq!(keys, vec!["k2".to_owned(), "k3".to_owned()]);
    }

    #[test]
    fn old_shadows_are_forgotten() {
        let mut shadows = Shadows::default();
        let contact = (WorkspaceId::default(), ContactId::generate());
        let keys_of = HashMap::from([(contact, vec!["k".to_owned()])]);
        shadows.keep(Shadow {
            taken: Instant::now() - SHADOW_KEEP - Duration::from_secs(1),
            keys_of: keys_of.clone(),
            entries: Vec::new(),
            written: HashMap::new(),
        });
        shadows.keep(Shadow {
            taken: Instant::now(),
            keys_of,
            entries: Vec::new(),
            written: HashMap::new(),
        });
        assert_eq!(shadows.take().len(), 1);
    }
}
