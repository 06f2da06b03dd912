//! Conversations (`conversation:[workspace, id]`) and events (`contact_event:[workspace, id]`), each
//! with its current contact and the merges that moved it there (`moves`, last one last), so an
//! undone merge sends back exactly what it brought.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as JsonValue};
use surrealdb::types::{RecordId, SurrealValue};

use super::batch::WriteBatch;
use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::{
    ActivityId, ActivitySummary, ContactId, Conversation, Event, EventName, EventRollup, MergeId,
    Text, WorkspaceId,
};

pub(super) const CONVERSATION_TABLE: &str = "conversation";
pub(super) const EVENT_TABLE: &str = "contact_event";

/// Where a page of activity resumes: after the item at this time with this id (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCursor {
    /// The item's time (`startedAt`, `at`).
    pub at: DateTime<Utc>,
    /// The item's id.
    pub id: ActivityId,
}

fn conversation_key(workspace: &WorkspaceId, id: &ActivityId) -> RecordId {
    compound_key(CONVERSATION_TABLE, workspace, id.as_str().to_owned())
}

fn event_key(workspace: &WorkspaceId, id: &ActivityId) -> RecordId {
    compound_key(EVENT_TABLE, workspace, id.as_str().to_owned())
}

/// A conversation as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct ConversationRecord {
    id: RecordId,
    workspace: String,
    conversation_id: String,
    contact: String,
    moves: Vec<String>,
    channel: Option<String>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    summary: Option<String>,
    outcome: Option<String>,
    recorded_at: DateTime<Utc>,
}

impl ConversationRecord {
    fn into_conversation(self) -> Result<Conversation, StoreError> {
        let contact = ContactId::parse(&self.contact)
            .map_err(|_| StoreError::Corrupt(format!("conversation owner `{}`", self.contact)))?;
        Ok(Conversation {
            workspace: WorkspaceId::from_trusted(self.workspace),
            id: ActivityId::from_trusted(self.conversation_id),
            contact,
            channel: self.channel.map(Text::from_trusted),
            started_at: self.started_at,
            ended_at: self.ended_at,
            summary: self.summary,
            outcome: self.outcome.map(Text::from_trusted),
            recorded_at: self.recorded_at,
        })
    }
}

/// An event as stored; its properties as JSON text.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct EventRecord {
    id: RecordId,
    workspace: String,
    event_id: String,
    contact: String,
    moves: Vec<String>,
    name: String,
    at: DateTime<Utc>,
    properties: String,
    recorded_at: DateTime<Utc>,
}

impl EventRecord {
    fn new(event: &Event) -> Self {
        Self {
            id: event_key(&event.workspace, &event.id),
            workspace: event.workspace.as_str().to_owned(),
            event_id: event.id.as_str().to_owned(),
            contact: event.contact.to_string(),
            moves: Vec::new(),
            name: event.name.as_str().to_owned(),
            at: event.at,
            properties: JsonValue::Object(event.properties.clone()).to_string(),
            recorded_at: event.recorded_at,
        }
    }

    fn into_event(self) -> Result<Event, StoreError> {
        let contact = ContactId::parse(&self.contact)
            .map_err(|_| StoreError::Corrupt(format!("event owner `{}`", self.contact)))?;
        let properties = match serde_json::from_str(&self.properties) {
            Ok(JsonValue::Object(map)) => map,
            _ => Map::new(),
        };
        Ok(Event {
            workspace: WorkspaceId::from_trusted(self.workspace),
            id: ActivityId::from_trusted(self.event_id),
            contact,
            name: EventName::from_trusted(self.name),
            at: self.at,
            properties,
            recorded_at: self.recorded_at,
        })
    }
}

/// How one kind of activity is listed: its table, the time it is ordered by (newest first),
/// the id that breaks ties, and how a stored record becomes the domain item.
struct Listing<R, U> {
    table: &'static str,
    time: &'static str,
    id: &'static str,
    decode_one: fn(R) -> Result<U, StoreError>,
}

const CONVERSATIONS: Listing<ConversationRecord, Conversation> = Listing {
    table: CONVERSATION_TABLE,
    time: "started_at",
    id: "conversation_id",
    decode_one: ConversationRecord::into_conversation,
};

const EVENTS: Listing<EventRecord, Event> = Listing {
    table: EVENT_TABLE,
    time: "at",
    id: "event_id",
    decode_one: EventRecord::into_event,
};

impl<R, U> Listing<R, U> {
    /// The page statement for the contact bound as `contact` (`$workspace` and `$limit`
    /// bound too; `$name` when `named`, `$after_at` and `$after_id` when `resumed`).
    fn statement(&self, contact: &str, named: bool, resumed: bool) -> String {
        let (table, time, id) = (self.table, self.time, self.id);
        let mut conditions = format!("workspace = $workspace AND contact = {contact}");
        if named {
            conditions.push_str(" AND name = $name");
        }
        if resumed {
            conditions.push_str(&format!(
                " AND ({time} < $after_at OR ({time} = $after_at AND {id} < $after_id))"
            ));
        }
        format!(
            "SELECT * FROM {table} WHERE {conditions} ORDER BY {time} DESC, {id} DESC LIMIT $limit"
        )
    }

    fn decode(&self, records: Vec<R>) -> Result<Vec<U>, StoreError> {
        records.into_iter().map(self.decode_one).collect()
    }
}

/// One row of an activity summary query.
#[derive(Debug, SurrealValue)]
struct SummaryRow {
    count: i64,
    last: Option<DateTime<Utc>>,
    first: Option<DateTime<Utc>>,
}

impl WriteBatch {
    /// Writes `conversation` (created, or replaced keeping its moves).
    pub fn write_conversation(&mut self, conversation: &Conversation) {
        let key = self.bind(conversation_key(&conversation.workspace, &conversation.id));
        let fields = [
            (
                "workspace",
                self.bind(conversation.workspace.as_str().to_owned()),
            ),
            (
                "conversation_id",
                self.bind(conversation.id.as_str().to_owned()),
            ),
            ("contact", self.bind(conversation.contact.to_string())),
            (
                "channel",
                self.bind(conversation.channel.as_ref().map(|t| t.as_str().to_owned())),
            ),
            ("started_at", self.bind(conversation.started_at)),
            ("ended_at", self.bind(conversation.ended_at)),
            ("summary", self.bind(conversation.summary.clone())),
            (
                "outcome",
                self.bind(conversation.outcome.as_ref().map(|t| t.as_str().to_owned())),
            ),
            ("recorded_at", self.bind(conversation.recorded_at)),
        ];
        let set: Vec<String> = fields
            .iter()
            .map(|(name, param)| format!("{name} = {param}"))
            .collect();
        self.push_statement(format!(
            "UPSERT {key} SET {}, moves = moves ?? [] RETURN NONE;",
            set.join(", ")
        ));
    }

    /// Creates `event` (fails if its id is taken).
    pub fn create_event(&mut self, event: &Event) {
        let key = self.bind(event_key(&event.workspace, &event.id));
        let record = self.bind(EventRecord::new(event));
        self.push_statement(format!("CREATE {key} CONTENT {record} RETURN NONE;"));
    }

    /// Moves every conversation and event of `absorbed` to `survivor`, as done by `merge`.
    pub fn move_activity(&mut self, absorbed: &ContactId, survivor: &ContactId, merge: &MergeId) {
        let workspace = self.bind(self.workspace().as_str().to_owned());
        let absorbed = self.bind(absorbed.to_string());
        let survivor = self.bind(survivor.to_string());
        let merge = self.bind(merge.to_string());
        for table in [CONVERSATION_TABLE, EVENT_TABLE] {
            self.push_statement(format!(
                "UPDATE {table} SET contact = {survivor}, moves = array::append(moves, {merge}) \
                 WHERE workspace = {workspace} AND contact = {absorbed} RETURN NONE;"
            ));
        }
    }

    /// Sends back to `absorbed` what merge `merge` moved to `survivor` (its undoing).
    pub fn return_activity(&mut self, survivor: &ContactId, absorbed: &ContactId, merge: &MergeId) {
        let workspace = self.bind(self.workspace().as_str().to_owned());
        let absorbed = self.bind(absorbed.to_string());
        let survivor = self.bind(survivor.to_string());
        let merge = self.bind(merge.to_string());
        for table in [CONVERSATION_TABLE, EVENT_TABLE] {
            self.push_statement(format!(
                "UPDATE {table} SET contact = {absorbed}, moves = array::complement(moves, [{merge}]) \
                 WHERE workspace = {workspace} AND contact = {survivor} AND array::last(moves) = {merge} \
                 RETURN NONE;"
            ));
        }
    }

    /// Deletes every conversation and event of `contact`.
    pub fn delete_activity(&mut self, contact: &ContactId) {
        let workspace = self.bind(self.workspace().as_str().to_owned());
        let contact = self.bind(contact.to_string());
        for table in [CONVERSATION_TABLE, EVENT_TABLE] {
            self.push_statement(format!(
                "DELETE {table} WHERE workspace = {workspace} AND contact = {contact} RETURN NONE;"
            ));
        }
    }
}

impl Store {
    /// The conversation `id`, if recorded.
    pub async fn conversation(
        &self,
        workspace: &WorkspaceId,
        id: &ActivityId,
    ) -> Result<Option<Conversation>, StoreError> {
        let record: Option<ConversationRecord> = self
            .db
            .select(conversation_key(workspace, id))
            .await
            .map_err(StoreError::from_surreal)?;
        record
            .map(ConversationRecord::into_conversation)
            .transpose()
    }

    /// The event `id`, if recorded.
    pub async fn event(
        &self,
        workspace: &WorkspaceId,
        id: &ActivityId,
    ) -> Result<Option<Event>, StoreError> {
        let record: Option<EventRecord> = self
            .db
            .select(event_key(workspace, id))
            .await
            .map_err(StoreError::from_surreal)?;
        record.map(EventRecord::into_event).transpose()
    }

    /// Up to `limit` conversations of `contact`, latest start first, after `after`.
    pub async fn conversations_of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        after: Option<&ActivityCursor>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.activity_page(&CONVERSATIONS, workspace, contact, None, after, limit)
            .await
    }

    /// Up to `limit` events of `contact` (only those named `name` when given), latest first,
    /// after `after`.
    pub async fn events_of(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        name: Option<&EventName>,
        after: Option<&ActivityCursor>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.activity_page(&EVENTS, workspace, contact, name, after, limit)
            .await
    }

    /// The first `limit` conversations of each of `contacts` (latest first), in one round
    /// trip: one statement per contact, each served by the contact index.
    pub async fn conversations_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        limit: usize,
    ) -> Result<HashMap<ContactId, Vec<Conversation>>, StoreError> {
        self.first_pages(&CONVERSATIONS, workspace, contacts, None, limit)
            .await
    }

    /// The first `limit` events (named `name`, when given) of each of `contacts`, latest
    /// first, in one round trip.
    pub async fn events_of_many(
        &self,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        name: Option<&EventName>,
        limit: usize,
    ) -> Result<HashMap<ContactId, Vec<Event>>, StoreError> {
        self.first_pages(&EVENTS, workspace, contacts, name, limit)
            .await
    }

    /// The first page of `listing` for each of `contacts`, in one round trip.
    async fn first_pages<R: SurrealValue, U>(
        &self,
        listing: &Listing<R, U>,
        workspace: &WorkspaceId,
        contacts: &[ContactId],
        name: Option<&EventName>,
        limit: usize,
    ) -> Result<HashMap<ContactId, Vec<U>>, StoreError> {
        if contacts.is_empty() {
            return Ok(HashMap::new());
        }
        let statements: String = (0..contacts.len())
            .map(|n| listing.statement(&format!("$c{n}"), name.is_some(), false) + ";")
            .collect();
        let mut query = self
            .db
            .query(statements)
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("limit", super::limit_value(limit)));
        if let Some(name) = name {
            query = query.bind(("name", name.as_str().to_owned()));
        }
        for (n, contact) in contacts.iter().enumerate() {
            query = query.bind((format!("c{n}"), contact.to_string()));
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let mut pages = HashMap::with_capacity(contacts.len());
        for (n, contact) in contacts.iter().enumerate() {
            let records: Vec<R> = response.take(n).map_err(StoreError::from_surreal)?;
            pages.insert(*contact, listing.decode(records)?);
        }
        Ok(pages)
    }

    /// One page of `listing` for `contact`, after `after`.
    async fn activity_page<R: SurrealValue, U>(
        &self,
        listing: &Listing<R, U>,
        workspace: &WorkspaceId,
        contact: &ContactId,
        name: Option<&EventName>,
        after: Option<&ActivityCursor>,
        limit: usize,
    ) -> Result<Vec<U>, StoreError> {
        let statement = listing.statement("$contact", name.is_some(), after.is_some());
        let mut query = self
            .db
            .query(statement)
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("contact", contact.to_string()))
            .bind(("limit", super::limit_value(limit)));
        if let Some(name) = name {
            query = query.bind(("name", name.as_str().to_owned()));
        }
        if let Some(after) = after {
            query = query
                .bind(("after_at", after.at))
                .bind(("after_id", after.id.as_str().to_owned()));
        }
        let mut response = query.await.map_err(StoreError::from_surreal)?;
        let records: Vec<R> = response.take(0).map_err(StoreError::from_surreal)?;
        listing.decode(records)
    }

    /// The summaries of `contact`'s conversations that merge `merge` did not bring, and of
    /// those it did (what undoing it leaves and sends back).
    pub async fn activity_split(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        merge: &MergeId,
    ) -> Result<(ActivitySummary, ActivitySummary), StoreError> {
        let kept_condition = "(array::last(moves) ?? '') != $merge";
        let returned_condition = "array::last(moves) = $merge";
        let mut response = self
            .db
            .query(format!(
                "{} {} {} {}",
                summary_statement(kept_condition),
                summary_statement(returned_condition),
                event_times_statement(kept_condition),
                event_times_statement(returned_condition),
            ))
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("contact", contact.to_string()))
            .bind(("merge", merge.to_string()))
            .await
            .map_err(StoreError::from_surreal)?;
        let kept: Vec<SummaryRow> = response.take(0).map_err(StoreError::from_surreal)?;
        let returned: Vec<SummaryRow> = response.take(1).map_err(StoreError::from_surreal)?;
        let kept_events: Vec<EventTimeRow> = response.take(2).map_err(StoreError::from_surreal)?;
        let returned_events: Vec<EventTimeRow> =
            response.take(3).map_err(StoreError::from_surreal)?;
        let mut kept = summary_of(kept);
        kept.events = rollups_of(kept_events);
        let mut returned = summary_of(returned);
        returned.events = rollups_of(returned_events);
        Ok((kept, returned))
    }

    /// How many conversations `contact` had and when the latest began, leaving out the
    /// conversation `excluding` (about to be rewritten).
    pub async fn activity_summary(
        &self,
        workspace: &WorkspaceId,
        contact: &ContactId,
        excluding: Option<&ActivityId>,
    ) -> Result<ActivitySummary, StoreError> {
        let mut response = self
            .db
            .query(summary_statement("conversation_id != $excluding"))
            .bind(("workspace", workspace.as_str().to_owned()))
            .bind(("contact", contact.to_string()))
            .bind((
                "excluding",
                excluding.map_or_else(String::new, |id| id.as_str().to_owned()),
            ))
            .await
            .map_err(StoreError::from_surreal)?;
        let rows: Vec<SummaryRow> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(summary_of(rows))
    }
}

/// The statement summing up the conversations of `$contact` (in `$workspace`) that meet
/// `condition`, read back by [`summary_of`].
fn summary_statement(condition: &str) -> String {
    format!(
        "SELECT count() AS count, time::max(started_at) AS last, time::min(started_at) AS first \
         FROM {CONVERSATION_TABLE} \
         WHERE workspace = $workspace AND contact = $contact AND {condition} GROUP ALL;"
    )
}

/// The statement listing the name and time of every event of `$contact` (in `$workspace`)
/// that meets `condition`, read back by [`rollups_of`].
fn event_times_statement(condition: &str) -> String {
    format!(
        "SELECT name, at FROM {EVENT_TABLE} \
         WHERE workspace = $workspace AND contact = $contact AND {condition};"
    )
}

#[derive(Debug, SurrealValue)]
struct EventTimeRow {
    name: String,
    at: DateTime<Utc>,
}

/// Per event name, the rollup of the listed events.
fn rollups_of(rows: Vec<EventTimeRow>) -> BTreeMap<String, EventRollup> {
    let mut times: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
    for row in rows {
        times.entry(row.name).or_default().push(row.at);
    }
    times
        .into_iter()
        .map(|(name, times)| (name, EventRollup::of(times)))
        .collect()
}

fn summary_of(rows: Vec<SummaryRow>) -> ActivitySummary {
    rows.into_iter()
        .next()
        .map_or_else(ActivitySummary::default, |row| ActivitySummary {
            conversation_count: u64::try_from(row.count).unwrap_or(0),
            last_conversation_at: row.last,
            first_seen_at: row.first,
            events: BTreeMap::new(),
        })
}
