//! Evaluates a plan per index segment as bit sets: tantivy answers each leaf (postings, fast-field
//! ranges, dictionary automata), and `and`/`or`/`not` become word-at-a-time set operations.
//! Leaves that do not depend on `now` are cached per index segment (segments are immutable;
//! deletes are applied after evaluation), so clauses that recur across queries cost a lookup.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::query::EnableScoring;
use tantivy::schema::Schema;
use tantivy::{Searcher, SegmentReader};

use super::bits::Bits;
use super::compile::{Leaf, Plan, leaf_query};
use super::facts::{DAY_NANOS, SegmentFacts, Timeline};
use super::schema::IndexFields;

/// Bytes of cached leaf results (each about max_doc / 8 bytes: 125 kB per million documents, so
/// about a thousand leaves of a million-document index).
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// Weighs a cached leaf result by its bytes.
#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<(SegmentId, String), Arc<Bits>> for ByBytes {
    fn weight(&self, _key: &(SegmentId, String), bits: &Arc<Bits>) -> u64 {
        bits.heap_bytes().max(1)
    }
}

/// Leaf results per index segment, bounded by bytes. Eviction keeps the leaves used often
/// (quick_cache's CLOCK-Pro): one search can need dozens of leaves per index segment, and a cache
/// that emptied itself when full recomputed every dictionary scan of such a search each time.
pub struct LeafCache {
    entries: quick_cache::sync::Cache<(SegmentId, String), Arc<Bits>, ByBytes>,
}

impl Default for LeafCache {
    fn default() -> Self {
        Self {
            entries: quick_cache::sync::Cache::with_weighter(4_096, CACHE_BYTES, ByBytes),
        }
    }
}

impl LeafCache {
    fn get_or_compute(
        &self,
        segment: SegmentId,
        key: String,
        compute: impl FnOnce() -> tantivy::Result<Bits>,
    ) -> tantivy::Result<Arc<Bits>> {
        let cache_key = (segment, key);
        if let Some(hit) = self.entries.get(&cache_key) {
            return Ok(hit);
        }
        let computed = Arc::new(compute()?);
        self.entries.insert(cache_key, Arc::clone(&computed));
        Ok(computed)
    }

    /// Forgets results of index segments that no longer exist (merged away).
    pub fn retain_segments(&self, live: &HashSet<SegmentId>) {
        self.entries
            .retain(|(segment, _), _| live.contains(segment));
    }
}

/// What evaluation reads besides the plan: the field handles and the per-segment caches.
pub struct Context<'a> {
    /// The schema's field handles.
    pub fields: &'a IndexFields,
    /// Cached leaf results.
    pub cache: &'a LeafCache,
    /// Per-segment facts (id order, sorted time columns, deleted documents).
    pub facts: &'a SegmentFacts,
}

/// The live documents matching `plan`, per index segment (in the searcher's segment order).
pub fn matching(
    plan: &Plan,
    searcher: &Searcher,
    context: &Context<'_>,
) -> tantivy::Result<Vec<Bits>> {
    let schema = searcher.schema();
    searcher
        .segment_readers()
        .iter()
        .map(|reader| {
            let mut bits = Arc::unwrap_or_clone(evaluate(plan, reader, schema, context)?);
            if let Some(dead) = context.facts.of(reader).dead(reader) {
                bits.and_not(&dead);
            }
            Ok(bits)
        })
        .collect()
}

/// The documents of `reader` matching `plan`, deleted ones included (leaves cached).
pub fn evaluate_on(
    plan: &Plan,
    reader: &SegmentReader,
    context: &Context<'_>,
) -> tantivy::Result<Arc<Bits>> {
    evaluate(plan, reader, reader.schema(), context)
}

fn evaluate(
    plan: &Plan,
    reader: &SegmentReader,
    schema: &Schema,
    context: &Context<'_>,
) -> tantivy::Result<Arc<Bits>> {
    let max_doc = reader.max_doc();
    let cache = context.cache;
    Ok(match plan {
        Plan::All => Arc::new(Bits::full(max_doc)),
        Plan::Nothing => Arc::new(Bits::empty(max_doc)),
        Plan::Leaf(Leaf::TimeRange {
            path,
            low,
            high,
            relative: true,
        }) => Arc::new(relative_time_bits(reader, path, low, high, context)?),
        Plan::Leaf(leaf) => {
            cache.get_or_compute(reader.segment_id(), format!("{leaf:?}"), || {
                leaf_bits(leaf, reader, schema, context.fields)
            })?
        }
        Plan::Not(operand) => {
            let mut bits = Arc::unwrap_or_clone(evaluate(operand, reader, schema, context)?);
            bits.negate();
            Arc::new(bits)
        }
        Plan::Or(operands) => {
            let mut bits = Bits::empty(max_doc);
            for operand in operands {
                bits.or(&*evaluate(operand, reader, schema, context)?);
            }
            Arc::new(bits)
        }
        Plan::And(operands) => {
            // Positive operands first, then subtract the negated ones; stop once nothing is left.
            let (negated, positive): (Vec<&Plan>, Vec<&Plan>) = operands
                .iter()
                .partition(|operand| matches!(operand, Plan::Not(_)));
            let mut bits = match positive.first() {
                Some(first) => Arc::unwrap_or_clone(evaluate(first, reader, schema, context)?),
                None => Bits::full(max_doc),
            };
            for operand in positive.iter().skip(1) {
                if bits.is_empty() {
                    break;
                }
                bits.and(&*evaluate(operand, reader, schema, context)?);
            }
            for operand in negated {
                let Plan::Not(inner) = operand else { continue };
                if bits.is_empty() {
                    break;
                }
                bits.and_not(&*evaluate(inner, reader, schema, context)?);
            }
            Arc::new(bits)
        }
    })
}

/// A time range relative to `now` (it moves with every request): the whole days inside it come
/// from a cached bit set (its key changes once a day), the partial days at both ends from the
/// column sorted by value, so the result is exact to the nanosecond without a pass over the
/// column.
fn relative_time_bits(
    reader: &SegmentReader,
    path: &str,
    low: &Bound<i64>,
    high: &Bound<i64>,
    context: &Context<'_>,
) -> tantivy::Result<Bits> {
    let max_doc = reader.max_doc();
    let Some((low, high)) = Timeline::inclusive(low, high) else {
        return Ok(Bits::empty(max_doc));
    };
    let timeline = context.facts.of(reader).timeline(reader, path)?;
    let first_day = low.div_euclid(DAY_NANOS) + i64::from(low.rem_euclid(DAY_NANOS) != 0);
    let end_day = high.saturating_add(1).div_euclid(DAY_NANOS);
    if first_day >= end_day {
        let mut bits = Bits::empty(max_doc);
        timeline.add_range(low, high, &mut bits);
        return Ok(bits);
    }
    let (days_low, days_high) = (first_day * DAY_NANOS, end_day * DAY_NANOS - 1);
    let key = format!("days:{path}:{first_day}:{end_day}");
    let days = context.cache.get_or_compute(reader.segment_id(), key, || {
        let mut bits = Bits::empty(max_doc);
        timeline.add_range(days_low, days_high, &mut bits);
        Ok(bits)
    })?;
    let mut bits = Arc::unwrap_or_clone(days);
    timeline.add_range(low, days_low - 1, &mut bits);
    timeline.add_range(days_high + 1, high, &mut bits);
    Ok(bits)
}

fn leaf_bits(
    leaf: &Leaf,
    reader: &SegmentReader,
    schema: &Schema,
    fields: &IndexFields,
) -> tantivy::Result<Bits> {
    let weight = leaf_query(leaf, fields).weight(EnableScoring::disabled_from_schema(schema))?;
    let mut bits = Bits::empty(reader.max_doc());
    weight.for_each_no_score(reader, &mut |docs| {
        docs.iter().for_each(|doc| bits.insert(*doc))
    })?;
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_leaves_stay_cached_once_computed() {
        let cache = LeafCache::default();
        let segments = [SegmentId::generate_random(), SegmentId::generate_random()];
        let computed = std::cell::Cell::new(0);
        let pass = || {
            // More leaves than one search over a dozen index segments needs (45 per segment).
            for segment in segments {
                for leaf in 0..600 {
                    cache
                        .get_or_compute(segment, format!("leaf {leaf}"), || {
                            computed.set(computed.get() + 1);
                            Ok(Bits::full(100_000))
                        })
                        .unwrap();
                }
            }
        };
        pass();
        assert_eq!(computed.get(), 1_200);
        pass();
        assert_eq!(
            computed.get(),
            1_200,
            "the second pass is served from the cache"
        );
        cache.retain_segments(&HashSet::from([segments[0]]));
        pass();
        assert_eq!(
            computed.get(),
            1_800,
            "only the merged-away segment is recomputed"
        );
    }
}
