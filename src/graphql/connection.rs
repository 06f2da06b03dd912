//! Relay connection of contacts, paged by id (a stable key); search results, ranked, page by
//! rank.

use std::sync::Arc;

use async_graphql::Object;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::page::PageInfo;
use super::page_batch::PageBatch;
use super::views::ContactView;
use crate::domain::{Contact, ContactId, WorkspaceId};
use crate::index::Rank;
use crate::service::{SegmentPage, ServiceError};

/// Marks cursors of contact pages by id, so foreign strings are refused rather than misread.
const CURSOR_PREFIX: &str = "contact:";
/// Marks cursors of pages in an order: they resume after a place in that order.
const ORDER_PREFIX: &str = "order:";
/// Marks cursors of search results: they resume after a rank, not after a contact.
const RANK_PREFIX: &str = "rank:";

/// The opaque cursor that resumes a page after `id`.
pub fn encode_cursor(id: &ContactId) -> String {
    seal_cursor(CURSOR_PREFIX, &id.to_string())
}

/// Reads a cursor produced by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<ContactId, ServiceError> {
    let what = "a cursor";
    let id = open_cursor(cursor, CURSOR_PREFIX, what)?;
    ContactId::parse(&id).map_err(|_| not_a_cursor(cursor, what))
}

/// The cursor after a contact of a page in an order (`orderBy`).
pub fn encode_order_cursor(rank: &Rank) -> String {
    let body = format!(
        "{}:{}:{}",
        u8::from(rank.missing),
        rank.key,
        ContactId::from_u128(rank.id)
    );
    seal_cursor(ORDER_PREFIX, &body)
}

/// The place in an order a cursor of [`encode_order_cursor`] stands for.
pub fn decode_order_cursor(cursor: &str) -> Result<Rank, ServiceError> {
    let what = "a cursor of an ordered page";
    let invalid = || not_a_cursor(cursor, what);
    let body = open_cursor(cursor, ORDER_PREFIX, what)?;
    let mut parts = body.splitn(3, ':');
    let (Some(missing), Some(key), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    Ok(Rank {
        missing: match missing {
            "0" => false,
            "1" => true,
            _ => return Err(invalid()),
        },
        key: key.parse().map_err(|_| invalid())?,
        id: ContactId::parse(id).map_err(|_| invalid())?.as_u128(),
    })
}

/// The opaque cursor that resumes search results after the first `rank` of them.
pub fn encode_rank_cursor(rank: usize) -> String {
    seal_cursor(RANK_PREFIX, &rank.to_string())
}

/// Reads a cursor produced by [`encode_rank_cursor`].
pub fn decode_rank_cursor(cursor: &str) -> Result<usize, ServiceError> {
    let what = "a cursor of search results";
    let rank = open_cursor(cursor, RANK_PREFIX, what)?;
    rank.parse().map_err(|_| not_a_cursor(cursor, what))
}

/// An opaque cursor: `prefix` and `body`, base64url.
pub fn seal_cursor(prefix: &str, body: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{body}"))
}

/// The body of a cursor sealed with `prefix`; INVALID_INPUT naming `what` it should have been.
pub fn open_cursor(cursor: &str, prefix: &str, what: &str) -> Result<String, ServiceError> {
    let invalid = || not_a_cursor(cursor, what);
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// INVALID_INPUT for `after`: `cursor` is not `what` this API returned.
pub fn not_a_cursor(cursor: &str, what: &str) -> ServiceError {
    ServiceError::invalid(
        "after",
        format!("`{cursor}` is not {what} returned by this API"),
    )
}

/// A page of contacts.
pub struct ContactConnection {
    /// The exact number of contacts of the whole connection (counted with the page).
    total: u64,
    contacts: Vec<Arc<Contact>>,
    /// Loads the nested fields of the page's contacts together.
    batch: Arc<PageBatch>,
    /// For search results: the rank of the page's first contact (cursors count ranks).
    cursors: Cursors,
    has_next_page: bool,
    has_previous_page: bool,
}

impl ContactConnection {
    /// Wraps a page of segment members (or of every contact); `resumed` says whether it
    /// started after a cursor.
    pub fn from_segment(workspace: &WorkspaceId, page: SegmentPage, resumed: bool) -> Self {
        Self {
            batch: batch_of(workspace, &page.contacts),
            total: page.total,
            contacts: page.contacts,
            has_next_page: page.has_more,
            has_previous_page: resumed,
            cursors: Cursors::ById,
        }
    }
}

/// What the cursors of a page stand for.
enum Cursors {
    /// Contact ids (pages by id).
    ById,
    /// Positions in search results, the page starting after this many.
    ByRank(usize),
    /// Places in an order, one per contact of the page.
    InOrder(Vec<Rank>),
}

impl ContactConnection {
    /// A page of members in an order (`orderBy`); `resumed` when it follows a cursor.
    pub fn from_ordered(workspace: &WorkspaceId, mut page: SegmentPage, resumed: bool) -> Self {
        let ranks = std::mem::take(&mut page.ranks);
        Self {
            batch: batch_of(workspace, &page.contacts),
            total: page.total,
            contacts: page.contacts,
            has_next_page: page.has_more,
            has_previous_page: resumed,
            cursors: Cursors::InOrder(ranks),
        }
    }
}

fn batch_of(workspace: &WorkspaceId, contacts: &[Arc<Contact>]) -> Arc<PageBatch> {
    PageBatch::new(workspace.clone(), contacts.iter().map(|c| c.id).collect())
}

impl ContactConnection {
    /// Wraps a page of search results that starts after the first `offset` of them.
    pub fn from_search(workspace: &WorkspaceId, page: SegmentPage, offset: usize) -> Self {
        Self {
            batch: batch_of(workspace, &page.contacts),
            total: page.total,
            contacts: page.contacts,
            has_next_page: page.has_more,
            has_previous_page: offset > 0,
            cursors: Cursors::ByRank(offset),
        }
    }

    /// The cursor after the contact at `index` of this page.
    fn cursor(&self, index: usize) -> Option<String> {
        let contact = self.contacts.get(index)?;
        Some(match &self.cursors {
            Cursors::ById => encode_cursor(&contact.id),
            Cursors::ByRank(offset) => encode_rank_cursor(offset + index + 1),
            Cursors::InOrder(ranks) => encode_order_cursor(ranks.get(index)?),
        })
    }
}

/// An edge: a contact, the cursor that resumes after it, and its page's batch.
pub struct ContactEdge(Arc<Contact>, String, Arc<PageBatch>);

/// A contact of a page, with the cursor that resumes after it.
#[Object]
impl ContactEdge {
    /// Pass as `after` to continue after this contact.
    async fn cursor(&self) -> &str {
        &self.1
    }

    /// The contact.
    async fn node(&self) -> ContactView {
        ContactView::in_page(Arc::clone(&self.0), &self.2)
    }
}

/// A page of contacts.
#[Object]
impl ContactConnection {
    /// The contacts of this page with their cursors.
    async fn edges(&self) -> Vec<ContactEdge> {
        self.contacts
            .iter()
            .enumerate()
            .map(|(index, contact)| {
                let cursor = self.cursor(index).unwrap_or_default();
                ContactEdge(Arc::clone(contact), cursor, Arc::clone(&self.batch))
            })
            .collect()
    }

    /// The contacts of this page.
    async fn nodes(&self) -> Vec<ContactView> {
        self.contacts
            .iter()
            .map(|contact| ContactView::in_page(Arc::clone(contact), &self.batch))
            .collect()
    }

    /// Where this page sits.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.cursor(0),
            end_cursor: self
                .contacts
                .len()
                .checked_sub(1)
                .and_then(|last| self.cursor(last)),
        }
    }

    /// How many contacts the whole connection holds.
    async fn total_count(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = ContactId::generate();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(id.to_string())).is_err());
    }
}
