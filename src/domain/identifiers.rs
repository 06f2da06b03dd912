//! Identifiers and contact-point values: parsed and normalised once, at the edge.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use ulid::Ulid;

use super::DomainError;

/// Longest external id accepted, in bytes.
pub const MAX_EXTERNAL_ID_BYTES: usize = 255;

/// A tenant. Every stored record and every query is scoped by one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// The workspace used until multi-tenancy is configured.
    pub const DEFAULT: &'static str = "default";

    /// Parses a workspace slug: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let starts_well = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
        if !(1..=64).contains(&raw.len()) || !valid_chars || !starts_well {
            return Err(DomainError::invalid(
                "workspace",
                format!("workspace `{raw}` must be 1 to 64 characters of a-z, 0-9, `-` or `_`"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a slug read back from the store, where it was written already validated.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for WorkspaceId {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stable, opaque id of a contact: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(Ulid);

impl ContactId {
    /// A fresh id for a contact created now; ids made by one process increase strictly, even
    /// within a millisecond, so contacts created in order (an import) sort in that order.
    pub fn generate() -> Self {
        static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
        let mut generator = match GENERATOR.lock() {
            Ok(generator) => generator,
            Err(poisoned) => poisoned.into_inner(),
        };
        let next = generator.generate();
        Self(next.unwrap_or_else(|_| Ulid::new()))
    }

    /// The id as a 128-bit number (ids order as these numbers do).
    pub fn as_u128(&self) -> u128 {
        self.0.0
    }

    /// The id whose number is `value`.
    pub fn from_u128(value: u128) -> Self {
        Self(Ulid(value))
    }

    /// Parses the textual form returned by the API.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Ulid::from_str(raw.trim()).map(Self).map_err(|_| {
            DomainError::invalid(
                "id",
                format!("`{raw}` is not a contact id (expected a ULID)"),
            )
        })
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The contact's id in the business's own system; also the verified user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    /// Trims surrounding whitespace; refuses empty, oversized or control-character ids.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::invalid(
                "externalId",
                "external id must not be empty",
            ));
        }
        if trimmed.len() > MAX_EXTERNAL_ID_BYTES {
            return Err(DomainError::invalid(
                "externalId",
                format!(
                    "external id is {} bytes; at most {MAX_EXTERNAL_ID_BYTES} are allowed",
                    trimmed.len()
                ),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "externalId",
                format!(
                    "external id `{}` contains control characters",
                    trimmed.escape_debug()
                ),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, trimmed and lower-cased so that one mailbox has one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates the address (RFC 5322 addr-spec with a dotted domain) and normalises it.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let normalised = raw.trim().to_lowercase();
        let parsed = email_address::EmailAddress::from_str(&normalised).ok();
        let has_dotted_domain = parsed.as_ref().is_some_and(|address| {
            let domain = address.domain();
            domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
        if !has_dotted_domain || normalised.len() > 254 {
            return Err(DomainError::invalid(
                "email",
                format!(
                    "`{}` is not a valid email address, e.g. `ada@example.com`",
                    raw.trim()
                ),
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form (`+4930123456`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses an international number (with its `+` country code) and formats it as E.164.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let invalid = || {
            DomainError::invalid(
                "phone",
                format!(
                    "`{}` is not a valid international phone number; include the country code, e.g. `+49 30 1234567`",
                    raw.trim()
                ),
            )
        };
        let number = phonenumber::parse(None, raw.trim()).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ExternalId {
    /// Wraps an id read back from the store, where it was written already validated.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl Email {
    /// Wraps an address read back from the store, where it was written already normalised.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl Phone {
    /// Wraps a number read back from the store, where it was written already in E.164.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_slugs() {
        assert!(WorkspaceId::parse("acme-eu_1").is_ok());
        for bad in ["", "Acme", "-acme", "acme eu", &"a".repeat(65)] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn contact_ids_round_trip_and_sort_by_creation() {
        let first = ContactId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ContactId::generate();
        assert!(first < second);
        assert_eq!(ContactId::parse(&first.to_string()).unwrap(), first);
        assert!(ContactId::parse("not-an-id").is_err());
    }

    #[test]
    fn ids_generated_in_a_row_increase() {
        let ids: Vec<ContactId> = (0..1000).map(|_| ContactId::generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn external_ids_are_trimmed_and_bounded() {
        assert_eq!(ExternalId::parse("  user-42 ").unwrap().as_str(), "user-42");
        assert!(ExternalId::parse("   ").is_err());
        assert!(ExternalId::parse("a\u{0}b").is_err());
        assert!(ExternalId::parse(&"x".repeat(256)).is_err());
        assert!(ExternalId::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "ada@@example.com",
        ] {
            let error = Email::parse(bad).unwrap_err();
            assert!(
                error.to_string().contains("not a valid email"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            Phone::parse("+49 30 1234567").unwrap().as_str(),
            "+49301234567"
        );
        assert_eq!(
            Phone::parse("+1 (415) 555-2671").unwrap().as_str(),
            "+14155552671"
        );
        for bad in ["030 1234567", "+1 123", "call me", ""] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
