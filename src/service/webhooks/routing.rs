//! Which endpoints a change goes to, and with which body: the membership engine hands each
//! step's feed entries and written contacts here and records what comes back in the same
//! transaction as the entries.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::body;
use crate::domain::{Contact, ContactId, MembershipChange, Webhook, WebhookDelivery, WorkspaceId};

/// The deliveries of `entries` and of the contacts `written` (per workspace: each contact with
/// its state after the write, `None` once deleted), to the endpoints `hooks_of` names for a
/// workspace: per endpoint, in the order the changes were made, so each contact's go out in
/// order. `next_id` gives each message its id, ascending. Removed contacts that `erased`
/// names (by `eraseContacts`) also go to the endpoints that want erasures.
pub fn deliveries<'a>(
    entries: &[MembershipChange],
    written: impl IntoIterator<Item = (&'a WorkspaceId, &'a [(ContactId, Option<Contact>)])>,
    erased: &HashSet<ContactId>,
    mut hooks_of: impl FnMut(&WorkspaceId) -> Vec<Webhook>,
    mut next_id: impl FnMut() -> String,
    now: DateTime<Utc>,
) -> Vec<WebhookDelivery> {
    let mut hooks: HashMap<WorkspaceId, Vec<Webhook>> = HashMap::new();
    let mut hooks_in = |workspace: &WorkspaceId| -> Vec<Webhook> {
        hooks
            .entry(workspace.clone())
            .or_insert_with(|| hooks_of(workspace))
            .clone()
    };
    let mut deliveries = Vec::new();
    let mut deliver = |hook: &Webhook, contact: ContactId, (event_type, body): (&str, String)| {
        deliveries.push(WebhookDelivery::pending(
            next_id(),
            hook,
            Some(contact),
            event_type,
            body,
            now,
        ));
    };
    for entry in entries {
        for hook in hooks_in(&entry.workspace) {
            if hook.wants_membership(&entry.segment) {
                deliver(&hook, entry.contact, body::membership(entry, now));
            }
        }
    }
    for (workspace, contacts) in written {
        for hook in hooks_in(workspace) {
            if hook.wants_erasures() {
                for (id, _) in contacts
                    .iter()
                    .filter(|(id, contact)| contact.is_none() && erased.contains(id))
                {
                    deliver(&hook, *id, body::contact_erased(*id, now));
                }
            }
            if !hook.wants_contact_changes() {
                continue;
            }
            for (id, contact) in contacts {
                // A hook gets the writes made after it was created, not those it was created
                // while they waited to be followed.
                if contact
                    .as_ref()
                    .is_some_and(|contact| contact.updated_at < hook.created_at)
                {
                    continue;
                }
                deliver(
                    &hook,
                    *id,
                    body::contact_changed(*id, contact.is_some(), now),
                );
            }
        }
    }
    deliveries
}
