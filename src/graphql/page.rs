//! The one connection shape of the API: `XConnection { edges { cursor node } nodes pageInfo
//! totalCount }` with one `PageInfo`, paged forward by `first` (default 20, at most 100) and an
//! opaque `after`. [`Connection::of_list`] pages a list the service reads whole (the lists a
//! workspace or a contact holds); [`Connection::of_page`] wraps a page the store read (contacts,
//! activity, the membership feed, the delivery log).

use std::borrow::Cow;

use async_graphql::{Object, OutputType, SimpleObject, TypeName};

use futures_util::future::BoxFuture;

use super::args::page_size;
use super::cursor::{open_cursor, seal_cursor};
use super::error::ApiResult;
use crate::service::ServiceError;

/// `first` when a client leaves it out.
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// The GraphQL complexity of a connection field: `first` (default 20, at most 100) times
/// that of one node. Root lists and lists paged in the store count so; the lists of one
/// record read whole with it (a contact's identities and segments, a segment's references,
/// a merge's moved identities) count their node once, as plain lists did: they load with
/// the record's page, not per item.
pub fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    usize::try_from(first.clamp(1, 100)).unwrap_or(1) * child_complexity
}

/// Where a page stops. Pages go forward only.
#[derive(SimpleObject, Default)]
pub struct PageInfo {
    /// Whether items follow this page (ask again with `after: endCursor`).
    pub has_next_page: bool,
    /// The cursor after the last item of the page (pass it as `after`); the `after` given
    /// when the page is empty, so a poller keeps its place.
    pub end_cursor: Option<String>,
    /// Whether this page started after a cursor.
    #[graphql(deprecation = "Pages go forward only; a client knows whether it passed `after`.")]
    pub has_previous_page: bool,
    /// The cursor of the first item of the page.
    #[graphql(
        deprecation = "Pages go forward only: resume with `endCursor`, or the `cursor` of an edge."
    )]
    pub start_cursor: Option<String>,
}

/// One item of a page and the cursor that resumes after it.
#[derive(SimpleObject)]
#[graphql(name_type)]
pub struct Edge<T: OutputType> {
    /// Pass as `after` to continue after this item.
    pub cursor: String,
    /// The item.
    pub node: T,
}

impl<T: OutputType> TypeName for Edge<T> {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Edge", T::type_name()))
    }
}

/// A page of a list: the items with their cursors, where the page stops, and how many the
/// whole list holds.
pub struct Connection<T> {
    /// The page's items, each with the cursor that resumes after it.
    items: Vec<(String, T)>,
    page_info: PageInfo,
    total: Total,
}

/// Counts a list that pages in the store, when a client asks for `totalCount`.
pub type CountList = Box<dyn Fn() -> BoxFuture<'static, Result<u64, ServiceError>> + Send + Sync>;

/// How a connection knows the size of its whole list.
pub enum Total {
    /// Known with the page (a list read whole).
    Known(u64),
    /// Counted in the store when asked for.
    Counted(CountList),
}

/// A page of a list: the items with their cursors, where the page stops, and how many the
/// whole list holds.
#[Object(name_type)]
impl<T: OutputType + Clone> Connection<T> {
    /// The items of this page, each with its cursor.
    async fn edges(&self) -> Vec<Edge<T>> {
        self.items
            .iter()
            .map(|(cursor, node)| Edge {
                cursor: cursor.clone(),
                node: node.clone(),
            })
            .collect()
    }

    /// The items of this page.
    async fn nodes(&self) -> Vec<T> {
        self.items.iter().map(|(_, node)| node.clone()).collect()
    }

    /// Where this page stops.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }

    /// How many items the whole list holds.
    async fn total_count(&self) -> async_graphql::Result<u64> {
        match &self.total {
            Total::Known(count) => Ok(*count),
            Total::Counted(count) => count().await.api(),
        }
    }
}

impl<T: OutputType + Clone> TypeName for Connection<T> {
    fn type_name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Connection", T::type_name()))
    }
}

/// How a list is ordered by its items' keys.
#[derive(Clone, Copy)]
pub enum KeyOrder {
    /// Smallest key first (slugs, identities, oldest ids first).
    Ascending,
    /// Largest key first (newest ids first).
    Descending,
}

impl<T: OutputType + Clone> Connection<T> {
    /// A page with nothing on it and nothing after it (a list the caller may not read).
    pub fn empty() -> Self {
        Self::of_page(Vec::new(), false, None, Total::Known(0))
    }

    /// A page the store read: its items with their cursors (in page order), whether more
    /// follow, the `after` it started after, and the size of the whole list. The end cursor
    /// of an empty page is `after`, so a poller keeps its place.
    pub fn of_page(
        items: Vec<(String, T)>,
        has_next_page: bool,
        after: Option<String>,
        total: Total,
    ) -> Self {
        let page_info = PageInfo {
            has_next_page,
            end_cursor: items
                .last()
                .map(|(cursor, _)| cursor.clone())
                .or_else(|| after.clone()),
            has_previous_page: after.is_some(),
            start_cursor: items.first().map(|(cursor, _)| cursor.clone()),
        };
        Self {
            items,
            page_info,
            total,
        }
    }

    /// Pages `items`, ordered by `key` in `order` (unique per item), after the item whose
    /// key `after` holds. The cursor is the key, so a page resumes in place even when items
    /// came or went in between. INVALID_INPUT for a negative or too large `first` or a
    /// cursor of another list.
    pub fn of_list(
        items: Vec<T>,
        first: Option<i32>,
        after: Option<&str>,
        order: KeyOrder,
        key: impl Fn(&T) -> String,
    ) -> Result<Self, ServiceError> {
        let keyed = items.into_iter().map(|item| (key(&item), item)).collect();
        Self::of_keyed(keyed, first, after, order)
    }

    /// Pages `keyed` items as [`Connection::of_list`] does, each with its key given.
    pub fn of_keyed(
        mut keyed: Vec<(String, T)>,
        first: Option<i32>,
        after: Option<&str>,
        order: KeyOrder,
    ) -> Result<Self, ServiceError> {
        let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE))?;
        let prefix = format!("{}:", T::type_name());
        let what = format!("a cursor of a list of {}", T::type_name());
        let after_key = after
            .map(|cursor| open_cursor(cursor, &prefix, &what))
            .transpose()?;
        keyed.sort_by(|a, b| match order {
            KeyOrder::Ascending => a.0.cmp(&b.0),
            KeyOrder::Descending => b.0.cmp(&a.0),
        });
        let total_count = keyed.len() as u64;
        let start = after_key.as_deref().map_or(0, |after| {
            keyed.partition_point(|(key, _)| match order {
                KeyOrder::Ascending => key.as_str() <= after,
                KeyOrder::Descending => key.as_str() >= after,
            })
        });
        let end = start.saturating_add(first).min(keyed.len());
        let has_next_page = end < keyed.len();
        let items: Vec<(String, T)> = keyed
            .drain(start..end)
            .map(|(key, item)| (seal_cursor(&prefix, &key), item))
            .collect();
        Ok(Self::of_page(
            items,
            has_next_page,
            after.map(str::to_owned),
            Total::Known(total_count),
        ))
    }
}
