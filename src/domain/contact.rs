//! The contact record and the patch that changes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    ActivitySummary, AttributeChanges, AttributeName, AttributeValue, Consents, ContactId,
    DomainError, Email, ExternalId, FieldSources, Phone, Verification, WorkspaceId,
};

/// Longest free-text fixed field (name, company, account reference), in bytes.
pub const MAX_TEXT_BYTES: usize = 512;

/// A contact: identified customer or anonymous visitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Stable, opaque id.
    pub id: ContactId,
    /// The tenant that owns it.
    pub workspace: WorkspaceId,
    /// What the API lets clients change.
    pub fields: ContactFields,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its fields last changed (a replayed sync does not move it).
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency revision, bumped by every stored change.
    pub revision: u64,
    /// Who wrote it first and last (API key ids, or a command's name), as stored; `None`
    /// before its first write.
    pub written_by: Option<WrittenBy>,
    /// Where each present value came from (see [`Contact::record_sources`]).
    pub field_sources: FieldSources,
    /// The last verified identification, if any.
    pub verification: Option<Verification>,
    /// Its conversations in numbers (kept with each recorded conversation).
    pub activity: ActivitySummary,
    /// Its latest statement per consent purpose.
    pub consents: Consents,
}

/// The actors of a contact's first and latest write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenBy {
    /// Who created it.
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
}

/// The client-writable content of a contact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactFields {
    /// The id in the business's own system; unique per workspace.
    pub external_id: Option<ExternalId>,
    /// Normalised email.
    pub email: Option<Email>,
    /// Display name.
    pub name: Option<Text>,
    /// E.164 phone number.
    pub phone: Option<Phone>,
    /// Company name.
    pub company: Option<Text>,
    /// Account or order reference in the business's system.
    pub account_ref: Option<Text>,
    /// Typed custom attributes, by declared name.
    pub attributes: BTreeMap<AttributeName, AttributeValue>,
    /// Last activity seen from this person.
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl Contact {
    /// A new contact with `fields`, created at `now`.
    pub fn new(workspace: WorkspaceId, fields: ContactFields, now: DateTime<Utc>) -> Self {
        Self {
            id: ContactId::generate(),
            workspace,
            fields,
            created_at: now,
            updated_at: now,
            revision: 1,
            written_by: None,
            field_sources: FieldSources::new(),
            verification: None,
            activity: ActivitySummary::default(),
            consents: Consents::new(),
        }
    }
}

impl Contact {
    /// When it was first seen: its recorded first sighting, or its current `last_seen_at`
    /// if that is earlier (a visit not yet stored).
    pub fn first_seen_at(&self) -> Option<DateTime<Utc>> {
        super::earliest(self.activity.first_seen_at, self.fields.last_seen_at)
    }

    /// Records `actor` as the writer of the version about to be stored (and as its creator,
    /// when it has none yet).
    pub fn record_writer(&mut self, actor: &str) {
        let created_by = self
            .written_by
            .take()
            .map_or_else(|| actor.to_owned(), |written| written.created_by);
        self.written_by = Some(WrittenBy {
            created_by,
            updated_by: actor.to_owned(),
        });
    }
}

/// Non-empty trimmed free text without control characters, at most [`MAX_TEXT_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// Validates text for the fixed field `field` (named in errors).
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid(
                field,
                format!("`{field}` must not be empty; send null to clear it"),
            ));
        }
        if trimmed.len() > MAX_TEXT_BYTES {
            return Err(DomainError::invalid(
                field,
                format!(
                    "`{field}` is {} bytes; at most {MAX_TEXT_BYTES} are allowed",
                    trimmed.len()
                ),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                field,
                format!("`{field}` contains control characters"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// Wraps text read back from the store, where it was written already validated.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a patch does to one optional field.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FieldChange<T> {
    /// Leave the field as it is (the input omitted it).
    #[default]
    Keep,
    /// Set the field.
    Set(T),
    /// Clear the field (the input sent `null`).
    Clear,
}

impl<T> FieldChange<T> {
    /// Whether the input left the field as it is.
    pub fn is_kept(&self) -> bool {
        matches!(self, Self::Keep)
    }
}

impl<T: PartialEq> FieldChange<T> {
    /// Whether applying this change to `current` gives another value.
    fn changes(&self, current: &Option<T>) -> bool {
        match self {
            Self::Keep => false,
            Self::Set(value) => current.as_ref() != Some(value),
            Self::Clear => current.is_some(),
        }
    }
}

impl<T: Clone> FieldChange<T> {
    fn apply_to(&self, current: &Option<T>) -> Option<T> {
        match self {
            Self::Keep => current.clone(),
            Self::Set(value) => Some(value.clone()),
            Self::Clear => None,
        }
    }

    /// Maps the value of a `Set`.
    pub fn try_map<U, E>(self, parse: impl FnOnce(T) -> Result<U, E>) -> Result<FieldChange<U>, E> {
        Ok(match self {
            Self::Keep => FieldChange::Keep,
            Self::Set(value) => FieldChange::Set(parse(value)?),
            Self::Clear => FieldChange::Clear,
        })
    }
}

/// A validated change to a contact: given fields are set, `null` clears, attributes merge by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactPatch {
    /// See [`ContactFields::external_id`].
    pub external_id: FieldChange<ExternalId>,
    /// See [`ContactFields::email`].
    pub email: FieldChange<Email>,
    /// See [`ContactFields::name`].
    pub name: FieldChange<Text>,
    /// See [`ContactFields::phone`].
    pub phone: FieldChange<Phone>,
    /// See [`ContactFields::company`].
    pub company: FieldChange<Text>,
    /// See [`ContactFields::account_ref`].
    pub account_ref: FieldChange<Text>,
    /// See [`ContactFields::last_seen_at`].
    pub last_seen_at: FieldChange<DateTime<Utc>>,
    /// Attributes to set (`Some`) or unset (`None`); others stay.
    pub attributes: AttributeChanges,
}

impl ContactPatch {
    /// The fields that result from applying this patch to `current`.
    pub fn apply_to(&self, current: &ContactFields) -> ContactFields {
        let mut attributes = current.attributes.clone();
        for (name, change) in &self.attributes {
            match change {
                Some(value) => attributes.insert(name.clone(), value.clone()),
                None => attributes.remove(name),
            };
        }
        ContactFields {
            external_id: self.external_id.apply_to(&current.external_id),
            email: self.email.apply_to(&current.email),
            name: self.name.apply_to(&current.name),
            phone: self.phone.apply_to(&current.phone),
            company: self.company.apply_to(&current.company),
            account_ref: self.account_ref.apply_to(&current.account_ref),
            attributes,
            last_seen_at: self.last_seen_at.apply_to(&current.last_seen_at),
        }
    }

    /// Whether [`ContactPatch::apply_to`] `current` would give other fields, without building
    /// them: a sync that re-sends what is stored decides so row by row.
    pub fn changes(&self, current: &ContactFields) -> bool {
        self.external_id.changes(&current.external_id)
            || self.email.changes(&current.email)
            || self.name.changes(&current.name)
            || self.phone.changes(&current.phone)
            || self.company.changes(&current.company)
            || self.account_ref.changes(&current.account_ref)
            || self.last_seen_at.changes(&current.last_seen_at)
            || self.attributes.iter().any(|(name, change)| match change {
                Some(value) => current.attributes.get(name) != Some(value),
                None => current.attributes.contains_key(name),
            })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn name(n: &str) -> AttributeName {
        AttributeName::parse(n).unwrap()
    }

    #[test]
    fn patch_sets_clears_and_keeps() {
        let current = ContactFields {
            email: Some(Email::parse("a@example.com").unwrap()),
            name: Some(Text::parse("name", "Ada").unwrap()),
            company: Some(Text::parse("company", "Acme").unwrap()),
            attributes: BTreeMap::from([
                (name("plan"), AttributeValue::String("free".into())),
                (name("ltv"), AttributeValue::Number(3.0)),
            ]),
            ..ContactFields::default()
        };
        let patch = ContactPatch {
            name: FieldChange::Set(Text::parse("name", "Ada L.").unwrap()),
            company: FieldChange::Clear,
            attributes: AttributeChanges::from([
                (name("plan"), Some(AttributeValue::String("pro".into()))),
                (name("ltv"), None),
            ]),
            ..ContactPatch::default()
        };
        let next = patch.apply_to(&current);
        assert_eq!(next.email, current.email);
        assert_eq!(next.name.unwrap().as_str(), "Ada L.");
        assert_eq!(next.company, None);
        assert_eq!(
            next.attributes,
            BTreeMap::from([(name("plan"), AttributeValue::String("pro".into()))])
        );
    }

    #[test]
    fn replaying_a_patch_is_a_fixed_point() {
        let patch = ContactPatch {
            name: FieldChange::Set(Text::parse("name", "Ada").unwrap()),
            attributes: AttributeChanges::from([(name("plan"), Some(AttributeValue::Bool(true)))]),
            ..ContactPatch::default()
        };
        let once = patch.apply_to(&ContactFields::default());
        assert_eq!(patch.apply_to(&once), once);
    }

    /// A field change over two values, so that sets often repeat what is there.
    fn field_change() -> impl Strategy<Value = FieldChange<Text>> {
        prop_oneof![
            Just(FieldChange::Keep),
            Just(FieldChange::Clear),
            prop::sample::select(vec!["a", "b"])
                .prop_map(|v| FieldChange::Set(Text::from_trusted(v.into()))),
        ]
    }

    fn optional_text() -> impl Strategy<Value = Option<Text>> {
        prop::option::of(prop::sample::select(vec!["a", "b"]))
            .prop_map(|v| v.map(|v| Text::from_trusted(v.into())))
    }

    /// Numbers are finite: parsing refuses others (a NaN would differ from its own copy).
    fn attribute_value() -> impl Strategy<Value = AttributeValue> {
        prop_oneof![
            any::<bool>().prop_map(AttributeValue::Bool),
            (0..2u8).prop_map(|n| AttributeValue::Number(f64::from(n))),
        ]
    }

    fn attribute_names() -> impl Strategy<Value = AttributeName> {
        prop::sample::select(vec!["x", "y", "z"]).prop_map(name)
    }

    proptest! {
        /// `changes` says what comparing `apply_to`'s result with the fields would say.
        #[test]
        fn changes_agrees_with_applying(
            current_name in optional_text(),
            current_company in optional_text(),
            current_account_ref in optional_text(),
            current_email in prop::option::of(prop::sample::select(vec!["a@x.io", "b@x.io"])),
            current_attributes in prop::collection::btree_map(attribute_names(), attribute_value(), 0..3),
            name_change in field_change(),
            company_change in field_change(),
            account_ref_change in field_change(),
            email_change in prop_oneof![
                Just(FieldChange::Keep),
                Just(FieldChange::Clear),
                prop::sample::select(vec!["a@x.io", "b@x.io"])
                    .prop_map(|v| FieldChange::Set(Email::from_trusted(v.into()))),
            ],
            attribute_changes in prop::collection::btree_map(
                attribute_names(), prop::option::of(attribute_value()), 0..3),
        ) {
            let current = ContactFields {
                name: current_name,
                company: current_company,
                account_ref: current_account_ref,
                email: current_email.map(|v| Email::from_trusted(v.into())),
                attributes: current_attributes,
                ..ContactFields::default()
            };
            let patch = ContactPatch {
                name: name_change,
                company: company_change,
                account_ref: account_ref_change,
                email: email_change,
                attributes: attribute_changes,
                ..ContactPatch::default()
            };
            prop_assert_eq!(patch.changes(&current), patch.apply_to(&current) != current);
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(Text::parse("name", "  Ada ").unwrap().as_str(), "Ada");
        assert_eq!(
            Text::parse("name", "   ").unwrap_err().to_string(),
            "`name` must not be empty; send null to clear it"
        );
        assert!(Text::parse("company", &"x".repeat(MAX_TEXT_BYTES + 1)).is_err());
        assert!(Text::parse("company", "a\nb").is_err());
    }
}
