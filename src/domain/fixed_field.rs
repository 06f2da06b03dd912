//! The contact's fixed text fields (external id, email, name, phone, company, account
//! reference) as one table: each field's names, how to read, write, clear and parse it. The
//! places that treat every fixed field alike (provenance, field policies, merges, exports,
//! imports, the index document) go through [`FixedField::ALL`] instead of naming each field,
//! so a new field is added here, in [`ContactFields`] and [`ContactPatch`], in the segment
//! language's `BuiltinField` (which owns the names) and in the stored record with its
//! migration.

use qwry_segment::BuiltinField;

use super::{
    ContactFields, ContactPatch, DomainError, Email, ExternalId, FieldChange, Phone, Text,
};

/// One of the contact's fixed text fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedField {
    /// The id in the business's own system; unique per workspace.
    ExternalId,
    /// Normalised email.
    Email,
    /// Display name.
    Name,
    /// E.164 phone number.
    Phone,
    /// Company name.
    Company,
    /// Account or order reference in the business's system.
    AccountRef,
}

impl FixedField {
    /// Every fixed field, in the order exports and merge plans list them.
    pub const ALL: [Self; 6] = [
        Self::ExternalId,
        Self::Email,
        Self::Name,
        Self::Phone,
        Self::Company,
        Self::AccountRef,
    ];

    /// The segment language's field of the same value.
    pub fn builtin(self) -> BuiltinField {
        match self {
            Self::ExternalId => BuiltinField::ExternalId,
            Self::Email => BuiltinField::Email,
            Self::Name => BuiltinField::Name,
            Self::Phone => BuiltinField::Phone,
            Self::Company => BuiltinField::Company,
            Self::AccountRef => BuiltinField::AccountRef,
        }
    }

    /// The fixed field the segment language's `field` reads, if it is one.
    pub fn of_builtin(field: BuiltinField) -> Option<Self> {
        Self::ALL.into_iter().find(|fixed| fixed.builtin() == field)
    }

    /// Its name in segments, field sources and field policies (`account_ref`).
    pub fn segment_name(self) -> &'static str {
        self.builtin().name()
    }

    /// Its name in the API, exports and imports (`accountRef`).
    pub fn api_name(self) -> &'static str {
        match self {
            Self::ExternalId => "externalId",
            Self::Email => "email",
            Self::Name => "name",
            Self::Phone => "phone",
            Self::Company => "company",
            Self::AccountRef => "accountRef",
        }
    }

    /// The field named `name` in either spelling (`accountRef`, `account_ref`).
    pub fn of_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|fixed| fixed.api_name() == name || fixed.segment_name() == name)
    }

    /// The field named `name` in the segment spelling only (field sources' keys, where any
    /// other name is an attribute's).
    pub fn of_segment_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|fixed| fixed.segment_name() == name)
    }

    /// Its value in `fields`.
    pub fn value(self, fields: &ContactFields) -> Option<&str> {
        match self {
            Self::ExternalId => fields.external_id.as_ref().map(ExternalId::as_str),
            Self::Email => fields.email.as_ref().map(Email::as_str),
            Self::Name => fields.name.as_ref().map(Text::as_str),
            Self::Phone => fields.phone.as_ref().map(Phone::as_str),
            Self::Company => fields.company.as_ref().map(Text::as_str),
            Self::AccountRef => fields.account_ref.as_ref().map(Text::as_str),
        }
    }

    /// Sets its value in `fields` to `value`, known valid (read back from the store, or taken
    /// from another contact); `None` clears it.
    pub fn set_trusted(self, fields: &mut ContactFields, value: Option<String>) {
        match self {
            Self::ExternalId => fields.external_id = value.map(ExternalId::from_trusted),
            Self::Email => fields.email = value.map(Email::from_trusted),
            Self::Name => fields.name = value.map(Text::from_trusted),
            Self::Phone => fields.phone = value.map(Phone::from_trusted),
            Self::Company => fields.company = value.map(Text::from_trusted),
            Self::AccountRef => fields.account_ref = value.map(Text::from_trusted),
        }
    }

    /// Clears its value in `fields`.
    pub fn clear(self, fields: &mut ContactFields) {
        self.set_trusted(fields, None);
    }

    /// Whether `patch` leaves it as it is.
    pub fn is_kept(self, patch: &ContactPatch) -> bool {
        match self {
            Self::ExternalId => patch.external_id.is_kept(),
            Self::Email => patch.email.is_kept(),
            Self::Name => patch.name.is_kept(),
            Self::Phone => patch.phone.is_kept(),
            Self::Company => patch.company.is_kept(),
            Self::AccountRef => patch.account_ref.is_kept(),
        }
    }

    /// Makes `patch` leave it as it is.
    pub fn keep_in(self, patch: &mut ContactPatch) {
        match self {
            Self::ExternalId => patch.external_id = FieldChange::Keep,
            Self::Email => patch.email = FieldChange::Keep,
            Self::Name => patch.name = FieldChange::Keep,
            Self::Phone => patch.phone = FieldChange::Keep,
            Self::Company => patch.company = FieldChange::Keep,
            Self::AccountRef => patch.account_ref = FieldChange::Keep,
        }
    }

    /// Makes `patch` set it to `raw`, validated as this field's values are (`Clear` clears
    /// it, `Keep` keeps it).
    pub fn write(
        self,
        patch: &mut ContactPatch,
        raw: FieldChange<&str>,
    ) -> Result<(), DomainError> {
        fn parsed<T>(
            raw: FieldChange<&str>,
            parse: impl FnOnce(&str) -> Result<T, DomainError>,
        ) -> Result<FieldChange<T>, DomainError> {
            Ok(match raw {
                FieldChange::Keep => FieldChange::Keep,
                FieldChange::Clear => FieldChange::Clear,
                FieldChange::Set(raw) => FieldChange::Set(parse(raw)?),
            })
        }
        let name = self.api_name();
        match self {
            Self::ExternalId => patch.external_id = parsed(raw, ExternalId::parse)?,
            Self::Email => patch.email = parsed(raw, Email::parse)?,
            Self::Name => patch.name = parsed(raw, |raw| Text::parse(name, raw))?,
            Self::Phone => patch.phone = parsed(raw, Phone::parse)?,
            Self::Company => patch.company = parsed(raw, |raw| Text::parse(name, raw))?,
            Self::AccountRef => patch.account_ref = parsed(raw, |raw| Text::parse(name, raw))?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_reads_back_what_was_set_and_is_named_both_ways() {
        let mut fields = ContactFields::default();
        for field in FixedField::ALL {
            assert_eq!(FixedField::of_name(field.api_name()), Some(field));
            assert_eq!(FixedField::of_name(field.segment_name()), Some(field));
            assert_eq!(FixedField::of_builtin(field.builtin()), Some(field));
            let mut patch = ContactPatch::default();
            let raw = match field {
                FixedField::Email => "ada@example.com",
                FixedField::Phone => "+442071838750",
                _ => "x-1",
            };
            field.write(&mut patch, FieldChange::Set(raw)).unwrap();
            assert!(!field.is_kept(&patch));
            fields = patch.apply_to(&fields);
            assert_eq!(field.value(&fields), Some(raw), "{field:?}");
            field.keep_in(&mut patch);
            assert!(field.is_kept(&patch));
        }
        for field in FixedField::ALL {
            field.clear(&mut fields);
            assert_eq!(field.value(&fields), None);
        }
        assert_eq!(fields, ContactFields::default());
    }

    #[test]
    fn a_value_is_validated_as_the_field_wants() {
        let mut patch = ContactPatch::default();
        let error = FixedField::Email
            .write(&mut patch, FieldChange::Set("not an email"))
            .unwrap_err();
        assert!(error.to_string().contains("email"), "{error}");
        assert!(patch.email.is_kept(), "a refused value changes nothing");
    }
}
