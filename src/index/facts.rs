//! Facts about one index segment that queries reuse (segments are immutable): the documents in
//! contact-id order, for pages that cost what they return; each datetime column sorted by
//! value, for time ranges that touch only their members; and the deleted documents as a bit
//! set. Built by a warmer when the reader loads a new segment, so queries find them ready,
//! and on first use for columns the warmer did not know about.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{Searcher, SearcherGeneration, SegmentReader, Warmer};

use super::bits::Bits;
use super::collect::SmallestIds;

/// Datetime columns the warmer prepares in every new segment (the built-ins).
const WARM_TIME_PATHS: [&str; 5] = [
    "@last_seen_at",
    "@created_at",
    "@updated_at",
    "@first_seen_at",
    "@last_conversation_at",
];

/// The facts of every live index segment.
#[derive(Default)]
pub struct SegmentFacts {
    segments: Mutex<HashMap<SegmentId, Arc<Facts>>>,
}

/// What is known about one index segment.
#[derive(Default)]
pub struct Facts {
    /// Doc ids ordered by contact id (built once).
    by_id: std::sync::OnceLock<Vec<u32>>,
    /// Per datetime path: `(value, doc)` sorted by value.
    timelines: Mutex<HashMap<String, Arc<Timeline>>>,
    /// Deleted documents, for the number of deletes they were computed at.
    dead: Mutex<Option<(u32, Arc<Bits>)>>,
}

/// One datetime column of one segment, sorted by value.
pub struct Timeline {
    entries: Vec<(i64, u32)>,
}

impl SegmentFacts {
    /// The facts of `reader`'s segment (created empty on first use).
    pub fn of(&self, reader: &SegmentReader) -> Arc<Facts> {
        let mut segments = self
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(segments.entry(reader.segment_id()).or_default())
    }

    /// Forgets segments that no longer exist.
    fn retain(&self, live: &HashSet<SegmentId>) {
        if let Ok(mut segments) = self.segments.lock() {
            segments.retain(|segment, _| live.contains(segment));
        }
    }
}

/// Prepares the facts of new segments when the reader reloads, before the searcher is used.
pub struct FactsWarmer(pub Arc<SegmentFacts>);

impl Warmer for FactsWarmer {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for reader in searcher.segment_readers() {
            let facts = self.0.of(reader);
            facts.by_id(reader)?;
            for path in WARM_TIME_PATHS {
                facts.timeline(reader, path)?;
            }
            facts.dead(reader);
        }
        Ok(())
    }

    fn garbage_collect(&self, live_generations: &[&SearcherGeneration]) {
        let live: HashSet<SegmentId> = live_generations
            .iter()
            .flat_map(|generation| generation.segments().keys().copied())
            .collect();
        self.0.retain(&live);
    }
}

/// A contact id from its two fast-field halves.
pub(super) fn contact_id(
    hi: &tantivy::columnar::Column<u64>,
    lo: &tantivy::columnar::Column<u64>,
    doc: u32,
) -> Option<u128> {
    Some((u128::from(hi.first(doc)?) << 64) | u128::from(lo.first(doc)?))
}

impl Facts {
    /// The segment's doc ids in contact-id order.
    pub fn by_id(&self, reader: &SegmentReader) -> tantivy::Result<&[u32]> {
        if let Some(order) = self.by_id.get() {
            return Ok(order);
        }
        let hi = reader.fast_fields().u64("id_hi")?;
        let lo = reader.fast_fields().u64("id_lo")?;
        let mut ids: Vec<(u128, u32)> = (0..reader.max_doc())
            .filter_map(|doc| contact_id(&hi, &lo, doc).map(|id| (id, doc)))
            .collect();
        ids.sort_unstable();
        let order = ids.into_iter().map(|(_, doc)| doc).collect();
        Ok(self.by_id.get_or_init(|| order))
    }

    /// The datetime column `path`, sorted by value.
    pub fn timeline(&self, reader: &SegmentReader, path: &str) -> tantivy::Result<Arc<Timeline>> {
        if let Some(timeline) = self.lock_timelines().get(path) {
            return Ok(Arc::clone(timeline));
        }
        let column = reader
            .fast_fields()
            .column_opt::<i64>(&format!("time.{path}"))?;
        let mut entries: Vec<(i64, u32)> = match &column {
            Some(column) => (0..reader.max_doc())
                .filter_map(|doc| column.first(doc).map(|value| (value, doc)))
                .collect(),
            None => Vec::new(),
        };
        entries.sort_unstable();
        let timeline = Arc::new(Timeline { entries });
        self.lock_timelines()
            .insert(path.to_owned(), Arc::clone(&timeline));
        Ok(timeline)
    }

    fn lock_timelines(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Timeline>>> {
        self.timelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The deleted documents of `reader` (empty without deletes).
    pub fn dead(&self, reader: &SegmentReader) -> Option<Arc<Bits>> {
        let alive = reader.alive_bitset()?;
        let deletes = reader.num_deleted_docs();
        let mut cached = self
            .dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, bits)) = cached.as_ref()
            && *at == deletes
        {
            return Some(Arc::clone(bits));
        }
        let mut dead = Bits::empty(reader.max_doc());
        (0..reader.max_doc())
            .filter(|doc| alive.is_deleted(*doc))
            .for_each(|doc| dead.insert(doc));
        let dead = Arc::new(dead);
        *cached = Some((deletes, Arc::clone(&dead)));
        Some(dead)
    }

    /// Offers the segment's `limit` smallest member ids after `after` to `page`. Walks the
    /// members or the id order, whichever is shorter: `count` members, or about
    /// `limit * max_doc / count` documents in id order before `limit` members are found.
    pub fn offer_page(
        &self,
        reader: &SegmentReader,
        members: &Bits,
        count: u64,
        after: Option<u128>,
        limit: usize,
        page: &mut SmallestIds,
    ) -> tantivy::Result<()> {
        if count == 0 || limit == 0 {
            return Ok(());
        }
        let hi = reader.fast_fields().u64("id_hi")?;
        let lo = reader.fast_fields().u64("id_lo")?;
        let walk = (limit as u64).saturating_mul(u64::from(reader.max_doc())) / count;
        if count <= walk {
            for doc in members.iter() {
                if let Some(id) = contact_id(&hi, &lo, doc) {
                    page.offer(id);
                }
            }
            return Ok(());
        }
        let order = self.by_id(reader)?;
        let start = match after {
            None => 0,
            Some(after) => order
                .partition_point(|doc| contact_id(&hi, &lo, *doc).is_some_and(|id| id <= after)),
        };
        let mut found = 0;
        for &doc in &order[start..] {
            if members.contains(doc)
                && let Some(id) = contact_id(&hi, &lo, doc)
            {
                page.offer(id);
                found += 1;
                if found == limit {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Nanoseconds of a day: the bucket of cached time ranges.
pub const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

impl Timeline {
    /// `(value, doc)` from the highest value down (ties by doc, descending).
    pub fn newest_first(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.entries.iter().rev().copied()
    }

    /// The inclusive range of values `[low, high]` the bounds describe (`None` when empty).
    pub fn inclusive(low: &Bound<i64>, high: &Bound<i64>) -> Option<(i64, i64)> {
        let low = match low {
            Bound::Included(v) => *v,
            Bound::Excluded(v) => v.checked_add(1)?,
            Bound::Unbounded => i64::MIN,
        };
        let high = match high {
            Bound::Included(v) => *v,
            Bound::Excluded(v) => v.checked_sub(1)?,
            Bound::Unbounded => i64::MAX,
        };
        (low <= high).then_some((low, high))
    }

    /// Adds to `bits` every document whose value lies in `[low, high]`.
    pub fn add_range(&self, low: i64, high: i64, bits: &mut Bits) {
        if low > high {
            return;
        }
        let start = self.entries.partition_point(|(value, _)| *value < low);
        let end = self.entries.partition_point(|(value, _)| *value <= high);
        for (_, doc) in &self.entries[start..end] {
            bits.insert(*doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timelines_add_exactly_the_documents_in_range() {
        let timeline = Timeline {
            entries: vec![(1, 4), (5, 0), (5, 2), (9, 1), (12, 3)],
        };
        let mut bits = Bits::empty(6);
        timeline.add_range(5, 9, &mut bits);
        assert_eq!(bits.iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        let (low, high) = Timeline::inclusive(&Bound::Excluded(5), &Bound::Unbounded).unwrap();
        let mut after = Bits::empty(6);
        timeline.add_range(low, high, &mut after);
        assert_eq!(after.iter().collect::<Vec<_>>(), vec![1, 3]);
        assert!(Timeline::inclusive(&Bound::Excluded(3), &Bound::Excluded(4)).is_none());
    }
}
