//! Use cases over the store (and, later, the index). The only layer the GraphQL API calls.

mod attributes;
mod contacts;
mod error;

pub use attributes::AttributeService;
pub use contacts::{ContactService, MAX_PAGE_SIZE, PatchInput, UpsertOutcome};
pub use error::{ErrorCode, ServiceError};

use crate::store::Store;

/// Every use case, cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Services {
    /// Contacts.
    pub contacts: ContactService,
    /// The attribute registry.
    pub attributes: AttributeService,
}

impl Services {
    /// Wires the use cases to `store`.
    pub fn new(store: Store) -> Self {
        Self {
            contacts: ContactService::new(store.clone()),
            attributes: AttributeService::new(store),
        }
    }
}
