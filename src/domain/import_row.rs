//! Rows of a bulk import: one record of NDJSON or CSV, turned into an upsert key and a patch.
//!
//! Keys are fixed fields (`externalId`, `email`, `name`, `phone`, `company`, `accountRef`,
//! `lastSeenAt`, snake_case accepted too), `attributes` (an object, NDJSON only) or attribute
//! names, and `consents` (purpose names to true or false; see [`parse_consents_json`]). Read-only fields of an export (`id`, `createdAt`, `updatedAt`, `identities`,
//! `mergedFrom`) are ignored, so an export imports back. In NDJSON `null` clears a field; in CSV
//! an empty cell leaves it as it is, and cells are converted to the attribute's declared type.

use serde_json::{Map, Value as Json};

use super::{
    AttributeRegistry, AttributeType, ConsentStatement, ContactPatch, DomainError, ExternalId,
    FieldChange, FixedField, parse_consents_json,
};

/// One record as read from the file, with its 1-based line (or record) number.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// Where it starts in the input.
    pub line: u64,
    /// Field or attribute name to value (CSV cells are JSON strings).
    pub values: Map<String, Json>,
    /// Whether values came from CSV text cells and need converting to attribute types.
    pub text_cells: bool,
}

/// A row ready to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRow {
    /// Where it starts in the input.
    pub line: u64,
    /// The external id the row names, if any.
    pub external_id: Option<ExternalId>,
    /// What the row sets.
    pub patch: ContactPatch,
    /// The consents it states (`consents`), each applied unless it repeats the held one.
    pub consents: Vec<ConsentStatement>,
}

/// Ignored on import: what an export writes but no client may set.
const READ_ONLY: &[&str] = &[
    "id",
    "createdAt",
    "created_at",
    "updatedAt",
    "updated_at",
    "identities",
    "mergedFrom",
    "segments",
];

/// The fixed field a column or key names (its canonical spelling), if any.
pub(crate) fn fixed_field(key: &str) -> Option<&'static str> {
    if let Some(field) = FixedField::of_name(key) {
        return Some(field.api_name());
    }
    Some(match key {
        "userId" | "user_id" => "userId",
        "lastSeenAt" | "last_seen_at" => "lastSeenAt",
        _ => return None,
    })
}

/// Checks the header of a CSV file once, before any row: every column must be a fixed field, a
/// read-only field of an export or a declared attribute, and none may appear twice (also not
/// as `externalId` and `external_id`).
pub fn check_columns(names: &[&str], registry: &AttributeRegistry) -> Result<(), DomainError> {
    let mut seen: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        let canonical = fixed_field(name).unwrap_or(name);
        if seen.contains(&canonical) {
            return Err(DomainError::invalid(
                "header",
                format!("column `{name}` appears twice in the header; keep one"),
            ));
        }
        seen.push(canonical);
        let known = fixed_field(name).is_some()
            || READ_ONLY.contains(name)
            || *name == "consents"
            || registry.get(name).is_some();
        if !known {
            let problem =
                registry.parse_changes(&Map::from_iter([((*name).to_owned(), Json::Null)]));
            let message = match problem {
                Err(error) => format!("column `{name}`: {error}"),
                Ok(_) => format!("column `{name}` is not a field or a declared attribute"),
            };
            return Err(DomainError::invalid("header", message));
        }
    }
    Ok(())
}

impl ImportRow {
    /// Parses the row against the workspace's attribute registry; the first problem when
    /// there are several (see [`ImportRow::parse_all`]).
    pub fn parse(&self, registry: &AttributeRegistry) -> Result<ParsedRow, DomainError> {
        self.parse_all(registry)
            .map_err(|mut problems| problems.remove(0))
    }

    /// Parses the row against the workspace's attribute registry, or every problem it has
    /// (at least one), in the order of its keys.
    pub fn parse_all(&self, registry: &AttributeRegistry) -> Result<ParsedRow, Vec<DomainError>> {
        let mut patch = ContactPatch::default();
        let mut external_id = None;
        let mut user_id = None;
        let mut attributes = Map::new();
        let mut consents = Vec::new();
        let mut problems = Vec::new();
        for (key, value) in &self.values {
            if self.text_cells && value.as_str().is_some_and(|text| text.trim().is_empty()) {
                continue;
            }
            let read = self.read_key(
                key,
                value,
                &mut patch,
                &mut external_id,
                &mut user_id,
                &mut attributes,
                &mut consents,
            );
            if let Err(problem) = read {
                problems.push(problem);
            }
        }
        if self.text_cells {
            for (name, value) in attributes.iter_mut() {
                if let (Some(definition), Json::String(text)) = (registry.get(name), &*value) {
                    *value = cell_to_json(definition.value_type, text);
                }
            }
        }
        // Attribute by attribute, so that each bad value is reported.
        for (name, value) in &attributes {
            let one = Map::from_iter([(name.clone(), value.clone())]);
            match registry.parse_changes(&one) {
                Ok(changes) => patch.attributes.extend(changes),
                Err(problem) => problems.push(problem),
            }
        }
        let external_id = match verified_user(external_id, user_id) {
            Ok(external_id) => external_id,
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(ParsedRow {
            line: self.line,
            external_id,
            patch,
            consents,
        })
    }

    /// Reads one key of the row into what the row sets.
    #[allow(clippy::too_many_arguments)]
    fn read_key(
        &self,
        key: &str,
        value: &Json,
        patch: &mut ContactPatch,
        external_id: &mut Option<ExternalId>,
        user_id: &mut Option<ExternalId>,
        attributes: &mut Map<String, Json>,
        consents: &mut Vec<ConsentStatement>,
    ) -> Result<(), DomainError> {
        // The external id is read apart: with a verified user id it is checked against it.
        let fixed = FixedField::of_name(key).filter(|field| *field != FixedField::ExternalId);
        if let Some(field) = fixed {
            let raw = text_field(key, value)?;
            let change = raw.as_deref().map_or(FieldChange::Clear, FieldChange::Set);
            return field.write(patch, change);
        }
        match key {
            "externalId" | "external_id" => {
                *external_id = text_field(key, value)?
                    .map(|raw| ExternalId::parse(&raw))
                    .transpose()?;
            }
            "userId" | "user_id" => {
                *user_id = text_field(key, value)?
                    .map(|raw| ExternalId::parse(&raw))
                    .transpose()?;
            }
            "lastSeenAt" | "last_seen_at" => {
                patch.last_seen_at = change(key, value, |raw| {
                    chrono::DateTime::parse_from_rfc3339(raw.trim())
                        .map(|at| at.with_timezone(&chrono::Utc))
                        .map_err(|_| {
                            DomainError::invalid(
                                "lastSeenAt",
                                format!("`{raw}` is not an RFC 3339 datetime"),
                            )
                        })
                })?;
            }
            "attributes" if !self.text_cells => match value {
                Json::Object(object) => {
                    for (name, value) in object {
                        if attributes.insert(name.clone(), value.clone()).is_some() {
                            return Err(twice(name));
                        }
                    }
                }
                Json::Null => {}
                _ => {
                    return Err(DomainError::invalid(
                        "attributes",
                        "`attributes` must be an object of attribute names to values",
                    ));
                }
            },
            "consents" => *consents = parse_consents_json("consents", value)?,
            read_only if READ_ONLY.contains(&read_only) => {}
            attribute => {
                if attributes
                    .insert(attribute.to_owned(), value.clone())
                    .is_some()
                {
                    return Err(twice(attribute));
                }
            }
        }
        Ok(())
    }
}

/// The row's external id, given the `user_id` it may carry (the product's example record
/// spells both): the verified user id is the external id, so a row with both must give one
/// value, and a row with `user_id` alone is keyed by it.
fn verified_user(
    external_id: Option<ExternalId>,
    user_id: Option<ExternalId>,
) -> Result<Option<ExternalId>, DomainError> {
    match (external_id, user_id) {
        (Some(external), Some(user)) if external != user => Err(DomainError::invalid(
            "user_id",
            format!(
                "user_id `{}` differs from external_id `{}`: the verified user id is the external id",
                user.as_str(),
                external.as_str()
            ),
        )),
        (external, user) => Ok(external.or(user)),
    }
}

/// An attribute given both at the top level and inside `attributes`.
fn twice(name: &str) -> DomainError {
    DomainError::attribute(
        name,
        format!(
            "attribute `{name}` is given twice (at the top level and in `attributes`); give it once"
        ),
    )
}

/// The text of a fixed field (`None` for `null`); numbers and other values are refused, as
/// the GraphQL API refuses them, rather than turned into text.
fn text_field(key: &str, value: &Json) -> Result<Option<String>, DomainError> {
    match value {
        Json::Null => Ok(None),
        Json::String(text) => Ok(Some(text.clone())),
        Json::Number(number) => Err(DomainError::invalid(
            key,
            format!("`{key}` must be text; write the number in quotes: \"{number}\""),
        )),
        other => Err(DomainError::invalid(
            key,
            format!("`{key}` must be text, not {}", json_kind(other)),
        )),
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

fn change<T>(
    key: &str,
    value: &Json,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<FieldChange<T>, DomainError> {
    Ok(match text_field(key, value)? {
        None => FieldChange::Clear,
        Some(raw) => FieldChange::Set(parse(&raw)?),
    })
}

/// Converts a CSV cell to the JSON the attribute's type expects; text that does not fit stays
/// text, so the registry reports the mismatch naming the attribute.
fn cell_to_json(value_type: AttributeType, text: &str) -> Json {
    let trimmed = text.trim();
    match value_type {
        AttributeType::Number => trimmed
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Json::String(text.to_owned()), Json::Number),
        AttributeType::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Json::Bool(true),
            "false" | "no" | "0" => Json::Bool(false),
            _ => Json::String(text.to_owned()),
        },
        AttributeType::StringList if trimmed.starts_with('[') => {
            serde_json::from_str(trimmed).unwrap_or_else(|_| Json::String(text.to_owned()))
        }
        AttributeType::StringList => Json::Array(
            trimmed
                .split('|')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Json::String(item.to_owned()))
                .collect(),
        ),
        AttributeType::String | AttributeType::Datetime => Json::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Email;
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::domain::{
        AttributeDefinition, AttributeName, AttributeValue, MergeRule, WorkspaceId,
    };

    fn registry() -> AttributeRegistry {
        let define = |name: &str, value_type| AttributeDefinition {
            workspace: WorkspaceId::default(),
            name: AttributeName::parse(name).unwrap(),
            value_type,
            description: None,
            merge_rule: MergeRule::default_for(value_type),
            sensitive: false,
            created_at: Utc::now(),
        };
        AttributeRegistry::new([
            define("plan", AttributeType::String),
            define("ltv", AttributeType::Number),
            define("vip", AttributeType::Bool),
            define("tags", AttributeType::StringList),
        ])
    }

    fn row(values: Json, text_cells: bool) -> ImportRow {
        ImportRow {
            line: 7,
            values: values.as_object().unwrap().clone(),
            text_cells,
        }
    }

    fn attribute(parsed: &ParsedRow, name: &str) -> Option<AttributeValue> {
        parsed.patch.attributes.get(name).cloned().flatten()
    }

    #[test]
    fn the_example_record_with_user_id_imports_and_a_differing_user_id_is_a_row_error() {
        let example = row(
            json!({ "external_id": "customer_12345", "user_id": "customer_12345",
                    "email": "jane@example.com", "name": "Jane Doe" }),
            false,
        )
        .parse(&registry())
        .unwrap();
        assert_eq!(example.external_id.unwrap().as_str(), "customer_12345");
        let alone = row(json!({ "user_id": "customer_9" }), false)
            .parse(&registry())
            .unwrap();
        assert_eq!(alone.external_id.unwrap().as_str(), "customer_9");
        let error = row(
            json!({ "external_id": "customer_1", "user_id": "customer_2" }),
            false,
        )
        .parse(&registry())
        .unwrap_err();
        assert!(
            matches!(error, DomainError::InvalidInput { ref field, .. } if field == "user_id"),
            "{error}"
        );
        assert!(check_columns(&["external_id", "user_id", "email"], &registry()).is_ok());
    }

    #[test]
    fn csv_cells_become_typed_values_and_blank_cells_keep() {
        let parsed = row(
            json!({ "external_id": "u1", "email": "A@Example.com", "name": "", "plan": "pro",
                    "ltv": "12.5", "vip": "yes", "tags": "a|b| c" }),
            true,
        )
        .parse(&registry())
        .unwrap();
        assert_eq!(parsed.external_id.as_ref().unwrap().as_str(), "u1");
        assert_eq!(
            parsed.patch.email,
            FieldChange::Set(Email::parse("a@example.com").unwrap())
        );
        assert_eq!(parsed.patch.name, FieldChange::Keep);
        assert_eq!(
            attribute(&parsed, "ltv"),
            Some(AttributeValue::Number(12.5))
        );
        assert_eq!(attribute(&parsed, "vip"), Some(AttributeValue::Bool(true)));
        assert_eq!(
            attribute(&parsed, "tags"),
            Some(AttributeValue::StringList(vec![
                "a".into(),
                "b".into(),
                "c".into()
            ]))
        );
    }

    #[test]
    fn ndjson_nulls_clear_and_exports_import_back() {
        let parsed = row(
            json!({ "id": "01J…", "externalId": "u1", "createdAt": "x", "company": null,
                    "attributes": { "plan": "pro", "ltv": null } }),
            false,
        )
        .parse(&registry())
        .unwrap();
        assert_eq!(parsed.patch.company, FieldChange::Clear);
        assert_eq!(
            attribute(&parsed, "plan"),
            Some(AttributeValue::String("pro".into()))
        );
        assert!(parsed.patch.attributes.contains_key("ltv"));
        assert_eq!(attribute(&parsed, "ltv"), None);
    }

    #[test]
    fn bad_values_name_the_field_or_attribute() {
        let error = row(json!({ "externalId": "u1", "ltv": "lots" }), true)
            .parse(&registry())
            .unwrap_err();
        assert!(
            matches!(error, DomainError::InvalidAttribute { ref attribute, .. } if attribute == "ltv")
        );
        let error = row(json!({ "email": "nope" }), false)
            .parse(&registry())
            .unwrap_err();
        assert!(matches!(error, DomainError::InvalidInput { ref field, .. } if field == "email"));
        let error = row(json!({ "colour": "red" }), false)
            .parse(&registry())
            .unwrap_err();
        assert!(error.to_string().contains("not declared"));
    }

    #[test]
    fn fixed_fields_take_text_only() {
        for values in [
            json!({ "externalId": 42 }),
            json!({ "externalId": "u1", "name": 123 }),
            json!({ "externalId": "u1", "name": true }),
            json!({ "externalId": "u1", "company": ["a"] }),
        ] {
            let error = row(values.clone(), false).parse(&registry()).unwrap_err();
            assert!(
                matches!(error, DomainError::InvalidInput { .. }),
                "{values}: {error}"
            );
        }
        let error = row(json!({ "externalId": 42 }), false)
            .parse(&registry())
            .unwrap_err();
        assert!(error.to_string().contains("\"42\""), "{error}");
    }

    #[test]
    fn an_attribute_given_twice_is_refused() {
        let error = row(
            json!({ "externalId": "u1", "plan": "pro", "attributes": { "plan": "free" } }),
            false,
        )
        .parse(&registry())
        .unwrap_err();
        assert!(
            matches!(error, DomainError::InvalidAttribute { ref attribute, .. } if attribute == "plan"),
            "{error}"
        );
    }

    #[test]
    fn csv_headers_are_checked_once() {
        let registry = registry();
        assert!(check_columns(&["external_id", "email", "plan", "id"], &registry).is_ok());
        let twice = check_columns(&["externalId", "plan", "external_id"], &registry).unwrap_err();
        assert!(
            twice.to_string().contains("`external_id` appears twice"),
            "{twice}"
        );
        let unknown = check_columns(&["external_id", "plna"], &registry).unwrap_err();
        assert!(
            unknown.to_string().contains("did you mean `plan`"),
            "{unknown}"
        );
    }
}
