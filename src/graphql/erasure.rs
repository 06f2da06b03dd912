//! Erasure with suppression (scope `admin`): the inputs, payloads and resolvers of
//! `eraseContacts`, `unsuppressIdentifiers` and `erasureReceipts` (mounted on the contact
//! roots). A receipt holds no personal data: counts, keyed hashes, the time and the acting key's
//! id.

use async_graphql::{Context, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::caller;
use super::error::ApiResult;
use super::page::{Connection, KeyOrder};
use crate::service::{ErasureRequest, Services};
use crate::store::ErasureReceipt;

/// The people to erase, by any of their identifiers (at most 10,000 in all).
#[derive(InputObject)]
pub struct EraseContactsInput {
    /// Contact ids.
    ids: Option<Vec<ID>>,
    /// External ids (the ids in your system).
    external_ids: Option<Vec<String>>,
    /// Emails.
    emails: Option<Vec<String>>,
    /// Phone numbers (E.164, or national with a country prefix).
    phones: Option<Vec<String>>,
}

/// The identifiers whose suppression to lift (at most 10,000 in all).
#[derive(InputObject)]
pub struct UnsuppressIdentifiersInput {
    /// External ids.
    external_ids: Option<Vec<String>>,
    /// Emails.
    emails: Option<Vec<String>>,
    /// Phone numbers.
    phones: Option<Vec<String>>,
}

/// What one erasure did, without personal data.
#[derive(SimpleObject, Clone)]
#[graphql(name = "ErasureReceipt")]
pub struct ErasureReceiptView {
    /// The receipt's id.
    id: ID,
    /// When the erasure ran.
    erased_at: DateTime<Utc>,
    /// The id of the API key that asked for it.
    erased_by: ID,
    /// How many identifiers the request named.
    requested_count: u64,
    /// How many contacts were removed.
    erased_count: u64,
    /// The keyed hashes (HMAC-SHA256 under a key derived from the master key) of every
    /// identifier now suppressed: the request's and the erased contacts' own.
    suppressed_hashes: Vec<String>,
}

impl From<ErasureReceipt> for ErasureReceiptView {
    fn from(receipt: ErasureReceipt) -> Self {
        Self {
            id: ID(receipt.receipt),
            erased_at: receipt.at,
            erased_by: ID(receipt.by),
            requested_count: receipt.requested,
            erased_count: receipt.erased,
            suppressed_hashes: receipt.suppressed,
        }
    }
}

/// The result of `eraseContacts`.
#[derive(SimpleObject)]
pub struct EraseContactsPayload {
    /// What the erasure did.
    receipt: ErasureReceiptView,
}

/// The result of `unsuppressIdentifiers`.
#[derive(SimpleObject)]
pub struct UnsuppressIdentifiersPayload {
    /// How many of the identifiers were suppressed (and are no longer).
    unsuppressed_count: u64,
}

/// `erasureReceipts`: the workspace's erasure receipts, newest first.
pub async fn erasure_receipts(
    services: &Services,
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<ErasureReceiptView>> {
    let receipts = services.erasure.receipts(&*caller(ctx)?).await.api()?;
    let views = receipts.into_iter().map(ErasureReceiptView::from).collect();
    Connection::of_list(
        views,
        first,
        after.as_deref(),
        KeyOrder::Descending,
        |view: &ErasureReceiptView| view.id.to_string(),
    )
    .api()
}

/// `eraseContacts`.
pub async fn erase_contacts(
    services: &Services,
    ctx: &Context<'_>,
    input: EraseContactsInput,
) -> async_graphql::Result<EraseContactsPayload> {
    let request = ErasureRequest {
        ids: input
            .ids
            .unwrap_or_default()
            .into_iter()
            .map(|id| id.0)
            .collect(),
        external_ids: input.external_ids.unwrap_or_default(),
        emails: input.emails.unwrap_or_default(),
        phones: input.phones.unwrap_or_default(),
    };
    let receipt = services
        .erasure
        .erase(&*caller(ctx)?, request)
        .await
        .api()?;
    Ok(EraseContactsPayload {
        receipt: receipt.into(),
    })
}

/// `unsuppressIdentifiers`.
pub async fn unsuppress_identifiers(
    services: &Services,
    ctx: &Context<'_>,
    input: UnsuppressIdentifiersInput,
) -> async_graphql::Result<UnsuppressIdentifiersPayload> {
    let request = ErasureRequest {
        ids: Vec::new(),
        external_ids: input.external_ids.unwrap_or_default(),
        emails: input.emails.unwrap_or_default(),
        phones: input.phones.unwrap_or_default(),
    };
    let unsuppressed_count = services
        .erasure
        .unsuppress(&*caller(ctx)?, request)
        .await
        .api()?;
    Ok(UnsuppressIdentifiersPayload { unsuppressed_count })
}
