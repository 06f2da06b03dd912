//! Evaluates a plan per index segment as bit sets: tantivy answers each leaf (postings, fast-field
//! ranges, dictionary automata), and `and`/`or`/`not` become word-at-a-time set operations.
//! Leaves that do not depend on `now` are cached per index segment (segments are immutable;
//! deletes are applied after evaluation), so clauses that recur across queries cost a lookup.

use std::collections::{HashMap, HashSet};
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::EnableScoring;
use tantivy::schema::Schema;
use tantivy::{Searcher, SegmentReader};

use super::bits::Bits;
use super::compile::{Leaf, Plan, leaf_query};
use super::schema::IndexFields;

/// Most cached leaf results (each about max_doc / 8 bytes: 125 kB per million documents).
const CACHE_CAPACITY: usize = 512;

/// Leaf results per index segment.
#[derive(Default)]
pub struct LeafCache {
    entries: Mutex<HashMap<(SegmentId, String), Arc<Bits>>>,
}

impl LeafCache {
    fn get_or_compute(
        &self,
        segment: SegmentId,
        key: String,
        compute: impl FnOnce() -> tantivy::Result<Bits>,
    ) -> tantivy::Result<Arc<Bits>> {
        let cache_key = (segment, key);
        if let Some(hit) = self
            .entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&cache_key).cloned())
        {
            return Ok(hit);
        }
        let computed = Arc::new(compute()?);
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(cache_key, Arc::clone(&computed));
        }
        Ok(computed)
    }

    /// Forgets results of index segments that no longer exist (merged away).
    pub fn retain_segments(&self, live: &HashSet<SegmentId>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(segment, _), _| live.contains(segment));
        }
    }
}

/// The live documents matching `plan`, per index segment (in the searcher's segment order).
pub fn matching(
    plan: &Plan,
    searcher: &Searcher,
    fields: &IndexFields,
    cache: &LeafCache,
) -> tantivy::Result<Vec<Bits>> {
    let schema = searcher.schema();
    searcher
        .segment_readers()
        .iter()
        .map(|reader| {
            let mut bits = Arc::unwrap_or_clone(evaluate(plan, reader, schema, fields, cache)?);
            if let Some(alive) = reader.alive_bitset() {
                let deleted: Vec<u32> = bits.iter().filter(|doc| alive.is_deleted(*doc)).collect();
                let mut dead = Bits::empty(reader.max_doc());
                deleted.into_iter().for_each(|doc| dead.insert(doc));
                bits.and_not(&dead);
            }
            Ok(bits)
        })
        .collect()
}

fn evaluate(
    plan: &Plan,
    reader: &SegmentReader,
    schema: &Schema,
    fields: &IndexFields,
    cache: &LeafCache,
) -> tantivy::Result<Arc<Bits>> {
    let max_doc = reader.max_doc();
    Ok(match plan {
        Plan::All => Arc::new(Bits::full(max_doc)),
        Plan::Nothing => Arc::new(Bits::empty(max_doc)),
        Plan::Leaf(leaf) if leaf.cacheable() => {
            cache.get_or_compute(reader.segment_id(), format!("{leaf:?}"), || {
                leaf_bits(leaf, reader, schema, fields)
            })?
        }
        Plan::Leaf(leaf) => Arc::new(leaf_bits(leaf, reader, schema, fields)?),
        Plan::Not(operand) => {
            let mut bits = Arc::unwrap_or_clone(evaluate(operand, reader, schema, fields, cache)?);
            bits.negate();
            Arc::new(bits)
        }
        Plan::Or(operands) => {
            let mut bits = Bits::empty(max_doc);
            for operand in operands {
                bits.or(&*evaluate(operand, reader, schema, fields, cache)?);
            }
            Arc::new(bits)
        }
        Plan::And(operands) => {
            // Positive operands first, then subtract the negated ones; stop once nothing is left.
            // Time ranges relative to `now` cannot be cached: when other operands narrow the
            // candidates, they are checked per candidate against the fast column instead.
            let (deferred, others): (Vec<&Plan>, Vec<&Plan>) =
                operands.iter().partition(|operand| {
                    matches!(operand, Plan::Leaf(Leaf::TimeRange { relative: true, .. }))
                });
            let (deferred, others) = if others.is_empty() {
                (Vec::new(), deferred)
            } else {
                (deferred, others)
            };
            let (negated, positive): (Vec<&Plan>, Vec<&Plan>) = others
                .into_iter()
                .partition(|operand| matches!(operand, Plan::Not(_)));
            let mut bits = match positive.first() {
                Some(first) => {
                    Arc::unwrap_or_clone(evaluate(first, reader, schema, fields, cache)?)
                }
                None => Bits::full(max_doc),
            };
            for operand in positive.iter().skip(1) {
                if bits.is_empty() {
                    break;
                }
                bits.and(&*evaluate(operand, reader, schema, fields, cache)?);
            }
            for operand in negated {
                let Plan::Not(inner) = operand else { continue };
                if bits.is_empty() {
                    break;
                }
                bits.and_not(&*evaluate(inner, reader, schema, fields, cache)?);
            }
            for operand in deferred {
                if let Plan::Leaf(Leaf::TimeRange {
                    path, low, high, ..
                }) = operand
                {
                    keep_times_within(&mut bits, reader, path, low, high)?;
                }
            }
            Arc::new(bits)
        }
    })
}

/// Removes candidates whose datetime at `path` is missing or outside the bounds.
fn keep_times_within(
    bits: &mut Bits,
    reader: &SegmentReader,
    path: &str,
    low: &Bound<i64>,
    high: &Bound<i64>,
) -> tantivy::Result<()> {
    let column = reader
        .fast_fields()
        .column_opt::<i64>(&format!("time.{path}"))?;
    let mut outside = Bits::empty(reader.max_doc());
    for doc in bits.iter() {
        let inside = column
            .as_ref()
            .and_then(|column| column.first(doc))
            .is_some_and(|value| (*low, *high).contains(&value));
        if !inside {
            outside.insert(doc);
        }
    }
    bits.and_not(&outside);
    Ok(())
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
