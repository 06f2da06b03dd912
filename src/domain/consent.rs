//! Consent per purpose: the purposes a workspace declares (`marketing_email`, `sms`) and what
//! each contact last said about each of them.
//!
//! A contact holds one statement per purpose, the latest: granted or withdrawn, when, where it
//! was said and through which channel. A statement equal to the one held changes nothing (a
//! replayed import or token keeps the first record), and the latest statement wins whatever its
//! provenance: a person may withdraw through any channel.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{DomainError, Provenance, WorkspaceId};

/// Most purposes one workspace may declare.
pub const MAX_PURPOSES: usize = 100;
/// Longest purpose description, in bytes.
pub const MAX_PURPOSE_DESCRIPTION_BYTES: usize = 1_024;
/// Longest `source` of a statement, in bytes.
pub const MAX_CONSENT_SOURCE_BYTES: usize = 256;

/// A purpose's name: 1 to 64 of `a-z 0-9 _`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurposeName(String);

impl PurposeName {
    /// Validates a name given by a client (named `field` in errors).
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        if qwry_segment::is_purpose_name(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                field,
                format!(
                    "`{raw}` is not a purpose name: 1 to {} of a-z, 0-9 and `_`, starting with a letter",
                    qwry_segment::MAX_PURPOSE_NAME_BYTES
                ),
            ))
        }
    }

    /// A name read back from the store.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for PurposeName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A purpose a workspace asks consent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPurpose {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Its name, as segments and statements write it.
    pub name: PurposeName,
    /// What the person agrees to, in the business's words.
    pub description: String,
    /// When it was first declared.
    pub created_at: DateTime<Utc>,
}

impl ConsentPurpose {
    /// Validates a description (trimmed, at most [`MAX_PURPOSE_DESCRIPTION_BYTES`], no control
    /// characters but line breaks).
    pub fn parse_description(raw: &str) -> Result<String, DomainError> {
        let trimmed = raw.trim();
        if trimmed.len() > MAX_PURPOSE_DESCRIPTION_BYTES {
            return Err(DomainError::invalid(
                "description",
                format!("at most {MAX_PURPOSE_DESCRIPTION_BYTES} bytes"),
            ));
        }
        if trimmed.chars().any(|c| c.is_control() && c != '\n') {
            return Err(DomainError::invalid(
                "description",
                "control characters are not allowed",
            ));
        }
        Ok(trimmed.to_owned())
    }
}

/// One statement about one purpose, as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentStatement {
    /// The purpose.
    pub purpose: PurposeName,
    /// Granted (`true`) or withdrawn.
    pub granted: bool,
}

/// Checks that `statements` name each purpose once and at most [`MAX_PURPOSES`] of them.
pub fn check_statements(field: &str, statements: &[ConsentStatement]) -> Result<(), DomainError> {
    if statements.len() > MAX_PURPOSES {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_PURPOSES} consents at once"),
        ));
    }
    for (index, statement) in statements.iter().enumerate() {
        if statements[..index]
            .iter()
            .any(|earlier| earlier.purpose == statement.purpose)
        {
            return Err(DomainError::invalid(
                field,
                format!("purpose `{}` is given twice", statement.purpose.as_str()),
            ));
        }
    }
    Ok(())
}

/// Reads the statements of an import row's or an identity token's `consents` (named `field` in
/// errors): an object of purpose names to `true` (granted) or `false` (withdrawn), to
/// `"granted"` or `"withdrawn"`, or to an object with `granted` (as an export writes them); in
/// a CSV cell, that object as JSON or `marketing_email=true; sms=false`. `null` states nothing.
pub fn parse_consents_json(
    field: &str,
    value: &Json,
) -> Result<Vec<ConsentStatement>, DomainError> {
    let invalid = |message: String| DomainError::invalid(field, message);
    let statement = |purpose: &str, granted: bool| -> Result<ConsentStatement, DomainError> {
        Ok(ConsentStatement {
            purpose: PurposeName::parse(field, purpose)?,
            granted,
        })
    };
    let granted_of = |purpose: &str, value: &Json| -> Result<bool, DomainError> {
        match value {
            Json::Bool(granted) => Ok(*granted),
            Json::String(word) => word_to_granted(word).ok_or_else(|| {
                invalid(format!(
                    "consent to `{purpose}` must be true, false, \"granted\" or \"withdrawn\""
                ))
            }),
            Json::Object(details) => match details.get("granted") {
                Some(Json::Bool(granted)) => Ok(*granted),
                _ => Err(invalid(format!(
                    "consent to `{purpose}` must say `granted`: true or false"
                ))),
            },
            _ => Err(invalid(format!(
                "consent to `{purpose}` must be true, false, \"granted\" or \"withdrawn\""
            ))),
        }
    };
    let statements = match value {
        Json::Null => Vec::new(),
        Json::Object(entries) => entries
            .iter()
            .map(|(purpose, value)| statement(purpose, granted_of(purpose, value)?))
            .collect::<Result<_, _>>()?,
        Json::String(text) if text.trim_start().starts_with('{') => {
            let parsed: Json = serde_json::from_str(text)
                .map_err(|error| invalid(format!("`{field}` is not a JSON object: {error}")))?;
            return parse_consents_json(field, &parsed);
        }
        Json::String(text) => text
            .split(';')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (purpose, word) = pair.split_once('=').ok_or_else(|| {
                    invalid(format!("`{pair}` is not `purpose=true` or `purpose=false`"))
                })?;
                let purpose = purpose.trim();
                let granted = word_to_granted(word.trim()).ok_or_else(|| {
                    invalid(format!("consent to `{purpose}` must be true or false"))
                })?;
                statement(purpose, granted)
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(format!(
                "`{field}` must be an object of purpose names to true or false"
            )));
        }
    };
    check_statements(field, &statements)?;
    Ok(statements)
}

fn word_to_granted(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "true" | "granted" | "yes" => Some(true),
        "false" | "withdrawn" | "no" => Some(false),
        _ => None,
    }
}

/// Where a batch of statements comes from: the same for every statement of one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentOrigin {
    /// When the person said it.
    pub at: DateTime<Utc>,
    /// Where, in the business's words (`signup_form`), when given.
    pub source: Option<String>,
    /// Through which channel (API, import, verified identity token).
    pub provenance: Provenance,
    /// The API key id (or command) that recorded it.
    pub recorded_by: String,
}

impl ConsentOrigin {
    /// Validates a client's `source`: trimmed, non-empty, at most [`MAX_CONSENT_SOURCE_BYTES`],
    /// without control characters.
    pub fn parse_source(raw: Option<&str>) -> Result<Option<String>, DomainError> {
        let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
            return Ok(None);
        };
        if raw.len() > MAX_CONSENT_SOURCE_BYTES || raw.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "source",
                format!(
                    "at most {MAX_CONSENT_SOURCE_BYTES} bytes of text without control characters"
                ),
            ));
        }
        Ok(Some(raw.to_owned()))
    }
}

/// A contact's latest statement about one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// Granted (`true`) or withdrawn.
    pub granted: bool,
    /// When it was said, and by whom it was recorded.
    pub origin: ConsentOrigin,
    /// The contact's revision that recorded it (0 when a merge brought it from the other
    /// contact): tells the membership engine that the latest write changed it.
    pub revision: u64,
}

impl Consent {
    /// Whether the write that made `contact_revision` recorded this statement.
    pub fn stated_at_revision(&self, contact_revision: u64) -> bool {
        self.revision != 0 && self.revision == contact_revision
    }
}

/// A contact's consents, by purpose name.
pub type Consents = BTreeMap<PurposeName, Consent>;

/// Whether `statement`, said at `at`, changes what `consents` hold: a statement equal to the
/// held one does not, nor one older than the held record (an import of yesterday's export does
/// not undo today's withdrawal).
fn changes_held(consents: &Consents, statement: &ConsentStatement, at: DateTime<Utc>) -> bool {
    consents
        .get(&statement.purpose)
        .is_none_or(|held| held.granted != statement.granted && held.origin.at <= at)
}

/// Whether any of `statements`, said at `at`, would change what `consents` hold (see
/// [`state_consents`]).
pub fn changes_any(
    consents: &Consents,
    statements: &[ConsentStatement],
    at: DateTime<Utc>,
) -> bool {
    statements
        .iter()
        .any(|statement| changes_held(consents, statement, at))
}

/// Applies `statements` said at `origin` to `consents`, in the write that makes the contact's
/// revision `revision`; returns the purposes whose state changed. A statement that does not
/// change the held one (see [`changes_any`]) keeps the held record.
pub fn state_consents(
    consents: &mut Consents,
    statements: &[ConsentStatement],
    origin: &ConsentOrigin,
    revision: u64,
) -> Vec<PurposeName> {
    let mut changed = Vec::new();
    for statement in statements {
        if !changes_held(consents, statement, origin.at) {
            continue;
        }
        consents.insert(
            statement.purpose.clone(),
            Consent {
                granted: statement.granted,
                origin: origin.clone(),
                revision,
            },
        );
        changed.push(statement.purpose.clone());
    }
    changed
}

/// The consents of two merged contacts: per purpose the later statement; at the same instant a
/// withdrawal wins.
pub fn combine_consents(survivor: &Consents, absorbed: &Consents) -> Consents {
    let mut combined = survivor.clone();
    for (purpose, theirs) in absorbed {
        let take = match combined.get(purpose) {
            None => true,
            Some(ours) => {
                theirs.origin.at > ours.origin.at
                    || (theirs.origin.at == ours.origin.at && !theirs.granted && ours.granted)
            }
        };
        if take {
            // Its revision counted the other contact's writes.
            let brought = Consent {
                revision: 0,
                ..theirs.clone()
            };
            combined.insert(purpose.clone(), brought);
        }
    }
    combined
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn purpose(name: &str) -> PurposeName {
        PurposeName::parse("purpose", name).unwrap()
    }

    fn origin(second: u32) -> ConsentOrigin {
        ConsentOrigin {
            at: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, second).unwrap(),
            source: None,
            provenance: Provenance::Api,
            recorded_by: "key".to_owned(),
        }
    }

    fn statement(name: &str, granted: bool) -> ConsentStatement {
        ConsentStatement {
            purpose: purpose(name),
            granted,
        }
    }

    #[test]
    fn consents_read_from_objects_exports_and_csv_cells() {
        let expected = vec![statement("marketing_email", true), statement("sms", false)];
        for value in [
            serde_json::json!({"marketing_email": true, "sms": false}),
            serde_json::json!({"marketing_email": "granted", "sms": "withdrawn"}),
            serde_json::json!({"marketing_email": {"granted": true, "at": "x"}, "sms": {"granted": false}}),
            serde_json::json!("marketing_email=true; sms=false"),
            serde_json::json!(r#"{"marketing_email": true, "sms": false}"#),
        ] {
            assert_eq!(
                parse_consents_json("consents", &value).unwrap(),
                expected,
                "{value}"
            );
        }
        assert!(
            parse_consents_json("consents", &Json::Null)
                .unwrap()
                .is_empty()
        );
        for bad in [
            serde_json::json!({"Marketing": true}),
            serde_json::json!({"sms": 1}),
            serde_json::json!("sms"),
            serde_json::json!([true]),
        ] {
            assert!(parse_consents_json("consents", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_segment_rule() {
        assert!(PurposeName::parse("purpose", "marketing_email").is_ok());
        for bad in ["", "Marketing", "1sms", "sms-text", &"a".repeat(65)] {
            assert!(PurposeName::parse("purpose", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repeated_statement_keeps_the_first_record_and_an_older_one_is_ignored() {
        let mut consents = Consents::new();
        let granted = state_consents(&mut consents, &[statement("sms", true)], &origin(10), 1);
        assert_eq!(granted, vec![purpose("sms")]);
        assert!(
            state_consents(&mut consents, &[statement("sms", true)], &origin(20), 2).is_empty()
        );
        assert_eq!(consents[&purpose("sms")].origin.at, origin(10).at);
        assert!(
            state_consents(&mut consents, &[statement("sms", false)], &origin(5), 3).is_empty()
        );
        assert!(consents[&purpose("sms")].granted);
        let withdrawn = state_consents(&mut consents, &[statement("sms", false)], &origin(30), 4);
        assert_eq!(withdrawn, vec![purpose("sms")]);
        assert!(!consents[&purpose("sms")].granted);
    }

    #[test]
    fn merges_keep_the_later_statement_and_withdrawal_wins_a_tie() {
        let mut survivor = Consents::new();
        let mut absorbed = Consents::new();
        state_consents(&mut survivor, &[statement("sms", true)], &origin(10), 1);
        state_consents(&mut absorbed, &[statement("sms", false)], &origin(10), 1);
        state_consents(&mut survivor, &[statement("email", false)], &origin(1), 1);
        state_consents(&mut absorbed, &[statement("email", true)], &origin(2), 1);
        let combined = combine_consents(&survivor, &absorbed);
        assert!(!combined[&purpose("sms")].granted);
        assert!(combined[&purpose("email")].granted);
    }
}
