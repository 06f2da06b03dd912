//! Attribute registry use cases: declare and list.

use chrono::Utc;

use super::ServiceError;
use crate::domain::{
    AttributeDefinition, AttributeName, AttributeRegistry, AttributeType, Declaration, Text,
    WorkspaceId,
};
use crate::store::{Store, StoreError};

/// Attribute registry use cases over the store.
#[derive(Clone)]
pub struct AttributeService {
    store: Store,
}

impl AttributeService {
    /// Registry use cases backed by `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Every declared attribute, by name.
    pub async fn list(
        &self,
        workspace: &WorkspaceId,
    ) -> Result<Vec<AttributeDefinition>, ServiceError> {
        Ok(self.store.attribute_definitions(workspace).await?)
    }

    /// Declares an attribute, or updates the description of one declared with the same type.
    pub async fn define(
        &self,
        workspace: &WorkspaceId,
        name: AttributeName,
        value_type: AttributeType,
        description: Option<Text>,
    ) -> Result<AttributeDefinition, ServiceError> {
        let description = description.map(|text| text.as_str().to_owned());
        let registry = AttributeRegistry::new(self.store.attribute_definitions(workspace).await?);
        let declaration = registry
            .check_declaration(&name, value_type)
            .map_err(|conflict| ServiceError::Conflict(conflict.0))?;
        let (definition, written) = match declaration {
            Declaration::Redeclared(existing) if existing.description == description => {
                return Ok(existing);
            }
            Declaration::Redeclared(existing) => {
                let definition = AttributeDefinition {
                    description,
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
                    created_at: Utc::now(),
                };
                let written = self.store.insert_attribute_definition(&definition).await;
                (definition, written)
            }
        };
        match written {
            Ok(()) => Ok(definition),
            Err(StoreError::WriteConflict) => Err(ServiceError::Conflict(format!(
                "attribute `{}` is being declared concurrently; retry the request",
                definition.name
            ))),
            Err(other) => Err(other.into()),
        }
    }
}
