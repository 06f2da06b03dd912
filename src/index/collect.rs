//! Keeps the smallest contact ids after a cursor: pages in id order without sorting every match.

use std::collections::BinaryHeap;

/// The `limit` smallest ids greater than `after` among those offered.
pub struct SmallestIds {
    after: Option<u128>,
    limit: usize,
    /// Max-heap of the smallest ids seen so far.
    heap: BinaryHeap<u128>,
}

impl SmallestIds {
    /// Keeps up to `limit` ids greater than `after`.
    pub fn new(after: Option<u128>, limit: usize) -> Self {
        Self {
            after,
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
        }
    }

    /// Offers one id.
    pub fn offer(&mut self, id: u128) {
        if self.limit == 0 || self.after.is_some_and(|after| id <= after) {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(id);
        } else if self.heap.peek().is_some_and(|largest| id < *largest) {
            self.heap.pop();
            self.heap.push(id);
        }
    }

    /// The kept ids, ascending.
    pub fn into_sorted(self) -> Vec<u128> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_after_the_cursor() {
        let mut ids = SmallestIds::new(Some(3), 3);
        [9, 1, 4, 7, 3, 5, 8]
            .into_iter()
            .for_each(|id| ids.offer(id));
        assert_eq!(ids.into_sorted(), vec![4, 5, 7]);
    }
}
