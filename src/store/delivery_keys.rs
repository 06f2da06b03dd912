//! The keys of a webhook endpoint's delivery records, shared by the delivery log
//! (`webhooks.rs`) and the outbox that feeds it (`outbox.rs`): deliveries, retries and cursors
//! are keyed `[workspace, webhook, message]` so that one endpoint's records are one range.

use std::ops::Bound;

use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange};

use super::records::compound_key;
use crate::domain::{WebhookId, WorkspaceId};

/// The delivery log.
pub(super) const DELIVERY_TABLE: &str = "webhook_delivery";
/// Deliveries waiting for their next attempt.
pub(super) const RETRY_TABLE: &str = "webhook_retry";
/// How far each endpoint's outbox was read.
pub(super) const CURSOR_TABLE: &str = "webhook_cursor";
/// Sorts after every message id.
pub(super) const AFTER_ALL_MESSAGES: &str = "~";

/// The key `[workspace, webhook, message]` of a delivery (and of its retry entry).
pub(super) fn delivery_key(
    workspace: &WorkspaceId,
    webhook: &WebhookId,
    message: String,
) -> RecordIdKey {
    RecordIdKey::Array(Array::from(vec![
        workspace.as_str().to_owned(),
        webhook.as_str().to_owned(),
        message,
    ]))
}

/// The message id of a delivery's record id (a retry entry's too: it has the same key).
pub(super) fn message_of(id: &RecordId) -> Option<String> {
    match &id.key {
        RecordIdKey::Array(parts) => match parts.get(2) {
            Some(surrealdb::types::Value::String(message)) => Some(message.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `webhook_cursor:[workspace, webhook]`.
pub(super) fn cursor_key(workspace: &WorkspaceId, webhook: &WebhookId) -> RecordId {
    compound_key(CURSOR_TABLE, workspace, webhook.as_str().to_owned())
}

/// Every key of `table` of one endpoint, after message `after` when given.
pub(super) fn endpoint_range(
    table: &str,
    workspace: &WorkspaceId,
    webhook: &WebhookId,
    after: Option<&str>,
) -> RecordId {
    let key = |message: &str| delivery_key(workspace, webhook, message.to_owned());
    let start = match after {
        Some(message) => Bound::Excluded(key(message)),
        None => Bound::Included(key("")),
    };
    RecordId::new(
        table,
        RecordIdKey::Range(Box::new(RecordIdKeyRange {
            start,
            end: Bound::Excluded(key(AFTER_ALL_MESSAGES)),
        })),
    )
}
