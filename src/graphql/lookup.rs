//! Finding one contact by id, external id or identity, as the calling key may see it.

use async_graphql::ID;
use chrono::Utc;

use super::args::IdentityInput;
use super::error::ApiResult;
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
    /// The contact as the key may see it.
    pub(super) fn into_contact(self) -> Contact {
        match self {
            Self::Contact(contact) | Self::VerifiedVisitor(contact) => contact,
            Self::UnverifiedVisitor(contact) => contact.self_asserted_only(),
        }
    }
}

/// The contact with `id`, `externalId` or `identity` (exactly one): ids and external ids of
/// contacts merged away resolve to the survivor; looking up by a field needs that field.
pub(super) async fn look_up(
    services: &Services,
    caller: &Caller,
    id: Option<ID>,
    external_id: Option<String>,
    identity: Option<IdentityInput>,
) -> async_graphql::Result<Seen> {
    let workspace = &caller.workspace;
    let contacts = &services.contacts;
    let contact = match (id, external_id, identity) {
        (None, None, Some(identity)) => {
            let key = identity.key().api()?;
            if let Some(field) = key.kind.field_name() {
                ServiceError::require_lookup_by(caller, field).api()?;
            }
            let contact = contacts.get_by_identity(workspace, &key).await.api()?;
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
        (Some(id), None, None) => {
            let id = ContactId::parse(&id).map_err(ServiceError::from).api()?;
            contacts.get(workspace, &id).await.api()?
        }
        (None, Some(external_id), None) => {
            ServiceError::require_lookup_by(caller, "external_id").api()?;
            let external_id = ExternalId::parse(&external_id)
                .map_err(ServiceError::from)
                .api()?;
            contacts
                .get_by_external_id(workspace, &external_id)
                .await
                .api()?
        }
        _ => {
            return Err(ServiceError::invalid(
                "id",
                "give exactly one of `id`, `externalId` or `identity`",
            ))
            .api();
        }
    };
    // A key that requires verified identities relies on a contact only through a verified
    // visitor: an id or external id (which an unverified lookup reveals) shows no more.
    if caller.policy.require_verified_identity {
        return Ok(Seen::UnverifiedVisitor(contact));
    }
    Ok(Seen::Contact(contact))
}
