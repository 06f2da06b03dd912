//! Conversation history and events: the mutations that record them.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::activity_view::{ConversationView, EventView};
use super::caller;
use super::error::ApiResult;
use crate::domain::{ActivityId, Caller, ConversationInput, EventName, Text, event_properties};
use crate::service::{ActivitySubject, EventInput, Recorded, ServiceError, Services};

/// Whose activity, the way inputs named it before `contact`: give exactly one.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ActivitySubjectInput {
    /// The contact's id (ids of contacts merged away resolve to the survivor).
    #[graphql(
        deprecation = "Use `contact: { id }`; the flat subject fields go in the next release."
    )]
    pub contact_id: Option<ID>,
    /// The contact's id in your system.
    #[graphql(
        deprecation = "Use `contact: { externalId }`; the flat subject fields go in the next release."
    )]
    pub external_id: Option<String>,
    /// A visitor's anonymous id; the visitor is created when unknown.
    #[graphql(
        deprecation = "Use `contact: { anonymousId }`; the flat subject fields go in the next release."
    )]
    pub anonymous_id: Option<String>,
}

/// Whose activity it is, by exactly one of its keys.
#[derive(OneofObject, Clone, Debug)]
pub enum ActivityContactInput {
    /// The contact's id (ids of contacts merged away resolve to the survivor).
    Id(ID),
    /// The contact's id in your system.
    ExternalId(String),
    /// A visitor's anonymous id; the visitor is created when unknown.
    AnonymousId(String),
}

/// Input of `recordConversation`.
#[derive(InputObject)]
pub struct RecordConversationInput {
    /// Whose conversation it is.
    pub contact: Option<ActivityContactInput>,
    /// Whose conversation it is, as inputs named it before `contact`.
    #[graphql(flatten)]
    pub subject: ActivitySubjectInput,
    /// The conversation's id in your chat product; recording it again updates it.
    pub conversation_id: String,
    /// Where it happened (`web`, `whatsapp`, …).
    pub channel: Option<String>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// What it was about (up to 4 KB).
    pub summary: Option<String>,
    /// How it ended (`resolved`, `handed_over`, …).
    pub outcome: Option<String>,
}

/// Input of `recordEvent`.
#[derive(InputObject)]
pub struct RecordEventInput {
    /// Whose event it is.
    pub contact: Option<ActivityContactInput>,
    /// Whose event it is, as inputs named it before `contact`.
    #[graphql(flatten)]
    pub subject: ActivitySubjectInput,
    /// Your id for the event: sending it again changes nothing (at-least-once senders).
    pub event_id: Option<String>,
    /// What happened: 1 to 64 of a-z, 0-9, `_`, `.`, `:`, `-` (`purchase`, `cart.checkout`).
    pub name: String,
    /// When it happened (now when omitted).
    pub at: Option<DateTime<Utc>>,
    /// Details, a JSON object of at most 8 KB.
    pub properties: Option<Json<JsonValue>>,
}

/// What recording did.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RecordOutcome {
    /// It was new.
    Created,
    /// It existed and changed.
    Updated,
    /// It existed as given; nothing was written.
    Unchanged,
}

impl From<Recorded> for RecordOutcome {
    fn from(value: Recorded) -> Self {
        match value {
            Recorded::Created => Self::Created,
            Recorded::Updated => Self::Updated,
            Recorded::Unchanged => Self::Unchanged,
        }
    }
}

/// The result of `recordConversation`.
#[derive(SimpleObject)]
pub struct RecordConversationPayload {
    /// The conversation as stored.
    pub conversation: ConversationView,
    /// What recording did.
    pub outcome: RecordOutcome,
}

/// The result of `recordEvent`.
#[derive(SimpleObject)]
pub struct RecordEventPayload {
    /// The event as stored.
    pub event: EventView,
    /// What recording did.
    pub outcome: RecordOutcome,
}

/// Activity mutations.
pub struct ActivityMutation {
    services: Services,
}

impl ActivityMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Activity mutations.
#[Object]
impl ActivityMutation {
    /// Records a conversation with a contact, idempotently by `conversationId` (recording it
    /// again updates it). Keys with `contacts:write` name the contact by `contactId`,
    /// `externalId` or `anonymousId`; keys with only `identity:write` (a chat backend) by
    /// `anonymousId`.
    async fn record_conversation(
        &self,
        ctx: &Context<'_>,
        input: RecordConversationInput,
    ) -> async_graphql::Result<RecordConversationPayload> {
        let caller = &*caller(ctx)?;
        let subject = subject(caller, input.contact.as_ref(), &input.subject).api()?;
        let text = |field: &str, value: Option<String>| {
            value
                .map(|value| Text::parse(field, &value))
                .transpose()
                .map_err(ServiceError::from)
        };
        let conversation = ConversationInput {
            id: ActivityId::parse("conversationId", &input.conversation_id)
                .map_err(ServiceError::from)
                .api()?,
            channel: text("channel", input.channel).api()?,
            started_at: input.started_at,
            ended_at: input.ended_at,
            summary: input.summary,
            outcome: text("outcome", input.outcome).api()?,
        };
        let (conversation, recorded) = self
            .services
            .activity
            .record_conversation(&caller.workspace, &subject, conversation)
            .await
            .api()?;
        Ok(RecordConversationPayload {
            conversation: ConversationView(conversation),
            outcome: recorded.into(),
        })
    }

    /// Records something a contact did; with an `eventId` seen before, nothing changes. Keys
    /// with `contacts:write` name the contact by `contactId`, `externalId` or `anonymousId`;
    /// keys with only `identity:write` by `anonymousId`.
    async fn record_event(
        &self,
        ctx: &Context<'_>,
        input: RecordEventInput,
    ) -> async_graphql::Result<RecordEventPayload> {
        let caller = &*caller(ctx)?;
        let subject = subject(caller, input.contact.as_ref(), &input.subject).api()?;
        let event = EventInput {
            id: input
                .event_id
                .as_deref()
                .map(|id| ActivityId::parse("eventId", id))
                .transpose()
                .map_err(ServiceError::from)
                .api()?,
            name: EventName::parse(&input.name)
                .map_err(ServiceError::from)
                .api()?,
            at: input.at,
            properties: event_properties(input.properties.map(|json| json.0))
                .map_err(ServiceError::from)
                .api()?,
        };
        let (event, recorded) = self
            .services
            .activity
            .record_event(&caller.workspace, &subject, event)
            .await
            .api()?;
        Ok(RecordEventPayload {
            event: EventView(event),
            outcome: recorded.into(),
        })
    }
}

/// The subject of an activity write (`contact`, or the deprecated flat fields), checked
/// against what `caller` may name.
fn subject(
    caller: &Caller,
    contact: Option<&ActivityContactInput>,
    flat: &ActivitySubjectInput,
) -> Result<ActivitySubject, ServiceError> {
    let flat_given =
        flat.contact_id.is_some() || flat.external_id.is_some() || flat.anonymous_id.is_some();
    let (id, external_id, anonymous_id) = match (contact, flat_given) {
        (Some(_), true) => {
            return Err(ServiceError::invalid(
                "contact",
                "give `contact` alone, without `contactId`, `externalId` or `anonymousId`",
            ));
        }
        (Some(ActivityContactInput::Id(id)), false) => (Some(id.as_str()), None, None),
        (Some(ActivityContactInput::ExternalId(id)), false) => (None, Some(id.as_str()), None),
        (Some(ActivityContactInput::AnonymousId(id)), false) => (None, None, Some(id.as_str())),
        (None, _) => (
            flat.contact_id.as_ref().map(|id| id.as_str()),
            flat.external_id.as_deref(),
            flat.anonymous_id.as_deref(),
        ),
    };
    ActivitySubject::named_by(caller, id, external_id, anonymous_id)
}
