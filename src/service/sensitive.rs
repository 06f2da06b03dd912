//! Opening sealed (sensitive) attribute values for callers allowed to read them.

use std::sync::Arc;

use tracing::error;

use crate::domain::{AttributeName, AttributeValue, Contact, Sealer, WorkspaceId};

/// Turns sealed values back into text. Callers decide who may see them (`pii:read`); this only
/// holds the key.
#[derive(Clone)]
pub struct Revealer(Option<Arc<dyn Sealer>>);

impl Revealer {
    /// A revealer opening values with `sealer` (none: sealed values stay hidden).
    pub fn new(sealer: Option<Arc<dyn Sealer>>) -> Self {
        Self(sealer)
    }

    /// The plaintext of `value` when sealed (`None` when it cannot be opened: logged, since it
    /// means a wrong or lost key), or `value` itself.
    pub fn open(
        &self,
        workspace: &WorkspaceId,
        name: &AttributeName,
        value: &AttributeValue,
    ) -> Option<AttributeValue> {
        let AttributeValue::Sealed(sealed) = value else {
            return Some(value.clone());
        };
        let sealer = self.0.as_ref()?;
        match sealer.open(workspace, name.as_str(), sealed) {
            Ok(text) => Some(AttributeValue::String(text)),
            Err(problem) => {
                error!(%workspace, attribute = %name, %problem, "a sensitive value cannot be opened");
                None
            }
        }
    }

    /// `contact` with every sealed value opened (values that cannot be opened are left out).
    pub fn contact(&self, mut contact: Contact) -> Contact {
        let workspace = contact.workspace.clone();
        let attributes = std::mem::take(&mut contact.fields.attributes);
        contact.fields.attributes = attributes
            .into_iter()
            .filter_map(|(name, value)| {
                let opened = self.open(&workspace, &name, &value)?;
                Some((name, opened))
            })
            .collect();
        contact
    }
}
