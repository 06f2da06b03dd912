//! Per-workspace settings of the identity layer.

use chrono::Duration;
use secrecy::SecretString;

use super::{DomainError, MAX_BLOCKED_VALUES, WorkspaceId};

/// Shortest identity secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest lifetime (`exp` - now) an identity token may have, unless the workspace says.
pub const DEFAULT_TOKEN_MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;
/// How long a verified identification personalises a visitor, unless the workspace says.
pub const DEFAULT_VERIFICATION_LIFETIME_SECS: u64 = 30 * 24 * 60 * 60;
/// Public keys (or secrets) active at once: the current and the next, for rotation.
pub const MAX_ACTIVE_KEYS: usize = 2;

/// What a workspace has configured for identity verification and linking.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceSettings {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The key of the HMAC that proves a user id (`identify`); never printed.
    pub identity_secret: Option<SecretString>,
    /// Identity values this workspace never links, beyond the built-in placeholders.
    pub blocked_identity_values: Vec<String>,
    /// The secret replaced by the last rotation, still accepted until retired.
    pub previous_identity_secret: Option<SecretString>,
    /// PEM public keys (RSA or P-256) whose RS256/ES256 identity tokens are accepted.
    pub public_keys_pem: Vec<String>,
    /// A JWKS document of further public keys, fetched and cached.
    pub jwks_url: Option<String>,
    /// Whether `identify` refuses the HMAC `userHash` (tokens only).
    pub user_hash_disabled: bool,
    /// Longest token lifetime accepted, in seconds (`None`: the default).
    pub token_max_lifetime_secs: Option<u64>,
    /// How long a verified identification personalises a visitor, in seconds (`None`: the
    /// default).
    pub verification_lifetime_secs: Option<u64>,
}

impl WorkspaceSettings {
    /// The identity secrets accepted now: the current one, then the previous one.
    pub fn identity_secrets(&self) -> impl Iterator<Item = &SecretString> {
        self.identity_secret
            .iter()
            .chain(self.previous_identity_secret.iter())
    }

    /// The longest token lifetime accepted.
    pub fn token_max_lifetime(&self) -> Duration {
        seconds(
            self.token_max_lifetime_secs
                .unwrap_or(DEFAULT_TOKEN_MAX_LIFETIME_SECS),
        )
    }

    /// How long a verified identification personalises a visitor.
    pub fn verification_lifetime(&self) -> Duration {
        seconds(
            self.verification_lifetime_secs
                .unwrap_or(DEFAULT_VERIFICATION_LIFETIME_SECS),
        )
    }

    /// Validates a lifetime setting named `field`: 1 s to 10 years.
    pub fn parse_lifetime(field: &str, secs: i64) -> Result<u64, DomainError> {
        const TEN_YEARS: i64 = 10 * 366 * 24 * 60 * 60;
        if !(1..=TEN_YEARS).contains(&secs) {
            return Err(DomainError::invalid(
                field,
                format!("`{field}` must be between 1 and {TEN_YEARS} seconds"),
            ));
        }
        Ok(secs.unsigned_abs())
    }

    /// Validates a JWKS URL: absolute `https://`, no credentials, no literal address that is
    /// not publicly reachable; plain http and private targets only when `allow_private`
    /// (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, for development).
    pub fn parse_jwks_url(raw: &str, allow_private: bool) -> Result<String, DomainError> {
        let rules = super::TargetRules {
            allow_private,
            require_https: true,
        };
        super::parse_target_url(raw, "jwksUrl", rules).map(String::from)
    }

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

fn seconds(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}
