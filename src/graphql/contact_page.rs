//! Pages of contacts as connections: by id (a stable key), in an order (`orderBy`), or search
//! results by rank; the page's contacts load their nested fields together.

use super::cursor::{not_a_cursor, open_cursor, seal_cursor};
use super::page::{Connection, Total};
use super::page_batch::PageBatch;
use super::views::ContactView;
use crate::domain::{ContactId, WorkspaceId};
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

/// A page of contacts.
pub type ContactConnection = Connection<ContactView>;

/// What the cursors of a page stand for.
enum Cursors {
    /// Contact ids (pages by id).
    ById,
    /// Positions in search results, the page starting after this many.
    ByRank(usize),
    /// Places in an order, one per contact of the page.
    InOrder(Vec<Rank>),
}

/// A page of segment members (or of every contact), resumed from cursor `after`.
pub fn by_id(
    workspace: &WorkspaceId,
    page: SegmentPage,
    after: Option<String>,
) -> ContactConnection {
    contact_page(workspace, page, Cursors::ById, after)
}

/// A page of members in an order (`orderBy`), resumed from cursor `after`.
pub fn in_order(
    workspace: &WorkspaceId,
    mut page: SegmentPage,
    after: Option<String>,
) -> ContactConnection {
    let ranks = std::mem::take(&mut page.ranks);
    contact_page(workspace, page, Cursors::InOrder(ranks), after)
}

/// A page of search results that starts after the first `offset` of them (cursor `after`).
pub fn by_rank(
    workspace: &WorkspaceId,
    page: SegmentPage,
    offset: usize,
    after: Option<String>,
) -> ContactConnection {
    contact_page(workspace, page, Cursors::ByRank(offset), after)
}

fn contact_page(
    workspace: &WorkspaceId,
    page: SegmentPage,
    cursors: Cursors,
    after: Option<String>,
) -> ContactConnection {
    let batch = PageBatch::new(
        workspace.clone(),
        page.contacts.iter().map(|c| c.id).collect(),
    );
    let items = page
        .contacts
        .into_iter()
        .enumerate()
        .map(|(index, contact)| {
            let cursor = match &cursors {
                Cursors::ById => encode_cursor(&contact.id),
                Cursors::ByRank(offset) => encode_rank_cursor(offset + index + 1),
                Cursors::InOrder(ranks) => ranks
                    .get(index)
                    .map(encode_order_cursor)
                    .unwrap_or_default(),
            };
            (cursor, ContactView::in_page(contact, &batch))
        })
        .collect();
    Connection::of_page(items, page.has_more, after, Total::Known(page.total))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = ContactId::generate();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(id.to_string())).is_err());
    }
}
