//! Saved segments: a named, described segment text addressed by a slug.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{DomainError, Text, WorkspaceId};

/// The address of a saved segment: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// Validates a slug.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid {
            return Err(DomainError::invalid(
                "slug",
                format!(
                    "slug `{raw}` must be 1 to 64 characters of a-z, 0-9, `-` or `_`, e.g. `active-trials`"
                ),
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

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A segment saved for reuse by marketers, routing engines and other segments.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSegment {
    /// The owning workspace.
    pub workspace: WorkspaceId,
    /// Its address.
    pub slug: Slug,
    /// Display name.
    pub name: Text,
    /// What it is for.
    pub description: Option<Text>,
    /// The segment, in canonical text.
    pub text: String,
    /// Whether the text names values of sensitive attributes, and so is kept encrypted at rest.
    pub names_sensitive_values: bool,
    /// When it was first saved.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_validated() {
        assert!(Slug::parse("active-trials_2").is_ok());
        for bad in ["", "Active", "-x", "a b", &"a".repeat(65)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }
}
