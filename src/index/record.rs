//! How a contact looks to segments: one mapping used by both back ends (the index documents and
//! the in-memory evaluator), so they cannot disagree on what a field's value is.

use qwry_segment::eval::{FieldValue, Record};
use qwry_segment::{BuiltinField, Field};

use crate::domain::{AttributeValue, Contact, FixedField};

/// The path of a field inside the index's JSON fields: `@name` for built-ins, the attribute's
/// own name when it is made of `A-Z a-z 0-9 _ -`, and `~` + hex of the name otherwise (dots and
/// spaces would need escaping in tantivy's JSON paths and fast-field column names); an event's
/// count at `!` + hex of its name, its n-th latest time at `!` + hex + `_n`; a consent at `^` +
/// its purpose's name (`a-z 0-9 _`). Attribute names start with a letter and never hold `@`,
/// `~`, `!` or `^`, so the forms cannot collide.
pub fn field_path(field: &Field) -> String {
    match field {
        Field::Builtin(builtin) => format!("@{}", builtin.name()),
        Field::Attribute(name)
            if name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            name.clone()
        }
        Field::Attribute(name) => format!("~{}", hex(name)),
        Field::EventCount(name) => format!("!{}", hex(name)),
        Field::EventAt(name, n) => format!("!{}_{n}", hex(name)),
        Field::Consent(purpose) => format!("^{purpose}"),
    }
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A contact seen through the segment language.
pub struct ContactRecord<'a>(pub &'a Contact);

impl ContactRecord<'_> {
    /// Every field that has a value, with it.
    pub fn values(&self) -> Vec<(Field, FieldValue<'_>)> {
        let builtins = BuiltinField::ALL
            .into_iter()
            .filter_map(|builtin| Some((Field::Builtin(builtin), builtin_value(self.0, builtin)?)));
        let attributes = self.0.fields.attributes.iter().map(|(name, value)| {
            (
                Field::Attribute(name.as_str().to_owned()),
                attribute_value(value),
            )
        });
        let events = self.0.activity.events.iter().flat_map(|(name, rollup)| {
            let count = (
                Field::EventCount(name.clone()),
                FieldValue::Number(rollup.count as f64),
            );
            let times = rollup
                .latest
                .iter()
                .zip(1u32..)
                .map(|(at, n)| (Field::EventAt(name.clone(), n), FieldValue::Time(*at)));
            std::iter::once(count).chain(times)
        });
        let consents = self.0.consents.iter().map(|(purpose, consent)| {
            (
                Field::Consent(purpose.as_str().to_owned()),
                FieldValue::Bool(consent.granted),
            )
        });
        builtins
            .chain(attributes)
            .chain(events)
            .chain(consents)
            .collect()
    }
}

impl Record for ContactRecord<'_> {
    fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
        match field {
            Field::Builtin(builtin) => builtin_value(self.0, *builtin),
            Field::Attribute(name) => self
                .0
                .fields
                .attributes
                .get(name.as_str())
                .map(attribute_value),
            // Counts stay far below 2^53, so the float is exact.
            Field::EventCount(name) => self
                .0
                .activity
                .events
                .get(name)
                .map(|rollup| FieldValue::Number(rollup.count as f64)),
            Field::EventAt(name, n) => self
                .0
                .activity
                .events
                .get(name)
                .and_then(|rollup| rollup.latest.get(usize::try_from(*n).ok()?.checked_sub(1)?))
                .map(|at| FieldValue::Time(*at)),
            Field::Consent(purpose) => self
                .0
                .consents
                .get(purpose.as_str())
                .map(|consent| FieldValue::Bool(consent.granted)),
        }
    }
}

fn builtin_value(contact: &Contact, field: BuiltinField) -> Option<FieldValue<'_>> {
    let fields = &contact.fields;
    fn text(value: Option<&str>) -> Option<FieldValue<'_>> {
        value.map(FieldValue::Text)
    }
    match field {
        BuiltinField::ExternalId
        | BuiltinField::Email
        | BuiltinField::Name
        | BuiltinField::Phone
        | BuiltinField::Company
        | BuiltinField::AccountRef => {
            text(FixedField::of_builtin(field).and_then(|fixed| fixed.value(fields)))
        }
        BuiltinField::CreatedAt => Some(FieldValue::Time(contact.created_at)),
        BuiltinField::UpdatedAt => Some(FieldValue::Time(contact.updated_at)),
        BuiltinField::LastSeenAt => fields.last_seen_at.map(FieldValue::Time),
        BuiltinField::FirstSeenAt => contact.first_seen_at().map(FieldValue::Time),
        // Counts stay far below 2^53, so the float is exact.
        BuiltinField::ConversationCount => Some(FieldValue::Number(
            contact.activity.conversation_count as f64,
        )),
        BuiltinField::LastConversationAt => {
            contact.activity.last_conversation_at.map(FieldValue::Time)
        }
    }
}

fn attribute_value(value: &AttributeValue) -> FieldValue<'_> {
    match value {
        AttributeValue::String(text) => FieldValue::Text(text),
        // Only the blind-index token: the index never holds a sensitive plaintext.
        AttributeValue::Sealed(sealed) => FieldValue::Text(&sealed.blind),
        AttributeValue::Number(number) => FieldValue::Number(*number),
        AttributeValue::Bool(flag) => FieldValue::Bool(*flag),
        AttributeValue::Datetime(at) => FieldValue::Time(*at),
        AttributeValue::StringList(items) => FieldValue::List(items),
    }
}
