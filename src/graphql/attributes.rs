//! Attribute registry queries and mutations.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use super::consents;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::views::{AttributeTypeView, AttributeView, MergeRuleView};
use super::workspace;
use crate::domain::Scope;
use crate::domain::{AttributeName, Text};
use crate::service::{ServiceError, Services};

/// Attribute registry queries.
pub struct AttributeQuery {
    services: Services,
}

impl AttributeQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Attribute registry queries.
#[Object]
impl AttributeQuery {
    /// Every custom attribute the workspace has declared, by name.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn attributes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<AttributeView>> {
        let workspace = &workspace(ctx)?;
        let definitions = self.services.attributes.list(workspace);
        Ok(definitions.into_iter().map(AttributeView).collect())
    }

    /// Every consent purpose the workspace has declared, by name.
    async fn consent_purposes(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<consents::ConsentPurposeView>> {
        consents::consent_purposes(&self.services, ctx)
    }
}

/// Attribute registry mutations.
pub struct AttributeMutation {
    services: Services,
}

impl AttributeMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Attribute registry mutations.
#[Object]
impl AttributeMutation {
    /// Declares a custom attribute. Declaring it again with the same type and sensitivity
    /// updates the description and merge rule; a different type or sensitivity is a CONFLICT.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn define_attribute(
        &self,
        ctx: &Context<'_>,
        input: DefineAttributeInput,
    ) -> async_graphql::Result<DefineAttributePayload> {
        let workspace = &workspace(ctx)?;
        let name = AttributeName::parse(&input.name)
            .map_err(ServiceError::from)
            .api()?;
        let description = input
            .description
            .map(|text| Text::parse("description", &text))
            .transpose()
            .map_err(ServiceError::from)
            .api()?;
        let definition = self
            .services
            .attributes
            .define(
                workspace,
                name,
                input.value_type.into(),
                description,
                input.merge_rule.map(Into::into),
                input.sensitive,
            )
            .await
            .api()?;
        Ok(DefineAttributePayload {
            attribute: AttributeView(definition),
        })
    }

    /// Declares a consent purpose (`marketing_email`, `sms`) that contacts can grant or
    /// withdraw and segments can test (`consent "marketing_email"`). Declaring it again updates
    /// its description. At most 100 per workspace (admin).
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn define_consent_purpose(
        &self,
        ctx: &Context<'_>,
        input: consents::DefineConsentPurposeInput,
    ) -> async_graphql::Result<consents::DefineConsentPurposePayload> {
        consents::define_consent_purpose(&self.services, ctx, input).await
    }
}

/// The result of `defineAttribute`.
#[derive(SimpleObject)]
struct DefineAttributePayload {
    /// The attribute's definition as it stands now.
    attribute: AttributeView,
}

/// Input of `defineAttribute`.
#[derive(InputObject)]
struct DefineAttributeInput {
    /// A letter, then letters, digits, `_`, `-`, `.` or spaces (at most 64 bytes).
    name: String,
    /// The type every value must have.
    #[graphql(name = "type")]
    value_type: AttributeTypeView,
    /// What the attribute means, for people building segments.
    description: Option<String>,
    /// How values combine when two contacts merge; omitted keeps the current rule (new
    /// attributes: UNION for string lists, SURVIVOR otherwise).
    merge_rule: Option<MergeRuleView>,
    /// Personal data (STRING only): encrypted at rest, readable only with `pii:read`, and
    /// matched in segments only exactly (`=`, `!=`, `in`, `not in`, `exists`; ignoring case and
    /// surrounding spaces) through a keyed hash. Fixed once declared.
    #[graphql(default)]
    sensitive: bool,
}
