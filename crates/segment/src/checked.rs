//! The checked tree and what it is made of: field types, built-in and resolved fields, points
//! in time and the primitive tests both back ends implement.

use std::ops::Bound;

use chrono::{DateTime, Utc};

use crate::ast::Offset;

/// Types of fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Text.
    String,
    /// A finite number.
    Number,
    /// `true` or `false`.
    Bool,
    /// An instant.
    Datetime,
    /// A set of strings.
    StringList,
}

impl FieldType {
    /// "a number", "text", … for messages.
    pub fn described(self) -> &'static str {
        match self {
            Self::String => "text",
            Self::Number => "a number",
            Self::Bool => "a boolean",
            Self::Datetime => "a datetime",
            Self::StringList => "a list of strings",
        }
    }

    pub(crate) fn operators(self) -> &'static str {
        match self {
            Self::String => "=, !=, in, not in, contains, starts_with, ends_with, exists",
            Self::Number => "=, !=, <, <=, >, >=, between, in, not in, exists",
            Self::Bool => "=, !=, exists",
            Self::Datetime => "=, !=, <, <=, >, >=, between, before, after, within, exists",
            Self::StringList => "has, has any, has all, exists",
        }
    }
}

/// Fields every contact has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinField {
    /// `external_id`
    ExternalId,
    /// `email`
    Email,
    /// `name`
    Name,
    /// `phone`
    Phone,
    /// `company`
    Company,
    /// `account_ref`
    AccountRef,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `last_seen_at`
    LastSeenAt,
    /// `first_seen_at`: the earliest visit or conversation recorded for the contact.
    FirstSeenAt,
    /// `conversation_count`: how many conversations the contact had (0 when none).
    ConversationCount,
    /// `last_conversation_at`: when its latest conversation began.
    LastConversationAt,
}

impl BuiltinField {
    /// Every built-in field.
    pub const ALL: [BuiltinField; 12] = [
        Self::ExternalId,
        Self::Email,
        Self::Name,
        Self::Phone,
        Self::Company,
        Self::AccountRef,
        Self::CreatedAt,
        Self::UpdatedAt,
        Self::LastSeenAt,
        Self::FirstSeenAt,
        Self::ConversationCount,
        Self::LastConversationAt,
    ];

    /// The name used in segments.
    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::Name => "name",
            Self::Phone => "phone",
            Self::Company => "company",
            Self::AccountRef => "account_ref",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::LastSeenAt => "last_seen_at",
            Self::FirstSeenAt => "first_seen_at",
            Self::ConversationCount => "conversation_count",
            Self::LastConversationAt => "last_conversation_at",
        }
    }

    /// Its type.
    pub fn field_type(self) -> FieldType {
        match self {
            Self::CreatedAt
            | Self::UpdatedAt
            | Self::LastSeenAt
            | Self::FirstSeenAt
            | Self::LastConversationAt => FieldType::Datetime,
            Self::ConversationCount => FieldType::Number,
            _ => FieldType::String,
        }
    }

    /// The built-in named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.name() == name)
    }
}

/// A resolved field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// A built-in field.
    Builtin(BuiltinField),
    /// A declared custom attribute.
    Attribute(String),
    /// How many times the named event happened (no value when never).
    EventCount(String),
    /// When the `n`-th latest occurrence of the named event happened (1: the latest).
    EventAt(String, u32),
    /// The contact's consent to the named purpose: `true` granted, `false` withdrawn, no
    /// value when never stated.
    Consent(String),
}

impl Field {
    /// How the field is written in canonical text.
    pub fn display_name(&self) -> String {
        match self {
            Self::Builtin(field) => field.name().to_owned(),
            Self::Attribute(name)
                if crate::ast::is_bare_name(name) && BuiltinField::from_name(name).is_none() =>
            {
                name.clone()
            }
            Self::Attribute(name) => format!(
                "attributes.\"{}\"",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            ),
            Self::EventCount(name) => format!("event \"{name}\" count"),
            Self::EventAt(name, n) => format!("event \"{name}\" #{n}"),
            Self::Consent(purpose) => format!("consent \"{purpose}\""),
        }
    }
}

/// Most occurrences a windowed event count may ask for (`count >= 20 within 30d`): the latest
/// this many of each event are kept per contact.
pub const MAX_EVENT_WINDOW_COUNT: u32 = 20;
/// Longest event name.
pub const MAX_EVENT_NAME_BYTES: usize = 64;

/// Whether `name` is an event name: 1 to [`MAX_EVENT_NAME_BYTES`] of `a-z 0-9 _ . : -`,
/// starting with a letter (the rule events are recorded under, so a condition can match).
pub fn is_event_name(name: &str) -> bool {
    name.len() <= MAX_EVENT_NAME_BYTES
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-')
        })
}

/// Longest consent purpose name.
pub const MAX_PURPOSE_NAME_BYTES: usize = 64;

/// Whether `name` is a consent purpose's name: 1 to [`MAX_PURPOSE_NAME_BYTES`] of `a-z 0-9 _`,
/// starting with a letter (`marketing_email`, `sms`).
pub fn is_purpose_name(name: &str) -> bool {
    name.len() <= MAX_PURPOSE_NAME_BYTES
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A point in time: fixed, or relative to the moment of evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimePoint {
    /// A fixed instant.
    At(DateTime<Utc>),
    /// `now` shifted by an offset, resolved when the segment is evaluated.
    Now(Offset),
}

impl TimePoint {
    /// The instant, given the moment of evaluation.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At(at) => at,
            Self::Now(Offset { duration: None, .. }) => now,
            Self::Now(Offset {
                negative,
                duration: Some(duration),
            }) => {
                if negative {
                    now - duration.to_chrono()
                } else {
                    now + duration.to_chrono()
                }
            }
        }
    }
}

/// A primitive test on one field's value. A missing value fails every test but `Exists`' negation.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The field has a value.
    Exists,
    /// Text equals one of these exactly.
    TextIn(Vec<String>),
    /// Text contains this (already lower-cased), ignoring case.
    TextContains(String),
    /// Text starts with this (already lower-cased), ignoring case.
    TextStartsWith(String),
    /// Text ends with this (already lower-cased), ignoring case.
    TextEndsWith(String),
    /// Number equals one of these.
    NumberIn(Vec<f64>),
    /// Number within bounds.
    NumberRange(Bound<f64>, Bound<f64>),
    /// Boolean equals.
    BoolIs(bool),
    /// Instant within bounds.
    TimeRange(Bound<TimePoint>, Bound<TimePoint>),
    /// The list holds at least one of these.
    ListHasAny(Vec<String>),
    /// The list holds all of these.
    ListHasAll(Vec<String>),
}

/// A checked segment expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Checked {
    /// All hold.
    And(Vec<Checked>),
    /// Any holds.
    Or(Vec<Checked>),
    /// Does not hold.
    Not(Box<Checked>),
    /// A test on a field.
    Test(Field, Test),
    /// Member of the saved segment with this slug.
    InSegment(String),
}

impl Checked {
    /// Slugs of the saved segments this expression refers to directly.
    pub fn references(&self) -> Vec<&str> {
        let mut slugs = Vec::new();
        self.collect_references(&mut slugs);
        slugs
    }

    fn collect_references<'a>(&'a self, slugs: &mut Vec<&'a str>) {
        match self {
            Self::And(operands) | Self::Or(operands) => operands
                .iter()
                .for_each(|operand| operand.collect_references(slugs)),
            Self::Not(operand) => operand.collect_references(slugs),
            Self::InSegment(slug) => slugs.push(slug),
            Self::Test(..) => {}
        }
    }
}
