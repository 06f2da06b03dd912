//! Webhook endpoints of a workspace and the deliveries made to them (Standard Webhooks).

use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;

use super::network::{TargetRules, parse_target_url};
use super::{ContactId, DomainError, Slug, WorkspaceId};

/// Most endpoints one workspace may have.
pub const MAX_WEBHOOKS: usize = 20;

/// When a failed delivery is tried again, after each failed attempt (about 28 hours in all,
/// as Standard Webhooks senders do); after the last one it is given up as FAILED.
pub const RETRY_SCHEDULE: [TimeDelta; 7] = [
    TimeDelta::seconds(5),
    TimeDelta::minutes(5),
    TimeDelta::minutes(30),
    TimeDelta::hours(2),
    TimeDelta::hours(5),
    TimeDelta::hours(10),
    TimeDelta::hours(10),
];

/// Longest wait an endpoint may ask for with `Retry-After`; longer asks are clamped.
pub const MAX_RETRY_AFTER: TimeDelta = TimeDelta::hours(24);

/// A webhook endpoint's opaque id (`wh_` and a ULID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(String);

impl WebhookId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(format!("wh_{}", ulid::Ulid::new()))
    }

    /// Parses an id given by a client.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        let valid = raw
            .strip_prefix("wh_")
            .is_some_and(|rest| ulid::Ulid::from_string(rest).is_ok());
        if !valid {
            return Err(DomainError::invalid(
                "id",
                format!("`{raw}` is not a webhook id (they look like `wh_01J…`)"),
            ));
        }
        Ok(Self(raw.to_owned()))
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

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an endpoint is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEvent {
    /// A contact entered or left a saved segment (`segment.membership`).
    SegmentMembership,
    /// A contact was written, merged or deleted (`contact.changed`).
    ContactChanged,
    /// A contact was erased by `eraseContacts` (`contact.erased`): downstream systems erase
    /// their copy too.
    ContactErased,
}

impl WebhookEvent {
    /// Every event.
    pub const ALL: [Self; 3] = [
        Self::SegmentMembership,
        Self::ContactChanged,
        Self::ContactErased,
    ];

    /// The stored name (also the payload's `type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SegmentMembership => "segment.membership",
            Self::ContactChanged => "contact.changed",
            Self::ContactErased => "contact.erased",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == raw)
    }
}

/// A workspace's webhook endpoint (its signing secret is kept apart, in the store only).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Opaque id.
    pub id: WebhookId,
    /// The workspace whose events it receives.
    pub workspace: WorkspaceId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// What it is told about.
    pub events: Vec<WebhookEvent>,
    /// The saved segments whose membership it is told about (empty: all).
    pub segments: Vec<Slug>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When deliveries stopped (the endpoint answered 410 Gone), if they did.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why deliveries stopped.
    pub disabled_reason: Option<String>,
}

impl Webhook {
    /// Whether a membership change of `segment` is delivered to it.
    pub fn wants_membership(&self, segment: &Slug) -> bool {
        self.disabled_at.is_none()
            && self.events.contains(&WebhookEvent::SegmentMembership)
            && (self.segments.is_empty() || self.segments.contains(segment))
    }

    /// Whether erasures are delivered to it.
    pub fn wants_erasures(&self) -> bool {
        self.disabled_at.is_none() && self.events.contains(&WebhookEvent::ContactErased)
    }

    /// Whether contact changes are delivered to it.
    pub fn wants_contact_changes(&self) -> bool {
        self.disabled_at.is_none() && self.events.contains(&WebhookEvent::ContactChanged)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its first attempt or its next retry.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: retries exhausted, or the endpoint was disabled or deleted.
    Failed,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == raw)
    }
}

/// One message to one endpoint, with its attempts so far.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    /// The message id (`msg_` and a ULID; sent as `webhook-id`, the same on every attempt).
    pub id: String,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The endpoint.
    pub webhook: WebhookId,
    /// The contact it is about (deliveries of one contact go out in order).
    pub contact: Option<ContactId>,
    /// The event type (`segment.membership`, `contact.changed`, `webhook.test`).
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When it is tried next (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, when the endpoint answered.
    pub last_status: Option<u16>,
    /// What went wrong in the last attempt.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl WebhookDelivery {
    /// A new pending delivery with message id `id`, due now.
    pub fn pending(
        id: String,
        webhook: &Webhook,
        contact: Option<ContactId>,
        event_type: &str,
        payload: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            workspace: webhook.workspace.clone(),
            webhook: webhook.id.clone(),
            contact,
            event_type: event_type.to_owned(),
            payload,
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: now,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
            delivered_at: None,
        }
    }

    /// When to try again after `attempts` failed attempts (`None`: give up), waiting at
    /// least `retry_after` when the endpoint asked for it.
    pub fn next_retry(
        attempts: u32,
        now: DateTime<Utc>,
        retry_after: Option<TimeDelta>,
    ) -> Option<DateTime<Utc>> {
        let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
        let wait = *RETRY_SCHEDULE.get(index)?;
        let wait = retry_after.map_or(wait, |asked| asked.clamp(wait, MAX_RETRY_AFTER.max(wait)));
        Some(now + wait)
    }
}

/// A fresh message id: `msg_` and a ULID, so ids sort in the order they were made.
pub fn message_id() -> String {
    format!("msg_{}", ulid::Ulid::new())
}

/// Checks an endpoint URL: absolute http(s), a host, no credentials, and (unless
/// `allow_private`) no `localhost` and no literal address that is not globally reachable
/// (names are checked again when they are resolved, at each attempt).
pub fn parse_webhook_url(raw: &str, allow_private: bool) -> Result<url::Url, DomainError> {
    let rules = TargetRules {
        allow_private,
        require_https: false,
    };
    parse_target_url(raw, "url", rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_give_up_and_honour_retry_after() {
        let now = DateTime::UNIX_EPOCH;
        assert_eq!(DeliveryDelay::of(1, now, None), Some(TimeDelta::seconds(5)));
        assert_eq!(DeliveryDelay::of(2, now, None), Some(TimeDelta::minutes(5)));
        assert_eq!(DeliveryDelay::of(7, now, None), Some(TimeDelta::hours(10)));
        assert_eq!(DeliveryDelay::of(8, now, None), None);
        let asked = Some(TimeDelta::seconds(90));
        assert_eq!(
            DeliveryDelay::of(1, now, asked),
            Some(TimeDelta::seconds(90))
        );
        let total: TimeDelta = RETRY_SCHEDULE.iter().copied().sum();
        assert!(total >= TimeDelta::hours(24));
    }

    struct DeliveryDelay;

    impl DeliveryDelay {
        fn of(attempts: u32, now: DateTime<Utc>, asked: Option<TimeDelta>) -> Option<TimeDelta> {
            WebhookDelivery::next_retry(attempts, now, asked).map(|at| at - now)
        }
    }
}
