//! What the contacts of one page load together: their identities and the ids merged into them
//! are read for the whole page at once, the first time any contact of the page asks, so a page
//! costs one round trip per nested field instead of one per contact.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::domain::{ContactId, Identity, WorkspaceId};
use crate::service::{ContactService, ServiceError};

/// The nested fields of one page, loaded once for all of its contacts.
pub struct PageBatch {
    workspace: WorkspaceId,
    ids: Vec<ContactId>,
    identities: OnceCell<HashMap<ContactId, Vec<Identity>>>,
    merged_from: OnceCell<HashMap<ContactId, Vec<ContactId>>>,
}

impl PageBatch {
    /// A batch over the contacts `ids` of `workspace`.
    pub fn new(workspace: WorkspaceId, ids: Vec<ContactId>) -> Arc<Self> {
        Arc::new(Self {
            workspace,
            ids,
            identities: OnceCell::new(),
            merged_from: OnceCell::new(),
        })
    }

    /// The identities of `contact` (loaded for the whole page on first use).
    pub async fn identities(
        &self,
        contacts: &ContactService,
        contact: &ContactId,
    ) -> Result<Vec<Identity>, ServiceError> {
        let loaded = self
            .identities
            .get_or_try_init(|| contacts.identities_of_many(&self.workspace, &self.ids))
            .await?;
        Ok(loaded.get(contact).cloned().unwrap_or_default())
    }

    /// The ids merged into `contact` (loaded for the whole page on first use).
    pub async fn merged_from(
        &self,
        contacts: &ContactService,
        contact: &ContactId,
    ) -> Result<Vec<ContactId>, ServiceError> {
        let loaded = self
            .merged_from
            .get_or_try_init(|| contacts.merged_from_many(&self.workspace, &self.ids))
            .await?;
        Ok(loaded.get(contact).cloned().unwrap_or_default())
    }
}
