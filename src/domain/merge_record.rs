//! The audit record of a merge: who merged which contacts when, and both contacts as they were,
//! so that the merge can be shown in a contact's history and undone.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use ulid::Ulid;

use super::{Contact, ContactId, DomainError, Identity, MergeStrategy, WorkspaceId};

/// The id of a merge: a ULID, so merges sort by time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MergeId(Ulid);

impl MergeId {
    /// A fresh id for a merge happening now.
    pub fn generate() -> Self {
        Self(Ulid::new())
    }

    /// Parses the textual form returned by the API.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Ulid::from_str(raw.trim()).map(Self).map_err(|_| {
            DomainError::invalid(
                "mergeId",
                format!("`{raw}` is not a merge id (expected a ULID)"),
            )
        })
    }
}

impl fmt::Display for MergeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One merge, as audited.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeRecord {
    /// Its id.
    pub id: MergeId,
    /// The workspace of both contacts.
    pub workspace: WorkspaceId,
    /// The contact that remained.
    pub survivor: ContactId,
    /// The contact merged away (its id now resolves to the survivor).
    pub absorbed: ContactId,
    /// Who asked for it (an API key id, or `identify` for automatic links).
    pub actor: String,
    /// Why it happened: `merge`, `identify` or `auto-link`.
    pub reason: String,
    /// When.
    pub merged_at: DateTime<Utc>,
    /// The strategy it used.
    pub strategy: MergeStrategy,
    /// The survivor just before.
    pub survivor_before: Contact,
    /// The absorbed contact just before.
    pub absorbed_before: Contact,
    /// The survivor as the merge left it.
    pub survivor_after: Contact,
    /// The identities that moved from the absorbed contact to the survivor.
    pub moved_identities: Vec<Identity>,
    /// When it was undone, if it was.
    pub undone_at: Option<DateTime<Utc>>,
    /// Who undid it.
    pub undone_by: Option<String>,
}

impl MergeRecord {
    /// Whether `current` (the survivor now) differs from what the merge left in a way an
    /// unmerge would lose: any field but `lastSeenAt`, which the unmerge carries over.
    pub fn survivor_changed_since(&self, current: &Contact) -> bool {
        let mut current_fields = current.fields.clone();
        current_fields.last_seen_at = self.survivor_after.fields.last_seen_at;
        current_fields != self.survivor_after.fields
    }
}
