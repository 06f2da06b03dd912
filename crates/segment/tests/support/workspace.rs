//! A catalogue for the segment language's tests and fuzz target: an attribute of each type,
//! one of them sensitive, one saved segment (`pros`), and a field the caller may not read
//! (`phone`).

use qwry_segment::{Catalog, Field, FieldType};

/// A workspace with a few attributes of each type, one sensitive, and one saved segment; the
/// caller may not read `phone`.
pub struct Workspace;

impl Catalog for Workspace {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        match name {
            "plan" | "ssn" => Some(FieldType::String),
            "ltv" => Some(FieldType::Number),
            "vip" => Some(FieldType::Bool),
            "trial_at" => Some(FieldType::Datetime),
            "tags" => Some(FieldType::StringList),
            _ => None,
        }
    }

    fn attribute_names(&self) -> Vec<String> {
        ["plan", "ssn", "ltv", "vip", "trial_at", "tags"]
            .map(str::to_owned)
            .to_vec()
    }

    fn segment_exists(&self, slug: &str) -> bool {
        slug == "pros"
    }

    fn field_approved(&self, field: &Field) -> bool {
        !matches!(field, Field::Builtin(builtin) if builtin.name() == "phone")
    }

    fn attribute_sensitive(&self, name: &str) -> bool {
        name == "ssn"
    }
}
