//! Identity views: kinds, provenance and identities as the API shows them.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{Identity, IdentityKind, Provenance};

/// What kind of identifier an identity is.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
#[graphql(name = "IdentityKind")]
pub enum IdentityKindView {
    /// A visitor id set by a chat widget before the person is known.
    AnonymousId,
    /// The id in the business's own system (the verified user id).
    ExternalId,
    /// An email address (lower-cased).
    Email,
    /// A phone number (E.164).
    Phone,
}

impl From<IdentityKindView> for IdentityKind {
    fn from(value: IdentityKindView) -> Self {
        match value {
            IdentityKindView::AnonymousId => Self::AnonymousId,
            IdentityKindView::ExternalId => Self::ExternalId,
            IdentityKindView::Email => Self::Email,
            IdentityKindView::Phone => Self::Phone,
        }
    }
}

impl From<IdentityKind> for IdentityKindView {
    fn from(value: IdentityKind) -> Self {
        match value {
            IdentityKind::AnonymousId => Self::AnonymousId,
            IdentityKind::ExternalId => Self::ExternalId,
            IdentityKind::Email => Self::Email,
            IdentityKind::Phone => Self::Phone,
        }
    }
}

/// Where an identity claim came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Provenance")]
pub enum ProvenanceView {
    /// Proven with the workspace's identity secret (`identify`).
    Verified,
    /// Written by the business's systems through the API.
    Api,
    /// Loaded by a bulk import.
    Imported,
    /// Said by the visitor, unproven (`trackVisitor`, `identify` traits).
    SelfAsserted,
}

impl From<Provenance> for ProvenanceView {
    fn from(value: Provenance) -> Self {
        match value {
            Provenance::Verified => Self::Verified,
            Provenance::Api => Self::Api,
            Provenance::Imported => Self::Imported,
            Provenance::SelfAsserted => Self::SelfAsserted,
        }
    }
}

/// An identity a contact holds; each resolves to exactly one live contact per workspace.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Identity")]
pub struct IdentityView {
    /// Its kind.
    kind: IdentityKindView,
    /// The normalised value.
    value: String,
    /// Where the claim came from.
    provenance: ProvenanceView,
    /// When the contact acquired it.
    created_at: DateTime<Utc>,
}

impl IdentityView {
    /// Where it sits in a list of identities (by kind, then value), as a cursor holds it.
    pub fn page_key(&self) -> String {
        format!("{:?}|{}", self.kind, self.value)
    }
}

impl From<Identity> for IdentityView {
    fn from(identity: Identity) -> Self {
        Self {
            kind: identity.key.kind.into(),
            value: identity.key.value,
            provenance: identity.provenance.into(),
            created_at: identity.created_at,
        }
    }
}
