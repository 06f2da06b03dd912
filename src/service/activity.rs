//! Conversation history and events: recorded idempotently against a contact found by id,
//! external id or anonymous id (a visitor is created for an anonymous id seen first here),
//! read back newest first. A recorded conversation updates the contact's activity summary in
//! the same transaction, so segments and the index follow.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tracing::debug;

use super::indexer::ChangeNotifier;
use crate::domain::{
    ActivityId, Caller, Contact, ContactId, Conversation, ConversationInput, Event, EventName,
    ExternalId, IdentityKey, IdentityKind, Scope, WorkspaceId,
};
use crate::service::contacts::{ContactService, PatchInput};
use crate::service::contention::{Attempts, WRITE_ATTEMPTS};
use crate::service::error::ServiceError;
use crate::service::identity::IdentityService;
use crate::store::{ActivityCursor, Store, StoreError, WriteBatch};

/// Most items of each kind a data subject export holds.
const EXPORT_LIMIT: usize = 1_000_000;

/// Whose activity it is.
#[derive(Debug, Clone)]
pub enum ActivitySubject {
    /// A contact id (ids of contacts merged away resolve to the survivor).
    Id(ContactId),
    /// The id in the business's own system.
    ExternalId(ExternalId),
    /// A visitor's anonymous id (the visitor is created when unknown).
    AnonymousId(String),
}

impl ActivitySubject {
    /// FORBIDDEN unless `caller` may record activity (`contacts:write` or `identity:write`).
    pub fn require_recorder(caller: &Caller) -> Result<(), ServiceError> {
        if caller.allows(Scope::ContactsWrite) || caller.allows(Scope::IdentityWrite) {
            return Ok(());
        }
        Err(ServiceError::Forbidden(
            "recording activity needs the `contacts:write` or `identity:write` scope".to_owned(),
        ))
    }

    /// The subject named by exactly one of `contact_id`, `external_id` and `anonymous_id`,
    /// checked against what `caller` may name: `contacts:write` names any contact,
    /// `identity:write` alone only visitors by anonymous id.
    pub fn named_by(
        caller: &Caller,
        contact_id: Option<&str>,
        external_id: Option<&str>,
        anonymous_id: Option<&str>,
    ) -> Result<Self, ServiceError> {
        Self::require_recorder(caller)?;
        let writes_contacts = caller.allows(Scope::ContactsWrite);
        let subject = match (contact_id, external_id, anonymous_id) {
            (Some(id), None, None) => Self::Id(ContactId::parse(id)?),
            (None, Some(external_id), None) => Self::ExternalId(ExternalId::parse(external_id)?),
            (None, None, Some(anonymous_id)) => {
                let settings_free =
                    IdentityKey::parse(IdentityKind::AnonymousId, anonymous_id, &[])?;
                Self::AnonymousId(settings_free.value)
            }
            _ => {
                return Err(ServiceError::invalid(
                    "contactId",
                    "give exactly one of `contactId`, `externalId` or `anonymousId`",
                ));
            }
        };
        if !writes_contacts && !matches!(subject, Self::AnonymousId(_)) {
            return Err(ServiceError::Forbidden(
                "a key without `contacts:write` names the contact by `anonymousId`".to_owned(),
            ));
        }
        Ok(subject)
    }
}

/// What recording did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It was new.
    Created,
    /// It existed and changed.
    Updated,
    /// It existed as given; nothing was written.
    Unchanged,
}

/// An event as a client sends it.
#[derive(Debug, Clone)]
pub struct EventInput {
    /// The client's id for it (recording the same id again changes nothing).
    pub id: Option<ActivityId>,
    /// What happened.
    pub name: EventName,
    /// When (now, when not given).
    pub at: Option<DateTime<Utc>>,
    /// Details.
    pub properties: Map<String, Value>,
}

/// Conversation and event use cases.
#[derive(Clone)]
pub struct ActivityService {
    store: Store,
    notifier: ChangeNotifier,
    contacts: ContactService,
    identity: IdentityService,
}

impl ActivityService {
    /// Activity over `store`, finding contacts through `contacts` and creating visitors
    /// through `identity`; `notifier` wakes the indexer after a write.
    pub fn new(
        store: Store,
        notifier: ChangeNotifier,
        contacts: ContactService,
        identity: IdentityService,
    ) -> Self {
        Self {
            store,
            notifier,
            contacts,
            identity,
        }
    }

    /// The contact `subject` names (a new visitor for an unknown anonymous id).
    async fn subject(
        &self,
        workspace: &WorkspaceId,
        subject: &ActivitySubject,
    ) -> Result<Contact, ServiceError> {
        match subject {
            ActivitySubject::Id(id) => self.contacts.get(workspace, id).await,
            ActivitySubject::ExternalId(external_id) => {
                self.contacts
                    .get_by_external_id(workspace, external_id)
                    .await
            }
            ActivitySubject::AnonymousId(anonymous_id) => {
                let key =
                    IdentityKey::from_trusted(IdentityKind::AnonymousId, anonymous_id.clone());
                match self.contacts.get_by_identity(workspace, &key).await {
                    Err(ServiceError::NotFound(_)) => {
                        self.identity
                            .track_visitor(workspace, anonymous_id, PatchInput::default())
                            .await
                    }
                    found => found,
                }
            }
        }
    }

    /// Records a conversation (idempotent by its id): the contact's conversation count and
    /// latest conversation move with it. CONFLICT when the id belongs to another contact's
    /// conversation.
    pub async fn record_conversation(
        &self,
        workspace: &WorkspaceId,
        subject: &ActivitySubject,
        input: ConversationInput,
    ) -> Result<(Conversation, Recorded), ServiceError> {
        let input = input.validate()?;
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let mut contact = self.subject(workspace, subject).await?;
            let previous = self.store.conversation(workspace, &input.id).await?;
            if let Some(previous) = &previous {
                if previous.contact != contact.id {
                    return Err(ServiceError::Conflict(format!(
                        "conversation `{}` belongs to contact `{}`",
                        input.id.as_str(),
                        previous.contact
                    )));
                }
                if previous.same_as(&input) {
                    return Ok((previous.clone(), Recorded::Unchanged));
                }
            }
            let conversation = input.clone().into_conversation(
                workspace,
                contact.id,
                previous.as_ref(),
                Utc::now(),
            );
            let summary = match &previous {
                None => Some(contact.activity.with_conversation(conversation.started_at)),
                Some(previous) if previous.started_at != conversation.started_at => Some(
                    self.store
                        .activity_summary(workspace, &contact.id, Some(&conversation.id))
                        .await?
                        .with_conversation(conversation.started_at)
                        .seen_by(contact.first_seen_at())
                        .with_events_of(&contact.activity),
                ),
                Some(_) => None,
            };
            let mut batch = WriteBatch::new(workspace);
            batch.write_conversation(&conversation);
            if let Some(summary) = summary {
                let expected = contact.revision;
                contact.activity = summary;
                contact.revision += 1;
                batch.replace_contact(&mut contact, expected);
            }
            match self.store.commit(batch).await {
                Ok(()) => {
                    self.notifier.notify();
                    let recorded = if previous.is_some() {
                        Recorded::Updated
                    } else {
                        Recorded::Created
                    };
                    return Ok((conversation, recorded));
                }
                Err(StoreError::WriteConflict) => {
                    debug!(
                        conversation = input.id.as_str(),
                        "conversation lost a race; retrying"
                    );
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict(format!(
            "the contact of conversation `{}` is being changed by many requests at once; retry",
            input.id.as_str()
        )))
    }

    /// Records an event; with an id already recorded, nothing changes (CONFLICT when that id
    /// holds a different event).
    pub async fn record_event(
        &self,
        workspace: &WorkspaceId,
        subject: &ActivitySubject,
        input: EventInput,
    ) -> Result<(Event, Recorded), ServiceError> {
        let id = input.id.clone().unwrap_or_else(ActivityId::generate);
        let mut attempts = Attempts::new(WRITE_ATTEMPTS);
        while attempts.next().await {
            let mut contact = self.subject(workspace, subject).await?;
            if input.id.is_some()
                && let Some(existing) = self.store.event(workspace, &id).await?
            {
                return if existing.name == input.name && existing.contact == contact.id {
                    Ok((existing, Recorded::Unchanged))
                } else {
                    Err(ServiceError::Conflict(format!(
                        "event `{}` was recorded already as `{}` of contact `{}`",
                        id.as_str(),
                        existing.name.as_str(),
                        existing.contact
                    )))
                };
            }
            let now = Utc::now();
            let event = Event {
                workspace: workspace.clone(),
                id: id.clone(),
                contact: contact.id,
                name: input.name.clone(),
                at: input.at.unwrap_or(now),
                properties: input.properties.clone(),
                recorded_at: now,
            };
            // The contact's rollup of the event moves in the same transaction, so segments
            // (and the live feed) see it.
            let mut batch = WriteBatch::new(workspace);
            batch.create_event(&event);
            let expected = contact.revision;
            contact.activity = contact.activity.with_event(event.name.as_str(), event.at);
            contact.revision += 1;
            batch.replace_contact(&mut contact, expected);
            match self.store.commit(batch).await {
                Ok(()) => {
                    self.notifier.notify();
                    return Ok((event, Recorded::Created));
                }
                Err(StoreError::WriteConflict) => {
                    debug!(event = id.as_str(), "event lost a race; retrying");
                }
                // Recorded concurrently under the same id: the first one stands.
                Err(StoreError::AlreadyExists(source)) => {
                    return match self.store.event(workspace, &event.id).await? {
                        Some(existing) => Ok((existing, Recorded::Unchanged)),
                        None => Err(StoreError::AlreadyExists(source).into()),
                    };
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Conflict(format!(
            "the contact of event `{}` is being changed by many requests at once; retry",
            id.as_str()
        )))
    }

    /// Up to `first` conversations of `contact`, latest start first, after `after`.
    pub async fn conversations(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        after: Option<&ActivityCursor>,
        first: usize,
    ) -> Result<Vec<Conversation>, ServiceError> {
        Ok(self
            .store
            .conversations_of(workspace, contact, after, first)
            .await?)
    }

    /// Up to `first` events of `contact` (named `name`, when given), latest first, after `after`.
    pub async fn events(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        name: Option<&EventName>,
        after: Option<&ActivityCursor>,
        first: usize,
    ) -> Result<Vec<Event>, ServiceError> {
        Ok(self
            .store
            .events_of(workspace, contact, name, after, first)
            .await?)
    }

    /// The first `first` conversations of each of `contacts` (a page of contacts), in one
    /// round trip.
    pub async fn first_conversations_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        first: usize,
    ) -> Result<HashMap<ContactId, Vec<Conversation>>, ServiceError> {
        Ok(self
            .store
            .conversations_of_many(workspace, contacts, first)
            .await?)
    }

    /// The first `first` events (named `name`, when given) of each of `contacts`, in one
    /// round trip.
    pub async fn first_events_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        name: Option<&EventName>,
        first: usize,
    ) -> Result<HashMap<ContactId, Vec<Event>>, ServiceError> {
        Ok(self
            .store
            .events_of_many(workspace, contacts, name, first)
            .await?)
    }

    /// Every conversation of `contact`, latest first (a data subject export).
    pub async fn all_conversations(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<Conversation>, ServiceError> {
        Ok(self
            .store
            .conversations_of(workspace, contact, None, EXPORT_LIMIT)
            .await?)
    }

    /// Every event of `contact`, latest first (a data subject export).
    pub async fn all_events(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
    ) -> Result<Vec<Event>, ServiceError> {
        Ok(self
            .store
            .events_of(workspace, contact, None, None, EXPORT_LIMIT)
            .await?)
    }
}
