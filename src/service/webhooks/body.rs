//! Webhook bodies: thin events that name what changed (ids, never contact fields), so that a
//! receiver reads the contact with its own key and field policy.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::domain::{ContactId, MembershipChange, WebhookEvent};

/// The type of the message `testWebhook` sends.
pub const TEST_EVENT: &str = "webhook.test";

/// `segment.membership`: a contact entered or left a saved segment; `cursor` is the entry's
/// feed position (`segmentChanges(after:)` resumes there).
pub fn membership(entry: &MembershipChange, now: DateTime<Utc>) -> (&'static str, String) {
    let event = WebhookEvent::SegmentMembership.as_str();
    let body = json!({
        "type": event,
        "timestamp": timestamp(now),
        "data": {
            "segment": entry.segment.as_str(),
            "contactId": entry.contact.to_string(),
            "kind": entry.kind.as_str(),
            "at": timestamp(entry.at),
            "cause": entry.cause.as_str(),
            "cursor": entry.position,
        }
    });
    (event, body.to_string())
}

/// `contact.changed`: a contact was written (`UPDATED`) or deleted or merged away (`REMOVED`).
pub fn contact_changed(
    contact: ContactId,
    exists: bool,
    now: DateTime<Utc>,
) -> (&'static str, String) {
    let event = WebhookEvent::ContactChanged.as_str();
    let body = json!({
        "type": event,
        "timestamp": timestamp(now),
        "data": {
            "contactId": contact.to_string(),
            "change": if exists { "UPDATED" } else { "REMOVED" },
        }
    });
    (event, body.to_string())
}

/// `contact.erased`: the contact was erased (`eraseContacts`); its id is all the body says.
pub fn contact_erased(contact: ContactId, now: DateTime<Utc>) -> (&'static str, String) {
    let event = WebhookEvent::ContactErased.as_str();
    let body = json!({
        "type": event,
        "timestamp": timestamp(now),
        "data": { "contactId": contact.to_string() }
    });
    (event, body.to_string())
}

/// `webhook.test`: sent on request, to check an endpoint.
pub fn test(webhook: &str, now: DateTime<Utc>) -> String {
    json!({
        "type": TEST_EVENT,
        "timestamp": timestamp(now),
        "data": { "webhookId": webhook },
    })
    .to_string()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
