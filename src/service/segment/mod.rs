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

mod compiled;
mod explain;
mod order;
mod resolve;
mod service;
mod visible_catalog;

use std::sync::Arc;
use std::time::Duration;

use qwry_segment::Diagnostic;
use qwry_segment::ast::Expr;

use crate::domain::{Contact, Slug, Text};
use crate::index::Rank;

pub use compiled::CompiledCatalogs;
pub(crate) use explain::evaluate;
pub use explain::{ExplainNode, ExplainPart};
pub use resolve::Resolved;
pub use service::{SegmentService, check_text};

/// Deepest chain of `in segment` references accepted.
pub const MAX_REFERENCE_DEPTH: usize = 8;
/// Longest a `LATEST` read waits for the index to catch up.
pub const LATEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A segment as a request gives it.
#[derive(Debug, Clone)]
pub enum SegmentSource {
    /// Segment text.
    Text(String),
    /// A tree built by a visual builder.
    Tree(Expr),
}

/// How fresh the index must be for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// The latest committed index (writes become visible within the indexing delay).
    #[default]
    Committed,
    /// Wait (bounded) until every write committed before the read began is indexed.
    Latest,
}

/// What `validateSegment` reports.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Problems found; empty when valid.
    pub diagnostics: Vec<Diagnostic>,
    /// The tree as parsed (with spans), when the text parses.
    pub expr: Option<Expr>,
    /// Members right now, when valid.
    pub estimated_count: Option<u64>,
}

/// A page of a segment's members.
#[derive(Debug, Clone)]
pub struct SegmentPage {
    /// Members of the page, ascending by id (shared with the store's memory of them).
    pub contacts: Vec<Arc<Contact>>,
    /// Exact number of members.
    pub total: u64,
    /// Whether members follow the page.
    pub has_more: bool,
    /// For a page in an order other than by id: each contact's place in it (its cursor).
    pub ranks: Vec<Rank>,
}

/// Input of `save`.
#[derive(Debug, Clone)]
pub struct SegmentDraft {
    /// Address.
    pub slug: Slug,
    /// Display name.
    pub name: Text,
    /// What it is for.
    pub description: Option<Text>,
    /// The segment.
    pub source: SegmentSource,
}
