//! Views of conversations and events, and their pages (newest first, cursor paged), for the
//! mutations that record them and for `Contact.conversations` / `Contact.events`.

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as JsonValue};

use super::args::page_size;
use super::cursor::{not_a_cursor, open_cursor, seal_cursor};
use super::error::ApiResult;
use super::page::{Connection, DEFAULT_PAGE_SIZE, Total};
use super::page_batch::PageBatch;
use super::services;
use crate::domain::{ActivityId, Conversation, Event, EventName, Text};
use crate::service::ServiceError;
use crate::store::ActivityCursor;

/// One conversation with a contact.
#[derive(Clone)]
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
#[derive(Clone)]
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

/// Reads a page of `contact`'s conversations for a resolver; a first page of a contact read
/// with a page of contacts loads with the page's other contacts.
pub async fn conversations_page(
    ctx: &Context<'_>,
    contact: &crate::domain::Contact,
    batch: Option<&PageBatch>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<ConversationView>> {
    let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
    let resume = after
        .as_deref()
        .map(decode_activity_cursor)
        .transpose()
        .api()?;
    let activity = &services(ctx)?.activity;
    let mut items = match (batch, &resume) {
        (Some(batch), None) => batch.conversations(activity, &contact.id, first + 1).await,
        _ => {
            activity
                .conversations(&contact.workspace, &contact.id, resume.as_ref(), first + 1)
                .await
        }
    }
    .api()?;
    let has_next_page = items.len() > first;
    items.truncate(first);
    let items = items
        .into_iter()
        .map(|c| (encode_cursor(c.started_at, &c.id), ConversationView(c)))
        .collect();
    let total = Total::Known(contact.activity.conversation_count);
    Ok(Connection::of_page(items, has_next_page, after, total))
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
) -> async_graphql::Result<Connection<EventView>> {
    let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
    let resume = after
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
    let mut items = match (batch, &resume) {
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
                    resume.as_ref(),
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
    let items = items
        .into_iter()
        .map(|e| (encode_cursor(e.at, &e.id), EventView(e)))
        .collect();
    Ok(Connection::of_page(
        items,
        has_next_page,
        after,
        Total::Known(total_count),
    ))
}
