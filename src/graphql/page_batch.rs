//! What the contacts of one page load together: their identities, the ids merged into them and
//! the first page of their conversations and events are read for the whole page at once, the
//! first time any contact of the page asks, so a page costs one round trip per nested field
//! instead of one per contact.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::domain::{ContactId, Conversation, Event, EventName, Identity, WorkspaceId};
use crate::service::{ActivityService, ContactService, ServiceError};

/// The first pages of one nested activity field, loaded once per set of arguments.
type Pages<K, T> = Mutex<HashMap<K, Arc<OnceCell<HashMap<ContactId, Vec<T>>>>>>;

/// The nested fields of one page, loaded once for all of its contacts.
pub struct PageBatch {
    workspace: WorkspaceId,
    ids: Vec<ContactId>,
    identities: OnceCell<HashMap<ContactId, Vec<Identity>>>,
    merged_from: OnceCell<HashMap<ContactId, Vec<ContactId>>>,
    conversations: Pages<usize, Conversation>,
    events: Pages<(usize, Option<EventName>), Event>,
}

impl PageBatch {
    /// A batch over the contacts `ids` of `workspace`.
    pub fn new(workspace: WorkspaceId, ids: Vec<ContactId>) -> Arc<Self> {
        Arc::new(Self {
            workspace,
            ids,
            identities: OnceCell::new(),
            merged_from: OnceCell::new(),
            conversations: Mutex::default(),
            events: Mutex::default(),
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

    /// The first `first` conversations of `contact` (loaded for the whole page on first use
    /// of these arguments).
    pub async fn conversations(
        &self,
        activity: &ActivityService,
        contact: &ContactId,
        first: usize,
    ) -> Result<Vec<Conversation>, ServiceError> {
        let cell = cell_for(&self.conversations, first);
        let loaded = cell
            .get_or_try_init(|| {
                activity.first_conversations_of_many(&self.workspace, &self.ids, first)
            })
            .await?;
        Ok(loaded.get(contact).cloned().unwrap_or_default())
    }

    /// The first `first` events of `contact` named `name` (loaded for the whole page on first
    /// use of these arguments).
    pub async fn events(
        &self,
        activity: &ActivityService,
        contact: &ContactId,
        name: Option<&EventName>,
        first: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        let cell = cell_for(&self.events, (first, name.cloned()));
        let loaded = cell
            .get_or_try_init(|| {
                activity.first_events_of_many(&self.workspace, &self.ids, name, first)
            })
            .await?;
        Ok(loaded.get(contact).cloned().unwrap_or_default())
    }
}

fn cell_for<K: std::hash::Hash + Eq, T>(
    pages: &Pages<K, T>,
    key: K,
) -> Arc<OnceCell<HashMap<ContactId, Vec<T>>>> {
    let mut pages = pages
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(pages.entry(key).or_default())
}
