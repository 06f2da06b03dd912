//! A collector for pages of contact ids in id order: no scoring, no stored fields; it reads the
//! two fast columns holding each document's ULID and keeps the smallest ids after the cursor.

use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Collects up to `limit` ids greater than `after`, ascending.
pub struct IdPage {
    /// Exclusive lower bound of the ids wanted.
    pub after: Option<u128>,
    /// How many ids at most.
    pub limit: usize,
}

impl Collector for IdPage {
    type Fruit = Vec<u128>;
    type Child = IdPageSegment;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<IdPageSegment> {
        Ok(IdPageSegment {
            hi: reader.fast_fields().u64("id_hi")?,
            lo: reader.fast_fields().u64("id_lo")?,
            after: self.after,
            limit: self.limit,
            smallest: BinaryHeap::with_capacity(self.limit + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u128>>) -> tantivy::Result<Vec<u128>> {
        let mut ids: Vec<u128> = fruits.into_iter().flatten().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(self.limit);
        Ok(ids)
    }
}

/// Per index segment state of [`IdPage`].
pub struct IdPageSegment {
    hi: Column<u64>,
    lo: Column<u64>,
    after: Option<u128>,
    limit: usize,
    /// Max-heap of the smallest ids seen so far.
    smallest: BinaryHeap<u128>,
}

impl SegmentCollector for IdPageSegment {
    type Fruit = Vec<u128>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let (Some(hi), Some(lo)) = (self.hi.first(doc), self.lo.first(doc)) else {
            return;
        };
        let id = (u128::from(hi) << 64) | u128::from(lo);
        if self.after.is_some_and(|after| id <= after) || self.limit == 0 {
            return;
        }
        if self.smallest.len() < self.limit {
            self.smallest.push(id);
        } else if self.smallest.peek().is_some_and(|largest| id < *largest) {
            self.smallest.pop();
            self.smallest.push(id);
        }
    }

    fn harvest(self) -> Vec<u128> {
        self.smallest.into_sorted_vec()
    }
}
