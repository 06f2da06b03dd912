//! Merge queries and mutations: preview, merge, undo, history.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::error::ApiResult;
use super::guard::RequireScope;
use super::identity_view::IdentityView;
use super::views::{ContactView, visible_identities};
use super::{caller, services, workspace};
use crate::domain::Scope;
use crate::domain::{
    ContactId, FieldDecision, FieldRule, MergeId, MergeRecord, MergeRule, MergeSide, MergeStrategy,
    ValueSource,
};
use crate::service::{MergePreview, MergeReason, ServiceError, Services};

/// One of the two contacts of a merge.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MergeSide")]
pub enum MergeSideView {
    /// The contact that remains.
    Survivor,
    /// The contact merged away.
    Absorbed,
}

impl From<MergeSideView> for MergeSide {
    fn from(value: MergeSideView) -> Self {
        match value {
            MergeSideView::Survivor => Self::Survivor,
            MergeSideView::Absorbed => Self::Absorbed,
        }
    }
}

/// Where a merged value came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ValueSource")]
pub enum ValueSourceView {
    /// The survivor's value.
    Survivor,
    /// The absorbed contact's value.
    Absorbed,
    /// Combined from both (union, sum).
    Both,
    /// Neither contact had a value.
    Neither,
}

impl From<ValueSource> for ValueSourceView {
    fn from(value: ValueSource) -> Self {
        match value {
            ValueSource::Survivor => Self::Survivor,
            ValueSource::Absorbed => Self::Absorbed,
            ValueSource::Both => Self::Both,
            ValueSource::Neither => Self::Neither,
        }
    }
}

/// The rule that decided a merged field.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "FieldRule")]
pub enum FieldRuleView {
    /// The survivor's value where set, else the absorbed contact's (fixed fields, default).
    Survivor,
    /// The value of the contact updated most recently.
    MostRecent,
    /// The value of the contact created first.
    Oldest,
    /// The survivor's value unless empty.
    NonEmpty,
    /// Union of both lists.
    Union,
    /// Sum of both numbers.
    Sum,
    /// The earlier instant (`createdAt`).
    Earliest,
    /// The later instant (`lastSeenAt`).
    Latest,
    /// Chosen by the merge strategy (conflicting external ids).
    Strategy,
}

impl From<FieldRule> for FieldRuleView {
    fn from(value: FieldRule) -> Self {
        match value {
            FieldRule::Attribute(MergeRule::Survivor) => Self::Survivor,
            FieldRule::Attribute(MergeRule::MostRecent) => Self::MostRecent,
            FieldRule::Attribute(MergeRule::Oldest) => Self::Oldest,
            FieldRule::Attribute(MergeRule::NonEmpty) => Self::NonEmpty,
            FieldRule::Attribute(MergeRule::Union) => Self::Union,
            FieldRule::Attribute(MergeRule::Sum) => Self::Sum,
            FieldRule::Earliest => Self::Earliest,
            FieldRule::Latest => Self::Latest,
            FieldRule::Strategy => Self::Strategy,
        }
    }
}

/// How one field of a merged contact is decided.
#[derive(SimpleObject)]
#[graphql(name = "MergeFieldDecision")]
pub struct FieldDecisionView {
    /// The field (`email`, `lastSeenAt`, …) or the custom attribute's name.
    field: String,
    /// Whether `field` is a custom attribute.
    is_attribute: bool,
    /// The merged value (null when absent).
    value: Json<JsonValue>,
    /// Which contact it came from.
    source: ValueSourceView,
    /// Which rule decided it.
    rule: FieldRuleView,
}

impl From<FieldDecision> for FieldDecisionView {
    fn from(decision: FieldDecision) -> Self {
        Self {
            field: decision.field,
            is_attribute: decision.is_attribute,
            value: Json(decision.value),
            source: decision.source.into(),
            rule: decision.rule.into(),
        }
    }
}

/// Choices for a merge.
#[derive(InputObject, Default)]
pub struct MergeStrategyInput {
    /// Whose external id wins when both contacts have one and they differ; without it such a
    /// merge is refused with CONFLICT. The losing id keeps resolving to the survivor.
    external_id: Option<MergeSideView>,
}

impl From<MergeStrategyInput> for MergeStrategy {
    fn from(input: MergeStrategyInput) -> Self {
        Self {
            external_id: input.external_id.map(Into::into),
        }
    }
}

/// What a merge would do, computed without writing.
pub struct MergePreviewView(MergePreview);

/// What a merge would do, computed without writing.
#[Object(name = "MergePreview")]
impl MergePreviewView {
    /// The contact that would remain.
    async fn survivor_id(&self) -> ID {
        ID(self.0.survivor.id.to_string())
    }

    /// The contact that would be merged away.
    async fn absorbed_id(&self) -> ID {
        ID(self.0.absorbed.id.to_string())
    }

    /// The survivor as the merge would leave it.
    async fn result(&self) -> ContactView {
        ContactView::new(self.0.plan.merged.clone())
    }

    /// Every field either contact has, with its merged value, source and rule; only fields the
    /// caller may read (sensitive values are null).
    async fn fields(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FieldDecisionView>> {
        let caller = caller(ctx)?;
        let policy = &caller.policy;
        Ok(self
            .0
            .plan
            .decisions
            .iter()
            .filter(|decision| {
                if decision.is_attribute {
                    policy.allows_attribute(&decision.field)
                } else {
                    policy.allows_builtin(&qwry_segment::snake_case(&decision.field))
                }
            })
            .cloned()
            .map(FieldDecisionView::from)
            .collect())
    }
}

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
pub struct MergeView(MergeRecord);

/// A merge, as audited.
#[Object(name = "Merge")]
impl MergeView {
    /// The merge id (give it to `unmergeContacts`).
    async fn id(&self) -> ID {
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
                ServiceError::Internal(format!(
                    "a merge has the unknown reason `{}`",
                    self.0.reason
                ))
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
    ) -> async_graphql::Result<Vec<IdentityView>> {
        let caller = caller(ctx)?;
        let policy = &caller.policy;
        Ok(visible_identities(policy, self.0.moved_identities.clone()))
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

/// Merge queries.
pub struct MergeQuery {
    services: Services,
}

impl MergeQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Merge queries.
#[Object]
impl MergeQuery {
    /// What merging `absorbedId` into `survivorId` would produce, field by field, without
    /// writing anything; `mergeContacts` with the same arguments applies exactly this plan.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn preview_merge(
        &self,
        ctx: &Context<'_>,
        survivor_id: ID,
        absorbed_id: ID,
        strategy: Option<MergeStrategyInput>,
    ) -> async_graphql::Result<MergePreviewView> {
        let workspace = &workspace(ctx)?;
        let (survivor, absorbed) = ids(&survivor_id, &absorbed_id).api()?;
        let preview = self
            .services
            .merges
            .preview(
                workspace,
                &survivor,
                &absorbed,
                strategy.unwrap_or_default().into(),
            )
            .await
            .api()?;
        Ok(MergePreviewView(preview))
    }

    /// The merges a contact took part in (as survivor or absorbed), newest first.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn contact_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Vec<MergeView>> {
        let workspace = &workspace(ctx)?;
        let id = ContactId::parse(&id).map_err(ServiceError::from).api()?;
        let merges = self.services.merges.history(workspace, &id).await.api()?;
        Ok(merges.into_iter().map(MergeView).collect())
    }
}

/// Merge mutations.
pub struct MergeMutation {
    services: Services,
}

impl MergeMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Merge mutations.
#[Object]
impl MergeMutation {
    /// Merges `input.absorbedId` into `input.survivorId` in one transaction: fixed fields keep the
    /// survivor's value where set, custom attributes follow their merge rule, identities move,
    /// and the absorbed id keeps resolving to the survivor. Audited; undo with `unmergeContacts`.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn merge_contacts(
        &self,
        ctx: &Context<'_>,
        input: MergeContactsInput,
    ) -> async_graphql::Result<MergeContactsPayload> {
        let workspace = &workspace(ctx)?;
        let actor = &super::actor(ctx);
        let (survivor, absorbed) = ids(&input.survivor_id, &input.absorbed_id).api()?;
        let record = self
            .services
            .merges
            .merge(
                workspace,
                &survivor,
                &absorbed,
                input.strategy.unwrap_or_default().into(),
                actor,
                MergeReason::Requested,
            )
            .await
            .api()?;
        Ok(MergeContactsPayload {
            merge: MergeView(record),
        })
    }

    /// Restores both contacts of a merge as they were before it. CONFLICT if the survivor
    /// changed since in a way that would be lost (a newer `lastSeenAt` is kept), or if the
    /// merge was already undone.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn unmerge_contacts(
        &self,
        ctx: &Context<'_>,
        input: UnmergeContactsInput,
    ) -> async_graphql::Result<UnmergeContactsPayload> {
        let workspace = &workspace(ctx)?;
        let actor = &super::actor(ctx);
        let merge_id = MergeId::parse(&input.merge_id)
            .map_err(ServiceError::from)
            .api()?;
        let record = self
            .services
            .merges
            .unmerge(workspace, &merge_id, actor)
            .await
            .api()?;
        Ok(UnmergeContactsPayload {
            merge: MergeView(record),
        })
    }
}

/// Input of `mergeContacts`.
#[derive(InputObject)]
struct MergeContactsInput {
    /// The contact that stays.
    survivor_id: ID,
    /// The contact merged into it; its id keeps resolving to the survivor.
    absorbed_id: ID,
    /// Per-field choices over the attributes' merge rules.
    strategy: Option<MergeStrategyInput>,
}

/// The result of `mergeContacts`.
#[derive(SimpleObject)]
struct MergeContactsPayload {
    /// The merge as recorded.
    merge: MergeView,
}

/// Input of `unmergeContacts`.
#[derive(InputObject)]
struct UnmergeContactsInput {
    /// The merge to undo.
    merge_id: ID,
}

/// The result of `unmergeContacts`.
#[derive(SimpleObject)]
struct UnmergeContactsPayload {
    /// The merge, now undone.
    merge: MergeView,
}

fn ids(survivor: &str, absorbed: &str) -> Result<(ContactId, ContactId), ServiceError> {
    let parse = |raw: &str, field: &str| {
        ContactId::parse(raw).map_err(|_| {
            ServiceError::invalid(
                field,
                format!("`{raw}` is not a contact id (expected a ULID)"),
            )
        })
    };
    Ok((
        parse(survivor, "survivorId")?,
        parse(absorbed, "absorbedId")?,
    ))
}
