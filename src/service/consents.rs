//! Consent use cases: declaring purposes, and recording what a contact said about them.
//!
//! A statement changes the contact like any write (a new revision in the change log), so the
//! index, the membership feed and webhooks follow it; a withdrawal that makes the contact
//! leave a segment is an EXIT with cause `CONSENT`.

use chrono::Utc;
use tracing::debug;

use super::catalog_cache::{Catalogs, WorkspaceState};
use super::contacts::ContactService;
use super::contention::{Attempts, WRITE_ATTEMPTS};
use super::error::ServiceError;
use super::indexer::ChangeNotifier;
use crate::domain::{
    ConsentOrigin, ConsentPurpose, ConsentStatement, Contact, ContactId, MAX_PURPOSES, Provenance,
    PurposeName, WorkspaceId, check_statements, state_consents,
};
use crate::store::{Store, StoreError, WriteBatch};

/// Where statements said now come from: `provenance`, `source`, recorded by the task's actor
/// (the API key, or the command).
pub fn origin(
    at: chrono::DateTime<Utc>,
    provenance: Provenance,
    source: Option<String>,
) -> ConsentOrigin {
    ConsentOrigin {
        at,
        source,
        provenance,
        recorded_by: crate::actor::current_actor(),
    }
}

/// The error for a statement about a purpose the workspace did not declare.
pub fn unknown_purpose(name: &str) -> ServiceError {
    ServiceError::invalid(
        "purpose",
        format!("unknown consent purpose `{name}`; declare it with `defineConsentPurpose`"),
    )
}

/// Checks `statements` for a write: each names a purpose the workspace declared, once.
pub fn check_declared(
    state: &WorkspaceState,
    statements: &[ConsentStatement],
) -> Result<(), ServiceError> {
    check_statements("consents", statements)?;
    match statements
        .iter()
        .find(|statement| state.purpose(statement.purpose.as_str()).is_none())
    {
        Some(unknown) => Err(unknown_purpose(unknown.purpose.as_str())),
        None => Ok(()),
    }
}

/// Consent purposes and statements.
#[derive(Clone)]
pub struct ConsentService {
    store: Store,
    catalogs: Catalogs,
    notifier: ChangeNotifier,
    contacts: ContactService,
}

impl ConsentService {
    /// Consents over `store`, finding contacts through `contacts`; `notifier` wakes the
    /// indexer after a write.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        notifier: ChangeNotifier,
        contacts: ContactService,
    ) -> Self {
        Self {
            store,
            catalogs,
            notifier,
            contacts,
        }
    }

    /// The workspace's purposes, by name.
    pub fn purposes(&self, workspace: &WorkspaceId) -> Vec<ConsentPurpose> {
        self.catalogs.workspace(workspace).purposes.clone()
    }

    /// Declares purpose `name`; declaring it again updates its description. At most
    /// [`MAX_PURPOSES`] per workspace.
    pub async fn define_purpose(
        &self,
        workspace: &WorkspaceId,
        name: PurposeName,
        description: String,
    ) -> Result<ConsentPurpose, ServiceError> {
        let state = self.catalogs.workspace(workspace);
        let purpose = match state.purpose(name.as_str()) {
            Some(existing) if existing.description == description => return Ok(existing.clone()),
            Some(existing) => ConsentPurpose {
                description,
                ..existing.clone()
            },
            None if state.purposes.len() >= MAX_PURPOSES => {
                return Err(ServiceError::invalid(
                    "name",
                    format!("a workspace declares at most {MAX_PURPOSES} consent purposes"),
                ));
            }
            None => ConsentPurpose {
                workspace: workspace.clone(),
                name,
                description,
                created_at: Utc::now(),
            },
        };
        match self.store.save_consent_purpose(&purpose).await {
            Ok(()) => {
                self.catalogs.refresh(workspace).await?;
                Ok(purpose)
            }
            Err(StoreError::WriteConflict) => Err(ServiceError::Conflict(format!(
                "consent purpose `{}` is being declared concurrently; retry the request",
                purpose.name.as_str()
            ))),
            Err(other) => Err(other.into()),
        }
    }

    /// Records `statements` about contact `id` (merged ids resolve to the survivor), said at
    /// `origin`. Returns the contact as it stands and the purposes whose state changed (none
    /// when every statement repeats the held one; nothing is written then).
    pub async fn set(
        &self,
        workspace: &WorkspaceId,
        id: &ContactId,
        statements: &[ConsentStatement],
        origin: &ConsentOrigin,
    ) -> Result<(Contact, Vec<PurposeName>), ServiceError> {
        check_declared(&self.catalogs.workspace(workspace), statements)?;
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let mut contact = self.contacts.get(workspace, id).await?;
            let expected = contact.revision;
            let revision = expected + 1;
            let changed = state_consents(&mut contact.consents, statements, origin, revision);
            if changed.is_empty() {
                return Ok((contact, changed));
            }
            contact.revision = revision;
            contact.updated_at = origin.at.max(contact.updated_at);
            let mut batch = WriteBatch::new(workspace);
            batch.replace_contact(&mut contact, expected);
            match self.store.commit(batch).await {
                Ok(()) => {
                    self.notifier.notify();
                    return Ok((contact, changed));
                }
                Err(StoreError::WriteConflict) => {
                    debug!(contact = %id, "consent statement lost a race; retrying");
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict(format!(
            "contact `{id}` is being changed by many requests at once; retry"
        )))
    }
}
