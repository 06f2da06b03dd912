//! Identities: the ways a contact is known (anonymous ids, external ids, emails, phones), where
//! each claim came from, which values are never linked, and the HMAC that verifies a user id.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{DomainError, Email, ExternalId, Phone};

/// Longest anonymous id accepted, in bytes.
pub const MAX_ANONYMOUS_ID_BYTES: usize = 255;
/// Most entries in a workspace's own list of refused identity values.
pub const MAX_BLOCKED_VALUES: usize = 1000;

/// Values that clients send when they have no real id; linking on them would merge strangers.
/// Compared case-insensitively after trimming.
pub const NEVER_LINKED: &[&str] = &[
    "",
    "anonymous",
    "guest",
    "null",
    "undefined",
    "0",
    "[object object]",
];

/// What kind of identifier an identity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// A visitor id set by a chat widget before the person is known.
    AnonymousId,
    /// The id in the business's own system (the verified user id).
    ExternalId,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
}

impl IdentityKind {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnonymousId => "anonymous_id",
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }

    /// Parses the storage spelling.
    pub fn from_storage(raw: &str) -> Option<Self> {
        [
            Self::AnonymousId,
            Self::ExternalId,
            Self::Email,
            Self::Phone,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }
}

/// Where an identity claim came from; automatic linking trusts some sources and not others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// Proven by the workspace's identity secret (HMAC of the user id).
    Verified,
    /// Written by the business's own systems through the API.
    Api,
    /// Loaded by a bulk import from the business's systems.
    Imported,
    /// Said by the visitor (typed into a chat, sent by a browser), unproven.
    SelfAsserted,
}

impl Provenance {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Api => "api",
            Self::Imported => "imported",
            Self::SelfAsserted => "self_asserted",
        }
    }

    /// Parses the storage spelling.
    pub fn from_storage(raw: &str) -> Option<Self> {
        [
            Self::Verified,
            Self::Api,
            Self::Imported,
            Self::SelfAsserted,
        ]
        .into_iter()
        .find(|provenance| provenance.as_str() == raw)
    }

    /// How much the claim is trusted: verified 3, the business's systems 2, the visitor 1.
    pub fn trust(self) -> u8 {
        match self {
            Self::Verified => 3,
            Self::Api | Self::Imported => 2,
            Self::SelfAsserted => 1,
        }
    }

    /// Whether two contacts claiming the same email or phone with these provenances may be
    /// merged automatically: only when both claims come from the business or better, so a
    /// typed-in email never pulls a visitor into a verified customer (or the other way round).
    pub fn may_auto_link(self, other: Self) -> bool {
        self.trust().min(other.trust()) >= Self::Api.trust()
    }

    /// The more trusted of two provenances.
    pub fn stronger(self, other: Self) -> Self {
        if other.trust() > self.trust() {
            other
        } else {
            self
        }
    }
}

/// A normalised identifier of one kind: the unit of identity uniqueness in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    /// The kind.
    pub kind: IdentityKind,
    /// The normalised value (lower-cased email, E.164 phone, trimmed ids).
    pub value: String,
}

impl IdentityKey {
    /// Parses and normalises `raw` as an identifier of `kind`, refusing the values in
    /// [`NEVER_LINKED`] and in the workspace's own `blocked` list.
    pub fn parse(kind: IdentityKind, raw: &str, blocked: &[String]) -> Result<Self, DomainError> {
        let refused = |why: String| DomainError::InvalidIdentity {
            kind: kind.as_str().to_owned(),
            message: why,
        };
        let trimmed = raw.trim();
        let lowered = trimmed.to_lowercase();
        let blocked_here = blocked
            .iter()
            .any(|value| value.trim().to_lowercase() == lowered);
        if NEVER_LINKED.contains(&lowered.as_str()) || blocked_here {
            return Err(refused(format!(
                "`{trimmed}` is a placeholder, not an identity; send a real {} or leave it out",
                kind.described()
            )));
        }
        let value = match kind {
            IdentityKind::AnonymousId => {
                if trimmed.len() > MAX_ANONYMOUS_ID_BYTES || trimmed.chars().any(char::is_control) {
                    return Err(refused(format!(
                        "anonymous id must be at most {MAX_ANONYMOUS_ID_BYTES} bytes without control characters"
                    )));
                }
                trimmed.to_owned()
            }
            IdentityKind::ExternalId => ExternalId::parse(trimmed)?.as_str().to_owned(),
            IdentityKind::Email => Email::parse(trimmed)?.as_str().to_owned(),
            IdentityKind::Phone => Phone::parse(trimmed)?.as_str().to_owned(),
        };
        Ok(Self { kind, value })
    }

    /// A key read back from the store, where it was written already normalised.
    pub fn from_trusted(kind: IdentityKind, value: String) -> Self {
        Self { kind, value }
    }
}

impl IdentityKind {
    /// The built-in contact field this kind of identity reveals (segment spelling), for field
    /// policies; anonymous ids reveal none.
    pub fn field_name(self) -> Option<&'static str> {
        match self {
            Self::AnonymousId => None,
            Self::ExternalId => Some("external_id"),
            Self::Email => Some("email"),
            Self::Phone => Some("phone"),
        }
    }

    fn described(self) -> &'static str {
        match self {
            Self::AnonymousId => "anonymous id",
            Self::ExternalId => "external id",
            Self::Email => "email",
            Self::Phone => "phone number",
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// An identity a contact owns.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// What it identifies by.
    pub key: IdentityKey,
    /// Where the claim came from.
    pub provenance: Provenance,
    /// When the contact acquired it.
    pub created_at: DateTime<Utc>,
}

/// Checks `user_hash` (hex, either case) against HMAC-SHA256(`secret`, `user_id`) in constant time.
pub fn verify_user_hash(secret: &[u8], user_id: &str, user_hash: &str) -> bool {
    let Ok(expected) = hex::decode(user_hash.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(user_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The hex HMAC-SHA256 of `user_id` under `secret`: what a website backend computes.
pub fn user_hash(secret: &[u8], user_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_never_identities() {
        for raw in [
            "",
            "  ",
            "anonymous",
            "Guest",
            "NULL",
            "undefined",
            "0",
            "[object Object]",
        ] {
            let error = IdentityKey::parse(IdentityKind::AnonymousId, raw, &[]).unwrap_err();
            assert!(
                matches!(error, DomainError::InvalidIdentity { .. }),
                "{raw:?}"
            );
        }
        let blocked = vec!["test-user".to_owned()];
        assert!(IdentityKey::parse(IdentityKind::ExternalId, "TEST-USER", &blocked).is_err());
        assert!(IdentityKey::parse(IdentityKind::ExternalId, "user-1", &blocked).is_ok());
    }

    #[test]
    fn values_are_normalised_by_kind() {
        let email = IdentityKey::parse(IdentityKind::Email, " Ada@Example.com ", &[]).unwrap();
        assert_eq!(email.value, "ada@example.com");
        let phone = IdentityKey::parse(IdentityKind::Phone, "+49 30 1234567", &[]).unwrap();
        assert_eq!(phone.value, "+49301234567");
        assert!(IdentityKey::parse(IdentityKind::Email, "not-an-email", &[]).is_err());
    }

    #[test]
    fn user_hash_is_hex_hmac_sha256() {
        assert_eq!(
            user_hash(b"key", "The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn user_hash_round_trips_and_rejects_others() {
        let secret = b"s3cret";
        let hash = user_hash(secret, "user-42");
        assert!(verify_user_hash(secret, "user-42", &hash));
        assert!(verify_user_hash(secret, "user-42", &hash.to_uppercase()));
        assert!(!verify_user_hash(secret, "user-43", &hash));
        assert!(!verify_user_hash(b"other", "user-42", &hash));
        assert!(!verify_user_hash(secret, "user-42", "zz"));
        assert!(!verify_user_hash(secret, "user-42", ""));
    }

    #[test]
    fn auto_linking_needs_trust_on_both_sides() {
        assert!(Provenance::Api.may_auto_link(Provenance::Verified));
        assert!(Provenance::Imported.may_auto_link(Provenance::Api));
        assert!(!Provenance::SelfAsserted.may_auto_link(Provenance::Verified));
        assert!(!Provenance::Verified.may_auto_link(Provenance::SelfAsserted));
    }
}

/// Why a proof of identity was refused (`extensions.reason` of IDENTITY_NOT_VERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Neither an identity token nor a user hash was sent.
    MissingProof,
    /// The workspace has no secret or key for this kind of proof.
    NoKey,
    /// The workspace accepts tokens only.
    UserHashDisabled,
    /// No configured secret or key produced this signature.
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `aud` names another audience than the workspace.
    WrongAudience,
    /// A required claim (`exp`, `sub` or `user_id`) is absent.
    MissingClaim,
    /// A claim has the wrong type or an invalid value.
    InvalidClaim,
    /// `exp` lies further ahead than the workspace's longest token lifetime.
    LifetimeTooLong,
    /// The header names an algorithm other than HS256, RS256 and ES256 (`none` included).
    UnsupportedAlgorithm,
    /// The token's `jti` was used before.
    Replayed,
    /// `externalId` was given and differs from the token's user id.
    SubjectMismatch,
}

impl Refusal {
    /// The client-facing spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingProof => "MISSING_PROOF",
            Self::NoKey => "NO_KEY",
            Self::UserHashDisabled => "USER_HASH_DISABLED",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::Expired => "EXPIRED",
            Self::NotYetValid => "NOT_YET_VALID",
            Self::WrongAudience => "WRONG_AUDIENCE",
            Self::MissingClaim => "MISSING_CLAIM",
            Self::InvalidClaim => "INVALID_CLAIM",
            Self::LifetimeTooLong => "LIFETIME_TOO_LONG",
            Self::UnsupportedAlgorithm => "UNSUPPORTED_ALGORITHM",
            Self::Replayed => "REPLAYED",
            Self::SubjectMismatch => "SUBJECT_MISMATCH",
        }
    }
}
