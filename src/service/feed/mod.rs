//! Reading the membership feed: pages from a cursor, and streams that resume from a cursor
//! and then follow what the engine records (subscriptions).

mod fanout;

use std::sync::Arc;

use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::domain::FeedEvent;
use crate::domain::{Caller, Contact, ContactId, MembershipChange, Slug};
use crate::service::contacts::ContactService;
use crate::service::error::ServiceError;
use crate::service::membership::MembershipEngine;
use crate::service::segments::SegmentService;
use crate::store::Store;
use fanout::{FeedFanout, now_position};

/// Most entries one page of `segmentChanges` returns.
pub const MAX_FEED_PAGE: usize = 1_000;

/// A page of a segment's feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// Entries in feed order.
    pub entries: Vec<MembershipChange>,
    /// Whether entries follow the page.
    pub has_more: bool,
}

/// The feed and its followers.
#[derive(Clone)]
pub struct LiveService {
    engine: Arc<MembershipEngine>,
    fanout: FeedFanout,
    store: Store,
    segments: SegmentService,
    contacts: ContactService,
}

impl LiveService {
    /// Reads what `engine` records in `store`; `segments` and `contacts` check access.
    pub fn new(
        engine: Arc<MembershipEngine>,
        store: Store,
        segments: SegmentService,
        contacts: ContactService,
    ) -> Self {
        Self {
            fanout: FeedFanout::new(store.clone(), Arc::clone(&engine)),
            engine,
            store,
            segments,
            contacts,
        }
    }

    /// The engine (the indexer runs it).
    pub fn engine(&self) -> &Arc<MembershipEngine> {
        &self.engine
    }

    /// Up to `first` entries of saved segment `slug` after position `after`.
    pub async fn segment_changes(
        &self,
        caller: &Caller,
        slug: &Slug,
        after: Option<&str>,
        first: usize,
    ) -> Result<FeedPage, ServiceError> {
        self.segments.readable(caller, slug)?;
        let after = after.map(checked_position).transpose()?;
        let first = first.min(MAX_FEED_PAGE);
        let mut entries = self
            .store
            .membership_changes(&caller.workspace, slug, after.as_deref(), first + 1)
            .await?;
        let has_more = entries.len() > first;
        entries.truncate(first);
        Ok(FeedPage { entries, has_more })
    }

    /// How many entries the feed of saved segment `slug` holds.
    pub async fn segment_change_count(
        &self,
        caller: &Caller,
        slug: &Slug,
    ) -> Result<u64, ServiceError> {
        self.segments.readable(caller, slug)?;
        Ok(self
            .store
            .count_membership_changes(&caller.workspace, slug)
            .await?)
    }

    /// The entries of `slug` after `after` (from now when `None`), then each new one as it
    /// is recorded (through the segment's shared follower, see [`FeedFanout`]).
    pub fn segment_membership(
        &self,
        caller: Caller,
        slug: Slug,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<MembershipChange, ServiceError>> + use<>, ServiceError>
    {
        self.segments.readable(&caller, &slug)?;
        let after = after.as_deref().map(checked_position).transpose()?;
        Ok(self
            .fanout
            .subscribe(caller.workspace, slug, after, now_position()))
    }

    /// The contact `id` each time it changes (its state after the change; NOT_FOUND once it
    /// no longer exists and nothing was merged into its place, which ends the stream).
    pub fn contact_changed(
        &self,
        caller: Caller,
        id: ContactId,
    ) -> impl Stream<Item = Result<Contact, ServiceError>> + use<> {
        let state = (
            self.engine.subscribe(),
            self.contacts.clone(),
            caller,
            id,
            false,
        );
        futures_util::stream::unfold(
            state,
            |(mut events, contacts, caller, id, ended)| async move {
                if ended {
                    return None;
                }
                loop {
                    match events.recv().await {
                        Ok(FeedEvent::ContactChanged(workspace, changed))
                            if workspace == caller.workspace && changed == id =>
                        {
                            let contact = contacts.get(&caller.workspace, &id).await;
                            let ended = contact.is_err();
                            return Some((contact, (events, contacts, caller, id, ended)));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        )
    }
}

/// A feed cursor as a client gives it: a position (26 characters of Crockford base32).
fn checked_position(raw: &str) -> Result<String, ServiceError> {
    ulid::Ulid::from_string(raw)
        .map(|position| position.to_string())
        .map_err(|_| ServiceError::invalid("after", format!("`{raw}` is not a feed cursor")))
}
