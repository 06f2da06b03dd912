//! Contacts and their identities kept in memory between requests, so that a read of a contact
//! that has not changed costs a hash lookup instead of a store round trip.
//!
//! Every write reaches the store through [`super::Store::commit`], which forgets the contacts it
//! touched before it returns (whatever the outcome), so this instance never serves a contact older
//! than its own last write. Writes of other instances on the same SurrealDB server arrive through
//! the change log: the indexer forgets the contacts an entry names before it reads them back.
//!
//! A read that misses takes a [`Ticket`] before it reads the store and keeps what it read only if
//! no write forgot that contact in between: tickets count forgets per stripe of contact ids, and a
//! forget and a keep of the same stripe never interleave, so a read that raced a write cannot put
//! the older state back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::domain::{AttributeValue, Contact, ContactId, Identity, WorkspaceId};

/// Stripes of contact ids, each with its own count of forgets.
const STRIPES: usize = 256;
/// Share of the budget for contacts; identities take the rest.
const CONTACT_SHARE_PERCENT: u64 = 75;
/// Bytes assumed per entry when sizing the cache's tables.
const TYPICAL_ENTRY_BYTES: u64 = 2_048;

/// One cached value, with its workspace (ids are keys across workspaces) and its weight.
struct Entry<T> {
    workspace: WorkspaceId,
    bytes: u64,
    value: T,
}

#[derive(Clone)]
struct ByBytes;

impl<T> Weighter<ContactId, Arc<Entry<T>>> for ByBytes {
    fn weight(&self, _key: &ContactId, entry: &Arc<Entry<T>>) -> u64 {
        entry.bytes
    }
}

type Table<T> = Cache<ContactId, Arc<Entry<T>>, ByBytes>;

/// Proof that a read of one contact began after every forget of it so far.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    stripe: usize,
    forgets: u64,
}

/// Bounded, write-invalidated caches of contacts and of each contact's identities.
pub(super) struct ContactCache {
    contacts: Option<Table<Arc<Contact>>>,
    identities: Option<Table<Vec<Identity>>>,
    stripes: Box<[Mutex<u64>]>,
}

impl std::fmt::Debug for ContactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactCache")
            .field("contacts", &self.contacts.as_ref().map(Cache::len))
            .field("identities", &self.identities.as_ref().map(Cache::len))
            .finish()
    }
}

fn table<T>(bytes: u64) -> Option<Table<T>> {
    let items = usize::try_from(bytes / TYPICAL_ENTRY_BYTES).unwrap_or(usize::MAX);
    (items > 0).then(|| Cache::with_weighter(items, bytes, ByBytes))
}

impl ContactCache {
    /// A cache holding about `bytes` of contacts and identities; 0 keeps nothing.
    pub(super) fn new(bytes: u64) -> Self {
        let contact_bytes = bytes / 100 * CONTACT_SHARE_PERCENT;
        Self {
            contacts: table(contact_bytes),
            identities: table(bytes - contact_bytes),
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
        }
    }

    fn stripe_of(id: &ContactId) -> usize {
        // The low bits of a ULID are random, or count up within a millisecond.
        (id.as_u128() % STRIPES as u128) as usize
    }

    fn lock(&self, stripe: usize) -> MutexGuard<'_, u64> {
        match self.stripes[stripe].lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes a ticket for reading `id` from the store; take it before the read.
    pub(super) fn ticket(&self, id: &ContactId) -> Ticket {
        let stripe = Self::stripe_of(id);
        Ticket {
            stripe,
            forgets: *self.lock(stripe),
        }
    }

    /// The cached contact `id` of `workspace`.
    pub(super) fn contact(&self, workspace: &WorkspaceId, id: &ContactId) -> Option<Arc<Contact>> {
        lookup(self.contacts.as_ref()?, workspace, id)
    }

    /// The cached identities of contact `id` of `workspace`.
    pub(super) fn identities(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
    ) -> Option<Vec<Identity>> {
        lookup(self.identities.as_ref()?, workspace, id)
    }

    /// Splits `ids` into what `cached` finds (by id) and the rest, each with the ticket its
    /// read from the store must be kept under.
    pub(super) fn split<T>(
        &self,
        ids: &[ContactId],
        cached: impl Fn(&ContactId) -> Option<T>,
    ) -> (HashMap<ContactId, T>, Vec<(ContactId, Ticket)>) {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missed = Vec::new();
        for id in ids {
            match cached(id) {
                Some(value) => {
                    found.insert(*id, value);
                }
                None => missed.push((*id, self.ticket(id))),
            }
        }
        (found, missed)
    }

    /// Keeps `contact`, read from the store under `ticket`, unless it was forgotten since.
    pub(super) fn keep_contact(&self, ticket: Ticket, contact: &Contact) {
        if self.contacts.is_some() {
            self.keep_shared_contact(ticket, &Arc::new(contact.clone()));
        }
    }

    /// [`ContactCache::keep_contact`] without a copy.
    pub(super) fn keep_shared_contact(&self, ticket: Ticket, contact: &Arc<Contact>) {
        if let Some(table) = &self.contacts {
            let entry = Entry {
                workspace: contact.workspace.clone(),
                bytes: contact_bytes(contact),
                value: Arc::clone(contact),
            };
            self.keep(table, ticket, contact.id, entry);
        }
    }

    /// Keeps the identities of contact `id`, read from the store under `ticket`, unless the
    /// contact was forgotten since.
    pub(super) fn keep_identities(
        &self,
        ticket: Ticket,
        workspace: &WorkspaceId,
        id: ContactId,
        identities: &[Identity],
    ) {
        if let Some(table) = &self.identities {
            let entry = Entry {
                workspace: workspace.clone(),
                bytes: identities_bytes(identities),
                value: identities.to_vec(),
            };
            self.keep(table, ticket, id, entry);
        }
    }

    fn keep<T>(&self, table: &Table<T>, ticket: Ticket, id: ContactId, entry: Entry<T>) {
        let forgets = self.lock(ticket.stripe);
        if *forgets == ticket.forgets {
            table.insert(id, Arc::new(entry));
        }
    }

    /// Drops whatever is kept of `ids` (contact and identities) and refuses what reads that
    /// began before now would keep of them.
    pub(super) fn forget(&self, ids: &[ContactId]) {
        for id in ids {
            let mut forgets = self.lock(Self::stripe_of(id));
            *forgets += 1;
            if let Some(table) = &self.contacts {
                table.remove(id);
            }
            if let Some(table) = &self.identities {
                table.remove(id);
            }
        }
    }

    /// Contacts and identity lists kept now.
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        (
            self.contacts.as_ref().map_or(0, Cache::len),
            self.identities.as_ref().map_or(0, Cache::len),
        )
    }
}

fn lookup<T: Clone>(table: &Table<T>, workspace: &WorkspaceId, id: &ContactId) -> Option<T> {
    let entry = table.get(id)?;
    (entry.workspace == *workspace).then(|| entry.value.clone())
}

/// Bytes of a heap string, with its allocation's header.
fn string_bytes(text: &str) -> u64 {
    text.len() as u64 + 16
}

/// Approximately the memory `contact` takes: its struct, its strings and its attribute map.
pub(super) fn contact_bytes(contact: &Contact) -> u64 {
    let fields = &contact.fields;
    let texts = [
        fields.external_id.as_ref().map(|v| v.as_str()),
        fields.email.as_ref().map(|v| v.as_str()),
        fields.name.as_ref().map(|v| v.as_str()),
        fields.phone.as_ref().map(|v| v.as_str()),
        fields.company.as_ref().map(|v| v.as_str()),
        fields.account_ref.as_ref().map(|v| v.as_str()),
    ];
    let fixed: u64 = texts.iter().flatten().map(|text| string_bytes(text)).sum();
    let attributes: u64 = fields
        .attributes
        .iter()
        .map(|(name, value)| {
            let slot = std::mem::size_of::<(crate::domain::AttributeName, AttributeValue)>() as u64;
            slot + string_bytes(name.as_str()) + value_bytes(value)
        })
        .sum();
    let sources = contact.field_sources.len() as u64 * 64;
    let written_by = contact.written_by.as_ref().map_or(0, |written| {
        string_bytes(&written.created_by) + string_bytes(&written.updated_by)
    });
    let verification = contact.verification.as_ref().map_or(0, |verification| {
        verification.visitors.len() as u64 * 96 + 64
    });
    std::mem::size_of::<Contact>() as u64
        + fixed
        + attributes
        + sources
        + written_by
        + verification
        + 64
}

fn value_bytes(value: &AttributeValue) -> u64 {
    match value {
        AttributeValue::String(text) => string_bytes(text),
        AttributeValue::StringList(items) => items.iter().map(|item| string_bytes(item) + 24).sum(),
        AttributeValue::Sealed(sealed) => {
            string_bytes(&sealed.ciphertext) + string_bytes(&sealed.blind)
        }
        AttributeValue::Number(_) | AttributeValue::Bool(_) | AttributeValue::Datetime(_) => 0,
    }
}

/// Approximately the memory `identities` take.
fn identities_bytes(identities: &[Identity]) -> u64 {
    identities
        .iter()
        .map(|identity| std::mem::size_of::<Identity>() as u64 + string_bytes(&identity.key.value))
        .sum::<u64>()
        + 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContactFields;

    fn contact(workspace: &WorkspaceId, revision: u64) -> Contact {
        let mut contact = Contact::new(
            workspace.clone(),
            ContactFields::default(),
            chrono::Utc::now(),
        );
        contact.revision = revision;
        contact
    }

    #[test]
    fn keeps_and_returns_a_contact_of_its_own_workspace_only() {
        let cache = ContactCache::new(1 << 20);
        let acme = WorkspaceId::from_trusted("acme".to_owned());
        let other = WorkspaceId::from_trusted("other".to_owned());
        let kept = contact(&acme, 3);
        let ticket = cache.ticket(&kept.id);
        cache.keep_contact(ticket, &kept);
        assert_eq!(cache.contact(&acme, &kept.id).as_deref(), Some(&kept));
        assert_eq!(cache.contact(&other, &kept.id), None);
    }

    #[test]
    fn a_read_that_began_before_a_forget_is_not_kept() {
        let cache = ContactCache::new(1 << 20);
        let acme = WorkspaceId::from_trusted("acme".to_owned());
        let before_write = contact(&acme, 1);
        let ticket = cache.ticket(&before_write.id);
        // A write commits and forgets the contact while the read is in flight.
        cache.forget(&[before_write.id]);
        cache.keep_contact(ticket, &before_write);
        cache.keep_identities(ticket, &acme, before_write.id, &[]);
        assert_eq!(cache.contact(&acme, &before_write.id), None);
        assert_eq!(cache.identities(&acme, &before_write.id), None);
        // A read that began after the write is kept.
        let after_write = contact(&acme, 2);
        let mut fresh = after_write.clone();
        fresh.id = before_write.id;
        cache.keep_contact(cache.ticket(&fresh.id), &fresh);
        assert_eq!(cache.contact(&acme, &fresh.id).as_deref(), Some(&fresh));
    }

    #[test]
    fn forget_drops_the_contact_and_its_identities() {
        let cache = ContactCache::new(1 << 20);
        let acme = WorkspaceId::from_trusted("acme".to_owned());
        let kept = contact(&acme, 1);
        cache.keep_contact(cache.ticket(&kept.id), &kept);
        cache.keep_identities(cache.ticket(&kept.id), &acme, kept.id, &[]);
        assert_eq!(cache.len(), (1, 1));
        assert_eq!(cache.identities(&acme, &kept.id), Some(Vec::new()));
        cache.forget(&[kept.id]);
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = ContactCache::new(0);
        let acme = WorkspaceId::from_trusted("acme".to_owned());
        let kept = contact(&acme, 1);
        cache.keep_contact(cache.ticket(&kept.id), &kept);
        assert_eq!(cache.contact(&acme, &kept.id), None);
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = ContactCache::new(256 * 1024);
        let acme = WorkspaceId::from_trusted("acme".to_owned());
        for revision in 0..10_000 {
            let kept = contact(&acme, revision);
            cache.keep_contact(cache.ticket(&kept.id), &kept);
        }
        let (contacts, _) = cache.len();
        let per_contact = contact_bytes(&contact(&acme, 0));
        assert!(contacts > 0);
        assert!(
            contacts as u64 * per_contact <= 256 * 1024,
            "{contacts} contacts of {per_contact} bytes kept"
        );
    }
}
