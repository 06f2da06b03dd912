//! The segment membership feed (`segment_change:[workspace, segment, position]`): ENTER and
//! EXIT entries of each saved segment in the order they were recorded, so a reader resumes from
//! its last position with a key-range scan. Also the time-transition clock.

use std::collections::HashSet;
use std::ops::Bound;

use chrono::{DateTime, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange, SurrealValue, Value};

use super::webhooks::DeliveryRecord;
use super::{Store, StoreError};
use crate::domain::{
    ContactId, MembershipCause, MembershipChange, MembershipKind, Slug, WebhookDelivery,
    WorkspaceId,
};

const FEED_TABLE: &str = "segment_change";
const CLOCK_TABLE: &str = "live_clock";
/// The record (in [`CLOCK_TABLE`]) of the change-log entries last turned into the feed.
const FED_KEY: &str = "fed";
/// Entries written per transaction.
const WRITE_CHUNK: usize = 2_000;
/// Sorts after every position (ULIDs are `0-9A-Z`).
const AFTER_ALL_POSITIONS: &str = "~";

#[derive(Debug, Clone, SurrealValue)]
struct FeedRecord {
    id: RecordId,
    contact: String,
    kind: String,
    at: DateTime<Utc>,
    cause: String,
}

/// One (contact, segment) membership the feed recorded and the index may not hold yet.
#[derive(Debug, Clone, SurrealValue)]
struct FedMemberRecord {
    workspace: String,
    contact: String,
    segment: String,
    member: bool,
}

#[derive(Debug, SurrealValue)]
struct FedRecord {
    keys: Vec<String>,
    members: Option<Vec<FedMemberRecord>>,
}

/// What the feed holds that the index may not: the change-log entries turned into feed
/// entries, and the membership the feed last recorded for (contact, segment) pairs the index
/// has not caught up with. A replay takes these, not the index, as the contacts' old state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FedState {
    /// Change-log keys already turned into feed entries.
    pub keys: Vec<String>,
    /// (workspace, contact, segment) and whether the feed last said the contact is a member.
    pub members: Vec<(WorkspaceId, ContactId, Slug, bool)>,
}

#[derive(Debug, SurrealValue)]
struct ClockRecord {
    through: DateTime<Utc>,
}

fn feed_key(workspace: &WorkspaceId, segment: &Slug, position: String) -> RecordIdKey {
    RecordIdKey::Array(Array::from(vec![
        workspace.as_str().to_owned(),
        segment.as_str().to_owned(),
        position,
    ]))
}

impl FeedRecord {
    fn of(change: &MembershipChange) -> Self {
        Self {
            id: RecordId::new(
                FEED_TABLE,
                feed_key(&change.workspace, &change.segment, change.position.clone()),
            ),
            contact: change.contact.to_string(),
            kind: change.kind.as_str().to_owned(),
            at: change.at,
            cause: change.cause.as_str().to_owned(),
        }
    }

    fn into_change(self) -> Result<MembershipChange, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("feed entry {what}"));
        let RecordIdKey::Array(parts) = &self.id.key else {
            return Err(corrupt("key"));
        };
        let part = |i: usize| match parts.get(i) {
            Some(Value::String(text)) => Ok(text.clone()),
            _ => Err(corrupt("key")),
        };
        Ok(MembershipChange {
            workspace: WorkspaceId::from_trusted(part(0)?),
            segment: Slug::from_trusted(part(1)?),
            position: part(2)?,
            contact: ContactId::parse(&self.contact).map_err(|_| corrupt("contact"))?,
            kind: MembershipKind::parse(&self.kind).ok_or_else(|| corrupt("kind"))?,
            at: self.at,
            cause: MembershipCause::parse(&self.cause).ok_or_else(|| corrupt("cause"))?,
        })
    }
}

impl Store {
    /// Appends `entries` to the feed and `deliveries` to the webhook outbox, and records what
    /// the feed holds but the index may not yet (`fed`, replacing the last such record; a
    /// replay must not record it twice), in one transaction per chunk; the record goes with the
    /// last chunk.
    pub async fn record_membership_changes(
        &self,
        entries: &[MembershipChange],
        deliveries: &[WebhookDelivery],
        fed: &FedState,
        marks: &[String],
    ) -> Result<(), StoreError> {
        let mut marked: Vec<RecordId> = marks
            .iter()
            .map(|key| RecordId::new(super::changes::CHANGE_TABLE, key.clone()))
            .collect();
        let mut members: Vec<FedMemberRecord> = fed
            .members
            .iter()
            .map(|(workspace, contact, segment, member)| FedMemberRecord {
                workspace: workspace.as_str().to_owned(),
                contact: contact.to_string(),
                segment: segment.as_str().to_owned(),
                member: *member,
            })
            .collect();
        let mut days = super::segment_days::day_counts(entries);
        let records: Vec<FeedRecord> = entries.iter().map(FeedRecord::of).collect();
        let outbox: Vec<DeliveryRecord> = deliveries.iter().map(DeliveryRecord::of).collect();
        let entry_chunks = records.chunks(WRITE_CHUNK).count();
        let delivery_chunks = outbox.chunks(WRITE_CHUNK).count();
        let rounds = entry_chunks.max(delivery_chunks).max(1);
        for round in 0..rounds {
            let chunk = |all_len: usize| {
                let start = (round * WRITE_CHUNK).min(all_len);
                start..((round + 1) * WRITE_CHUNK).min(all_len)
            };
            let entries = records[chunk(records.len())].to_vec();
            let deliveries = outbox[chunk(outbox.len())].to_vec();
            let last = round + 1 == rounds;
            if entries.is_empty() && deliveries.is_empty() && !last {
                continue;
            }
            let fed_record = if last {
                format!(
                    "UPSERT $fed_id SET keys = $fed, members = $fed_members RETURN NONE; \
                     UPDATE $marked SET fed = true RETURN NONE; {}",
                    super::segment_days::ADD_DAY_COUNTS
                )
            } else {
                String::new()
            };
            let mut query = self
                .db
                .query(format!(
                    "BEGIN; \
                     INSERT INTO segment_change $entries RETURN NONE; \
                     INSERT INTO webhook_delivery $deliveries RETURN NONE; \
                     {fed_record} \
                     COMMIT;"
                ))
                .bind(("entries", entries))
                .bind(("deliveries", deliveries));
            if last {
                // The record goes with the last chunk only: bound there, and moved.
                query = query
                    .bind(("fed_id", RecordId::new(CLOCK_TABLE, FED_KEY)))
                    .bind(("fed", fed.keys.clone()))
                    .bind(("fed_members", std::mem::take(&mut members)))
                    .bind(("marked", std::mem::take(&mut marked)))
                    .bind(("days", std::mem::take(&mut days)));
            }
            query
                .await
                .and_then(|response| response.check())
                .map_err(StoreError::from_surreal)?;
        }
        Ok(())
    }

    /// Up to `limit` entries of `segment` after position `after` (from the start: `None`), in
    /// feed order.
    pub async fn membership_changes(
        &self,
        workspace: &WorkspaceId,
        segment: &Slug,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MembershipChange>, StoreError> {
        let start = match after {
            Some(position) => Bound::Excluded(feed_key(workspace, segment, position.to_owned())),
            None => Bound::Included(feed_key(workspace, segment, String::new())),
        };
        let end = Bound::Excluded(feed_key(workspace, segment, AFTER_ALL_POSITIONS.to_owned()));
        let range = RecordId::new(
            FEED_TABLE,
            RecordIdKey::Range(Box::new(RecordIdKeyRange { start, end })),
        );
        let mut response = self
            .db
            .query("SELECT * FROM $range LIMIT $limit")
            .bind(("range", range))
            .bind(("limit", super::limit_value(limit)))
            .await
            .map_err(StoreError::from_surreal)?;
        let records: Vec<FeedRecord> = response.take(0).map_err(StoreError::from_surreal)?;
        records.into_iter().map(FeedRecord::into_change).collect()
    }

    /// How many entries the feed of `segment` holds (those not yet pruned).
    pub async fn count_membership_changes(
        &self,
        workspace: &WorkspaceId,
        segment: &Slug,
    ) -> Result<u64, StoreError> {
        let start = Bound::Included(feed_key(workspace, segment, String::new()));
        let end = Bound::Excluded(feed_key(workspace, segment, AFTER_ALL_POSITIONS.to_owned()));
        let range = RecordId::new(
            FEED_TABLE,
            RecordIdKey::Range(Box::new(RecordIdKeyRange { start, end })),
        );
        self.count_in(range).await
    }

    /// Deletes feed entries that happened before `before`; returns how many.
    pub async fn prune_membership_changes(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_before(FEED_TABLE, "at", before).await
    }

    /// Which of the change-log entries `keys` a recording marked as fed (see
    /// `record_membership_changes`' `marks`).
    pub async fn fed_changes_among(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        #[derive(SurrealValue)]
        struct Marked {
            id: RecordId,
        }
        let ids: Vec<RecordId> = keys
            .iter()
            .map(|key| RecordId::new(super::changes::CHANGE_TABLE, key.clone()))
            .collect();
        let mut response = self
            .db
            .query("SELECT id FROM $ids WHERE fed = true")
            .bind(("ids", ids))
            .await
            .map_err(StoreError::from_surreal)?;
        let marked: Vec<Marked> = response.take(0).map_err(StoreError::from_surreal)?;
        marked
            .into_iter()
            .map(|record| match record.id.key {
                RecordIdKey::String(key) => Ok(key),
                other => Err(StoreError::Corrupt(format!("change key {other:?}"))),
            })
            .collect()
    }

    /// What the last recording listed as in the feed but not yet in the index.
    pub async fn last_fed_state(&self) -> Result<FedState, StoreError> {
        let record: Option<FedRecord> = self
            .db
            .select(RecordId::new(CLOCK_TABLE, FED_KEY))
            .await
            .map_err(StoreError::from_surreal)?;
        let Some(record) = record else {
            return Ok(FedState::default());
        };
        let corrupt = || StoreError::Corrupt("fed membership contact".to_owned());
        let members = record
            .members
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                Ok((
                    WorkspaceId::from_trusted(m.workspace),
                    ContactId::parse(&m.contact).map_err(|_| corrupt())?,
                    Slug::from_trusted(m.segment),
                    m.member,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(FedState {
            keys: record.keys,
            members,
        })
    }

    /// Until when time transitions have been recorded (`None`: never).
    pub async fn live_clock(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let clock: Option<ClockRecord> = self
            .db
            .select(RecordId::new(CLOCK_TABLE, "timer"))
            .await
            .map_err(StoreError::from_surreal)?;
        Ok(clock.map(|clock| clock.through))
    }

    /// Records that time transitions up to `through` are in the feed.
    pub async fn advance_live_clock(&self, through: DateTime<Utc>) -> Result<(), StoreError> {
        self.db
            .query("UPSERT $clock SET through = $through RETURN NONE")
            .bind(("clock", RecordId::new(CLOCK_TABLE, "timer")))
            .bind(("through", through))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}
