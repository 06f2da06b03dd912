//! Erasure that stays erased: `eraseContacts` removes each person it names and suppresses their
//! identifiers, so a later import, upsert or `identify` with the same email, phone, external id
//! or anonymous id is refused (SUPPRESSED) instead of bringing them back.
//!
//! - Who may use it: admin keys only (erasing, lifting a suppression, reading receipts).
//! - What it reveals: a receipt holds counts, keyed hashes, the time and the acting key's id,
//!   never an identifier in plain text; a refused write names the kind of identifier only.
//! - What bounds it: at most [`MAX_ERASURE_IDENTIFIERS`] identifiers a call, all checked
//!   before anything is removed (a malformed one refuses the whole call).

use std::collections::BTreeSet;

use chrono::Utc;

use crate::domain::{Caller, ContactId, IdentityKey, IdentityKind, Scope};
use crate::service::contacts::ContactService;
use crate::service::error::ServiceError;
use crate::service::suppression::{Suppressions, field_keys};
use crate::store::{ErasureReceipt, Store};

/// Most identifiers one erasure (or one lifting of suppressions) may name.
pub const MAX_ERASURE_IDENTIFIERS: usize = 10_000;

/// The people an erasure names, by any of their identifiers.
#[derive(Debug, Clone, Default)]
pub struct ErasureRequest {
    /// Contact ids.
    pub ids: Vec<String>,
    /// External ids.
    pub external_ids: Vec<String>,
    /// Emails.
    pub emails: Vec<String>,
    /// Phone numbers.
    pub phones: Vec<String>,
}

impl ErasureRequest {
    fn len(&self) -> usize {
        self.ids.len() + self.external_ids.len() + self.emails.len() + self.phones.len()
    }

    /// The identifiers named (not the contact ids), parsed and normalised as identities are.
    fn keys(&self) -> Result<Vec<IdentityKey>, ServiceError> {
        let kinds = [
            (IdentityKind::ExternalId, &self.external_ids),
            (IdentityKind::Email, &self.emails),
            (IdentityKind::Phone, &self.phones),
        ];
        let mut keys = Vec::new();
        for (kind, values) in kinds {
            for value in values {
                keys.push(IdentityKey::parse(kind, value, &[])?);
            }
        }
        Ok(keys)
    }

    fn bounded(&self) -> Result<(), ServiceError> {
        match self.len() {
            0 => Err(ServiceError::invalid(
                "input",
                "name at least one person: `ids`, `externalIds`, `emails` or `phones`",
            )),
            n if n > MAX_ERASURE_IDENTIFIERS => Err(ServiceError::invalid(
                "input",
                format!("at most {MAX_ERASURE_IDENTIFIERS} identifiers a call; this one names {n}"),
            )),
            _ => Ok(()),
        }
    }
}

/// Erasure, suppression and receipts.
#[derive(Clone)]
pub struct ErasureService {
    store: Store,
    contacts: ContactService,
    suppressions: Suppressions,
}

impl ErasureService {
    /// Over `store`, removing contacts through `contacts`.
    pub fn new(store: Store, contacts: ContactService) -> Self {
        let suppressions = Suppressions::new(store.clone());
        Self {
            store,
            contacts,
            suppressions,
        }
    }

    /// Suppresses every identifier `request` names and every identifier of the contacts it
    /// finds, then removes those contacts (with their identities, aliases, merge records,
    /// conversations and events; the index follows). Suppressing first means a write racing
    /// the erasure cannot bring the person back. Returns the receipt it keeps.
    pub async fn erase(
        &self,
        caller: &Caller,
        request: ErasureRequest,
    ) -> Result<ErasureReceipt, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        request.bounded()?;
        let workspace = &caller.workspace;
        let ids = request
            .ids
            .iter()
            .map(|raw| ContactId::parse(raw).map_err(ServiceError::from))
            .collect::<Result<Vec<_>, _>>()?;
        let named = request.keys()?;

        // One read for the holders of the identifiers named, one for every contact found.
        let holders = self.store.identity_holders(workspace, &named).await?;
        let mut wanted: BTreeSet<ContactId> = ids.into_iter().collect();
        wanted.extend(holders.iter().map(|held| held.contact));
        let wanted: Vec<ContactId> = wanted.into_iter().collect();
        let found = self.store.contacts_by_ids(workspace, &wanted).await?;

        let mut keys: BTreeSet<IdentityKey> = named.iter().cloned().collect();
        for contact in &found {
            for identity in self.store.identities_of(workspace, &contact.id).await? {
                keys.insert(identity.key);
            }
            keys.extend(field_keys(&contact.fields));
        }
        let mut entries = Vec::with_capacity(keys.len());
        for key in &keys {
            entries.push((self.suppressions.hash(workspace, key)?, key.kind.as_str()));
        }
        let now = Utc::now();
        self.store
            .suppress(workspace, &entries, &caller.key_id, now)
            .await?;

        let ids: Vec<ContactId> = found.iter().map(|contact| contact.id).collect();
        self.store.mark_erased(workspace, &ids, now).await?;
        let mut erased = 0;
        for id in &ids {
            match self.contacts.delete(workspace, id).await {
                Ok(()) => erased += 1,
                // Removed meanwhile (another erasure, a delete): erased all the same.
                Err(ServiceError::NotFound(_)) => {}
                Err(other) => return Err(other),
            }
        }
        let receipt = ErasureReceipt {
            receipt: ulid::Ulid::new().to_string(),
            workspace: workspace.as_str().to_owned(),
            at: now,
            by: caller.key_id.clone(),
            requested: request.len() as u64,
            erased,
            suppressed: entries.into_iter().map(|(hash, _)| hash).collect(),
        };
        self.store.record_erasure_receipt(receipt.clone()).await?;
        tracing::info!(
            workspace = %workspace,
            key = %caller.key_id,
            requested = receipt.requested,
            erased = receipt.erased,
            suppressed = receipt.suppressed.len(),
            "erased contacts"
        );
        Ok(receipt)
    }

    /// Lifts the suppression of the identifiers `request` names (contact ids name nobody
    /// once erased, so they are refused); how many were suppressed.
    pub async fn unsuppress(
        &self,
        caller: &Caller,
        request: ErasureRequest,
    ) -> Result<u64, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        if !request.ids.is_empty() {
            return Err(ServiceError::invalid(
                "ids",
                "an erased contact's id names nobody: name its external ids, emails or phones",
            ));
        }
        request.bounded()?;
        let workspace = &caller.workspace;
        let hashes = request
            .keys()?
            .iter()
            .map(|key| self.suppressions.hash(workspace, key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.unsuppress(workspace, &hashes).await?)
    }

    /// The workspace's erasure receipts, newest first.
    pub async fn receipts(&self, caller: &Caller) -> Result<Vec<ErasureReceipt>, ServiceError> {
        ServiceError::require_scope(caller, Scope::Admin)?;
        Ok(self.store.erasure_receipts(&caller.workspace).await?)
    }
}
