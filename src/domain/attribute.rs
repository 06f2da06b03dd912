//! Custom attributes: names, declared types, typed values and the per-workspace registry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{DomainError, WorkspaceId};

/// Longest attribute name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest string value (and description), in bytes.
pub const MAX_STRING_BYTES: usize = 4096;
/// Most items in a string list.
pub const MAX_LIST_ITEMS: usize = 1000;
/// Longest item of a string list, in bytes.
pub const MAX_LIST_ITEM_BYTES: usize = 256;
/// Most attributes a workspace may declare.
pub const MAX_DEFINITIONS: usize = 1000;

/// Names of built-in fields; an attribute may not shadow them (segments resolve built-ins first).
const RESERVED_NAMES: &[&str] = &[
    "id",
    "workspace",
    "external_id",
    "externalid",
    "email",
    "name",
    "phone",
    "company",
    "account_ref",
    "accountref",
    "attributes",
    "identities",
    "segment",
    "segments",
    "created_at",
    "createdat",
    "updated_at",
    "updatedat",
    "last_seen_at",
    "lastseenat",
    "first_seen_at",
    "firstseenat",
    "conversation_count",
    "conversationcount",
    "last_conversation_at",
    "lastconversationat",
];

/// The name of a custom attribute: a letter, then letters, digits, `_`, `-`, `.` or spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeName(String);

impl AttributeName {
    /// Validates a name for declaration.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid =
            |why: &str| DomainError::attribute(raw, format!("attribute name `{raw}` {why}"));
        if raw.is_empty() || raw.len() > MAX_NAME_BYTES {
            return Err(invalid(&format!(
                "must be 1 to {MAX_NAME_BYTES} bytes long"
            )));
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(invalid("must start with a letter"));
        }
        if raw.ends_with(' ') {
            return Err(invalid("must not end with a space"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ');
        if let Some(bad) = raw.chars().find(|c| !allowed(*c)) {
            return Err(invalid(&format!(
                "contains `{}`; use letters, digits, `_`, `-`, `.` or spaces",
                bad.escape_debug()
            )));
        }
        if RESERVED_NAMES.contains(&raw.to_ascii_lowercase().as_str()) {
            return Err(invalid("is a built-in field; choose another name"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a name read back from the store, where it was written already validated.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for AttributeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The declared type of an attribute; fixed once declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeType {
    /// Free text, compared exactly by `=` and case-insensitively by text operators.
    String,
    /// A finite 64-bit float.
    Number,
    /// `true` or `false`.
    Bool,
    /// An instant, written as RFC 3339 text.
    Datetime,
    /// A set of short strings such as tags, kept in first-seen order.
    StringList,
}

impl AttributeType {
    /// The storage spelling (`string`, `number`, `bool`, `datetime`, `string_list`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::Datetime => "datetime",
            Self::StringList => "string_list",
        }
    }

    /// Parses the storage spelling.
    pub fn from_storage(raw: &str) -> Option<Self> {
        [
            Self::String,
            Self::Number,
            Self::Bool,
            Self::Datetime,
            Self::StringList,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }

    /// How a marketer would call the type in a message ("a number", "a list of strings").
    pub fn described(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Bool => "a boolean",
            Self::Datetime => "a datetime (RFC 3339 text such as `2026-01-31T09:30:00Z`)",
            Self::StringList => "a list of strings",
        }
    }
}

/// A value of a sensitive attribute as held outside the API: encrypted, with a keyed hash of
/// the normalised plaintext (its blind-index token) for exact matching. Two sealed values are
/// equal when their tokens are, whatever their (randomised) ciphertexts.
#[derive(Debug, Clone)]
pub struct SealedValue {
    /// The encrypted plaintext, as the sealer wrote it.
    pub ciphertext: String,
    /// The blind-index token of the normalised plaintext.
    pub blind: String,
}

impl PartialEq for SealedValue {
    fn eq(&self, other: &Self) -> bool {
        self.blind == other.blind
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No randomness was available for a nonce.
    #[error("no randomness available")]
    NoRandomness,
    /// The sealed value is malformed, or was sealed under another key or for another place.
    #[error("a sealed value cannot be opened (wrong key, or tampered with)")]
    CannotOpen,
}

/// Encrypts sensitive values and computes their blind-index tokens; implemented outside the
/// domain, by whatever holds the keys.
pub trait Sealer: Send + Sync {
    /// Encrypts the value of `attribute` in `workspace`.
    fn seal(
        &self,
        workspace: &WorkspaceId,
        attribute: &AttributeName,
        plaintext: &str,
    ) -> Result<SealedValue, SealError>;
    /// The blind-index token `value` would have in `attribute` of `workspace`.
    fn blind(&self, workspace: &WorkspaceId, attribute: &str, value: &str) -> String;
    /// Decrypts a value sealed for `attribute` of `workspace`.
    fn open(
        &self,
        workspace: &WorkspaceId,
        attribute: &str,
        sealed: &SealedValue,
    ) -> Result<String, SealError>;
    /// Encrypts free text naming sensitive values (a saved segment's text) for `place`.
    fn seal_text(
        &self,
        workspace: &WorkspaceId,
        place: &str,
        text: &str,
    ) -> Result<String, SealError>;
    /// Decrypts what [`Sealer::seal_text`] made for the same `place`.
    fn open_text(
        &self,
        workspace: &WorkspaceId,
        place: &str,
        sealed: &str,
    ) -> Result<String, SealError>;
}

/// How sensitive values are compared: trimmed and lower-cased, so that `AB-12` and ` ab-12`
/// match the same contacts.
pub fn normalise_sensitive(value: &str) -> String {
    value.trim().to_lowercase()
}

/// A typed value of a custom attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// See [`AttributeType::String`].
    String(String),
    /// See [`AttributeType::Number`].
    Number(f64),
    /// See [`AttributeType::Bool`].
    Bool(bool),
    /// See [`AttributeType::Datetime`].
    Datetime(DateTime<Utc>),
    /// See [`AttributeType::StringList`].
    StringList(Vec<String>),
    /// The text of a sensitive attribute, encrypted (see [`SealedValue`]).
    Sealed(SealedValue),
}

impl AttributeValue {
    /// The type this value has.
    pub fn value_type(&self) -> AttributeType {
        match self {
            Self::String(_) | Self::Sealed(_) => AttributeType::String,
            Self::Number(_) => AttributeType::Number,
            Self::Bool(_) => AttributeType::Bool,
            Self::Datetime(_) => AttributeType::Datetime,
            Self::StringList(_) => AttributeType::StringList,
        }
    }

    /// Converts JSON input for an attribute declared as `expected`, enforcing type and size limits.
    pub fn from_json(
        name: &AttributeName,
        expected: AttributeType,
        json: &Json,
    ) -> Result<Self, DomainError> {
        let mismatch = || {
            DomainError::attribute(
                name.as_str(),
                format!(
                    "attribute `{name}` is {}; got {} `{}`",
                    expected.described(),
                    json_kind(json),
                    truncated(&json.to_string())
                ),
            )
        };
        let value = match (expected, json) {
            (AttributeType::String, Json::String(text)) => {
                check_len(name, "value", text, MAX_STRING_BYTES)?;
                Self::String(text.clone())
            }
            (AttributeType::Number, Json::Number(number)) => Self::Number(
                number
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(mismatch)?,
            ),
            (AttributeType::Bool, Json::Bool(flag)) => Self::Bool(*flag),
            (AttributeType::Datetime, Json::String(text)) => Self::Datetime(
                DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|_| mismatch())?
                    .with_timezone(&Utc),
            ),
            (AttributeType::StringList, Json::Array(items)) => Self::StringList(
                parse_string_list(name, items).map_err(|e| e.unwrap_or_else(mismatch))?,
            ),
            _ => return Err(mismatch()),
        };
        Ok(value)
    }

    /// The JSON form returned by the API (datetimes as RFC 3339 text in UTC, like the `DateTime`
    /// scalar). Sealed values are `null`: revealing them takes the key (and `pii:read`).
    pub fn to_json(&self) -> Json {
        match self {
            Self::Sealed(_) => Json::Null,
            Self::String(text) => Json::String(text.clone()),
            Self::Number(number) => json_number(*number).map_or(Json::Null, Json::Number),
            Self::Bool(flag) => Json::Bool(*flag),
            Self::Datetime(at) => Json::String(at.to_rfc3339()),
            Self::StringList(items) => {
                Json::Array(items.iter().cloned().map(Json::String).collect())
            }
        }
    }
}

/// A number as the API writes it: a whole value (up to 2^53, where every integer is exact) as
/// an integer (`9`, not `9.0`), any other as a float; `None` for NaN and infinities.
pub fn json_number(value: f64) -> Option<serde_json::Number> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() <= EXACT {
        // Whole and within ±2^53: the cast is exact (-0.0 becomes 0).
        return Some(serde_json::Number::from(value as i64));
    }
    serde_json::Number::from_f64(value)
}

/// Parses a JSON array of strings, de-duplicating while keeping first-seen order.
/// `Err(None)` means "not a list of strings"; `Err(Some(_))` a specific limit was broken.
fn parse_string_list(
    name: &AttributeName,
    items: &[Json],
) -> Result<Vec<String>, Option<DomainError>> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(Some(DomainError::attribute(
            name.as_str(),
            format!(
                "attribute `{name}` has {} items; at most {MAX_LIST_ITEMS} are allowed",
                items.len()
            ),
        )));
    }
    let mut list: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let Json::String(text) = item else {
            return Err(None);
        };
        check_len(name, "item", text, MAX_LIST_ITEM_BYTES).map_err(Some)?;
        if !list.contains(text) {
            list.push(text.clone());
        }
    }
    Ok(list)
}

fn check_len(name: &AttributeName, what: &str, text: &str, max: usize) -> Result<(), DomainError> {
    if text.len() > max {
        return Err(DomainError::attribute(
            name.as_str(),
            format!(
                "attribute `{name}`: {what} is {} bytes; at most {max} are allowed",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "object",
    }
}

fn truncated(text: &str) -> String {
    const KEEP: usize = 40;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A declared attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeDefinition {
    /// The workspace that declared it.
    pub workspace: WorkspaceId,
    /// Its name, unique per workspace regardless of case.
    pub name: AttributeName,
    /// Its type, fixed once declared.
    pub value_type: AttributeType,
    /// What it means, for marketers building segments.
    pub description: Option<String>,
    /// How its values combine when two contacts merge.
    pub merge_rule: super::MergeRule,
    /// Whether its values are personal data kept encrypted at rest, readable only with
    /// `pii:read`, and matched in segments only exactly (through a keyed hash). Fixed once declared.
    pub sensitive: bool,
    /// When it was first declared.
    pub created_at: DateTime<Utc>,
}

/// The names of the sensitive attributes among `definitions`.
pub fn sensitive_names(definitions: &[AttributeDefinition]) -> HashSet<String> {
    definitions
        .iter()
        .filter(|definition| definition.sensitive)
        .map(|definition| definition.name.as_str().to_owned())
        .collect()
}

/// Attribute writes parsed from input: `Some` sets a value, `None` unsets it.
pub type AttributeChanges = BTreeMap<AttributeName, Option<AttributeValue>>;

/// What declaring an attribute would do to the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum Declaration {
    /// A new attribute.
    New,
    /// Same name and type: only the description may change.
    Redeclared(AttributeDefinition),
}

/// The attributes a workspace has declared; validates writes against them, sealing the values
/// of sensitive attributes.
#[derive(Clone, Default)]
pub struct AttributeRegistry {
    by_name: HashMap<String, AttributeDefinition>,
    sealer: Option<Arc<dyn Sealer>>,
}

impl fmt::Debug for AttributeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttributeRegistry")
            .field("by_name", &self.by_name)
            .finish_non_exhaustive()
    }
}

impl AttributeRegistry {
    /// Builds the registry from stored definitions.
    pub fn new(definitions: impl IntoIterator<Item = AttributeDefinition>) -> Self {
        let by_name = definitions
            .into_iter()
            .map(|d| (d.name.as_str().to_owned(), d))
            .collect();
        Self {
            by_name,
            sealer: None,
        }
    }

    /// The registry sealing sensitive values with `sealer`; without one, writing a sensitive
    /// attribute is refused.
    pub fn with_sealer(mut self, sealer: Option<Arc<dyn Sealer>>) -> Self {
        self.sealer = sealer;
        self
    }

    /// The definition named exactly `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeDefinition> {
        self.by_name.get(name)
    }

    /// Decides whether `name` may be declared with `value_type` and sensitivity `sensitive`
    /// (neither can change once declared).
    pub fn check_declaration(
        &self,
        name: &AttributeName,
        value_type: AttributeType,
        sensitive: bool,
    ) -> Result<Declaration, DeclarationConflict> {
        if let Some(existing) = self.get(name.as_str()) {
            if existing.value_type != value_type {
                return Err(DeclarationConflict(format!(
                    "attribute `{name}` is already declared as {}; its type cannot change",
                    existing.value_type.described()
                )));
            }
            if existing.sensitive != sensitive {
                let was = if existing.sensitive { "" } else { "not " };
                return Err(DeclarationConflict(format!(
                    "attribute `{name}` is declared {was}sensitive; that cannot change once values are stored"
                )));
            }
            return Ok(Declaration::Redeclared(existing.clone()));
        }
        let lowered = name.as_str().to_lowercase();
        if let Some(twin) = self
            .by_name
            .keys()
            .find(|other| other.to_lowercase() == lowered)
        {
            return Err(DeclarationConflict(format!(
                "attribute `{twin}` already exists; names differing only in case are not allowed"
            )));
        }
        if self.by_name.len() >= MAX_DEFINITIONS {
            return Err(DeclarationConflict(format!(
                "a workspace may declare at most {MAX_DEFINITIONS} attributes"
            )));
        }
        Ok(Declaration::New)
    }

    /// Parses attribute input (a JSON object; `null` unsets) against the declared types.
    pub fn parse_changes(
        &self,
        input: &serde_json::Map<String, Json>,
    ) -> Result<AttributeChanges, DomainError> {
        let mut changes = AttributeChanges::new();
        for (key, json) in input {
            let definition = self.get(key).ok_or_else(|| self.undeclared(key))?;
            let value = match json {
                Json::Null => None,
                _ => Some(self.sealed_if_sensitive(
                    definition,
                    AttributeValue::from_json(&definition.name, definition.value_type, json)?,
                )?),
            };
            changes.insert(definition.name.clone(), value);
        }
        Ok(changes)
    }

    fn sealed_if_sensitive(
        &self,
        definition: &AttributeDefinition,
        value: AttributeValue,
    ) -> Result<AttributeValue, DomainError> {
        let (true, AttributeValue::String(text)) = (definition.sensitive, &value) else {
            return Ok(value);
        };
        let name = &definition.name;
        let sealer = self.sealer.as_ref().ok_or_else(|| {
            DomainError::attribute(
                name.as_str(),
                format!("attribute `{name}` is sensitive and cannot be written without the encryption key"),
            )
        })?;
        let sealed = sealer
            .seal(&definition.workspace, name, text)
            .map_err(|error| DomainError::attribute(name.as_str(), error.to_string()))?;
        Ok(AttributeValue::Sealed(sealed))
    }

    fn undeclared(&self, key: &str) -> DomainError {
        if RESERVED_NAMES.contains(&key.to_ascii_lowercase().as_str()) {
            let how = match super::import_row::fixed_field(key) {
                Some(field) => format!("set it with the input's own `{field}` field"),
                None => "it cannot be set through `attributes`".to_owned(),
            };
            return DomainError::attribute(
                key,
                format!("`{key}` is a built-in field, not an attribute; {how}"),
            );
        }
        let suggestion = self
            .by_name
            .keys()
            .map(|known| (strsim::damerau_levenshtein(key, known), known))
            .filter(|(distance, known)| *distance <= 2.max(known.len() / 4))
            .min()
            .map(|(_, known)| format!(" (did you mean `{known}`?)"))
            .unwrap_or_default();
        DomainError::attribute(
            key,
            format!(
                "attribute `{key}` is not declared{suggestion}; declare it with `defineAttribute` first"
            ),
        )
    }
}

/// Declaring an attribute would contradict the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeclarationConflict(pub String);

#[cfg(test)]
mod tests {
    #[test]
    fn whole_numbers_are_written_as_integers_and_others_as_floats() {
        let written = |value: f64| super::json_number(value).map(|n| n.to_string());
        assert_eq!(written(9.0).as_deref(), Some("9"));
        assert_eq!(written(-0.0).as_deref(), Some("0"));
        assert_eq!(written(-120.0).as_deref(), Some("-120"));
        assert_eq!(
            written(9_007_199_254_740_992.0).as_deref(),
            Some("9007199254740992")
        );
        assert_eq!(written(1e300).as_deref(), Some("1e+300"));
        assert_eq!(written(120.5).as_deref(), Some("120.5"));
        assert_eq!(written(f64::NAN), None);
    }

    use serde_json::json;

    use super::*;

    #[test]
    fn every_fixed_field_is_a_reserved_name_in_both_spellings() {
        for field in crate::domain::FixedField::ALL {
            for name in [field.api_name(), field.segment_name()] {
                assert!(
                    RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str()),
                    "{name}"
                );
            }
        }
    }

    fn registry() -> AttributeRegistry {
        let define = |name: &str, value_type| AttributeDefinition {
            workspace: WorkspaceId::default(),
            name: AttributeName::parse(name).unwrap(),
            value_type,
            description: None,
            merge_rule: crate::domain::MergeRule::default_for(value_type),
            sensitive: false,
            created_at: Utc::now(),
        };
        AttributeRegistry::new([
            define("plan", AttributeType::String),
            define("ltv", AttributeType::Number),
            define("vip", AttributeType::Bool),
            define("trial_ends", AttributeType::Datetime),
            define("tags", AttributeType::StringList),
        ])
    }

    fn changes(input: Json) -> Result<AttributeChanges, DomainError> {
        registry().parse_changes(input.as_object().unwrap())
    }

    fn message(result: Result<AttributeChanges, DomainError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn names_are_validated() {
        assert!(AttributeName::parse("plan").is_ok());
        assert!(AttributeName::parse("Order Count.v2-x_y").is_ok());
        assert_eq!(
            AttributeName::parse("1plan").unwrap_err().to_string(),
            "attribute name `1plan` must start with a letter"
        );
        assert_eq!(
            AttributeName::parse("pl@n").unwrap_err().to_string(),
            "attribute name `pl@n` contains `@`; use letters, digits, `_`, `-`, `.` or spaces"
        );
        assert_eq!(
            AttributeName::parse("Email").unwrap_err().to_string(),
            "attribute name `Email` is a built-in field; choose another name"
        );
        assert!(AttributeName::parse("").is_err());
        assert!(AttributeName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn typed_values_are_parsed() {
        let parsed = changes(json!({
            "plan": "pro", "ltv": 120.5, "vip": true,
            "trial_ends": "2026-01-31T10:30:00+01:00", "tags": ["a", "b", "a"]
        }))
        .unwrap();
        let get = |name: &str| {
            parsed[&AttributeName::parse(name).unwrap()]
                .clone()
                .unwrap()
        };
        assert_eq!(get("plan"), AttributeValue::String("pro".into()));
        assert_eq!(get("ltv"), AttributeValue::Number(120.5));
        assert_eq!(get("vip"), AttributeValue::Bool(true));
        assert_eq!(
            get("trial_ends").to_json(),
            json!("2026-01-31T09:30:00+00:00")
        );
        assert_eq!(
            get("tags"),
            AttributeValue::StringList(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn null_unsets() {
        let parsed = changes(json!({"plan": null})).unwrap();
        assert_eq!(parsed[&AttributeName::parse("plan").unwrap()], None);
    }

    #[test]
    fn wrong_types_name_the_attribute() {
        assert_eq!(
            message(changes(json!({"ltv": "lots"}))),
            "attribute `ltv` is a number; got string `\"lots\"`"
        );
        assert_eq!(
            message(changes(json!({"vip": 1}))),
            "attribute `vip` is a boolean; got number `1`"
        );
        assert_eq!(
            message(changes(json!({"tags": ["a", 2]}))),
            "attribute `tags` is a list of strings; got list `[\"a\",2]`"
        );
        assert!(
            message(changes(json!({"trial_ends": "tomorrow"})))
                .starts_with("attribute `trial_ends` is a datetime")
        );
    }

    #[test]
    fn undeclared_attributes_suggest_a_fix() {
        assert_eq!(
            message(changes(json!({"plna": "pro"}))),
            "attribute `plna` is not declared (did you mean `plan`?); declare it with `defineAttribute` first"
        );
        assert_eq!(
            message(changes(json!({"zzzzzz": 1}))),
            "attribute `zzzzzz` is not declared; declare it with `defineAttribute` first"
        );
        assert_eq!(
            message(changes(json!({"email": "ann@example.com"}))),
            "`email` is a built-in field, not an attribute; set it with the input's own `email` field"
        );
        assert_eq!(
            message(changes(json!({"last_seen_at": "2026-01-31T00:00:00Z"}))),
            "`last_seen_at` is a built-in field, not an attribute; set it with the input's own `lastSeenAt` field"
        );
        assert_eq!(
            message(changes(json!({"created_at": "2026-01-31T00:00:00Z"}))),
            "`created_at` is a built-in field, not an attribute; it cannot be set through `attributes`"
        );
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        assert!(message(changes(json!({"plan": long}))).contains("at most 4096"));
        let many: Vec<String> = (0..=MAX_LIST_ITEMS).map(|i| i.to_string()).collect();
        assert!(message(changes(json!({"tags": many}))).contains("at most 1000 are allowed"));
    }

    #[test]
    fn declarations_keep_types_and_case_unique() {
        let registry = registry();
        let name = |n: &str| AttributeName::parse(n).unwrap();
        assert_eq!(
            registry.check_declaration(&name("score"), AttributeType::Number, false),
            Ok(Declaration::New)
        );
        assert!(matches!(
            registry.check_declaration(&name("plan"), AttributeType::String, false),
            Ok(Declaration::Redeclared(_))
        ));
        assert_eq!(
            registry
                .check_declaration(&name("plan"), AttributeType::Number, false)
                .unwrap_err()
                .0,
            "attribute `plan` is already declared as a string; its type cannot change"
        );
        assert_eq!(
            registry
                .check_declaration(&name("PLAN"), AttributeType::String, false)
                .unwrap_err()
                .0,
            "attribute `plan` already exists; names differing only in case are not allowed"
        );
    }

    fn name(raw: &str) -> AttributeName {
        AttributeName::parse(raw).unwrap()
    }

    struct TestSealer;

    impl Sealer for TestSealer {
        fn seal(
            &self,
            _workspace: &WorkspaceId,
            attribute: &AttributeName,
            plaintext: &str,
        ) -> Result<SealedValue, SealError> {
            Ok(SealedValue {
                ciphertext: format!("enc({plaintext})"),
                blind: self.blind(&WorkspaceId::default(), attribute.as_str(), plaintext),
            })
        }
        fn blind(&self, _workspace: &WorkspaceId, attribute: &str, value: &str) -> String {
            format!("{attribute}:{}", normalise_sensitive(value))
        }
        fn open(
            &self,
            _workspace: &WorkspaceId,
            _attribute: &str,
            sealed: &SealedValue,
        ) -> Result<String, SealError> {
            Ok(sealed
                .ciphertext
                .trim_start_matches("enc(")
                .trim_end_matches(')')
                .to_owned())
        }
        fn seal_text(&self, _: &WorkspaceId, _: &str, text: &str) -> Result<String, SealError> {
            Ok(text.to_owned())
        }
        fn open_text(&self, _: &WorkspaceId, _: &str, text: &str) -> Result<String, SealError> {
            Ok(text.to_owned())
        }
    }

    fn sensitive_registry(sealer: Option<Arc<dyn Sealer>>) -> AttributeRegistry {
        let ssn = AttributeDefinition {
            workspace: WorkspaceId::default(),
            name: name("ssn"),
            value_type: AttributeType::String,
            description: None,
            merge_rule: crate::domain::MergeRule::Survivor,
            sensitive: true,
            created_at: Utc::now(),
        };
        AttributeRegistry::new([ssn]).with_sealer(sealer)
    }

    #[test]
    fn sensitive_values_are_sealed_as_they_are_parsed() {
        let registry = sensitive_registry(Some(Arc::new(TestSealer)));
        let input = json!({ "ssn": " AB-12 " });
        let changes = registry.parse_changes(input.as_object().unwrap()).unwrap();
        let Some(Some(AttributeValue::Sealed(sealed))) = changes.get(&name("ssn")) else {
            panic!("not sealed: {changes:?}");
        };
        assert_eq!(sealed.blind, "ssn:ab-12");
        let again = registry
            .parse_changes(json!({ "ssn": "ab-12" }).as_object().unwrap())
            .unwrap();
        assert_eq!(
            changes, again,
            "equal by blind token, whatever the ciphertext"
        );
        assert_eq!(AttributeValue::Sealed(sealed.clone()).to_json(), Json::Null);

        let without_key = sensitive_registry(None);
        let error = without_key
            .parse_changes(input.as_object().unwrap())
            .unwrap_err();
        assert!(
            error.to_string().contains("without the encryption key"),
            "{error}"
        );
    }

    #[test]
    fn sensitivity_cannot_change() {
        let registry = sensitive_registry(None);
        let conflict = registry
            .check_declaration(&name("ssn"), AttributeType::String, false)
            .unwrap_err();
        assert!(conflict.0.contains("declared sensitive"), "{conflict}");
        assert!(
            registry
                .check_declaration(&name("ssn"), AttributeType::String, true)
                .is_ok()
        );
    }
}
