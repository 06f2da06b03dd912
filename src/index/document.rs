//! Contact -> tantivy document.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use qwry_segment::eval::{FieldValue, Record};
use tantivy::TantivyDocument;
use tantivy::schema::OwnedValue;

use super::record::{ContactRecord, field_path};
use super::schema::IndexFields;
use super::search_text::{SEARCHABLE, fold_whole, fold_words};
use crate::domain::{Contact, ContactId, WorkspaceId};

/// The unique key term of a contact's document.
pub fn document_key(workspace: &WorkspaceId, id: &ContactId) -> String {
    format!("{workspace}/{id}")
}

/// A datetime as the index stores it: nanoseconds since the epoch, clamped to i64 (stored values
/// are validated to lie well inside that range; clamping keeps comparisons with far-off literals
/// monotone).
pub fn time_key(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The ULID as (high, low) 64-bit halves; their lexicographic order is the id order.
pub fn id_halves(id: &ContactId) -> (u64, u64) {
    let value = id.as_u128();
    ((value >> 64) as u64, value as u64)
}

/// The values type-ahead search looks in, folded whole and as words, by path.
fn searchable(contact: &Contact) -> (BTreeMap<String, OwnedValue>, BTreeMap<String, OwnedValue>) {
    let mut whole = BTreeMap::new();
    let mut words = BTreeMap::new();
    let record = ContactRecord(contact);
    for builtin in SEARCHABLE {
        let field = qwry_segment::Field::Builtin(builtin);
        let Some(FieldValue::Text(value)) = record.value(&field) else {
            continue;
        };
        let path = field_path(&field);
        whole.insert(path.clone(), OwnedValue::Str(fold_whole(value)));
        let folded: Vec<OwnedValue> = fold_words(value).into_iter().map(OwnedValue::Str).collect();
        words.insert(path, OwnedValue::Array(folded));
    }
    (whole, words)
}

/// Builds the document of `contact`.
pub fn contact_document(fields: &IndexFields, contact: &Contact) -> TantivyDocument {
    let mut document = TantivyDocument::default();
    document.add_text(fields.workspace, contact.workspace.as_str());
    document.add_text(fields.key, document_key(&contact.workspace, &contact.id));
    let (hi, lo) = id_halves(&contact.id);
    document.add_u64(fields.id_hi, hi);
    document.add_u64(fields.id_lo, lo);
    document.add_u64(fields.revision, contact.revision);

    let mut text = BTreeMap::new();
    let mut text_lower = BTreeMap::new();
    let mut number = BTreeMap::new();
    let mut time = BTreeMap::new();
    let mut flag = BTreeMap::new();
    let mut list = BTreeMap::new();
    let record = ContactRecord(contact);
    for (field, value) in record.values() {
        let path = field_path(&field);
        document.add_text(fields.present, &path);
        match value {
            FieldValue::Text(value) => {
                text.insert(path.clone(), OwnedValue::Str(value.to_owned()));
                text_lower.insert(path, OwnedValue::Str(value.to_lowercase()));
            }
            FieldValue::Number(value) => {
                number.insert(path, OwnedValue::F64(value));
            }
            FieldValue::Bool(value) => {
                flag.insert(path, OwnedValue::Bool(value));
            }
            FieldValue::Time(value) => {
                time.insert(path, OwnedValue::I64(time_key(value)));
            }
            FieldValue::List(items) => {
                let items = items
                    .iter()
                    .map(|item| OwnedValue::Str(item.clone()))
                    .collect();
                list.insert(path, OwnedValue::Array(items));
            }
        }
    }
    let (search, search_words) = searchable(contact);
    for (field, object) in [
        (fields.search, search),
        (fields.search_words, search_words),
        (fields.text, text),
        (fields.text_lower, text_lower),
        (fields.number, number),
        (fields.time, time),
        (fields.flag, flag),
        (fields.list, list),
    ] {
        if !object.is_empty() {
            document.add_object(field, object);
        }
    }
    document
}
