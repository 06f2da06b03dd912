//! The membership engine: which saved segments a contact enters or leaves, as it happens
//! (reading and following what it records is `service::feed`).
//!
//! The [`MembershipEngine`] runs in each indexer step, under the step's lock, as soon as the
//! step takes its batch from the change log and before the index commits it: the index
//! commits later, in its own time (`INDEX_COMMIT_DELAY_MS`) and beside the next steps, so an
//! ENTER waits for no index commit. A contact's recorded membership is its last state the feed
//! evaluated (the index's document once the index committed it, the written state kept in
//! memory until then), evaluated at the moment in question, so:
//! - a write: old = that last state, new = the written contact, both evaluated in memory at
//!   the step's moment (the index answers for contacts it holds as the feed last saw them);
//! - time: at the exact moment a time-relative condition flips for a contact (the next such
//!   moment comes from evaluating it in memory), old = its state a nanosecond before, new =
//!   at that moment; due moments fire before the batch, so writes see them done;
//! - a segment edit: the old tree's members against the new tree's, on one index snapshot,
//!   with the contacts the index has not committed yet evaluated in memory.
//!
//! With several instances on one store, the holder of a lease records and the others keep
//! what they would have recorded, which the next holder records for the changes the last one
//! did not feed (see `shadow`).
//!
//! Entries go to the store's feed with positions from one monotonic generator, written one
//! step at a time, so a reader resuming from a position never misses a later-written entry.

mod engine;
pub(crate) mod error;
mod shadow;
mod timer;

pub use engine::{DEFAULT_FEED_RETENTION, MembershipEngine};
pub use error::MembershipError;
