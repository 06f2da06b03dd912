//! A webhook endpoint as the API shows it (never with its secret).

use async_graphql::{ComplexObject, Enum, ID, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{Webhook, WebhookEvent};

/// What an endpoint is told about.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "WebhookEventType")]
pub enum EventType {
    /// `segment.membership`: a contact entered or left a saved segment.
    SegmentMembership,
    /// `contact.changed`: a contact was written, merged or deleted.
    ContactChanged,
    /// `contact.erased`: a contact was erased by `eraseContacts`.
    ContactErased,
}

impl From<EventType> for WebhookEvent {
    fn from(event: EventType) -> Self {
        match event {
            EventType::SegmentMembership => Self::SegmentMembership,
            EventType::ContactChanged => Self::ContactChanged,
            EventType::ContactErased => Self::ContactErased,
        }
    }
}

impl From<WebhookEvent> for EventType {
    fn from(event: WebhookEvent) -> Self {
        match event {
            WebhookEvent::SegmentMembership => Self::SegmentMembership,
            WebhookEvent::ContactChanged => Self::ContactChanged,
            WebhookEvent::ContactErased => Self::ContactErased,
        }
    }
}

/// A webhook endpoint (never with its secret).
#[derive(SimpleObject)]
#[graphql(name = "Webhook", complex)]
pub struct WebhookView {
    #[graphql(skip)]
    id: ID,
    /// Where deliveries are POSTed.
    url: String,
    /// What it is told about.
    events: Vec<EventType>,
    /// Saved segments whose membership it is told about (empty: all).
    segments: Vec<String>,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When deliveries stopped (the endpoint answered 410 Gone), if they did.
    disabled_at: Option<DateTime<Utc>>,
    /// Why deliveries stopped.
    disabled_reason: Option<String>,
}

/// A webhook endpoint (never with its secret).
#[ComplexObject]
impl WebhookView {
    /// Opaque id (`wh_…`).
    pub async fn id(&self) -> ID {
        self.id.clone()
    }
}

impl From<Webhook> for WebhookView {
    fn from(hook: Webhook) -> Self {
        Self {
            id: ID(hook.id.to_string()),
            url: hook.url,
            events: hook.events.into_iter().map(EventType::from).collect(),
            segments: hook
                .segments
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            created_at: hook.created_at,
            disabled_at: hook.disabled_at,
            disabled_reason: hook.disabled_reason,
        }
    }
}
