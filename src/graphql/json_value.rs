//! The `JSON` scalar built straight as an async-graphql value. A page of 100 contacts with 20
//! attributes each went through `serde_json` values and then async-graphql's serializer, one
//! string copy after another; building the response value directly skips both.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::Field;
use async_graphql::registry::{MetaType, MetaTypeId, Registry};
use async_graphql::{
    ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult,
    Value as GraphqlValue,
};

use crate::domain::AttributeValue;

/// A value of the `JSON` scalar (the same scalar as `async_graphql::Json`), already built. The
/// response takes it when the field resolves (a page's attributes are not copied once more);
/// a second resolution of the same value, which async-graphql never does, is an error.
pub struct JsonValue(Mutex<Option<GraphqlValue>>);

impl JsonValue {
    /// An object of `entries`, in their order.
    pub fn object(entries: impl IntoIterator<Item = (Name, GraphqlValue)>) -> Self {
        Self::from(GraphqlValue::Object(
            entries.into_iter().collect::<IndexMap<_, _>>(),
        ))
    }
}

impl From<GraphqlValue> for JsonValue {
    fn from(value: GraphqlValue) -> Self {
        Self(Mutex::new(Some(value)))
    }
}

/// The API's JSON of an attribute value: datetimes as RFC 3339 text, a sealed value as null.
pub fn attribute_value(value: &AttributeValue) -> GraphqlValue {
    match value {
        AttributeValue::Sealed(_) => GraphqlValue::Null,
        AttributeValue::String(text) => GraphqlValue::String(text.clone()),
        AttributeValue::Number(number) => {
            crate::domain::json_number(*number).map_or(GraphqlValue::Null, GraphqlValue::Number)
        }
        AttributeValue::Bool(flag) => GraphqlValue::Boolean(*flag),
        AttributeValue::Datetime(at) => GraphqlValue::String(at.to_rfc3339()),
        AttributeValue::StringList(items) => {
            GraphqlValue::List(items.iter().cloned().map(GraphqlValue::String).collect())
        }
    }
}

impl OutputType for JsonValue {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("JSON")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        registry.create_output_type::<Self, _>(MetaTypeId::Scalar, |_| MetaType::Scalar {
            name: "JSON".to_owned(),
            description: Some("A scalar that can represent any JSON value.".to_owned()),
            is_valid: None,
            visible: None,
            inaccessible: false,
            tags: Default::default(),
            specified_by_url: None,
            directive_invocations: Default::default(),
            requires_scopes: Default::default(),
        })
    }

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<GraphqlValue> {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        taken.ok_or_else(|| ServerError::new("a JSON value was resolved twice", None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value built here serializes exactly as the domain's JSON of the same value.
    #[test]
    fn attribute_values_match_the_domain_json() {
        let values = [
            AttributeValue::String("pro \"plan\"".into()),
            AttributeValue::Number(3.5),
            AttributeValue::Number(f64::NAN),
            AttributeValue::Bool(true),
            AttributeValue::Datetime("2026-12-03T12:00:00.5Z".parse().unwrap()),
            AttributeValue::StringList(vec!["vip".into(), "eu".into()]),
        ];
        for value in values {
            let built = serde_json::to_value(attribute_value(&value)).unwrap();
            assert_eq!(built, value.to_json(), "{value:?}");
        }
    }
}
