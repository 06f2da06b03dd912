//! Per-workspace settings of the identity layer.

use secrecy::SecretString;

use super::{DomainError, MAX_BLOCKED_VALUES, WorkspaceId};

/// Shortest identity secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// What a workspace has configured for identity verification and linking.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceSettings {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The key of the HMAC that proves a user id (`identify`); never printed.
    pub identity_secret: Option<SecretString>,
    /// Identity values this workspace never links, beyond the built-in placeholders.
    pub blocked_identity_values: Vec<String>,
}

impl WorkspaceSettings {
    /// Validates a new identity secret: at least [`MIN_SECRET_BYTES`] bytes, no surrounding spaces.
    pub fn parse_secret(raw: &str) -> Result<SecretString, DomainError> {
        if raw.len() < MIN_SECRET_BYTES || raw.trim() != raw {
            return Err(DomainError::invalid(
                "secret",
                format!(
                    "the identity secret must be at least {MIN_SECRET_BYTES} bytes without surrounding spaces"
                ),
            ));
        }
        Ok(SecretString::from(raw.to_owned()))
    }

    /// Validates a list of blocked identity values (trimmed, deduplicated, bounded).
    pub fn parse_blocked(values: &[String]) -> Result<Vec<String>, DomainError> {
        if values.len() > MAX_BLOCKED_VALUES {
            return Err(DomainError::invalid(
                "values",
                format!("at most {MAX_BLOCKED_VALUES} blocked values are allowed"),
            ));
        }
        let mut blocked: Vec<String> = Vec::new();
        for value in values {
            let value = value.trim();
            if value.is_empty() || value.len() > 255 {
                return Err(DomainError::invalid(
                    "values",
                    "blocked values must be 1 to 255 bytes",
                ));
            }
            if !blocked
                .iter()
                .any(|known| known.eq_ignore_ascii_case(value))
            {
                blocked.push(value.to_owned());
            }
        }
        Ok(blocked)
    }
}
