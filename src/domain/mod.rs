//! Pure types and rules of the contacts domain: no I/O, no async, no framework types.

mod attribute;
mod contact;
mod error;
mod identifiers;
mod segment;

pub use attribute::{
    AttributeChanges, AttributeDefinition, AttributeName, AttributeRegistry, AttributeType,
    AttributeValue, Declaration, DeclarationConflict,
};
pub use contact::{Contact, ContactFields, ContactPatch, FieldChange, Text};
pub use error::DomainError;
pub use identifiers::{ContactId, Email, ExternalId, Phone, WorkspaceId};
pub use segment::{SavedSegment, Slug};
