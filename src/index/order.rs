//! Members ordered by one fast column (a number or a datetime): the best `limit` after a cursor,
//! chosen while reading the column, with missing values last and ties broken by contact id.

use std::collections::BinaryHeap;

use tantivy::columnar::Column;
use tantivy::{SegmentReader, f64_to_u64, i64_to_u64};

use super::bits::Bits;
use super::facts::contact_id;

/// The kind of column an order reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// A number (`number.<path>`).
    Number,
    /// A datetime (`time.<path>`).
    Time,
}

/// What members are ordered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field's path in the index (`@created_at`, or an attribute's name).
    pub path: String,
    /// Its column kind.
    pub column: SortColumn,
    /// Largest first.
    pub descending: bool,
}

/// A member's place in an order: compared field by field, so members without a value come
/// after all others, and equal values follow contact ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// Whether the member has no value in the column.
    pub missing: bool,
    /// The value mapped to an order-preserving integer (inverted when descending; 0 when
    /// missing).
    pub key: u64,
    /// The contact id.
    pub id: u128,
}

/// A page of members in an order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMembers {
    /// How many contacts match.
    pub total: u64,
    /// The page, in order, each with its rank (the cursor after it).
    pub ranks: Vec<Rank>,
    /// Whether matching contacts follow the page.
    pub has_more: bool,
}

/// One segment's column for `key`, read as order-preserving integers.
enum Values {
    Number(Column<f64>),
    Time(Column<i64>),
    Absent,
}

impl Values {
    fn open(reader: &SegmentReader, key: &SortKey) -> tantivy::Result<Self> {
        let fast = reader.fast_fields();
        Ok(match key.column {
            SortColumn::Number => fast
                .column_opt::<f64>(&format!("number.{}", key.path))?
                .map_or(Self::Absent, Self::Number),
            SortColumn::Time => fast
                .column_opt::<i64>(&format!("time.{}", key.path))?
                .map_or(Self::Absent, Self::Time),
        })
    }

    fn get(&self, doc: u32) -> Option<u64> {
        match self {
            Self::Number(column) => column.first(doc).map(f64_to_u64),
            Self::Time(column) => column.first(doc).map(i64_to_u64),
            Self::Absent => None,
        }
    }
}

/// Keeps the `limit` smallest ranks after a cursor.
pub struct BestRanks {
    after: Option<Rank>,
    limit: usize,
    heap: BinaryHeap<Rank>,
}

impl BestRanks {
    /// Keeps up to `limit` ranks greater than `after`.
    pub fn new(after: Option<Rank>, limit: usize) -> Self {
        Self {
            after,
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    fn offer(&mut self, rank: Rank) {
        if self.limit == 0 || self.after.is_some_and(|after| rank <= after) {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(rank);
        } else if self.heap.peek().is_some_and(|worst| rank < *worst) {
            self.heap.pop();
            self.heap.push(rank);
        }
    }

    /// Offers every member of one segment.
    pub fn offer_segment(
        &mut self,
        reader: &SegmentReader,
        members: &Bits,
        key: &SortKey,
    ) -> tantivy::Result<()> {
        if members.is_empty() || self.limit == 0 {
            return Ok(());
        }
        let hi = reader.fast_fields().u64("id_hi")?;
        let lo = reader.fast_fields().u64("id_lo")?;
        let values = Values::open(reader, key)?;
        for doc in members.iter() {
            if let Some(id) = contact_id(&hi, &lo, doc) {
                self.offer(rank_of(values.get(doc), id, key.descending));
            }
        }
        Ok(())
    }

    /// The kept ranks, best first.
    pub fn into_sorted(self) -> Vec<Rank> {
        self.heap.into_sorted_vec()
    }
}

fn rank_of(value: Option<u64>, id: u128, descending: bool) -> Rank {
    match value {
        Some(value) => Rank {
            missing: false,
            key: if descending { !value } else { value },
            id,
        },
        None => Rank {
            missing: true,
            key: 0,
            id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_put_missing_values_last_and_ties_by_id() {
        let ascending: Vec<Rank> = [(Some(5), 3), (None, 1), (Some(2), 9), (Some(5), 2)]
            .into_iter()
            .map(|(value, id)| rank_of(value.map(i64_to_u64), id, false))
            .collect();
        let mut best = BestRanks::new(None, 10);
        ascending.iter().for_each(|rank| best.offer(*rank));
        let ids: Vec<u128> = best.into_sorted().iter().map(|rank| rank.id).collect();
        assert_eq!(ids, vec![9, 2, 3, 1]);

        let mut descending = BestRanks::new(None, 2);
        [(Some(-4.5), 1), (None, 2), (Some(7.25), 3), (Some(0.0), 4)]
            .into_iter()
            .for_each(|(value, id)| descending.offer(rank_of(value.map(f64_to_u64), id, true)));
        let ids: Vec<u128> = descending
            .into_sorted()
            .iter()
            .map(|rank| rank.id)
            .collect();
        assert_eq!(ids, vec![3, 4]);
    }

    #[test]
    fn a_cursor_resumes_after_its_rank() {
        let ranks: Vec<Rank> = (0..6u128)
            .map(|id| rank_of((id < 4).then_some(10 - id as u64), id, false))
            .collect();
        let mut first = BestRanks::new(None, 3);
        ranks.iter().for_each(|rank| first.offer(*rank));
        let page = first.into_sorted();
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 2, 1]);
        let mut second = BestRanks::new(page.last().copied(), 3);
        ranks.iter().for_each(|rank| second.offer(*rank));
        let ids: Vec<u128> = second.into_sorted().iter().map(|rank| rank.id).collect();
        assert_eq!(ids, vec![0, 4, 5]);
    }
}
