//! Stored shapes of domain records and the conversions between them; private to the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use surrealdb::types::{
    Array, Datetime, Number, Object, RecordId, RecordIdKey, SurrealValue, Value,
};

use super::StoreError;
use crate::domain::{
    ActivitySummary, AttributeDefinition, AttributeName, AttributeType, AttributeValue, Consent,
    ConsentOrigin, Consents, Contact, ContactFields, ContactId, Email, EventRollup, ExternalId,
    MergeRule, Phone, Provenance, PurposeName, SealedValue, Text, Verification, VerificationMethod,
    WorkspaceId, WrittenBy, earliest,
};

pub(super) const CONTACT_TABLE: &str = "contact";
pub(super) const ATTRIBUTE_TABLE: &str = "attribute";

/// `contact:[workspace, id]`.
pub(super) fn contact_key(workspace: &WorkspaceId, id: &ContactId) -> RecordId {
    compound_key(CONTACT_TABLE, workspace, id.to_string())
}

/// `attribute:[workspace, name]`.
pub(super) fn attribute_key(workspace: &WorkspaceId, name: &AttributeName) -> RecordId {
    compound_key(ATTRIBUTE_TABLE, workspace, name.as_str().to_owned())
}

pub(super) fn compound_key(table: &str, workspace: &WorkspaceId, local: String) -> RecordId {
    let parts = vec![workspace.as_str().to_owned(), local];
    RecordId::new(table, RecordIdKey::Array(Array::from(parts)))
}

/// The workspace and contact id of a `contact:[workspace, id]` record id.
pub(super) fn contact_key_parts(id: &RecordId) -> Result<(WorkspaceId, ContactId), StoreError> {
    if let RecordIdKey::Array(parts) = &id.key
        && let (Some(Value::String(workspace)), Some(Value::String(local))) =
            (parts.first(), parts.get(1))
        && let Ok(contact) = ContactId::parse(local)
    {
        return Ok((WorkspaceId::from_trusted(workspace.clone()), contact));
    }
    Err(StoreError::Corrupt(format!(
        "unexpected contact id shape {:?}",
        id.key
    )))
}

/// The local part (after the workspace) of a compound record id.
pub(super) fn local_key(id: &RecordId) -> Result<String, StoreError> {
    if let RecordIdKey::Array(parts) = &id.key
        && let Some(Value::String(local)) = parts.get(1)
    {
        return Ok(local.clone());
    }
    Err(StoreError::Corrupt(format!(
        "unexpected record id shape {:?}",
        id.key
    )))
}

/// A contact as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct ContactRecord {
    id: RecordId,
    workspace: String,
    external_id: Option<String>,
    email: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    account_ref: Option<String>,
    attributes: BTreeMap<String, Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    revision: i64,
    created_by: Option<String>,
    updated_by: Option<String>,
    /// Field key to provenance (storage spelling), as written by schema versions 1-3: one
    /// SurrealDB value per field. Read when `sources` is absent; never written now.
    field_sources: Option<BTreeMap<String, String>>,
    /// The same map as one JSON string (`{"email":"import",...}`): SurrealDB stores, merges
    /// and serializes a record value by value, and the map's twenty-odd values cost about as
    /// much again as the rest of an imported contact (see BENCHMARKS.md).
    sources: Option<String>,
    verification: Option<VerificationRecord>,
    /// Absent in records written before conversations were recorded.
    conversation_count: Option<i64>,
    last_conversation_at: Option<DateTime<Utc>>,
    /// Absent in records written before it was kept (then `last_seen_at` stands in).
    first_seen_at: Option<DateTime<Utc>>,
    /// Event name to its rollup; absent when the contact has no events.
    events: Option<BTreeMap<String, EventRollupRecord>>,
    /// Purpose name to the latest statement; absent when the contact made none.
    consents: Option<BTreeMap<String, ConsentRecord>>,
}

/// A contact's latest statement about one purpose, as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct ConsentRecord {
    granted: bool,
    at: DateTime<Utc>,
    source: Option<String>,
    provenance: String,
    recorded_by: String,
    revision: i64,
}

impl ConsentRecord {
    fn from_consent(consent: &Consent) -> Self {
        Self {
            granted: consent.granted,
            at: consent.origin.at,
            source: consent.origin.source.clone(),
            provenance: consent.origin.provenance.as_str().to_owned(),
            recorded_by: consent.origin.recorded_by.clone(),
            revision: i64::try_from(consent.revision).unwrap_or(i64::MAX),
        }
    }

    fn into_consent(self) -> Result<Consent, StoreError> {
        let provenance = Provenance::from_storage(&self.provenance).ok_or_else(|| {
            StoreError::Corrupt(format!("consent provenance `{}`", self.provenance))
        })?;
        Ok(Consent {
            granted: self.granted,
            origin: ConsentOrigin {
                at: self.at,
                source: self.source,
                provenance,
                recorded_by: self.recorded_by,
            },
            revision: u64::try_from(self.revision).unwrap_or(0),
        })
    }
}

fn consents_to_records(consents: &Consents) -> Option<BTreeMap<String, ConsentRecord>> {
    (!consents.is_empty()).then(|| {
        consents
            .iter()
            .map(|(purpose, consent)| {
                (
                    purpose.as_str().to_owned(),
                    ConsentRecord::from_consent(consent),
                )
            })
            .collect()
    })
}

fn consents_from_records(
    records: Option<BTreeMap<String, ConsentRecord>>,
) -> Result<Consents, StoreError> {
    records
        .unwrap_or_default()
        .into_iter()
        .map(|(purpose, record)| Ok((PurposeName::from_trusted(purpose), record.into_consent()?)))
        .collect()
}

/// One event name's rollup, as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct EventRollupRecord {
    count: i64,
    latest: Vec<DateTime<Utc>>,
}

/// A contact's last verified identification, as stored.
#[derive(Debug, Clone, SurrealValue)]
pub(super) struct VerificationRecord {
    verified_at: DateTime<Utc>,
    method: String,
    anonymous_id: Option<String>,
    visitors: BTreeMap<String, DateTime<Utc>>,
}

impl VerificationRecord {
    fn from_verification(verification: &Verification) -> Self {
        Self {
            verified_at: verification.verified_at,
            method: verification.method.as_str().to_owned(),
            anonymous_id: verification.anonymous_id.clone(),
            visitors: verification.visitors.clone(),
        }
    }

    fn into_verification(self) -> Result<Verification, StoreError> {
        let method = VerificationMethod::parse(&self.method)
            .ok_or_else(|| StoreError::Corrupt(format!("verification method `{}`", self.method)))?;
        Ok(Verification {
            verified_at: self.verified_at,
            method,
            anonymous_id: self.anonymous_id,
            visitors: self.visitors,
        })
    }
}

impl ContactRecord {
    pub(super) fn from_contact(contact: &Contact) -> Self {
        let fields = &contact.fields;
        let text = |value: &Option<Text>| value.as_ref().map(|t| t.as_str().to_owned());
        Self {
            id: contact_key(&contact.workspace, &contact.id),
            workspace: contact.workspace.as_str().to_owned(),
            external_id: fields.external_id.as_ref().map(|e| e.as_str().to_owned()),
            email: fields.email.as_ref().map(|e| e.as_str().to_owned()),
            name: text(&fields.name),
            phone: fields.phone.as_ref().map(|p| p.as_str().to_owned()),
            company: text(&fields.company),
            account_ref: text(&fields.account_ref),
            attributes: fields
                .attributes
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), attribute_to_value(value)))
                .collect(),
            created_at: contact.created_at,
            updated_at: contact.updated_at,
            last_seen_at: fields.last_seen_at,
            revision: i64::try_from(contact.revision).unwrap_or(i64::MAX),
            created_by: contact.written_by.as_ref().map(|w| w.created_by.clone()),
            updated_by: contact.written_by.as_ref().map(|w| w.updated_by.clone()),
            field_sources: None,
            sources: Some(encode_sources(&contact.field_sources)),
            verification: contact
                .verification
                .as_ref()
                .map(VerificationRecord::from_verification),
            conversation_count: (contact.activity.conversation_count > 0)
                .then(|| i64::try_from(contact.activity.conversation_count).unwrap_or(i64::MAX)),
            last_conversation_at: contact.activity.last_conversation_at,
            first_seen_at: contact.first_seen_at(),
            events: (!contact.activity.events.is_empty()).then(|| {
                contact
                    .activity
                    .events
                    .iter()
                    .map(|(name, rollup)| {
                        let record = EventRollupRecord {
                            count: i64::try_from(rollup.count).unwrap_or(i64::MAX),
                            latest: rollup.latest.clone(),
                        };
                        (name.clone(), record)
                    })
                    .collect()
            }),
            consents: consents_to_records(&contact.consents),
        }
    }

    pub(super) fn into_contact(self) -> Result<Contact, StoreError> {
        let id = ContactId::parse(&local_key(&self.id)?)
            .map_err(|e| StoreError::Corrupt(format!("contact id: {e}")))?;
        let attributes = self
            .attributes
            .into_iter()
            .map(|(name, value)| {
                let value = attribute_from_value(value).ok_or_else(|| {
                    StoreError::Corrupt(format!("attribute `{name}` of contact {id}"))
                })?;
                Ok((AttributeName::from_trusted(name), value))
            })
            .collect::<Result<_, StoreError>>()?;
        let fields = ContactFields {
            external_id: self.external_id.map(ExternalId::from_trusted),
            email: self.email.map(Email::from_trusted),
            name: self.name.map(Text::from_trusted),
            phone: self.phone.map(Phone::from_trusted),
            company: self.company.map(Text::from_trusted),
            account_ref: self.account_ref.map(Text::from_trusted),
            attributes,
            last_seen_at: self.last_seen_at,
        };
        let stored_sources = match self.sources {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("field sources of contact {id}: {e}")))?,
            None => self.field_sources.unwrap_or_default(),
        };
        let field_sources = stored_sources
            .into_iter()
            .map(|(key, raw)| {
                let provenance = Provenance::from_storage(&raw).ok_or_else(|| {
                    StoreError::Corrupt(format!("source `{raw}` of `{key}` of contact {id}"))
                })?;
                Ok((key, provenance))
            })
            .collect::<Result<_, StoreError>>()?;
        let verification = self
            .verification
            .map(VerificationRecord::into_verification)
            .transpose()?;
        Ok(Contact {
            id,
            workspace: WorkspaceId::from_trusted(self.workspace),
            fields,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: u64::try_from(self.revision).unwrap_or_default(),
            written_by: match (self.created_by, self.updated_by) {
                (Some(created_by), Some(updated_by)) => Some(WrittenBy {
                    created_by,
                    updated_by,
                }),
                _ => None,
            },
            field_sources,
            verification,
            consents: consents_from_records(self.consents)?,
            activity: ActivitySummary {
                conversation_count: self
                    .conversation_count
                    .and_then(|count| u64::try_from(count).ok())
                    .unwrap_or(0),
                last_conversation_at: self.last_conversation_at,
                first_seen_at: earliest(self.first_seen_at, self.last_seen_at),
                events: self
                    .events
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(name, record)| {
                        let rollup = EventRollup {
                            count: u64::try_from(record.count).unwrap_or(0),
                            latest: record.latest,
                        };
                        (name, rollup)
                    })
                    .collect(),
            },
        })
    }
}

/// Keys of the object a sealed value is stored as.
const SEALED_KEY: &str = "sealed";
const BLIND_KEY: &str = "blind";

fn attribute_to_value(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::Sealed(sealed) => {
            let mut object = Object::new();
            object.insert(SEALED_KEY, sealed.ciphertext.clone());
            object.insert(BLIND_KEY, sealed.blind.clone());
            Value::Object(object)
        }
        AttributeValue::String(text) => Value::String(text.clone()),
        AttributeValue::Number(number) => Value::Number(Number::Float(*number)),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Datetime(at) => Value::Datetime(Datetime::from(*at)),
        AttributeValue::StringList(items) => Value::Array(Array::from(items.clone())),
    }
}

fn attribute_from_value(value: Value) -> Option<AttributeValue> {
    Some(match value {
        Value::String(text) => AttributeValue::String(text),
        Value::Number(Number::Float(number)) => AttributeValue::Number(number),
        Value::Number(Number::Int(number)) => AttributeValue::Number(number as f64),
        Value::Bool(flag) => AttributeValue::Bool(flag),
        Value::Datetime(at) => AttributeValue::Datetime(at.into()),
        Value::Object(object) => match (object.get(SEALED_KEY), object.get(BLIND_KEY)) {
            (Some(Value::String(ciphertext)), Some(Value::String(blind))) => {
                AttributeValue::Sealed(SealedValue {
                    ciphertext: ciphertext.clone(),
                    blind: blind.clone(),
                })
            }
            _ => return None,
        },
        Value::Array(items) => AttributeValue::StringList(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// An attribute definition as stored.
#[derive(Debug, SurrealValue)]
pub(super) struct AttributeRecord {
    pub(super) id: RecordId,
    workspace: String,
    name: String,
    value_type: String,
    description: Option<String>,
    merge_rule: Option<String>,
    sensitive: Option<bool>,
    created_at: DateTime<Utc>,
}

impl AttributeRecord {
    pub(super) fn from_definition(definition: &AttributeDefinition) -> Self {
        Self {
            id: attribute_key(&definition.workspace, &definition.name),
            workspace: definition.workspace.as_str().to_owned(),
            name: definition.name.as_str().to_owned(),
            value_type: definition.value_type.as_str().to_owned(),
            description: definition.description.clone(),
            merge_rule: Some(definition.merge_rule.as_str().to_owned()),
            sensitive: Some(definition.sensitive),
            created_at: definition.created_at,
        }
    }

    pub(super) fn into_definition(self) -> Result<AttributeDefinition, StoreError> {
        let value_type = AttributeType::from_storage(&self.value_type).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "attribute `{}` has type `{}`",
                self.name, self.value_type
            ))
        })?;
        let merge_rule = match self.merge_rule.as_deref() {
            None => MergeRule::default_for(value_type),
            Some(raw) => MergeRule::from_storage(raw).ok_or_else(|| {
                StoreError::Corrupt(format!("attribute `{}` has merge rule `{raw}`", self.name))
            })?,
        };
        Ok(AttributeDefinition {
            workspace: WorkspaceId::from_trusted(self.workspace),
            name: AttributeName::from_trusted(self.name),
            value_type,
            description: self.description,
            merge_rule,
            sensitive: self.sensitive.unwrap_or(false),
            created_at: self.created_at,
        })
    }
}

/// `sources` as the JSON string kept in a contact record's `sources`.
fn encode_sources(sources: &crate::domain::FieldSources) -> String {
    let spelled: BTreeMap<&str, &str> = sources
        .iter()
        .map(|(key, provenance)| (key.as_str(), provenance.as_str()))
        .collect();
    serde_json::to_string(&spelled).unwrap_or_else(|_| "{}".to_owned())
}
