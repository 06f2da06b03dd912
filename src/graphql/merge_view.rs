//! A merge as audited, as the API shows it (`contactHistory`, `mergeContacts`, `node`).

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::error::ApiResult;
use super::guard::RequireScope;
use super::identity_view::IdentityView;
use super::page::Connection;
use super::views::{ContactView, identity_page, visible_identities};
use super::{caller, services, workspace};
use crate::domain::{MergeRecord, Scope};
use crate::service::{InternalError, MergeReason, ServiceError};

/// Why a merge was made.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MergeCause {
    /// `mergeContacts` asked for it.
    Requested,
    /// `identify` linked an anonymous visitor to the identified contact.
    Identify,
    /// Two trusted claims of one email or phone linked their contacts.
    AutoLink,
}

impl MergeCause {
    /// The cause of the audit spelling `reason` (`merge`, `identify`, `auto-link`).
    fn of(reason: &str) -> Option<Self> {
        [
            (MergeReason::Requested, Self::Requested),
            (MergeReason::Identify, Self::Identify),
            (MergeReason::AutoLink, Self::AutoLink),
        ]
        .into_iter()
        .find(|(audited, _)| audited.as_str() == reason)
        .map(|(_, cause)| cause)
    }
}

/// A merge, as audited.
#[derive(Clone)]
pub struct MergeView(pub MergeRecord);

impl MergeView {
    /// Where it sits in a contact's history (newest first), as a cursor holds it.
    pub fn page_key(&self) -> String {
        let merged = self
            .0
            .merged_at
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        format!("{merged}|{}", self.0.id)
    }
}

/// A merge, as audited.
#[Object(name = "Merge")]
impl MergeView {
    /// The merge id (give it to `unmergeContacts`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The contact that remained.
    async fn survivor_id(&self) -> ID {
        ID(self.0.survivor.to_string())
    }

    /// The contact merged away; its id resolves to the survivor while the merge stands.
    async fn absorbed_id(&self) -> ID {
        ID(self.0.absorbed.to_string())
    }

    /// Who asked for it (`identify` and `auto-link` for automatic merges).
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// Why: `merge` (requested), `identify` or `auto-link`.
    #[graphql(deprecation = "use `cause`, an enum")]
    async fn reason(&self) -> &str {
        &self.0.reason
    }

    /// Why it was made.
    async fn cause(&self) -> async_graphql::Result<MergeCause> {
        MergeCause::of(&self.0.reason)
            .ok_or_else(|| {
                ServiceError::Internal(InternalError::StoredValue {
                    record: format!("merge `{}`", self.0.id),
                    problem: format!("the unknown reason `{}`", self.0.reason),
                })
            })
            .api()
    }

    /// When.
    async fn merged_at(&self) -> DateTime<Utc> {
        self.0.merged_at
    }

    /// The survivor just before the merge.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn survivor_before(&self) -> ContactView {
        ContactView::new(self.0.survivor_before.clone())
    }

    /// The absorbed contact just before the merge.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn absorbed_before(&self) -> ContactView {
        ContactView::new(self.0.absorbed_before.clone())
    }

    /// The survivor as the merge left it.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn survivor_after(&self) -> ContactView {
        ContactView::new(self.0.survivor_after.clone())
    }

    /// The identities that moved from the absorbed contact to the survivor (those the caller
    /// may read).
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn moved_identities(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<IdentityView>> {
        let caller = caller(ctx)?;
        let visible = visible_identities(&caller.policy, self.0.moved_identities.clone());
        identity_page(visible, first, after)
    }

    /// When it was undone (null while it stands).
    async fn undone_at(&self) -> Option<DateTime<Utc>> {
        self.0.undone_at
    }

    /// Who undid it.
    async fn undone_by(&self) -> Option<&str> {
        self.0.undone_by.as_deref()
    }

    /// The survivor as it is now.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn survivor(&self, ctx: &Context<'_>) -> async_graphql::Result<ContactView> {
        let workspace = &workspace(ctx)?;
        let contact = services(ctx)?
            .contacts
            .get(workspace, &self.0.survivor)
            .await
            .api()?;
        Ok(ContactView::new(contact))
    }
}
