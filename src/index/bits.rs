//! A fixed-size bit set over one index segment's doc ids, with word-at-a-time set algebra.

/// Bits `0..len`, one per document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: u32,
}

impl Bits {
    /// No document.
    pub fn empty(len: u32) -> Self {
        Self {
            words: vec![0; (len as usize).div_ceil(64)],
            len,
        }
    }

    /// Every document.
    pub fn full(len: u32) -> Self {
        let mut bits = Self {
            words: vec![u64::MAX; (len as usize).div_ceil(64)],
            len,
        };
        bits.clear_tail();
        bits
    }

    fn clear_tail(&mut self) {
        let used = self.len % 64;
        if used != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << used) - 1;
        }
    }

    /// Adds document `doc`.
    pub fn insert(&mut self, doc: u32) {
        debug_assert!(doc < self.len, "doc {doc} beyond {}", self.len);
        self.words[(doc / 64) as usize] |= 1u64 << (doc % 64);
    }

    /// Keeps documents in both.
    pub fn and(&mut self, other: &Bits) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= b);
    }

    /// Keeps documents in either.
    pub fn or(&mut self, other: &Bits) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a |= b);
    }

    /// Removes documents of `other`.
    pub fn and_not(&mut self, other: &Bits) {
        self.words
            .iter_mut()
            .zip(&other.words)
            .for_each(|(a, b)| *a &= !b);
    }

    /// Flips every document.
    pub fn negate(&mut self) {
        self.words.iter_mut().for_each(|word| *word = !*word);
        self.clear_tail();
    }

    /// Whether document `doc` is in the set.
    pub fn contains(&self, doc: u32) -> bool {
        self.words
            .get((doc / 64) as usize)
            .is_some_and(|word| word & (1u64 << (doc % 64)) != 0)
    }

    /// Bytes the set takes on the heap.
    pub fn heap_bytes(&self) -> u64 {
        (self.words.len() * std::mem::size_of::<u64>()) as u64
    }

    /// Whether no document is in the set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|word| *word == 0)
    }

    /// How many documents are in the set.
    pub fn count(&self) -> u64 {
        self.words
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum()
    }

    /// The documents in both `self` and `other`, ascending, without building the intersection.
    pub fn iter_and<'a>(&'a self, other: &'a Bits) -> impl Iterator<Item = u32> + 'a {
        self.words
            .iter()
            .zip(&other.words)
            .enumerate()
            .flat_map(|(index, (&a, &b))| set_bits(index as u32 * 64, a & b))
    }

    /// The documents, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(index, &word)| set_bits(index as u32 * 64, word))
    }
}

/// `base` plus the position of each bit set in `word`, ascending.
fn set_bits(base: u32, word: u64) -> impl Iterator<Item = u32> {
    let mut rest = word;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let bit = rest.trailing_zeros();
        rest &= rest - 1;
        Some(base + bit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(len: u32, docs: &[u32]) -> Bits {
        let mut bits = Bits::empty(len);
        docs.iter().for_each(|doc| bits.insert(*doc));
        bits
    }

    #[test]
    fn algebra_matches_sets() {
        let mut a = of(130, &[0, 5, 64, 129]);
        let b = of(130, &[5, 64, 100]);
        assert_eq!(a.iter_and(&b).collect::<Vec<_>>(), vec![5, 64]);
        a.and(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![5, 64]);
        a.or(&of(130, &[1]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 5, 64]);
        a.and_not(&of(130, &[5]));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 64]);
        a.negate();
        assert_eq!(a.count(), 128);
        let docs: Vec<u32> = a.iter().collect();
        assert!(!docs.contains(&64) && docs.contains(&129) && !docs.contains(&130));
        assert_eq!(Bits::full(130).count(), 130);
        assert!(Bits::empty(0).is_empty());
    }
}
