//! The segment pipeline's one home. Every use (validation, counts, members, save, explain,
//! `Contact.segments`, export, `segment check`) goes through [`resolve`](resolve::resolve): text
//! or a tree becomes a checked tree with references inlined, against the caller's view of the
//! workspace's catalogue, whose saved segments are compiled once per catalogue version.
//!
//! ```text
//! SegmentSource --parse--> Expr (spans) --check--> Checked --expand--> Resolved (tree for the
//!                                      ^                        ^       index and evaluator)
//!                         CallerCatalog (attributes, policy, pii, compiled saved segments)
//! ```

pub(crate) mod compiled;
pub(crate) mod explain;
pub(crate) mod literals;
pub(crate) mod order;
pub(crate) mod resolve;
pub(crate) mod visible_catalog;

use qwry_segment::ast::Expr;

pub use compiled::CompiledCatalogs;
pub(crate) use explain::evaluate;
pub use explain::{ExplainNode, ExplainPart};
pub use resolve::Resolved;

/// Deepest chain of `in segment` references accepted.
pub const MAX_REFERENCE_DEPTH: usize = 8;

/// A segment as a request gives it.
#[derive(Debug, Clone)]
pub enum SegmentSource {
    /// Segment text.
    Text(String),
    /// A tree built by a visual builder.
    Tree(Expr),
}
