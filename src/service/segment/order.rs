//! Which index column orders members: a built-in datetime or number, or a number or datetime
//! attribute the caller may read.

use qwry_segment::{BuiltinField, Catalog, Field, FieldType};

use super::visible_catalog::CallerCatalog;
use crate::index::{SortColumn, SortKey, field_path};
use crate::service::error::ServiceError;

/// Built-in fields members can be ordered by.
const SORTABLE_BUILTINS: [BuiltinField; 6] = [
    BuiltinField::CreatedAt,
    BuiltinField::UpdatedAt,
    BuiltinField::LastSeenAt,
    BuiltinField::FirstSeenAt,
    BuiltinField::ConversationCount,
    BuiltinField::LastConversationAt,
];

/// The sort key for ordering by `name` (a built-in or an attribute, as written in segments).
/// INVALID_INPUT for an unknown field or one that is not a number or a datetime (sensitive
/// attributes are text, indexed only as keyed hashes); FORBIDDEN for a field the caller may
/// not read, since the order would reveal its values.
pub fn sort_key(
    catalog: &CallerCatalog<'_>,
    name: &str,
    descending: bool,
) -> Result<SortKey, ServiceError> {
    let invalid = |message: String| ServiceError::invalid("orderBy.field", message);
    let (field, column) = match BuiltinField::from_name(name) {
        Some(builtin) if SORTABLE_BUILTINS.contains(&builtin) => {
            let column = match builtin.field_type() {
                FieldType::Number => SortColumn::Number,
                _ => SortColumn::Time,
            };
            (Field::Builtin(builtin), column)
        }
        Some(_) => {
            let sortable: Vec<String> = SORTABLE_BUILTINS
                .iter()
                .map(|builtin| format!("`{}`", builtin.name()))
                .collect();
            return Err(invalid(format!(
                "`{name}` is text: order by {} or a number or datetime attribute",
                sortable.join(", ")
            )));
        }
        None => {
            let column = match catalog.attribute_type(name) {
                Some(FieldType::Number) => SortColumn::Number,
                Some(FieldType::Datetime) => SortColumn::Time,
                Some(other) => {
                    return Err(invalid(format!(
                        "attribute `{name}` is {}: order by a number or a datetime",
                        other.described()
                    )));
                }
                None => {
                    return Err(invalid(format!(
                        "no built-in field or declared attribute `{name}`"
                    )));
                }
            };
            (Field::Attribute(name.to_owned()), column)
        }
    };
    if catalog.hides(&field) {
        return Err(ServiceError::Forbidden(format!(
            "this key may not read `{name}`, so it may not order by it"
        )));
    }
    Ok(SortKey {
        path: field_path(&field),
        column,
        descending,
    })
}
