//! Webhook endpoints (`webhook:[workspace, id]`, catalogue records, the signing secret sealed
//! when the store has an encryption key) and their deliveries
//! (`webhook_delivery:[workspace, webhook, message id]`): the delivery log, which is also the
//! durable outbox (its lanes: `outbox`). Deliveries are enqueued in the transaction that
//! records the feed entries they are about (see [`Store::record_membership_changes`]).

use chrono::{DateTime, Utc};
use surrealdb::types::{RecordId, RecordIdKey, RecordIdKeyRange, SurrealValue};

use super::catalog_versions::CatalogWrite;
use super::delivery_keys::{
    AFTER_ALL_MESSAGES, DELIVERY_TABLE, RETRY_TABLE, cursor_key, delivery_key, endpoint_range,
    message_of,
};
use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::{
    ContactId, DeliveryStatus, Slug, Webhook, WebhookDelivery, WebhookEvent, WebhookId, WorkspaceId,
};

pub(super) const WEBHOOK_TABLE: &str = "webhook";
/// Deliveries deleted per transaction when a deleted endpoint's log is purged.
const PURGE_CHUNK: i64 = 1_000;

fn webhook_key(workspace: &WorkspaceId, id: &WebhookId) -> RecordId {
    compound_key(WEBHOOK_TABLE, workspace, id.as_str().to_owned())
}

/// Where a secret belongs, for the sealer's associated data.
fn secret_place(id: &WebhookId) -> String {
    format!("webhook/{id}")
}

#[derive(Debug, SurrealValue)]
struct WebhookRecord {
    id: RecordId,
    webhook_id: String,
    workspace: String,
    url: String,
    events: Vec<String>,
    segments: Vec<String>,
    secret: String,
    sealed_secret: bool,
    created_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
}

impl WebhookRecord {
    fn into_webhook(self) -> Result<Webhook, StoreError> {
        let events = self
            .events
            .iter()
            .map(|event| {
                WebhookEvent::parse(event)
                    .ok_or_else(|| StoreError::Corrupt(format!("webhook event `{event}`")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Webhook {
            id: WebhookId::from_trusted(self.webhook_id),
            workspace: WorkspaceId::from_trusted(self.workspace),
            url: self.url,
            events,
            segments: self.segments.into_iter().map(Slug::from_trusted).collect(),
            created_at: self.created_at,
            disabled_at: self.disabled_at,
            disabled_reason: self.disabled_reason,
        })
    }
}

#[derive(Debug, Clone, SurrealValue)]
pub(super) struct DeliveryRecord {
    id: RecordId,
    workspace: String,
    webhook: String,
    contact: Option<String>,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    created_at: DateTime<Utc>,
    next_attempt_at: Option<DateTime<Utc>>,
    last_status: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryRecord {
    pub(super) fn of(delivery: &WebhookDelivery) -> Self {
        Self {
            id: RecordId::new(
                DELIVERY_TABLE,
                delivery_key(&delivery.workspace, &delivery.webhook, delivery.id.clone()),
            ),
            workspace: delivery.workspace.as_str().to_owned(),
            webhook: delivery.webhook.as_str().to_owned(),
            contact: delivery.contact.map(|contact| contact.to_string()),
            event_type: delivery.event_type.clone(),
            payload: delivery.payload.clone(),
            status: delivery.status.as_str().to_owned(),
            attempts: i64::from(delivery.attempts),
            created_at: delivery.created_at,
            next_attempt_at: delivery.next_attempt_at,
            last_status: delivery.last_status.map(i64::from),
            last_error: delivery.last_error.clone(),
            delivered_at: delivery.delivered_at,
        }
    }

    pub(super) fn into_delivery(self) -> Result<WebhookDelivery, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("webhook delivery {what}"));
        let message = message_of(&self.id).ok_or_else(|| corrupt("key"))?;
        Ok(WebhookDelivery {
            id: message,
            workspace: WorkspaceId::from_trusted(self.workspace),
            webhook: WebhookId::from_trusted(self.webhook),
            contact: self
                .contact
                .map(|raw| ContactId::parse(&raw).map_err(|_| corrupt("contact")))
                .transpose()?,
            event_type: self.event_type,
            payload: self.payload,
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| corrupt("status"))?,
            attempts: u32::try_from(self.attempts).map_err(|_| corrupt("attempts"))?,
            created_at: self.created_at,
            next_attempt_at: self.next_attempt_at,
            last_status: self
                .last_status
                .map(|status| u16::try_from(status).map_err(|_| corrupt("status code")))
                .transpose()?,
            last_error: self.last_error,
            delivered_at: self.delivered_at,
        })
    }
}

impl Store {
    fn seal_secret(&self, webhook: &Webhook, secret: &str) -> Result<(String, bool), StoreError> {
        match self.sealer() {
            Some(sealer) => sealer
                .seal_text(&webhook.workspace, &secret_place(&webhook.id), secret)
                .map(|sealed| (sealed, true))
                .map_err(StoreError::Seal),
            None => Ok((secret.to_owned(), false)),
        }
    }

    async fn webhook_record(&self, key: &RecordId) -> Result<Option<WebhookRecord>, StoreError> {
        self.db
            .select(key.clone())
            .await
            .map_err(StoreError::from_surreal)
    }

    /// Stores a new endpoint with its signing secret.
    pub async fn create_webhook(&self, webhook: &Webhook, secret: &str) -> Result<(), StoreError> {
        let (secret, sealed_secret) = self.seal_secret(webhook, secret)?;
        let record = WebhookRecord {
            id: webhook_key(&webhook.workspace, &webhook.id),
            webhook_id: webhook.id.as_str().to_owned(),
            workspace: webhook.workspace.as_str().to_owned(),
            url: webhook.url.clone(),
            events: webhook
                .events
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            segments: webhook
                .segments
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            secret,
            sealed_secret,
            created_at: webhook.created_at,
            disabled_at: webhook.disabled_at,
            disabled_reason: webhook.disabled_reason.clone(),
        };
        self.write_catalog_record(&webhook.workspace, "CREATE", record.id.clone(), record)
            .await
    }

    /// Every endpoint of the workspace, oldest first.
    pub async fn webhooks(&self, workspace: &WorkspaceId) -> Result<Vec<Webhook>, StoreError> {
        let records: Vec<WebhookRecord> = self
            .workspace_records(WEBHOOK_TABLE, workspace, "created_at, webhook_id")
            .await?;
        records
            .into_iter()
            .map(WebhookRecord::into_webhook)
            .collect()
    }

    /// The endpoint's signing secret (`whsec_…`), `None` when there is no such endpoint.
    pub async fn webhook_secret(
        &self,
        workspace: &WorkspaceId,
        id: &WebhookId,
    ) -> Result<Option<String>, StoreError> {
        let Some(record) = self.webhook_record(&webhook_key(workspace, id)).await? else {
            return Ok(None);
        };
        if !record.sealed_secret {
            return Ok(Some(record.secret));
        }
        let sealer = self.sealer().ok_or_else(|| {
            StoreError::Corrupt(format!("webhook `{id}` is sealed and no key is loaded"))
        })?;
        sealer
            .open_text(workspace, &secret_place(id), &record.secret)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("webhook `{id}`: {error}")))
    }

    /// Replaces the endpoint's signing secret; `false` when there is no such endpoint.
    pub async fn rotate_webhook_secret(
        &self,
        webhook: &Webhook,
        secret: &str,
    ) -> Result<bool, StoreError> {
        let (sealed, is_sealed) = self.seal_secret(webhook, secret)?;
        self.update_webhook(webhook, |write| {
            let (sealed, is_sealed) = (write.bind(sealed), write.bind(is_sealed));
            format!("secret = {sealed}, sealed_secret = {is_sealed}")
        })
        .await
    }

    /// Stops deliveries to the endpoint (it answered 410 Gone): it stays listed, disabled,
    /// and its pending deliveries are given up.
    pub async fn disable_webhook(
        &self,
        webhook: &Webhook,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let updated = self
            .update_webhook(webhook, |write| {
                let (at, reason) = (write.bind(at), write.bind(reason.to_owned()));
                format!("disabled_at = disabled_at ?? {at}, disabled_reason = disabled_reason ?? {reason}")
            })
            .await?;
        // Its pending deliveries are given up: the endpoint's range of the log, and its
        // retry lane emptied (the dispatcher skips a disabled endpoint).
        self.db
            .query(
                "BEGIN; \
                 UPDATE $log SET status = 'FAILED', next_attempt_at = NONE, \
                 last_error = last_error ?? 'endpoint disabled' \
                 WHERE status = 'PENDING' RETURN NONE; \
                 DELETE $retries RETURN NONE; \
                 COMMIT;",
            )
            .bind((
                "log",
                endpoint_range(DELIVERY_TABLE, &webhook.workspace, &webhook.id, None),
            ))
            .bind((
                "retries",
                endpoint_range(RETRY_TABLE, &webhook.workspace, &webhook.id, None),
            ))
            .await
            .and_then(|response| response.check())
            .map_err(StoreError::from_surreal)?;
        Ok(updated)
    }

    /// Updates an endpoint in a catalogue write: `assignments` binds its values to the write
    /// and returns the `SET` clause. `false` when there is no such endpoint.
    async fn update_webhook(
        &self,
        webhook: &Webhook,
        assignments: impl FnOnce(&mut CatalogWrite) -> String,
    ) -> Result<bool, StoreError> {
        let key = webhook_key(&webhook.workspace, &webhook.id);
        if self.webhook_record(&key).await?.is_none() {
            return Ok(false);
        }
        let mut write = CatalogWrite::new(&webhook.workspace);
        let record = write.bind(key);
        let assignments = assignments(&mut write);
        write.statement(format!("UPDATE {record} SET {assignments} RETURN NONE"));
        self.commit_catalog(write).await?;
        Ok(true)
    }

    /// Deletes the endpoint and its outbox cursor; `false` when there is no such endpoint. Its
    /// deliveries are left to [`Store::purge_webhook_deliveries`]: a log of many days is too
    /// much for one transaction (and one request).
    pub async fn delete_webhook(
        &self,
        workspace: &WorkspaceId,
        id: &WebhookId,
    ) -> Result<bool, StoreError> {
        let key = webhook_key(workspace, id);
        if self.webhook_record(&key).await?.is_none() {
            return Ok(false);
        }
        let mut write = CatalogWrite::new(workspace);
        let record = write.bind(key);
        let cursor = write.bind(cursor_key(workspace, id));
        write.statement(format!("DELETE {record} RETURN NONE"));
        write.statement(format!("DELETE {cursor} RETURN NONE"));
        self.commit_catalog(write).await?;
        Ok(true)
    }

    /// Deletes the deliveries and retry entries of a deleted endpoint, [`PURGE_CHUNK`] per
    /// transaction; returns how many deliveries it deleted.
    pub async fn purge_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        id: &WebhookId,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for table in [RETRY_TABLE, DELIVERY_TABLE] {
            loop {
                let mut response = self
                    .db
                    .query(
                        "LET $ids = (SELECT VALUE id FROM $range LIMIT $chunk); \
                         DELETE $ids RETURN NONE; \
                         RETURN array::len($ids);",
                    )
                    .bind(("range", endpoint_range(table, workspace, id, None)))
                    .bind(("chunk", PURGE_CHUNK))
                    .await
                    .map_err(StoreError::from_surreal)?;
                let count: Option<i64> = response.take(2).map_err(StoreError::from_surreal)?;
                let count = count.unwrap_or(0);
                if table == DELIVERY_TABLE {
                    deleted += u64::try_from(count).unwrap_or(0);
                }
                if count < PURGE_CHUNK {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes delivered and failed deliveries enqueued before `before`; returns how many.
    pub async fn prune_webhook_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut response = self
            .db
            .query(
                "(DELETE webhook_delivery WHERE status != 'PENDING' AND created_at < $before \
                 RETURN BEFORE).len()",
            )
            .bind(("before", before))
            .await
            .map_err(StoreError::from_surreal)?;
        let deleted: Option<i64> = response.take(0).map_err(StoreError::from_surreal)?;
        Ok(deleted.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Stores a new delivery as it stands (a test delivery, tried once when it is made).
    pub async fn save_delivery(&self, delivery: &WebhookDelivery) -> Result<(), StoreError> {
        self.db
            .query("CREATE $record.id CONTENT $record RETURN NONE")
            .bind(("record", DeliveryRecord::of(delivery)))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }

    /// Up to `limit` deliveries of the endpoint, newest first, older than message `before`.
    pub async fn webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        id: &WebhookId,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let range = RecordId::new(
            DELIVERY_TABLE,
            RecordIdKey::Range(Box::new(delivery_range(workspace, id, before))),
        );
        let mut response = self
            .db
            .query("SELECT * FROM $range ORDER BY id DESC LIMIT $limit")
            .bind(("range", range))
            .bind(("limit", super::limit_value(limit)))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<DeliveryRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records
            .into_iter()
            .map(DeliveryRecord::into_delivery)
            .collect()
    }
}

impl Store {
    /// How many deliveries the endpoint's log holds.
    pub async fn count_webhook_deliveries(
        &self,
        workspace: &WorkspaceId,
        id: &WebhookId,
    ) -> Result<u64, StoreError> {
        let range = RecordId::new(
            DELIVERY_TABLE,
            RecordIdKey::Range(Box::new(delivery_range(workspace, id, None))),
        );
        self.count_in(range).await
    }
}

/// The deliveries of one endpoint, up to (not including) message `before` when given.
fn delivery_range(
    workspace: &WorkspaceId,
    id: &WebhookId,
    before: Option<&str>,
) -> RecordIdKeyRange {
    use std::ops::Bound;
    RecordIdKeyRange {
        start: Bound::Included(delivery_key(workspace, id, String::new())),
        end: Bound::Excluded(delivery_key(
            workspace,
            id,
            before.unwrap_or(AFTER_ALL_MESSAGES).to_owned(),
        )),
    }
}
