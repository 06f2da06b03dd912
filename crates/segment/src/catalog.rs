//! What a check reads about the caller's workspace: its attributes and saved segments, and
//! what the caller may test.

use crate::checked::{Field, FieldType};

/// What a segment may refer to: the workspace's attributes and saved segments.
pub trait Catalog {
    /// The declared type of attribute `name`, if declared.
    fn attribute_type(&self, name: &str) -> Option<FieldType>;
    /// Every declared attribute name (for did-you-mean suggestions).
    fn attribute_names(&self) -> Vec<String>;
    /// Whether a saved segment has this slug.
    fn segment_exists(&self, slug: &str) -> bool;
    /// Whether the workspace declared the consent purpose `name`.
    fn purpose_exists(&self, _name: &str) -> bool {
        false
    }
    /// Every declared consent purpose (for did-you-mean suggestions).
    fn purpose_names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the caller may test `field` (it is one of the caller's approved fields).
    fn field_approved(&self, _field: &Field) -> bool {
        true
    }
    /// Whether attribute `name` is sensitive: only `=`, `!=`, `in`, `not in` and `exists`
    /// work on it, since it is indexed only as a keyed hash of its value.
    fn attribute_sensitive(&self, _name: &str) -> bool {
        false
    }
    /// Whether the caller may read, and so test, sensitive attributes; without it a segment
    /// testing one could serve as an oracle of their values.
    fn reads_sensitive(&self) -> bool {
        true
    }
}
