//! Entries of the segment membership feed: a contact entered or left a saved segment.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{ContactId, Slug, WorkspaceId};

/// Whether the contact entered or left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipKind {
    /// Became a member.
    Enter,
    /// Stopped being a member.
    Exit,
}

impl MembershipKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enter => "ENTER",
            Self::Exit => "EXIT",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ENTER" => Some(Self::Enter),
            "EXIT" => Some(Self::Exit),
            _ => None,
        }
    }
}

/// What made the membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipCause {
    /// A write to the contact (upsert, import, identify, merge, unmerge, event, conversation).
    ContactChanged,
    /// The contact was deleted or merged into another.
    ContactRemoved,
    /// Time passed: a time-relative condition (`within 30d`) became true or false.
    Time,
    /// The saved segment's definition (or one it references) was edited.
    SegmentEdited,
    /// The contact granted or withdrew, in the write that made the change, a consent the
    /// segment tests.
    Consent,
}

impl MembershipCause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactChanged => "CONTACT_CHANGED",
            Self::ContactRemoved => "CONTACT_REMOVED",
            Self::Time => "TIME",
            Self::SegmentEdited => "SEGMENT_EDITED",
            Self::Consent => "CONSENT",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::ContactChanged,
            Self::ContactRemoved,
            Self::Time,
            Self::SegmentEdited,
            Self::Consent,
        ]
        .into_iter()
        .find(|cause| cause.as_str() == raw)
    }
}

/// One entry of a saved segment's membership feed.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipChange {
    /// Place in the feed: entries of a segment sort by it in the order they were recorded.
    pub position: String,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The saved segment.
    pub segment: Slug,
    /// The contact.
    pub contact: ContactId,
    /// Entered or left.
    pub kind: MembershipKind,
    /// When it happened (for time transitions: the exact moment the condition flipped).
    pub at: DateTime<Utc>,
    /// Why.
    pub cause: MembershipCause,
}

/// What the membership engine tells its followers (subscriptions, webhook lanes) as it
/// happens.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// Feed entries (or webhook deliveries) of the workspace were recorded: these entries.
    Recorded(WorkspaceId, Arc<[MembershipChange]>),
    /// The contact's state in the index changed (written, merged, deleted).
    ContactChanged(WorkspaceId, ContactId),
}

impl FeedEvent {
    /// The workspace it is about.
    pub fn workspace(&self) -> &WorkspaceId {
        match self {
            Self::Recorded(workspace, _) | Self::ContactChanged(workspace, _) => workspace,
        }
    }
}
