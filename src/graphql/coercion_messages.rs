//! Clearer messages for input values async-graphql refuses while coercing them. Its message
//! for a bad datetime (`Failed to parse "DateTime": input contains invalid characters (occurred
//! while parsing "ContactFieldsInput")`) names neither the field nor the expected form; this
//! names both, from the schema's own input types, and keeps the original at the end.

use std::collections::HashMap;
use std::sync::OnceLock;

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

/// An example of the datetime form the API reads.
const DATETIME_EXAMPLE: &str = "2026-01-31T09:30:00Z";

/// Per input type, its fields of type `DateTime` (learnt once from the schema's SDL).
static DATETIME_FIELDS: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();

/// Learns the datetime fields of the input types of `schema` (the same for every instance of
/// the service, so the first schema built is read and later ones are not printed at all).
pub fn learn(schema: &super::ApiSchema) {
    DATETIME_FIELDS.get_or_init(|| datetime_fields(&schema.sdl()));
}

fn datetime_fields(sdl: &str) -> HashMap<String, Vec<String>> {
    let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
        return HashMap::new();
    };
    document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(ty) => Some(&ty.node),
            _ => None,
        })
        .filter_map(|ty| match &ty.kind {
            TypeKind::InputObject(input) => {
                let fields: Vec<String> = input
                    .fields
                    .iter()
                    .filter(|field| is_datetime(&field.node.ty.node))
                    .map(|field| field.node.name.node.to_string())
                    .collect();
                (!fields.is_empty()).then(|| (ty.name.node.to_string(), fields))
            }
            _ => None,
        })
        .collect()
}

fn is_datetime(ty: &Type) -> bool {
    match &ty.base {
        BaseType::Named(name) => name.as_str() == "DateTime",
        BaseType::List(inner) => is_datetime(inner),
    }
}

/// `message` explained, when it is async-graphql's refusal of a datetime.
pub fn explain(message: &str) -> Option<String> {
    if !message.contains("Failed to parse \"DateTime\"") {
        return None;
    }
    let form = format!("an RFC 3339 date and time with its zone, e.g. \"{DATETIME_EXAMPLE}\"");
    // Innermost input first; a flattened input (not in the SDL) is named before its holder.
    let known = DATETIME_FIELDS.get();
    let fields = message
        .split("(occurred while parsing \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(input, _)| input))
        .find_map(|input| Some((input, known?.get(input)?)));
    Some(match fields {
        Some((input, fields)) => {
            let named: Vec<String> = fields.iter().map(|field| format!("`{field}`")).collect();
            format!(
                "{} of `{input}` must be {form} ({message})",
                named.join(" or ")
            )
        }
        None => format!("a `DateTime` must be {form} ({message})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_fields_are_read_from_the_sdl() {
        let fields = datetime_fields(
            "scalar DateTime
             input A { at: DateTime, name: String }
             input B { startedAt: DateTime!, endedAt: DateTime, tags: [String!] }
             input C { name: String }
             type D { at: DateTime }",
        );
        assert_eq!(fields["A"], ["at"]);
        assert_eq!(fields["B"], ["startedAt", "endedAt"]);
        assert_eq!(fields.len(), 2);
    }
}
