//! Attribute registry use cases: declare and list.

use chrono::Utc;

use super::catalog_cache::Catalogs;
use crate::domain::{
    AttributeDefinition, AttributeName, AttributeType, Declaration, MergeRule, Text, WorkspaceId,
};
use crate::service::error::ServiceError;
use crate::store::{Store, StoreError};

/// Attribute registry use cases over the store.
#[derive(Clone)]
pub struct AttributeService {
    store: Store,
    catalogs: Catalogs,
}

impl AttributeService {
    /// Registry use cases writing to `store`, reading the in-memory `catalogs`.
    pub fn new(store: Store, catalogs: Catalogs) -> Self {
        Self { store, catalogs }
    }

    /// Every declared attribute, by name.
    pub fn list(&self, workspace: &WorkspaceId) -> Vec<AttributeDefinition> {
        self.catalogs.workspace(workspace).attributes.clone()
    }

    /// Declares an attribute, or updates the description and merge rule of one declared with
    /// the same type and sensitivity (`merge_rule: None` keeps the current rule, or the type's
    /// default). Sensitive attributes (STRING only) are encrypted at rest.
    pub async fn define(
        &self,
        workspace: &WorkspaceId,
        name: AttributeName,
        value_type: AttributeType,
        description: Option<Text>,
        merge_rule: Option<MergeRule>,
        sensitive: bool,
    ) -> Result<AttributeDefinition, ServiceError> {
        let description = description.map(|text| text.as_str().to_owned());
        if let Some(rule) = merge_rule {
            rule.check_fits(&name, value_type)?;
        }
        if sensitive && value_type != AttributeType::String {
            return Err(ServiceError::invalid(
                "sensitive",
                format!(
                    "only STRING attributes can be sensitive; `{name}` is {}",
                    value_type.described()
                ),
            ));
        }
        let registry = self.catalogs.registry(workspace);
        let declaration = registry
            .check_declaration(&name, value_type, sensitive)
            .map_err(|conflict| ServiceError::Conflict(conflict.0))?;
        let (definition, written) = match declaration {
            Declaration::Redeclared(existing)
                if existing.description == description
                    && merge_rule.is_none_or(|rule| rule == existing.merge_rule) =>
            {
                return Ok(existing);
            }
            Declaration::Redeclared(existing) => {
                let definition = AttributeDefinition {
                    description,
                    merge_rule: merge_rule.unwrap_or(existing.merge_rule),
                    ..existing
                };
                let written = self.store.replace_attribute_definition(&definition).await;
                (definition, written)
            }
            Declaration::New => {
                let definition = AttributeDefinition {
                    workspace: workspace.clone(),
                    name,
                    value_type,
                    description,
                    merge_rule: merge_rule.unwrap_or(MergeRule::default_for(value_type)),
                    sensitive,
                    created_at: Utc::now(),
                };
                let written = self.store.insert_attribute_definition(&definition).await;
                (definition, written)
            }
        };
        match written {
            Ok(()) => {
                self.catalogs.refresh(workspace).await?;
                Ok(definition)
            }
            Err(StoreError::WriteConflict) => Err(ServiceError::Conflict(format!(
                "attribute `{}` is being declared concurrently; retry the request",
                definition.name
            ))),
            Err(other) => Err(other.into()),
        }
    }
}
