//! Arguments and inputs several roots share: contact fields, identity lookups, segment
//! sources, consistency and page sizes. Each is parsed here, at the edge, into service types.

use async_graphql::{Enum, InputObject, Json, MaybeUndefined};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::identity_view::IdentityKindView;
use super::segment_input::SegmentExprInput;
use crate::domain::{DomainError, Email, ExternalId, FieldChange, IdentityKey, Phone, Text};
use crate::service::{Consistency, PatchInput, SegmentSource, ServiceError};

/// Fields shared by upserts and patches. Omitted fields stay as they are; `null` clears.
#[derive(InputObject)]
pub struct ContactFieldsInput {
    /// Email address; normalised to lower case.
    email: MaybeUndefined<String>,
    /// Display name.
    name: MaybeUndefined<String>,
    /// Phone number with country code; stored as E.164.
    phone: MaybeUndefined<String>,
    /// Company name.
    company: MaybeUndefined<String>,
    /// Account or order reference in the business's system.
    account_ref: MaybeUndefined<String>,
    /// Last activity seen from this person.
    last_seen_at: MaybeUndefined<DateTime<Utc>>,
    /// Custom attributes by declared name; a `null` value unsets that attribute.
    attributes: Option<Json<JsonValue>>,
}

impl ContactFieldsInput {
    /// The fields as a change; `external_id` is the caller's, as the two inputs differ there.
    pub fn into_patch_input(
        self,
        external_id: FieldChange<ExternalId>,
    ) -> Result<PatchInput, ServiceError> {
        let attributes = match self.attributes.map(|json| json.0) {
            None => serde_json::Map::new(),
            Some(JsonValue::Object(map)) => map,
            Some(_) => {
                return Err(ServiceError::invalid(
                    "attributes",
                    "`attributes` must be an object of attribute names to values",
                ));
            }
        };
        Ok(PatchInput {
            external_id,
            email: parse_change(self.email, Email::parse)?,
            name: parse_change(self.name, |raw| Text::parse("name", raw))?,
            phone: parse_change(self.phone, Phone::parse)?,
            company: parse_change(self.company, |raw| Text::parse("company", raw))?,
            account_ref: parse_change(self.account_ref, |raw| Text::parse("accountRef", raw))?,
            last_seen_at: field_change(self.last_seen_at),
            attributes,
        })
    }
}

/// `MaybeUndefined` as a change: omitted keeps, `null` clears.
pub fn field_change<T>(value: MaybeUndefined<T>) -> FieldChange<T> {
    match value {
        MaybeUndefined::Undefined => FieldChange::Keep,
        MaybeUndefined::Null => FieldChange::Clear,
        MaybeUndefined::Value(value) => FieldChange::Set(value),
    }
}

/// Parses a nullable text field into a change.
pub fn parse_change<T>(
    value: MaybeUndefined<String>,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<FieldChange<T>, ServiceError> {
    Ok(field_change(value).try_map(|raw| parse(&raw))?)
}

/// The one value of `given` that is present, or `None` when none or several are: for an input
/// that takes its new `@oneOf` form or one of the deprecated separate arguments it replaces.
pub fn exactly_one<T>(given: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    let mut present = given.into_iter().flatten();
    match (present.next(), present.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// An identity to look a contact up by.
#[derive(InputObject)]
pub struct IdentityInput {
    /// Its kind.
    kind: IdentityKindView,
    /// Its value (normalised like the field: emails lower-cased, phones to E.164).
    value: String,
}

impl IdentityInput {
    /// The normalised key.
    pub fn key(&self) -> Result<IdentityKey, ServiceError> {
        Ok(IdentityKey::parse(self.kind.into(), &self.value, &[])?)
    }
}

/// The order of a contact list: by a built-in datetime or number (`createdAt`, `updatedAt`,
/// `lastSeenAt`, `firstSeenAt`, `conversationCount`, `lastConversationAt`) or a number or
/// datetime attribute, contacts without a value last, ties by id.
#[derive(InputObject, Clone, Debug)]
pub struct ContactOrderInput {
    /// The field: a built-in by its API name (`lastSeenAt`; the segment spelling
    /// `last_seen_at` is read too) or an attribute by its name (`ltv`).
    pub field: String,
    /// Smallest or largest first.
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Which end of an order comes first.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
pub enum SortDirection {
    /// Smallest (earliest) first.
    #[default]
    Asc,
    /// Largest (latest) first.
    Desc,
}

/// How fresh segment results must be.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq, Default)]
#[graphql(name = "Consistency")]
pub enum ConsistencyView {
    /// The latest committed index; writes show up within the indexing delay (100 ms by default).
    #[default]
    Default,
    /// Wait (at most 5 s) until every write committed before the query began is indexed.
    Latest,
}

impl From<ConsistencyView> for Consistency {
    fn from(value: ConsistencyView) -> Self {
        match value {
            ConsistencyView::Default => Consistency::Committed,
            ConsistencyView::Latest => Consistency::Latest,
        }
    }
}

/// Turns the `segment` / `where` arguments into a source; exactly one may be given.
pub fn segment_source(
    text: Option<String>,
    tree: Option<SegmentExprInput>,
) -> Result<Option<SegmentSource>, ServiceError> {
    match (text, tree) {
        (None, None) => Ok(None),
        (Some(text), None) => Ok(Some(SegmentSource::Text(text))),
        (None, Some(tree)) => Ok(Some(SegmentSource::Tree(tree.to_expr()?))),
        (Some(_), Some(_)) => Err(ServiceError::invalid(
            "segment",
            "give `segment` or `where`, not both",
        )),
    }
}

/// Checks a page size against the limit.
pub fn page_size(first: i32) -> Result<usize, ServiceError> {
    let size = usize::try_from(first).map_err(|_| {
        ServiceError::invalid(
            "first",
            format!("`first` is {first}; it must not be negative"),
        )
    })?;
    if size > crate::service::MAX_PAGE_SIZE {
        return Err(ServiceError::invalid(
            "first",
            format!(
                "`first` is {first}; pages hold at most {} items",
                crate::service::MAX_PAGE_SIZE
            ),
        ));
    }
    Ok(size)
}
