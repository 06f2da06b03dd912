//! Views of conversations and events, and their connections (newest first, cursor paged), for
//! the mutations that record them and for `Contact.conversations` / `Contact.events`.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as JsonValue};

use super::args::page_size;
use super::connection::{not_a_cursor, open_cursor, seal_cursor};
use super::error::ApiResult;
use super::page::{DEFAULT_PAGE_SIZE, PageInfo};
use super::page_batch::PageBatch;
use super::services;
use crate::domain::{ActivityId, Conversation, Event, EventName, Text};
use crate::service::ServiceError;
use crate::store::ActivityCursor;

/// One conversation with a contact.
pub struct ConversationView(pub Conversation);

/// One conversation with a contact.
#[Object(name = "Conversation")]
impl ConversationView {
    /// The conversation's id in the chat product.
    async fn id(&self) -> ID {
        ID(self.0.id.as_str().to_owned())
    }

    /// The contact it belongs to now (the survivor, after a merge).
    async fn contact_id(&self) -> ID {
        ID(self.0.contact.to_string())
    }

    /// Where it happened.
    async fn channel(&self) -> Option<&str> {
        self.0.channel.as_ref().map(Text::as_str)
    }

    /// When it began.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }

    /// When it ended.
    async fn ended_at(&self) -> Option<DateTime<Utc>> {
        self.0.ended_at
    }

    /// What it was about.
    async fn summary(&self) -> Option<&str> {
        self.0.summary.as_deref()
    }

    /// How it ended.
    async fn outcome(&self) -> Option<&str> {
        self.0.outcome.as_ref().map(Text::as_str)
    }

    /// When it was first recorded.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

/// Something a contact did.
pub struct EventView(pub Event);

/// Something a contact did.
#[Object(name = "Event")]
impl EventView {
    /// The event's id (yours, or a generated `evt_…`).
    async fn id(&self) -> ID {
        ID(self.0.id.as_str().to_owned())
    }

    /// The contact it belongs to now (the survivor, after a merge).
    async fn contact_id(&self) -> ID {
        ID(self.0.contact.to_string())
    }

    /// What happened.
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// When it happened.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }

    /// Its details.
    async fn properties(&self) -> Json<Map<String, JsonValue>> {
        Json(self.0.properties.clone())
    }

    /// When it was recorded.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
}

const CURSOR_PREFIX: &str = "activity:";

fn encode_cursor(at: DateTime<Utc>, id: &ActivityId) -> String {
    let nanos = at.timestamp_nanos_opt().unwrap_or_default();
    seal_cursor(CURSOR_PREFIX, &format!("{nanos}|{}", id.as_str()))
}

/// The place in a contact's activity a cursor of this API stands for.
pub fn decode_activity_cursor(cursor: &str) -> Result<ActivityCursor, ServiceError> {
    let what = "an activity cursor";
    let invalid = || not_a_cursor(cursor, what);
    let body = open_cursor(cursor, CURSOR_PREFIX, what)?;
    let (nanos, id) = body.split_once('|').ok_or_else(invalid)?;
    let nanos: i64 = nanos.parse().map_err(|_| invalid())?;
    Ok(ActivityCursor {
        at: DateTime::from_timestamp_nanos(nanos),
        id: ActivityId::from_trusted(id.to_owned()),
    })
}

/// A page of a contact's conversations, latest first.
pub struct ConversationConnection {
    /// The page.
    pub items: Vec<Conversation>,
    /// Whether older ones follow.
    pub has_next_page: bool,
    /// Whether the page started after a cursor.
    pub resumed: bool,
    /// How many the contact has in all (those named as asked, for events).
    pub total_count: u64,
}

/// A page of a contact's events, latest first.
pub struct EventConnection {
    /// The page.
    pub items: Vec<Event>,
    /// Whether older ones follow.
    pub has_next_page: bool,
    /// Whether the page started after a cursor.
    pub resumed: bool,
    /// How many the contact has in all (those named as asked, for events).
    pub total_count: u64,
}

/// One conversation of a page and the cursor after it.
#[derive(SimpleObject)]
pub struct ConversationEdge {
    /// Pass as `after` to continue after this one.
    cursor: String,
    /// The conversation.
    node: ConversationView,
}

/// One event of a page and the cursor after it.
#[derive(SimpleObject)]
pub struct EventEdge {
    /// Pass as `after` to continue after this one.
    cursor: String,
    /// The event.
    node: EventView,
}

impl ConversationConnection {
    /// A page with nothing on it (activity the caller may not read).
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            has_next_page: false,
            resumed: false,
            total_count: 0,
        }
    }
}

impl EventConnection {
    /// A page with nothing on it (activity the caller may not read).
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            has_next_page: false,
            resumed: false,
            total_count: 0,
        }
    }
}

/// A page of a contact's conversations, latest first.
#[Object]
impl ConversationConnection {
    /// The conversations, each with its cursor.
    async fn edges(&self) -> Vec<ConversationEdge> {
        self.items
            .iter()
            .map(|c| ConversationEdge {
                cursor: encode_cursor(c.started_at, &c.id),
                node: ConversationView(c.clone()),
            })
            .collect()
    }

    /// The conversations.
    async fn nodes(&self) -> Vec<ConversationView> {
        self.items.iter().cloned().map(ConversationView).collect()
    }

    /// Where this page stops.
    async fn page_info(&self) -> PageInfo {
        let cursors: Vec<String> = [self.items.first(), self.items.last()]
            .into_iter()
            .flatten()
            .map(|c| encode_cursor(c.started_at, &c.id))
            .collect();
        page_info(&cursors, self.resumed, self.has_next_page)
    }

    /// How many conversations the contact had in all.
    async fn total_count(&self) -> u64 {
        self.total_count
    }
}

/// A page of a contact's events, latest first.
#[Object]
impl EventConnection {
    /// The events, each with its cursor.
    async fn edges(&self) -> Vec<EventEdge> {
        self.items
            .iter()
            .map(|e| EventEdge {
                cursor: encode_cursor(e.at, &e.id),
                node: EventView(e.clone()),
            })
            .collect()
    }

    /// The events.
    async fn nodes(&self) -> Vec<EventView> {
        self.items.iter().cloned().map(EventView).collect()
    }

    /// Where this page stops.
    async fn page_info(&self) -> PageInfo {
        let cursors: Vec<String> = [self.items.first(), self.items.last()]
            .into_iter()
            .flatten()
            .map(|e| encode_cursor(e.at, &e.id))
            .collect();
        page_info(&cursors, self.resumed, self.has_next_page)
    }

    /// How many events the contact has in all (of the name asked for, when given).
    async fn total_count(&self) -> u64 {
        self.total_count
    }
}

/// Page information from the cursors of the page's first and last items.
fn page_info(first_and_last: &[String], resumed: bool, has_next_page: bool) -> PageInfo {
    PageInfo {
        has_next_page,
        end_cursor: first_and_last.last().cloned(),
        has_previous_page: resumed,
        start_cursor: first_and_last.first().cloned(),
    }
}

/// Reads a page of `contact`'s conversations for a resolver; a first page of a contact read
/// with a page of contacts loads with the page's other contacts.
pub async fn conversations_page(
    ctx: &Context<'_>,
    contact: &crate::domain::Contact,
    batch: Option<&PageBatch>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<ConversationConnection> {
    let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
    let after = after
        .as_deref()
        .map(decode_activity_cursor)
        .transpose()
        .api()?;
    let activity = &services(ctx)?.activity;
    let mut items = match (batch, &after) {
        (Some(batch), None) => batch.conversations(activity, &contact.id, first + 1).await,
        _ => {
            activity
                .conversations(&contact.workspace, &contact.id, after.as_ref(), first + 1)
                .await
        }
    }
    .api()?;
    let has_next_page = items.len() > first;
    items.truncate(first);
    Ok(ConversationConnection {
        items,
        has_next_page,
        resumed: after.is_some(),
        total_count: contact.activity.conversation_count,
    })
}

/// Reads a page of `contact`'s events for a resolver; a first page of a contact read with a
/// page of contacts loads with the page's other contacts.
pub async fn events_page(
    ctx: &Context<'_>,
    contact: &crate::domain::Contact,
    batch: Option<&PageBatch>,
    first: Option<i32>,
    after: Option<String>,
    name: Option<String>,
) -> async_graphql::Result<EventConnection> {
    let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
    let after = after
        .as_deref()
        .map(decode_activity_cursor)
        .transpose()
        .api()?;
    let name = name
        .as_deref()
        .map(EventName::parse)
        .transpose()
        .map_err(ServiceError::from)
        .api()?;
    let activity = &services(ctx)?.activity;
    let mut items = match (batch, &after) {
        (Some(batch), None) => {
            batch
                .events(activity, &contact.id, name.as_ref(), first + 1)
                .await
        }
        _ => {
            activity
                .events(
                    &contact.workspace,
                    &contact.id,
                    name.as_ref(),
                    after.as_ref(),
                    first + 1,
                )
                .await
        }
    }
    .api()?;
    let has_next_page = items.len() > first;
    items.truncate(first);
    let events = &contact.activity.events;
    let total_count = match &name {
        Some(name) => events.get(name.as_str()).map_or(0, |rollup| rollup.count),
        None => events.values().map(|rollup| rollup.count).sum(),
    };
    Ok(EventConnection {
        items,
        has_next_page,
        resumed: after.is_some(),
        total_count,
    })
}
