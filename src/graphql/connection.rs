//! Relay connection of contacts, paged by id (a stable key), never by offset.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiResult;
use super::page_batch::PageBatch;
use super::views::ContactView;
use crate::domain::{Contact, ContactId, WorkspaceId};
use crate::service::{SegmentPage, ServiceError};
use crate::store::ContactPage;

/// Marks cursors of this API, so foreign strings are refused rather than misread.
const CURSOR_PREFIX: &str = "contact:";

/// The opaque cursor that resumes a page after `id`.
pub fn encode_cursor(id: &ContactId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

/// Reads a cursor produced by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<ContactId, ServiceError> {
    let invalid = || {
        ServiceError::invalid(
            "after",
            format!("`{cursor}` is not a cursor returned by this API"),
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix(CURSOR_PREFIX).ok_or_else(invalid)?;
    ContactId::parse(id).map_err(|_| invalid())
}

/// Where a connection's total comes from.
enum TotalCount {
    /// Every contact of the workspace, counted when asked.
    Workspace(WorkspaceId),
    /// Already known (segment members are counted with the page).
    Known(u64),
}

/// A page of contacts.
pub struct ContactConnection {
    total: TotalCount,
    contacts: Vec<Contact>,
    /// Loads the nested fields of the page's contacts together.
    batch: Arc<PageBatch>,
    has_next_page: bool,
    has_previous_page: bool,
}

impl ContactConnection {
    /// Wraps a store page; `resumed` says whether it started after a cursor.
    pub fn new(workspace: WorkspaceId, page: ContactPage, resumed: bool) -> Self {
        Self {
            batch: batch_of(&workspace, &page.contacts),
            total: TotalCount::Workspace(workspace),
            contacts: page.contacts,
            has_next_page: page.has_more,
            has_previous_page: resumed,
        }
    }

    /// Wraps a page of segment members.
    pub fn from_segment(workspace: &WorkspaceId, page: SegmentPage, resumed: bool) -> Self {
        Self {
            batch: batch_of(workspace, &page.contacts),
            total: TotalCount::Known(page.total),
            contacts: page.contacts,
            has_next_page: page.has_more,
            has_previous_page: resumed,
        }
    }
}

fn batch_of(workspace: &WorkspaceId, contacts: &[Contact]) -> Arc<PageBatch> {
    PageBatch::new(workspace.clone(), contacts.iter().map(|c| c.id).collect())
}

/// An edge: a contact and the cursor that resumes after it.
pub struct ContactEdge(Contact, Arc<PageBatch>);

#[Object]
impl ContactEdge {
    /// Pass as `after` to continue after this contact.
    async fn cursor(&self) -> String {
        encode_cursor(&self.0.id)
    }

    /// The contact.
    async fn node(&self) -> ContactView {
        ContactView::in_page(self.0.clone(), &self.1)
    }
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more contacts follow this page.
    has_next_page: bool,
    /// Whether this page started after a cursor.
    has_previous_page: bool,
    /// Cursor of the first edge.
    start_cursor: Option<String>,
    /// Cursor of the last edge; pass as `after` for the next page.
    end_cursor: Option<String>,
}

#[Object]
impl ContactConnection {
    /// The contacts of this page with their cursors.
    async fn edges(&self) -> Vec<ContactEdge> {
        self.contacts
            .iter()
            .cloned()
            .map(|contact| ContactEdge(contact, Arc::clone(&self.batch)))
            .collect()
    }

    /// The contacts of this page.
    async fn nodes(&self) -> Vec<ContactView> {
        self.contacts
            .iter()
            .cloned()
            .map(|contact| ContactView::in_page(contact, &self.batch))
            .collect()
    }

    /// Where this page sits.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.contacts.first().map(|c| encode_cursor(&c.id)),
            end_cursor: self.contacts.last().map(|c| encode_cursor(&c.id)),
        }
    }

    /// How many contacts the whole connection holds (computed only when asked).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        match &self.total {
            TotalCount::Workspace(workspace) => {
                super::services(ctx)?.contacts.count(workspace).await.api()
            }
            TotalCount::Known(total) => Ok(*total),
        }
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
