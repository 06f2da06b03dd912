//! What can fail in the membership engine.

use crate::index::IndexError;
use crate::store::StoreError;

/// Failures of the engine.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Reading contacts or writing the feed failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A blocking index task panicked.
    #[error("membership task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
