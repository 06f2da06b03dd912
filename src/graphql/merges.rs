//! Merge queries and mutations: preview, merge, undo, history.

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use serde_json::Value as JsonValue;

use super::error::ApiResult;
use super::guard::RequireScope;
use super::merge_view::MergeView;
use super::page::{Connection, KeyOrder, page_complexity};
use super::views::ContactView;
use super::{caller, workspace};
use crate::domain::Scope;
use crate::domain::{
    ContactId, FieldDecision, FieldRule, MergeId, MergeRule, MergeSide, MergeStrategy, ValueSource,
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
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn contact_history(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<MergeView>> {
        let workspace = &workspace(ctx)?;
        let id = ContactId::parse(&id).map_err(ServiceError::from).api()?;
        let merges = self.services.merges.history(workspace, &id).await.api()?;
        let views = merges.into_iter().map(MergeView).collect();
        Connection::of_list(
            views,
            first,
            after.as_deref(),
            KeyOrder::Descending,
            MergeView::page_key,
        )
        .api()
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
