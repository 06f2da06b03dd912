//! What can fail in the indexer's steps (the runtime in `mod.rs` and the state reads of
//! `step_states.rs`).

use crate::index::IndexError;
use crate::service::membership::MembershipError;
use crate::store::StoreError;

/// Failures of the indexer.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// Reading the change log or the contacts failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A blocking index task panicked.
    #[error("index task failed: {0}")]
    Task(String),
    /// Recording segment membership changes failed.
    #[error(transparent)]
    Live(#[from] MembershipError),
}
