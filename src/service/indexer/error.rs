//! What can fail in the indexer's steps (the runtime in `mod.rs` and the state reads of
//! `step_states.rs`).

use crate::index::IndexError;
use crate::service::membership::error::MembershipError;
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
    Task(#[from] tokio::task::JoinError),
    /// A saved watermark is not a change-log key.
    #[error("the watermark `{0}` is not a change-log key")]
    BadWatermark(String),
    /// A lock was poisoned by a panic while held.
    #[error("the {0} lock was poisoned")]
    Poisoned(&'static str),
    /// Recording segment membership changes failed.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

impl From<IndexerError> for crate::service::error::InternalError {
    fn from(error: IndexerError) -> Self {
        Self::Runtime(Box::new(error))
    }
}
