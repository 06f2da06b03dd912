//! Per saved segment and UTC day, how many contacts entered and left it
//! (`segment_day:[workspace, segment, day]`), added to in the transaction that records the
//! feed entries, so that a segment's size over time is read from a few records instead of its
//! feed. Kept for [`DAYS_KEPT`] days, past the feed's own retention.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use surrealdb::types::{Array, RecordId, RecordIdKey, RecordIdKeyRange, SurrealValue};

use super::{Store, StoreError};
use crate::domain::{MembershipChange, MembershipKind, Slug, WorkspaceId};

const DAY_TABLE: &str = "segment_day";
/// How long the day counts are kept.
pub const DAYS_KEPT: TimeDelta = TimeDelta::days(400);

/// The statement adding a recording's day counts (`$days`) to the stored ones.
pub(super) const ADD_DAY_COUNTS: &str = "FOR $d IN $days { UPSERT $d.id SET workspace = $d.workspace, segment = $d.segment, day = $d.day, starts = $d.starts, entered = (entered OR 0) + $d.entered, exited = (exited OR 0) + $d.exited RETURN NONE; };";

/// One segment's entries of one day in one recording.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct DayCount {
    id: RecordId,
    workspace: String,
    segment: String,
    day: String,
    starts: DateTime<Utc>,
    entered: i64,
    exited: i64,
}

fn day_key(workspace: &str, segment: &str, day: &str) -> RecordIdKey {
    RecordIdKey::Array(Array::from(vec![
        workspace.to_owned(),
        segment.to_owned(),
        day.to_owned(),
    ]))
}

/// The day counts of `entries`, one per segment and day.
pub(super) fn day_counts(entries: &[MembershipChange]) -> Vec<DayCount> {
    let mut counts: Vec<DayCount> = Vec::new();
    for entry in entries {
        let date = entry.at.date_naive();
        let day = date.to_string();
        let (workspace, segment) = (entry.workspace.as_str(), entry.segment.as_str());
        let index = match counts
            .iter()
            .position(|c| c.day == day && c.workspace == workspace && c.segment == segment)
        {
            Some(index) => index,
            None => {
                counts.push(DayCount {
                    id: RecordId::new(DAY_TABLE, day_key(workspace, segment, &day)),
                    workspace: workspace.to_owned(),
                    segment: segment.to_owned(),
                    starts: date.and_time(chrono::NaiveTime::MIN).and_utc(),
                    day,
                    entered: 0,
                    exited: 0,
                });
                counts.len() - 1
            }
        };
        match entry.kind {
            MembershipKind::Enter => counts[index].entered += 1,
            MembershipKind::Exit => counts[index].exited += 1,
        }
    }
    counts
}

/// How many contacts entered and left a segment in one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentDay {
    /// The UTC day.
    pub day: NaiveDate,
    /// ENTER entries recorded that day.
    pub entered: u64,
    /// EXIT entries recorded that day.
    pub exited: u64,
}

impl Store {
    /// The days from `from` to `to` (both included) on which `segment` had entries, in order.
    pub async fn segment_days(
        &self,
        workspace: &WorkspaceId,
        segment: &Slug,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<SegmentDay>, StoreError> {
        let (workspace, segment) = (workspace.as_str(), segment.as_str());
        let range = RecordId::new(
            DAY_TABLE,
            RecordIdKey::Range(Box::new(RecordIdKeyRange {
                start: std::ops::Bound::Included(day_key(workspace, segment, &from.to_string())),
                end: std::ops::Bound::Included(day_key(workspace, segment, &to.to_string())),
            })),
        );
        let mut response = self
            .db
            .query("SELECT * FROM $range")
            .bind(("range", range))
            .await
            .map_err(StoreError::from_surreal)?;
        let counts: Vec<DayCount> = response.take(0).map_err(StoreError::from_surreal)?;
        counts
            .into_iter()
            .map(|count| {
                let day = count
                    .day
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("segment day `{}`", count.day)))?;
                Ok(SegmentDay {
                    day,
                    entered: u64::try_from(count.entered).unwrap_or(0),
                    exited: u64::try_from(count.exited).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Deletes the day counts of days that started before `before`.
    pub async fn prune_segment_days(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete_before(DAY_TABLE, "starts", before).await
    }
}
