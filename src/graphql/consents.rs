//! Consent per purpose: the purpose catalogue (`consentPurposes`, `defineConsentPurpose`,
//! admin), `setConsents` (`contacts:write`) and how a contact's consents read
//! (`Contact.consents`). Mounted on the attribute and contact roots.

use std::collections::BTreeSet;

use async_graphql::{Context, Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::caller;
use super::error::ApiResult;
use super::identity_view::ProvenanceView;
use super::views::ContactView;
use crate::domain::{
    Consent, ConsentOrigin, ConsentPurpose, ConsentStatement, ContactId, FieldPolicy, NameSet,
    Provenance, PurposeName,
};
use crate::service::{ServiceError, Services};

/// A purpose the workspace asks consent for.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ConsentPurpose")]
pub struct ConsentPurposeView {
    /// Its name, as `setConsents`, imports, tokens and segments (`consent "name"`) write it.
    name: String,
    /// What the person agrees to.
    description: String,
    /// When it was first declared.
    created_at: DateTime<Utc>,
}

impl From<ConsentPurpose> for ConsentPurposeView {
    fn from(purpose: ConsentPurpose) -> Self {
        Self {
            name: purpose.name.as_str().to_owned(),
            description: purpose.description,
            created_at: purpose.created_at,
        }
    }
}

/// Whether the person agreed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ConsentStatus {
    /// The latest statement grants the purpose.
    Granted,
    /// The latest statement withdraws it.
    Withdrawn,
}

/// A contact's latest statement about one purpose.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ContactConsent")]
pub struct ContactConsentView {
    /// The purpose's name.
    purpose: String,
    /// Granted or withdrawn.
    status: ConsentStatus,
    /// Whether it is granted (`status` is GRANTED).
    granted: bool,
    /// When it was stated.
    at: DateTime<Utc>,
    /// Where, in the business's words (`setConsents`' `source`), when given.
    source: Option<String>,
    /// Through which channel: API (`setConsents`), IMPORTED (an import row), VERIFIED (an
    /// identity token's claim).
    provenance: ProvenanceView,
    /// The API key id (or command) that recorded it.
    recorded_by: ID,
}

impl ContactConsentView {
    /// The view of `consent` to `purpose`.
    pub fn new(purpose: &PurposeName, consent: &Consent) -> Self {
        Self {
            purpose: purpose.as_str().to_owned(),
            status: if consent.granted {
                ConsentStatus::Granted
            } else {
                ConsentStatus::Withdrawn
            },
            granted: consent.granted,
            at: consent.origin.at,
            source: consent.origin.source.clone(),
            provenance: consent.origin.provenance.into(),
            recorded_by: ID(consent.origin.recorded_by.clone()),
        }
    }
}

/// Input of `defineConsentPurpose`.
#[derive(InputObject)]
pub struct DefineConsentPurposeInput {
    /// 1 to 64 of `a-z 0-9 _`, starting with a letter (`marketing_email`).
    name: String,
    /// What the person agrees to (at most 1,024 bytes).
    description: String,
}

/// The result of `defineConsentPurpose`.
#[derive(SimpleObject)]
pub struct DefineConsentPurposePayload {
    /// The purpose as it stands now.
    purpose: ConsentPurposeView,
}

/// One statement: the person grants or withdraws a purpose.
#[derive(InputObject)]
pub struct ConsentInput {
    /// A declared purpose.
    purpose: String,
    /// `true` grants, `false` withdraws.
    granted: bool,
}

/// Input of `setConsents`.
#[derive(InputObject)]
pub struct SetConsentsInput {
    /// The contact (a merged-away id resolves to the contact it was merged into).
    contact_id: ID,
    /// What the person said, one statement per purpose (at most 100).
    consents: Vec<ConsentInput>,
    /// Where the person said it, in your words (`signup_form`; at most 256 bytes).
    source: Option<String>,
}

/// The result of `setConsents`.
#[derive(SimpleObject)]
pub struct SetConsentsPayload {
    /// The contact as it stands now.
    contact: ContactView,
    /// The purposes whose state changed (a statement repeating the held one changes nothing).
    changed: Vec<String>,
}

/// `consentPurposes`.
pub fn consent_purposes(
    services: &Services,
    ctx: &Context<'_>,
) -> async_graphql::Result<Vec<ConsentPurposeView>> {
    let caller = caller(ctx)?;
    Ok(services
        .consents
        .purposes(&caller.workspace)
        .into_iter()
        .map(ConsentPurposeView::from)
        .collect())
}

/// `defineConsentPurpose`.
pub async fn define_consent_purpose(
    services: &Services,
    ctx: &Context<'_>,
    input: DefineConsentPurposeInput,
) -> async_graphql::Result<DefineConsentPurposePayload> {
    let caller = caller(ctx)?;
    let name = PurposeName::parse("name", input.name.trim())
        .map_err(ServiceError::from)
        .api()?;
    let description = ConsentPurpose::parse_description(&input.description)
        .map_err(ServiceError::from)
        .api()?;
    let purpose = services
        .consents
        .define_purpose(&caller.workspace, name, description)
        .await
        .api()?;
    Ok(DefineConsentPurposePayload {
        purpose: purpose.into(),
    })
}

/// `setConsents`.
pub async fn set_consents(
    services: &Services,
    ctx: &Context<'_>,
    input: SetConsentsInput,
) -> async_graphql::Result<SetConsentsPayload> {
    let caller = &*caller(ctx)?;
    let id = ContactId::parse(&input.contact_id)
        .map_err(ServiceError::from)
        .api()?;
    let statements = input
        .consents
        .iter()
        .map(|consent| {
            Ok(ConsentStatement {
                purpose: PurposeName::parse("purpose", consent.purpose.trim())?,
                granted: consent.granted,
            })
        })
        .collect::<Result<Vec<_>, crate::domain::DomainError>>()
        .map_err(ServiceError::from)
        .api()?;
    let source = ConsentOrigin::parse_source(input.source.as_deref())
        .map_err(ServiceError::from)
        .api()?;
    let origin = crate::service::consents::origin(Utc::now(), Provenance::Api, source);
    let (contact, changed) = services
        .consents
        .set(&caller.workspace, &id, &statements, &origin)
        .await
        .api_for(caller)?;
    let written = FieldPolicy {
        fields: NameSet::Only(BTreeSet::from(["consents".to_owned()])),
        attributes: NameSet::Only(BTreeSet::new()),
        require_verified_identity: false,
    };
    Ok(SetConsentsPayload {
        contact: ContactView::after_write(contact, caller, written),
        changed: changed
            .into_iter()
            .map(|purpose| purpose.as_str().to_owned())
            .collect(),
    })
}
