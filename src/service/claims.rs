//! Identity claims: the identities a write gives its contact (its external id, email, phone,
//! anonymous id), staged into the write's batch, and the ones it cannot take because another
//! contact holds them.

use chrono::{DateTime, Utc};

use crate::domain::{
    ContactFields, ContactId, DomainError, Identity, IdentityKey, IdentityKind, Provenance,
    WorkspaceId,
};
use crate::store::{HeldIdentity, Store, StoreError, WriteBatch};

/// An identity a write wants its contact to hold.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Claim {
    /// The identity.
    pub key: IdentityKey,
    /// Where the write's claim comes from.
    pub provenance: Provenance,
}

/// A claimed email or phone that another contact holds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Collision {
    /// The claim that could not be taken.
    pub claim: Claim,
    /// Who holds it, and how it was claimed there.
    pub holder: HeldIdentity,
}

/// Claims for the external id, email and phone of `fields` that differ from `before` (all of
/// them for a new contact), checked against the placeholders and the workspace's `blocked` list.
pub(super) fn contact_point_claims(
    fields: &ContactFields,
    before: Option<&ContactFields>,
    provenance: Provenance,
    blocked: &[String],
) -> Result<Vec<Claim>, DomainError> {
    let points = [
        (
            IdentityKind::ExternalId,
            changed(
                fields.external_id.as_ref().map(|id| id.as_str()),
                before.map(|b| b.external_id.as_ref().map(|id| id.as_str())),
            ),
        ),
        (
            IdentityKind::Email,
            changed(
                fields.email.as_ref().map(|email| email.as_str()),
                before.map(|b| b.email.as_ref().map(|email| email.as_str())),
            ),
        ),
        (
            IdentityKind::Phone,
            changed(
                fields.phone.as_ref().map(|phone| phone.as_str()),
                before.map(|b| b.phone.as_ref().map(|phone| phone.as_str())),
            ),
        ),
    ];
    points
        .into_iter()
        .filter_map(|(kind, value)| value.map(|value| (kind, value)))
        .map(|(kind, value)| {
            Ok(Claim {
                key: IdentityKey::parse(kind, value, blocked)?,
                provenance,
            })
        })
        .collect()
}

/// Adds `more` to `claims` unless a claim of the same identity is already there (the first
/// claim of an identity wins).
pub(super) fn add_claims(claims: &mut Vec<Claim>, more: Vec<Claim>) {
    for claim in more {
        if !claims.iter().any(|known| known.key == claim.key) {
            claims.push(claim);
        }
    }
}

/// `now` if it is set and differs from `then` (`None`: there was no previous state).
fn changed<'a>(now: Option<&'a str>, then: Option<Option<&str>>) -> Option<&'a str> {
    match (now, then) {
        (Some(value), None) => Some(value),
        (Some(value), Some(previous)) if previous != Some(value) => Some(value),
        _ => None,
    }
}

/// Stages `claims` for `owner` into `batch`: free identities are created, ones `owner` holds
/// with weaker provenance are upgraded. Returns the emails and phones other contacts hold; an
/// external id another contact holds is [`StoreError::DuplicateExternalId`] (it identifies that
/// contact; a writer that lost a create race re-reads and retries).
pub(super) async fn stage_claims(
    store: &Store,
    workspace: &WorkspaceId,
    owner: &ContactId,
    claims: Vec<Claim>,
    now: DateTime<Utc>,
    batch: &mut WriteBatch,
) -> Result<Vec<Collision>, StoreError> {
    let mut collisions = Vec::new();
    for claim in claims {
        let identity = Identity {
            key: claim.key.clone(),
            provenance: claim.provenance,
            created_at: now,
        };
        match store.identity_holder(workspace, &claim.key).await? {
            None => batch.create_identity(owner, &identity),
            Some(held) if held.contact == *owner => {
                let stronger = held.identity.provenance.stronger(claim.provenance);
                if stronger != held.identity.provenance {
                    batch.upgrade_identity(&claim.key, owner, &identity);
                }
            }
            Some(_) if claim.key.kind == IdentityKind::ExternalId => {
                let taken = crate::domain::ExternalId::from_trusted(claim.key.value);
                return Err(StoreError::DuplicateExternalId(taken));
            }
            Some(held) => collisions.push(Collision {
                claim,
                holder: held,
            }),
        }
    }
    Ok(collisions)
}

/// `Some` of a store result, `None` if it lost a race that a re-read and retry can win.
pub(super) fn unless_raced<T>(
    result: Result<T, StoreError>,
) -> Result<Option<T>, super::error::ServiceError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if is_retryable(&error) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

/// Whether a failed commit lost a race that a re-read and retry can win.
pub(super) fn is_retryable(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::WriteConflict | StoreError::DuplicateExternalId(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, ExternalId, Phone};

    fn fields(
        external_id: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> ContactFields {
        ContactFields {
            external_id: external_id.map(|id| ExternalId::parse(id).unwrap()),
            email: email.map(|e| Email::parse(e).unwrap()),
            phone: phone.map(|p| Phone::parse(p).unwrap()),
            ..ContactFields::default()
        }
    }

    fn kinds(claims: &[Claim]) -> Vec<(IdentityKind, &str)> {
        claims
            .iter()
            .map(|c| (c.key.kind, c.key.value.as_str()))
            .collect()
    }

    #[test]
    fn a_new_contact_claims_every_contact_point() {
        let new = fields(Some("u1"), Some("a@example.com"), Some("+49 30 1234567"));
        let claims = contact_point_claims(&new, None, Provenance::Api, &[]).unwrap();
        assert_eq!(
            kinds(&claims),
            vec![
                (IdentityKind::ExternalId, "u1"),
                (IdentityKind::Email, "a@example.com"),
                (IdentityKind::Phone, "+49301234567"),
            ]
        );
        assert!(claims.iter().all(|c| c.provenance == Provenance::Api));
    }

    #[test]
    fn a_change_claims_only_what_changed() {
        let before = fields(Some("u1"), Some("a@example.com"), None);
        let after = fields(Some("u1"), Some("b@example.com"), None);
        let claims = contact_point_claims(&after, Some(&before), Provenance::Api, &[]).unwrap();
        assert_eq!(kinds(&claims), vec![(IdentityKind::Email, "b@example.com")]);
        let cleared = fields(Some("u1"), None, None);
        assert!(
            contact_point_claims(&cleared, Some(&before), Provenance::Api, &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn blocked_values_are_refused() {
        let blocked = vec!["u1".to_owned()];
        let error = contact_point_claims(
            &fields(Some("U1"), None, None),
            None,
            Provenance::Api,
            &blocked,
        )
        .unwrap_err();
        assert!(matches!(error, DomainError::InvalidIdentity { .. }));
    }
}
