//! Persisted query texts by their SHA-256, bounded by bytes rather than by count: a client
//! registering many large documents evicts the least recently used ones instead of growing the
//! process (1,500 distinct 10 KB documents once added 333 MB when the bound was 10,000 entries
//! of parsed documents). The parsed form lives in [`super::checked_documents`], itself bounded.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Bytes counted per kept entry beyond its text: the hash key and the cache's own bookkeeping.
const BYTES_PER_ENTRY: u64 = 128;

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Arc<str>> for ByBytes {
    fn weight(&self, hash: &String, text: &Arc<str>) -> u64 {
        BYTES_PER_ENTRY + hash.len() as u64 + text.len() as u64
    }
}

/// Query texts by hash, evicted by use once they weigh more than the budget.
pub struct PersistedQueries {
    texts: Cache<String, Arc<str>, ByBytes>,
}

impl PersistedQueries {
    /// Keeps texts up to about `bytes`.
    pub fn new(bytes: u64) -> Self {
        let estimated_items = (bytes / 2_048).max(16) as usize;
        Self {
            texts: Cache::with_weighter(estimated_items, bytes.max(1), ByBytes),
        }
    }

    /// The text registered under `hash`, if it is still kept.
    pub fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.texts.get(hash)
    }

    /// Registers `text` under its `hash`.
    pub fn keep(&self, hash: String, text: Arc<str>) {
        self.texts.insert(hash, text);
    }

    /// Bytes currently counted against the budget.
    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.texts.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_large_documents_stay_within_the_byte_budget() {
        let budget = 1024 * 1024;
        let kept = PersistedQueries::new(budget);
        let text: Arc<str> = Arc::from("x".repeat(10 * 1024));
        for n in 0..1_500 {
            kept.keep(format!("{n:064}"), Arc::clone(&text));
        }
        assert!(kept.weight() <= budget, "{}", kept.weight());
        let still_kept = (0..1_500)
            .filter(|n| kept.get(&format!("{n:064}")).is_some())
            .count();
        assert!((1..=110).contains(&still_kept), "{still_kept} kept");
        let small = PersistedQueries::new(budget);
        small.keep("h".to_owned(), Arc::from("{ segments { slug } }"));
        assert_eq!(small.get("h").as_deref(), Some("{ segments { slug } }"));
    }
}
