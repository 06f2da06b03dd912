//! Validation errors raised while parsing input into domain types.

/// A value that does not satisfy a domain rule. Messages name the offending value and say how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A fixed field or argument is malformed.
    #[error("{message}")]
    InvalidInput {
        /// The input field at fault, in the API's spelling.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A custom attribute is undeclared, misnamed or has a value of the wrong type.
    #[error("{message}")]
    InvalidAttribute {
        /// The attribute at fault.
        attribute: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An identity value is malformed or a placeholder that is never linked.
    #[error("{message}")]
    InvalidIdentity {
        /// The identity kind, in storage spelling.
        kind: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl DomainError {
    /// An [`DomainError::InvalidInput`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`DomainError::InvalidAttribute`] for `attribute`.
    pub fn attribute(attribute: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidAttribute {
            attribute: attribute.into(),
            message: message.into(),
        }
    }
}
