//! The live side: the membership feed as a connection, and the subscriptions that follow it.

use async_graphql::{Context, Enum, ID, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use super::args::page_size;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::page::{Connection, CountList, DEFAULT_PAGE_SIZE, Total, page_complexity};
use super::views::ContactView;
use super::{CallerSource, caller, caller_source};
use crate::domain::{
    Caller, ContactId, MembershipCause, MembershipChange, MembershipKind, Scope, Slug,
};
use crate::service::{ServiceError, Services};

/// Entered or left.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MembershipChangeKind")]
pub enum ChangeKind {
    /// The contact became a member.
    Enter,
    /// The contact stopped being a member.
    Exit,
}

/// Why the membership changed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MembershipChangeCause")]
pub enum ChangeCause {
    /// A write to the contact (upsert, import row, identify, merge into it, unmerge, event).
    ContactChanged,
    /// The contact was deleted or merged into another.
    ContactRemoved,
    /// Time passed: a time-relative condition became true or false at `at`.
    Time,
    /// The segment's definition (or one it references) was edited.
    SegmentEdited,
    /// The contact granted or withdrew a consent the segment tests.
    Consent,
}

/// One entry of a saved segment's membership feed.
#[derive(SimpleObject, Clone)]
pub struct SegmentChange {
    /// Its place in the feed: pass it as `after` to resume after it.
    pub cursor: String,
    /// The saved segment.
    pub slug: String,
    /// The contact.
    pub contact_id: ID,
    /// Entered or left.
    pub kind: ChangeKind,
    /// When (for `TIME`: the exact moment the condition flipped).
    pub at: DateTime<Utc>,
    /// Why.
    pub cause: ChangeCause,
}

impl From<MembershipChange> for SegmentChange {
    fn from(change: MembershipChange) -> Self {
        Self {
            cursor: change.position,
            slug: change.segment.as_str().to_owned(),
            contact_id: ID(change.contact.to_string()),
            kind: match change.kind {
                MembershipKind::Enter => ChangeKind::Enter,
                MembershipKind::Exit => ChangeKind::Exit,
            },
            at: change.at,
            cause: match change.cause {
                MembershipCause::ContactChanged => ChangeCause::ContactChanged,
                MembershipCause::ContactRemoved => ChangeCause::ContactRemoved,
                MembershipCause::Time => ChangeCause::Time,
                MembershipCause::SegmentEdited => ChangeCause::SegmentEdited,
                MembershipCause::Consent => ChangeCause::Consent,
            },
        }
    }
}

/// The feed as a query.
pub struct LiveQuery {
    services: Services,
}

impl LiveQuery {
    /// Reads through `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// The feed as a query.
#[Object]
impl LiveQuery {
    /// Who entered and left saved segment `slug`, in the order it happened: ENTER and EXIT
    /// entries recorded as writes, merges, deletions, time and edits of the segment change its
    /// members. A router that was down resumes from its last `endCursor` (an empty page keeps
    /// the `after` given). Entries are kept for `FEED_RETENTION_DAYS` (30 by default).
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead).and(RequireScope(Scope::SegmentsRead))",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn segment_changes(
        &self,
        ctx: &Context<'_>,
        slug: String,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentChange>> {
        let caller = caller(ctx)?;
        let slug = Slug::parse(&slug).map_err(ServiceError::from).api()?;
        let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
        let live = &self.services.live;
        let page = live
            .segment_changes(&caller, &slug, after.as_deref(), first)
            .await
            .api()?;
        let items = page
            .entries
            .into_iter()
            .map(|entry| (entry.position.clone(), SegmentChange::from(entry)))
            .collect();
        let live = live.clone();
        let count: CountList = Box::new(move || {
            let (live, caller, slug) = (live.clone(), caller.clone(), slug.clone());
            Box::pin(async move { live.segment_change_count(&caller, &slug).await })
        });
        Ok(Connection::of_page(
            items,
            page.has_more,
            after,
            Total::Counted(count),
        ))
    }
}

/// Every subscription field (over WebSocket at `/graphql/ws`, protocol graphql-transport-ws).
pub struct SubscriptionRoot {
    services: Services,
}

impl SubscriptionRoot {
    /// Follows through `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Every subscription field (over WebSocket at `/graphql/ws`, protocol graphql-transport-ws).
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// ENTER and EXIT of saved segment `slug` as they are recorded, the feed the query
    /// `segmentChanges` pages: the entries after cursor `after` first (a cursor of either, so
    /// a client that was away misses nothing), then each new one; from now on when `after` is
    /// omitted. The key is checked again at every entry: one that lost a scope, or may no
    /// longer read a field the segment tests, gets FORBIDDEN and the subscription ends.
    #[graphql(guard = "RequireScope(Scope::ContactsRead).and(RequireScope(Scope::SegmentsRead))")]
    async fn segment_changes(
        &self,
        ctx: &Context<'_>,
        slug: String,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SegmentChange>> + use<>>
    {
        self.follow_feed(ctx, slug, after)
    }

    /// The feed of saved segment `slug`, as `segmentChanges` follows it.
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead).and(RequireScope(Scope::SegmentsRead))",
        deprecation = "Use `segmentChanges`, the name the query has; `segmentMembership` goes in the next release."
    )]
    async fn segment_membership(
        &self,
        ctx: &Context<'_>,
        slug: String,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SegmentChange>> + use<>>
    {
        self.follow_feed(ctx, slug, after)
    }

    /// The contact `id` each time it changes (after the change is searchable), as the key's
    /// field policy shows it at that moment. Ends with NOT_FOUND when the contact is deleted,
    /// and with FORBIDDEN once the key lost `contacts:read`.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn contact_changed(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ContactView>> + use<>> {
        let caller = &*caller(ctx)?;
        let id = ContactId::parse(&id)
            .map_err(|_| ServiceError::invalid("id", format!("`{}` is not a contact id", id.0)))
            .api()?;
        // The contact must exist now (or resolve through a merge).
        let contact = self
            .services
            .contacts
            .get(&caller.workspace, &id)
            .await
            .api()?;
        let stream = self
            .services
            .live
            .contact_changed(Caller::clone(caller), contact.id);
        let views = stream.map(|contact| contact.map(ContactView::new).api());
        Ok(while_allowed(views, caller_source(ctx)?, |now| {
            ServiceError::require_scope(now, Scope::ContactsRead)
        }))
    }
}

impl SubscriptionRoot {
    /// The entries of saved segment `slug` after `after`, then each new one, while the key may
    /// read them.
    fn follow_feed(
        &self,
        ctx: &Context<'_>,
        slug: String,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SegmentChange>> + use<>>
    {
        let caller = &*caller(ctx)?;
        let slug = Slug::parse(&slug).map_err(ServiceError::from).api()?;
        let stream = self
            .services
            .live
            .segment_membership(Caller::clone(caller), slug.clone(), after)
            .api()?;
        let segments = self.services.segments.clone();
        let entries = stream.map(|entry| entry.map(SegmentChange::from).api());
        Ok(while_allowed(entries, caller_source(ctx)?, move |now| {
            ServiceError::require_scope(now, Scope::ContactsRead)?;
            ServiceError::require_scope(now, Scope::SegmentsRead)?;
            segments.readable(now, &slug).map(|_| ())
        }))
    }
}

/// `stream` for as long as `still_allowed` admits the key as it stands at each item: a
/// subscription follows its key, so a narrowed scope or policy applies to its next message,
/// which is then FORBIDDEN and the last.
fn while_allowed<T, S, Allowed>(
    stream: S,
    source: CallerSource,
    still_allowed: Allowed,
) -> impl Stream<Item = async_graphql::Result<T>> + use<T, S, Allowed>
where
    S: Stream<Item = async_graphql::Result<T>> + Send + 'static,
    T: Send + 'static,
    Allowed: Fn(&Caller) -> Result<(), ServiceError> + Send + 'static,
{
    let state = Some((Box::pin(stream), source, still_allowed));
    futures_util::stream::unfold(state, |state| async move {
        let (mut stream, source, still_allowed) = state?;
        let item = stream.next().await?;
        match still_allowed(&source.current()) {
            Ok(()) => Some((item, Some((stream, source, still_allowed)))),
            // The refusal is the last message: the subscription completes after it.
            Err(refusal) => Some((Err(refusal).api(), None)),
        }
    })
}
