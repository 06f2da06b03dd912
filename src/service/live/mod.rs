//! The live side: which saved segments a contact enters or leaves, as it happens.
//!
//! The [`MembershipEngine`] runs inside each indexer step, under the step's lock, before the
//! index applies the step's batch. A contact's recorded membership is what the index holds
//! (its document as last applied, evaluated at the moment in question), so:
//! - a write: old = the index before the batch, new = the written contact evaluated in memory;
//! - time: at the exact moment a time-relative condition flips for a contact (the next such
//!   moment comes from evaluating it in memory), old = the index a nanosecond before, new =
//!   the index at that moment; due moments fire before the batch, so writes see them done;
//! - a segment edit: the old tree's members against the new tree's, on one index snapshot.
//!
//! Entries go to the store's feed with positions from one monotonic generator, written one
//! step at a time, so a reader resuming from a position never misses a later-written entry.

mod engine;
mod fanout;
mod follow;
pub mod payload;
mod timer;

pub use engine::{DEFAULT_FEED_RETENTION, FeedEvent, LiveError, MembershipEngine};
pub use follow::{FeedPage, LiveService, MAX_FEED_PAGE};
