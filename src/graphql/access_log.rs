//! Who read whom (scope `admin`): the view and resolver of `contactAccessLog` (mounted on the
//! contact query root).

use async_graphql::{Context, ID, SimpleObject};
use chrono::{DateTime, Utc};

use super::caller;
use super::error::ApiResult;
use super::page::{Connection, KeyOrder};
use crate::domain::ContactId;
use crate::service::{ServiceError, Services};
use crate::store::ContactAccess;

/// One API key's reads of a contact's personal fields within one hour (reads are recorded
/// per key, contact and hour, not per request).
#[derive(SimpleObject, Clone)]
#[graphql(name = "ContactAccess")]
pub struct ContactAccessView {
    /// The API key that read.
    key_id: ID,
    /// The start of the hour in which it read.
    hour: DateTime<Utc>,
}

impl From<ContactAccess> for ContactAccessView {
    fn from(access: ContactAccess) -> Self {
        Self {
            key_id: ID(access.key),
            hour: access.hour,
        }
    }
}

/// `contactAccessLog(contactId:)`: who read the contact, newest hour first.
pub async fn contact_access_log(
    services: &Services,
    ctx: &Context<'_>,
    contact_id: ID,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<ContactAccessView>> {
    let contact = ContactId::parse(&contact_id)
        .map_err(ServiceError::from)
        .api()?;
    let accesses = services
        .access_log
        .of_contact(&*caller(ctx)?, &contact)
        .await
        .api()?;
    let keyed = accesses
        .into_iter()
        .map(|access| {
            let key = format!("{}|{}", access.hour.timestamp(), access.key);
            (key, ContactAccessView::from(access))
        })
        .collect();
    Connection::of_keyed(keyed, first, after.as_deref(), KeyOrder::Descending).api()
}
