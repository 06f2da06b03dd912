//! The webhook outbox's two lanes, read without a secondary index.
//!
//! Every delivery is one record of the delivery log (`webhook_delivery:[workspace, webhook,
//! message]`), which is also the outbox:
//! - **The fresh lane** is the log itself after an endpoint's cursor
//!   (`webhook_cursor:[workspace, webhook]`): deliveries never looked at, in message order. A
//!   round reads it from the cursor with a key-range scan and, once it has saved what it did,
//!   moves the cursor past what it read. Message ids are ULIDs from the membership engine's
//!   monotonic generator, committed one step after another, so nothing is enqueued behind the
//!   cursor.
//! - **The retry lane** (`webhook_retry:[workspace, webhook, message]`) lists the pending
//!   deliveries the cursor has passed: attempted and waiting for their next attempt, or waiting
//!   behind such a one of their contact. It holds only what is failing, so it stays small.
//!
//! Why not an index on the status: every delivery changes its status once, so such an index
//! gains one entry and loses one per delivery. RocksDB keeps the lost entries as tombstones
//! until a compaction, and a scan for the pending ones walked all of them: under 1,000
//! deliveries a second that scan took a quarter of the service's CPU, growing through the run.
//! A range scan from the cursor starts past them.

use std::collections::HashSet;

use surrealdb::types::{RecordId, SurrealValue};

use super::delivery_keys::{
    DELIVERY_TABLE, RETRY_TABLE, cursor_key, delivery_key, endpoint_range, message_of,
};
use super::webhooks::DeliveryRecord;
use super::{Store, StoreError};
use crate::domain::{DeliveryStatus, WebhookDelivery, WebhookId, WorkspaceId};

/// `webhook_retry:[workspace, webhook, message]`, the same key as the delivery's.
fn retry_key(workspace: &WorkspaceId, webhook: &WebhookId, message: String) -> RecordId {
    RecordId::new(RETRY_TABLE, delivery_key(workspace, webhook, message))
}

#[derive(Debug, SurrealValue)]
struct RetryRecord {
    id: RecordId,
    delivery: RecordId,
}

#[derive(Debug, SurrealValue)]
struct CursorRecord {
    after: String,
}

/// What a dispatcher round read of one endpoint's outbox.
#[derive(Debug, Default)]
pub struct OutboxRead {
    /// The retry lane's pending deliveries, in message order.
    pub retrying: Vec<WebhookDelivery>,
    /// Retry-lane entries whose delivery is no longer pending (or gone): to drop.
    pub settled_retries: Vec<String>,
    /// Whether the retry lane holds more than the limit. The fresh lane is then not read: a
    /// fresh delivery must not overtake an unread retry of its contact.
    pub retry_lane_full: bool,
    /// Pending deliveries of the fresh lane, in message order.
    pub fresh: Vec<WebhookDelivery>,
    /// Where the fresh lane starts once this round is saved (`None`: where it started).
    pub read_through: Option<String>,
    /// Whether the fresh lane may hold more than was read.
    pub more: bool,
}

/// What a round did, saved in one transaction by [`Store::save_round`].
#[derive(Debug, Default)]
pub struct RoundOutcome {
    /// Deliveries attempted, as they stand after their attempt.
    pub attempted: Vec<WebhookDelivery>,
    /// Messages of the fresh lane still pending: they join the retry lane.
    pub to_retry: Vec<String>,
    /// Messages that leave the retry lane (delivered, given up, or no longer pending).
    pub from_retry: Vec<String>,
    /// The fresh lane's new cursor.
    pub read_through: Option<String>,
}

impl RoundOutcome {
    /// Whether saving it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.attempted.is_empty()
            && self.to_retry.is_empty()
            && self.from_retry.is_empty()
            && self.read_through.is_none()
    }
}

impl Store {
    /// Reads one round of the endpoint's outbox: up to `limit` entries of the retry lane and,
    /// when that is all of it, up to `limit` records of the fresh lane.
    pub async fn read_outbox(
        &self,
        workspace: &WorkspaceId,
        webhook: &WebhookId,
        limit: usize,
    ) -> Result<OutboxRead, StoreError> {
        self.read_outbox_from(workspace, webhook, limit, None).await
    }

    /// [`Self::read_outbox`], reading the fresh lane after `resume` instead of the saved
    /// cursor when given (a round whose save is still under way read through it).
    pub async fn read_outbox_from(
        &self,
        workspace: &WorkspaceId,
        webhook: &WebhookId,
        limit: usize,
        resume: Option<&str>,
    ) -> Result<OutboxRead, StoreError> {
        let limit_value = super::limit_value(limit);
        let mut response = self
            .db
            .query(
                "SELECT after FROM $cursor; \
                 LET $entries = (SELECT id, delivery FROM $retry_range LIMIT $limit); \
                 RETURN $entries; \
                 SELECT * FROM $entries.delivery;",
            )
            .bind(("cursor", cursor_key(workspace, webhook)))
            .bind((
                "retry_range",
                endpoint_range(RETRY_TABLE, workspace, webhook, None),
            ))
            .bind(("limit", limit_value))
            .await
            .map_err(StoreError::from_surreal)?;
        let cursor: Vec<CursorRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        let entries: Vec<RetryRecord> = response.take(2).map_err(StoreError::from_surreal)?;
        let records: Vec<DeliveryRecord> = response.take(3).map_err(StoreError::from_surreal)?;
        let mut retrying: Vec<WebhookDelivery> = records
            .into_iter()
            .map(DeliveryRecord::into_delivery)
            .collect::<Result<_, _>>()?;
        retrying.retain(|delivery| delivery.status == DeliveryStatus::Pending);
        retrying.sort_by(|a, b| a.id.cmp(&b.id));
        let pending: HashSet<&str> = retrying.iter().map(|d| d.id.as_str()).collect();
        let settled_retries = entries
            .iter()
            .filter_map(|entry| message_of(&entry.id))
            .filter(|message| !pending.contains(message.as_str()))
            .collect();
        let mut read = OutboxRead {
            retrying,
            retry_lane_full: entries.len() >= limit,
            settled_retries,
            ..OutboxRead::default()
        };
        if read.retry_lane_full {
            return Ok(read);
        }
        let after = match resume {
            Some(resume) => Some(resume.to_owned()),
            None => cursor.into_iter().next().map(|cursor| cursor.after),
        };
        let mut response = self
            .db
            .query("SELECT * FROM $range LIMIT $limit")
            .bind((
                "range",
                endpoint_range(DELIVERY_TABLE, workspace, webhook, after.as_deref()),
            ))
            .bind(("limit", limit_value))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<DeliveryRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        read.more = records.len() >= limit;
        let records: Vec<WebhookDelivery> = records
            .into_iter()
            .map(DeliveryRecord::into_delivery)
            .collect::<Result<_, _>>()?;
        read.read_through = advance(&records, read.more);
        read.fresh = records
            .into_iter()
            .filter(|delivery| delivery.status == DeliveryStatus::Pending)
            .collect();
        Ok(read)
    }

    /// Saves what a round of the endpoint's outbox did, in one transaction: the attempts into
    /// the log, the retry lane's changes and the fresh lane's cursor.
    pub async fn save_round(
        &self,
        workspace: &WorkspaceId,
        webhook: &WebhookId,
        outcome: RoundOutcome,
    ) -> Result<(), StoreError> {
        if outcome.is_empty() {
            return Ok(());
        }
        let attempted: Vec<DeliveryRecord> =
            outcome.attempted.iter().map(DeliveryRecord::of).collect();
        let joining: Vec<RetryRecord> = outcome
            .to_retry
            .into_iter()
            .map(|message| RetryRecord {
                id: retry_key(workspace, webhook, message.clone()),
                delivery: RecordId::new(DELIVERY_TABLE, delivery_key(workspace, webhook, message)),
            })
            .collect();
        let leaving: Vec<RecordId> = outcome
            .from_retry
            .into_iter()
            .map(|message| retry_key(workspace, webhook, message))
            .collect();
        let cursor = if outcome.read_through.is_some() {
            "UPSERT $cursor SET after = $after RETURN NONE;"
        } else {
            ""
        };
        self.db
            .query(format!(
                "BEGIN; \
                 FOR $record IN $attempted {{ UPDATE $record.id CONTENT $record RETURN NONE; }}; \
                 DELETE $leaving RETURN NONE; \
                 INSERT IGNORE INTO webhook_retry $joining RETURN NONE; \
                 {cursor} \
                 COMMIT;"
            ))
            .bind(("attempted", attempted))
            .bind(("leaving", leaving))
            .bind(("joining", joining))
            .bind(("cursor", cursor_key(workspace, webhook)))
            .bind(("after", outcome.read_through))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}

/// The fresh lane's next cursor after reading `records` (in message order): the last pending
/// one. Records after it are left to be read again: they can only be test deliveries, made
/// with their own id generator, which an engine id of the same millisecond may sort below.
/// A full page with nothing pending (an old log after an upgrade) moves past all of it.
fn advance(records: &[WebhookDelivery], full: bool) -> Option<String> {
    records
        .iter()
        .rev()
        .find(|delivery| delivery.status == DeliveryStatus::Pending)
        .or_else(|| records.last().filter(|_| full))
        .map(|delivery| delivery.id.clone())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::config::{DatabaseUrl, StoreSettings};
    use crate::domain::{ContactId, Webhook, WebhookEvent};
    use crate::store::FedState;

    async fn store_with_hook() -> (Store, Webhook) {
        let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
            .await
            .unwrap();
        let hook = Webhook {
            id: WebhookId::generate(),
            workspace: WorkspaceId::from_trusted(WorkspaceId::DEFAULT.to_owned()),
            url: "https://example.com/hooks".to_owned(),
            events: vec![WebhookEvent::ContactChanged],
            segments: Vec::new(),
            created_at: Utc::now(),
            disabled_at: None,
            disabled_reason: None,
        };
        store.create_webhook(&hook, "whsec_test").await.unwrap();
        (store, hook)
    }

    /// Enqueues one delivery per contact as the engine does, with increasing message ids.
    async fn enqueue(store: &Store, hook: &Webhook, contacts: &[ContactId]) -> Vec<String> {
        let now = Utc::now();
        let deliveries: Vec<WebhookDelivery> = contacts
            .iter()
            .map(|contact| {
                let id = format!("msg_{}", ulid::Ulid::new());
                std::thread::sleep(std::time::Duration::from_millis(2));
                WebhookDelivery::pending(
                    id,
                    hook,
                    Some(*contact),
                    "contact.changed",
                    "{}".to_owned(),
                    now,
                )
            })
            .collect();
        store
            .record_membership_changes(&[], &deliveries, &FedState::default(), &[])
            .await
            .unwrap();
        deliveries.into_iter().map(|delivery| delivery.id).collect()
    }

    fn ids(deliveries: &[WebhookDelivery]) -> Vec<String> {
        deliveries
            .iter()
            .map(|delivery| delivery.id.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_read_may_resume_after_a_round_whose_save_is_under_way() {
        let (store, hook) = store_with_hook().await;
        let contacts: Vec<ContactId> = (0..3).map(|_| ContactId::generate()).collect();
        let sent = enqueue(&store, &hook, &contacts).await;
        // Nothing saved yet: the saved cursor is at the start, the round read through the first.
        let from_saved = store
            .read_outbox_from(&hook.workspace, &hook.id, 10, None)
            .await
            .unwrap();
        assert_eq!(ids(&from_saved.fresh), sent);
        let resumed = store
            .read_outbox_from(&hook.workspace, &hook.id, 10, Some(&sent[0]))
            .await
            .unwrap();
        assert_eq!(ids(&resumed.fresh), sent[1..]);
        assert_eq!(resumed.read_through.as_deref(), Some(sent[2].as_str()));
    }

    #[tokio::test]
    async fn the_fresh_lane_resumes_after_its_cursor_and_the_retry_lane_keeps_what_waits() {
        let (store, hook) = store_with_hook().await;
        let (ada, bob) = (ContactId::generate(), ContactId::generate());
        let first = enqueue(&store, &hook, &[ada, bob]).await;

        let read = store
            .read_outbox(&hook.workspace, &hook.id, 10)
            .await
            .unwrap();
        assert_eq!(ids(&read.fresh), first);
        assert!(read.retrying.is_empty() && !read.more && !read.retry_lane_full);
        assert_eq!(read.read_through.as_deref(), Some(first[1].as_str()));

        // Ada's was refused and waits for its retry; bob's was delivered.
        let mut refused = read.fresh[0].clone();
        refused.attempts = 1;
        refused.next_attempt_at = Some(Utc::now() + TimeDelta::seconds(5));
        let mut delivered = read.fresh[1].clone();
        delivered.attempts = 1;
        delivered.status = DeliveryStatus::Delivered;
        let outcome = RoundOutcome {
            attempted: vec![refused, delivered],
            to_retry: vec![first[0].clone()],
            from_retry: Vec::new(),
            read_through: read.read_through,
        };
        store
            .save_round(&hook.workspace, &hook.id, outcome)
            .await
            .unwrap();

        let second = enqueue(&store, &hook, &[ada]).await;
        let read = store
            .read_outbox(&hook.workspace, &hook.id, 10)
            .await
            .unwrap();
        assert_eq!(ids(&read.retrying), [first[0].clone()], "ada's refused one");
        assert_eq!(read.retrying[0].attempts, 1);
        assert_eq!(ids(&read.fresh), second, "only what came after the cursor");

        // Once ada's first is delivered elsewhere (no longer pending), its retry entry is
        // reported settled.
        let mut done = read.retrying[0].clone();
        done.status = DeliveryStatus::Delivered;
        let outcome = RoundOutcome {
            attempted: vec![done],
            ..RoundOutcome::default()
        };
        store
            .save_round(&hook.workspace, &hook.id, outcome)
            .await
            .unwrap();
        let read = store
            .read_outbox(&hook.workspace, &hook.id, 10)
            .await
            .unwrap();
        assert!(read.retrying.is_empty());
        assert_eq!(read.settled_retries, [first[0].clone()]);
    }

    #[tokio::test]
    async fn a_full_retry_lane_holds_the_fresh_lane_back() {
        let (store, hook) = store_with_hook().await;
        let contacts: Vec<ContactId> = (0..3).map(|_| ContactId::generate()).collect();
        let waiting = enqueue(&store, &hook, &contacts).await;
        let read = store
            .read_outbox(&hook.workspace, &hook.id, 10)
            .await
            .unwrap();
        let outcome = RoundOutcome {
            to_retry: waiting.clone(),
            read_through: read.read_through,
            ..RoundOutcome::default()
        };
        store
            .save_round(&hook.workspace, &hook.id, outcome)
            .await
            .unwrap();
        enqueue(&store, &hook, &[contacts[0]]).await;

        let read = store
            .read_outbox(&hook.workspace, &hook.id, 2)
            .await
            .unwrap();
        assert!(read.retry_lane_full);
        assert_eq!(ids(&read.retrying), waiting[..2]);
        assert!(
            read.fresh.is_empty(),
            "a fresh delivery must not overtake the unread retry"
        );
        assert_eq!(read.read_through, None);
    }

    #[tokio::test]
    async fn a_deleted_endpoints_deliveries_and_retries_are_purged_in_chunks() {
        let (store, hook) = store_with_hook().await;
        let contacts: Vec<ContactId> = (0..2_100).map(|_| ContactId::generate()).collect();
        let now = Utc::now();
        let deliveries: Vec<WebhookDelivery> = contacts
            .iter()
            .enumerate()
            .map(|(n, contact)| {
                let id = format!("msg_{n:05}");
                let body = "{}".to_owned();
                WebhookDelivery::pending(id, &hook, Some(*contact), "contact.changed", body, now)
            })
            .collect();
        store
            .record_membership_changes(&[], &deliveries, &FedState::default(), &[])
            .await
            .unwrap();
        let outcome = RoundOutcome {
            to_retry: vec!["msg_00000".to_owned()],
            read_through: Some("msg_00000".to_owned()),
            ..RoundOutcome::default()
        };
        store
            .save_round(&hook.workspace, &hook.id, outcome)
            .await
            .unwrap();

        assert!(
            store
                .delete_webhook(&hook.workspace, &hook.id)
                .await
                .unwrap()
        );
        let purged = store
            .purge_webhook_deliveries(&hook.workspace, &hook.id)
            .await
            .unwrap();
        assert_eq!(purged, 2_100);
        let left = store
            .webhook_deliveries(&hook.workspace, &hook.id, None, 10)
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let read = store
            .read_outbox(&hook.workspace, &hook.id, 10)
            .await
            .unwrap();
        assert!(
            read.retrying.is_empty() && read.settled_retries.is_empty() && read.fresh.is_empty()
        );
        assert_eq!(read.read_through, None, "the cursor went with the endpoint");
    }

    #[test]
    fn the_cursor_stops_at_the_last_pending_record_unless_a_full_page_holds_none() {
        let hook = Webhook {
            id: WebhookId::generate(),
            workspace: WorkspaceId::from_trusted("acme".to_owned()),
            url: String::new(),
            events: Vec::new(),
            segments: Vec::new(),
            created_at: Utc::now(),
            disabled_at: None,
            disabled_reason: None,
        };
        let record = |id: &str, status| {
            let mut delivery = WebhookDelivery::pending(
                id.to_owned(),
                &hook,
                None,
                "t",
                String::new(),
                Utc::now(),
            );
            delivery.status = status;
            delivery
        };
        let page = [
            record("msg_1", DeliveryStatus::Delivered),
            record("msg_2", DeliveryStatus::Pending),
            record("msg_3", DeliveryStatus::Failed),
        ];
        assert_eq!(advance(&page, false).as_deref(), Some("msg_2"));
        assert_eq!(advance(&page, true).as_deref(), Some("msg_2"));
        assert_eq!(advance(&page[2..], false), None);
        assert_eq!(advance(&page[2..], true).as_deref(), Some("msg_3"));
    }
}
