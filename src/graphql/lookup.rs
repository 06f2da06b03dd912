//! Finding one contact by id, external id or identity, as the calling key may see it.

use async_graphql::{ID, OneofObject};
use chrono::Utc;

use super::args::{IdentityInput, exactly_one};
use super::views::ContactView;
use crate::domain::{Caller, Contact, ContactId, ExternalId, IdentityKind};
use crate::service::{ServiceError, Services};

/// A contact as a key sees it when looking it up.
pub(super) enum Seen {
    /// The contact itself.
    Contact(Contact),
    /// A visitor looked up by an anonymous id its verification vouches for.
    VerifiedVisitor(Contact),
    /// Through a key that requires verified identities, any other way (an anonymous id its
    /// verification does not vouch for, an id, an external id, an email): the key sees only
    /// what the visitor said itself.
    UnverifiedVisitor(Contact),
}

impl Seen {
    /// The contact's view, showing what the key may see of it.
    pub(super) fn into_view(self) -> ContactView {
        match self {
            Self::Contact(contact) => ContactView::new(contact),
            Self::VerifiedVisitor(contact) => ContactView::verified_visitor(contact),
            Self::UnverifiedVisitor(contact) => ContactView::unverified_visitor(&contact),
        }
    }

    /// The contact as the key may see it.
    pub(super) fn into_contact(self) -> Contact {
        match self {
            Self::Contact(contact) | Self::VerifiedVisitor(contact) => contact,
            Self::UnverifiedVisitor(contact) => contact.self_asserted_only(),
        }
    }
}

/// One contact to look up, by exactly one of its keys.
#[derive(OneofObject)]
pub enum ContactLookupInput {
    /// Its id; ids of contacts merged away resolve to the survivor.
    Id(ID),
    /// Its id in your system; external ids of contacts merged away resolve to the survivor.
    /// Needs the field `externalId` under a field policy.
    ExternalId(String),
    /// Any identity it holds; by an email or phone, needs that field under a field policy.
    Identity(IdentityInput),
}

impl ContactLookupInput {
    /// The lookup a field asks for: `by` (or the argument named `argument`), or exactly one of
    /// the deprecated separate arguments; INVALID_INPUT for none or several.
    pub(super) fn given(
        argument: &str,
        by: Option<Self>,
        id: Option<ID>,
        external_id: Option<String>,
        identity: Option<IdentityInput>,
    ) -> Result<Self, ServiceError> {
        let given = [
            by,
            id.map(Self::Id),
            external_id.map(Self::ExternalId),
            identity.map(Self::Identity),
        ];
        exactly_one(given).ok_or_else(|| {
            ServiceError::invalid(
                argument,
                format!(
                    "give exactly one way to find the contact: `{argument}: {{id | externalId | identity}}`"
                ),
            )
        })
    }
}

/// The contact `lookup` names: ids and external ids of contacts merged away resolve to the
/// survivor; looking up by a field needs that field.
pub(super) async fn look_up(
    services: &Services,
    caller: &Caller,
    lookup: ContactLookupInput,
) -> Result<Seen, ServiceError> {
    let workspace = &caller.workspace;
    let contacts = &services.contacts;
    let contact = match lookup {
        ContactLookupInput::Identity(identity) => {
            let key = identity.key()?;
            if let Some(field) = key.kind.field_name() {
                ServiceError::require_lookup_by(caller, field)?;
            }
            let contact = contacts.get_by_identity(workspace, &key).await?;
            if key.kind == IdentityKind::AnonymousId && caller.policy.require_verified_identity {
                let settings = &services.catalogs.workspace(workspace).settings;
                let lifetime = settings.verification_lifetime();
                let vouched = contact
                    .verification
                    .as_ref()
                    .is_some_and(|v| v.vouches_for(&key.value, lifetime, Utc::now()));
                return Ok(if vouched {
                    Seen::VerifiedVisitor(contact)
                } else {
                    Seen::UnverifiedVisitor(contact)
                });
            }
            contact
        }
        ContactLookupInput::Id(id) => {
            let id = ContactId::parse(&id).map_err(ServiceError::from)?;
            contacts.get(workspace, &id).await?
        }
        ContactLookupInput::ExternalId(external_id) => {
            ServiceError::require_lookup_by(caller, "external_id")?;
            let external_id = ExternalId::parse(&external_id).map_err(ServiceError::from)?;
            contacts.get_by_external_id(workspace, &external_id).await?
        }
    };
    // A key that requires verified identities relies on a contact only through a verified
    // visitor: an id or external id (which an unverified lookup reveals) shows no more.
    if caller.policy.require_verified_identity {
        return Ok(Seen::UnverifiedVisitor(contact));
    }
    Ok(Seen::Contact(contact))
}
