//! A contact's activity: the conversations it had and the events it did. Both are recorded
//! idempotently (by the conversation's id, by an optional event id), belong to one contact,
//! move with it when it is merged away, and come back when the merge is undone.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{ContactId, DomainError, Text, WorkspaceId};

/// Longest conversation or event id accepted, in bytes.
pub const MAX_ACTIVITY_ID_BYTES: usize = 128;
/// Longest event name accepted, in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = qwry_segment::MAX_EVENT_NAME_BYTES;
/// Longest conversation summary accepted, in bytes.
pub const MAX_SUMMARY_BYTES: usize = 4_096;
/// Largest event `properties` object accepted, as JSON text.
pub const MAX_PROPERTIES_BYTES: usize = 8_192;

/// An id a client gives an activity (its conversation id, an event id): 1 to 128 printable
/// ASCII characters without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActivityId(String);

impl ActivityId {
    /// Parses the id given as `field`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        let printable = raw.bytes().all(|b| b.is_ascii_graphic());
        if raw.is_empty() || raw.len() > MAX_ACTIVITY_ID_BYTES || !printable {
            return Err(DomainError::invalid(
                field,
                format!(
                    "`{field}` must be 1 to {MAX_ACTIVITY_ID_BYTES} printable ASCII characters without spaces"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh id, for an event recorded without one.
    pub fn generate() -> Self {
        Self(format!("evt_{}", ulid::Ulid::new()))
    }

    /// Wraps an id read back from the store.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event's name: 1 to 64 of `a-z`, `0-9`, `_`, `.`, `:` and `-`, starting with a letter
/// (`purchase`, `cart.checkout`), compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(String);

impl EventName {
    /// Parses an event name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        // One rule with the segment language's `event "name"`, so conditions can match.
        if !qwry_segment::is_event_name(raw) {
            return Err(DomainError::invalid(
                "name",
                format!(
                    "event name `{raw}` must be 1 to {MAX_EVENT_NAME_BYTES} of a-z, 0-9, `_`, `.`, `:` or `-`, starting with a letter"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a name read back from the store.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One conversation with a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The conversation's id in the chat product (unique per workspace).
    pub id: ActivityId,
    /// The contact it belongs to now.
    pub contact: ContactId,
    /// Where it happened (`web`, `whatsapp`, …).
    pub channel: Option<Text>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// What it was about (up to [`MAX_SUMMARY_BYTES`], lines kept).
    pub summary: Option<String>,
    /// How it ended (`resolved`, `handed_over`, …).
    pub outcome: Option<Text>,
    /// When it was first recorded.
    pub recorded_at: DateTime<Utc>,
}

/// What a client sends about a conversation (before it is tied to a contact).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationInput {
    /// The conversation's id.
    pub id: ActivityId,
    /// Where it happened.
    pub channel: Option<Text>,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// What it was about.
    pub summary: Option<String>,
    /// How it ended.
    pub outcome: Option<Text>,
}

impl ConversationInput {
    /// Checks what only the whole input can show: a summary within bounds, an end not before
    /// the start.
    pub fn validate(self) -> Result<Self, DomainError> {
        if let Some(summary) = &self.summary {
            let stray_control = summary
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t'));
            if summary.trim().is_empty() || summary.len() > MAX_SUMMARY_BYTES || stray_control {
                return Err(DomainError::invalid(
                    "summary",
                    format!(
                        "`summary` must be 1 to {MAX_SUMMARY_BYTES} bytes of text (lines and tabs allowed, no other control characters)"
                    ),
                ));
            }
        }
        if let Some(ended_at) = self.ended_at
            && ended_at < self.started_at
        {
            return Err(DomainError::invalid(
                "endedAt",
                "`endedAt` is before `startedAt`",
            ));
        }
        Ok(self)
    }

    /// The conversation as recorded for `contact` now, keeping `previous`'s first recording.
    pub fn into_conversation(
        self,
        workspace: &WorkspaceId,
        contact: ContactId,
        previous: Option<&Conversation>,
        now: DateTime<Utc>,
    ) -> Conversation {
        Conversation {
            workspace: workspace.clone(),
            id: self.id,
            contact,
            channel: self.channel,
            started_at: self.started_at,
            ended_at: self.ended_at,
            summary: self.summary,
            outcome: self.outcome,
            recorded_at: previous.map_or(now, |previous| previous.recorded_at),
        }
    }
}

impl Conversation {
    /// Whether recording `input` again would change nothing.
    pub fn same_as(&self, input: &ConversationInput) -> bool {
        self.id == input.id
            && self.channel == input.channel
            && self.started_at == input.started_at
            && self.ended_at == input.ended_at
            && self.summary == input.summary
            && self.outcome == input.outcome
    }
}

/// Something a contact did.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The client's event id, or a generated one (unique per workspace).
    pub id: ActivityId,
    /// The contact it belongs to now.
    pub contact: ContactId,
    /// What happened.
    pub name: EventName,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Free-form details (a JSON object).
    pub properties: Map<String, Value>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Checks an event's `properties`: a JSON object of at most [`MAX_PROPERTIES_BYTES`].
pub fn event_properties(value: Option<Value>) -> Result<Map<String, Value>, DomainError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => {
            let size = serde_json::to_string(&map).map_or(usize::MAX, |text| text.len());
            if size > MAX_PROPERTIES_BYTES {
                return Err(DomainError::invalid(
                    "properties",
                    format!(
                        "`properties` is {size} bytes of JSON; at most {MAX_PROPERTIES_BYTES} are allowed"
                    ),
                ));
            }
            Ok(map)
        }
        Some(_) => Err(DomainError::invalid(
            "properties",
            "`properties` must be a JSON object",
        )),
    }
}

/// A contact's activity in numbers, kept on the contact so that segments can test it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivitySummary {
    /// How many conversations it had.
    pub conversation_count: u64,
    /// When its latest conversation began.
    pub last_conversation_at: Option<DateTime<Utc>>,
    /// The earliest moment it was seen: its first recorded visit (`lastSeenAt` value) or
    /// conversation start. It only moves earlier, except when an unmerge takes back what a
    /// merge brought.
    pub first_seen_at: Option<DateTime<Utc>>,
    /// Per event name: how many and when the latest happened (what segments test).
    pub events: BTreeMap<String, EventRollup>,
}

/// How many times the latest happenings of one event are kept per contact: segments test
/// `event "x" count >= N within W` for N up to this.
pub const MAX_EVENT_WINDOW_COUNT: usize = qwry_segment::MAX_EVENT_WINDOW_COUNT as usize;

/// One event name's occurrences on a contact, in numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRollup {
    /// How many times it happened.
    pub count: u64,
    /// When it happened, latest first, at most [`MAX_EVENT_WINDOW_COUNT`].
    pub latest: Vec<DateTime<Utc>>,
}

impl EventRollup {
    /// The rollup with one more occurrence at `at`.
    pub fn with(&self, at: DateTime<Utc>) -> Self {
        let mut latest = self.latest.clone();
        let place = latest.partition_point(|kept| *kept >= at);
        latest.insert(place, at);
        latest.truncate(MAX_EVENT_WINDOW_COUNT);
        Self {
            count: self.count + 1,
            latest,
        }
    }

    /// Both rollups together (a merge).
    pub fn combine(&self, other: &Self) -> Self {
        let mut latest: Vec<DateTime<Utc>> =
            self.latest.iter().chain(&other.latest).copied().collect();
        latest.sort_unstable_by(|a, b| b.cmp(a));
        latest.truncate(MAX_EVENT_WINDOW_COUNT);
        Self {
            count: self.count + other.count,
            latest,
        }
    }

    /// The rollup of occurrences at `times` (in any order).
    pub fn of(times: impl IntoIterator<Item = DateTime<Utc>>) -> Self {
        let mut latest: Vec<DateTime<Utc>> = times.into_iter().collect();
        let count = latest.len() as u64;
        latest.sort_unstable_by(|a, b| b.cmp(a));
        latest.truncate(MAX_EVENT_WINDOW_COUNT);
        Self { count, latest }
    }
}

impl ActivitySummary {
    /// The summary of two contacts' activity together (a merge).
    pub fn combine(&self, other: &Self) -> Self {
        let mut events = self.events.clone();
        for (name, rollup) in &other.events {
            let combined = events
                .get(name)
                .map_or_else(|| rollup.clone(), |mine| mine.combine(rollup));
            events.insert(name.clone(), combined);
        }
        Self {
            conversation_count: self.conversation_count + other.conversation_count,
            last_conversation_at: self.last_conversation_at.max(other.last_conversation_at),
            first_seen_at: earliest(self.first_seen_at, other.first_seen_at),
            events,
        }
    }

    /// The summary once event `name` happened at `at`.
    pub fn with_event(&self, name: &str, at: DateTime<Utc>) -> Self {
        let mut summary = self.clone();
        let rollup = summary
            .events
            .get(name)
            .cloned()
            .unwrap_or_default()
            .with(at);
        summary.events.insert(name.to_owned(), rollup);
        summary
    }

    /// The summary once a conversation starting at `started_at` is added.
    pub fn with_conversation(&self, started_at: DateTime<Utc>) -> Self {
        Self {
            conversation_count: self.conversation_count + 1,
            last_conversation_at: Some(
                self.last_conversation_at
                    .map_or(started_at, |last| last.max(started_at)),
            ),
            first_seen_at: earliest(self.first_seen_at, Some(started_at)),
            events: self.events.clone(),
        }
    }

    /// This summary with the event rollups of `other` (a recount of conversations keeps them).
    pub fn with_events_of(mut self, other: &Self) -> Self {
        self.events.clone_from(&other.events);
        self
    }

    /// This summary, seen no later than `at` as well.
    pub fn seen_by(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.first_seen_at = earliest(self.first_seen_at, at);
        self
    }
}

/// The earlier of two optional moments (either one when the other is absent).
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn first_seen_only_moves_earlier() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let summary = ActivitySummary::default().seen_by(Some(at(50)));
        assert_eq!(summary.first_seen_at, Some(at(50)));
        let summary = summary.with_conversation(at(70)).seen_by(None);
        assert_eq!(summary.first_seen_at, Some(at(50)));
        assert_eq!(summary.last_conversation_at, Some(at(70)));
        let other = ActivitySummary::default().with_conversation(at(20));
        let merged = summary.combine(&other);
        assert_eq!(merged.first_seen_at, Some(at(20)));
        assert_eq!(merged.conversation_count, 2);
        assert_eq!(merged.last_conversation_at, Some(at(70)));
    }

    #[test]
    fn event_rollups_keep_the_count_and_the_latest_times() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let mut summary = ActivitySummary::default();
        for second in [30, 10, 20] {
            summary = summary.with_event("purchase", at(second));
        }
        let purchase = &summary.events["purchase"];
        assert_eq!(purchase.count, 3);
        assert_eq!(purchase.latest, [at(30), at(20), at(10)]);
        let other = ActivitySummary::default().with_event("purchase", at(25));
        let merged = summary.combine(&other).events["purchase"].clone();
        assert_eq!(merged, EventRollup::of([at(10), at(20), at(25), at(30)]));
        let many = EventRollup::of((0..100).map(at));
        assert_eq!(many.count, 100);
        assert_eq!(many.latest.len(), MAX_EVENT_WINDOW_COUNT);
        assert_eq!(many.latest[0], at(99));
        assert_eq!(earliest(None, None), None);
    }

    #[test]
    fn ids_and_names_are_checked() {
        assert!(ActivityId::parse("conversationId", "conv-42:web").is_ok());
        for bad in ["", "has space", "tab\t", &"x".repeat(129), "é"] {
            assert!(ActivityId::parse("conversationId", bad).is_err(), "{bad:?}");
        }
        assert!(EventName::parse("cart.checkout").is_ok());
        for bad in ["", "Purchase", "1st", "a b", &"a".repeat(65)] {
            assert!(EventName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ActivityId::generate().as_str().starts_with("evt_"));
    }

    #[test]
    fn properties_must_be_a_bounded_object() {
        assert!(event_properties(None).unwrap().is_empty());
        assert_eq!(
            event_properties(Some(json!({ "sku": "A1" }))).unwrap()["sku"],
            "A1"
        );
        assert!(event_properties(Some(json!([1, 2]))).is_err());
        let big = json!({ "blob": "x".repeat(MAX_PROPERTIES_BYTES) });
        assert!(event_properties(Some(big)).is_err());
    }

    #[test]
    fn a_conversation_ends_after_it_starts() {
        let start = "2026-11-01T10:00:00Z".parse().unwrap();
        let input = ConversationInput {
            id: ActivityId::parse("conversationId", "c1").unwrap(),
            channel: None,
            started_at: start,
            ended_at: Some(start - chrono::Duration::seconds(1)),
            summary: None,
            outcome: None,
        };
        assert!(input.clone().validate().is_err());
        let ok = ConversationInput {
            ended_at: Some(start),
            ..input
        }
        .validate()
        .unwrap();
        let first = ok.clone().into_conversation(
            &WorkspaceId::default(),
            ContactId::generate(),
            None,
            start,
        );
        assert!(first.same_as(&ok));
        let later = ok.into_conversation(
            &WorkspaceId::default(),
            first.contact,
            Some(&first),
            start + chrono::Duration::hours(1),
        );
        assert_eq!(later.recorded_at, first.recorded_at);
    }
}
