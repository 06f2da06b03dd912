//! Segment queries and mutations: validation, saved segments, explanations, index status.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, Object, OneofObject, OutputType,
    SimpleObject,
};
use chrono::{DateTime, Utc};
use serde_json::Value as JsonValue;

use super::args::{IdentityInput, exactly_one, page_size, segment_source};
use super::contact_page::{self, ContactConnection, decode_cursor};
use super::error::ApiResult;
use super::guard::RequireScope;
use super::lookup::{ContactLookupInput, look_up};
use super::page::{Connection, DEFAULT_PAGE_SIZE, KeyOrder, page_complexity};
use super::segment_input::{SegmentExprInput, expr_json};
use super::segment_view::SegmentView;
use super::{caller, services, workspace};
use crate::domain::Scope;
use crate::domain::{SavedSegment, Slug, Text};
use crate::service::indexer::IndexStatus;
use crate::service::{
    ExplainNode, ExplainPart, InternalError, SegmentDraft, SegmentSource, ServiceError, Services,
    Validation,
};

/// Segment queries.
pub struct SegmentQuery {
    services: Services,
}

impl SegmentQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Segment queries.
#[Object]
impl SegmentQuery {
    /// Checks segment text: errors with spans and hints, the canonical text, and how many contacts
    /// match right now.
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn validate_segment(
        &self,
        ctx: &Context<'_>,
        text: String,
    ) -> async_graphql::Result<SegmentValidation> {
        let validation = self
            .services
            .segments
            .validate(&*caller(ctx)?, &text)
            .await
            .api()?;
        Ok(SegmentValidation(validation))
    }

    /// Values of a text field or a list-of-strings field (`field` as segments name it: a
    /// built-in such as `company`, or an attribute), those starting with `prefix` (exactly,
    /// case included), most held first, each with how many contacts hold it (at most `first`,
    /// up to 50): suggestions for a literal being typed. Among the first 2,000 distinct values
    /// of the field in byte order (every value of a field with fewer). Not for sensitive
    /// attributes, nor for fields the key may not read (FORBIDDEN).
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn field_values(
        &self,
        ctx: &Context<'_>,
        field: String,
        #[graphql(default)] prefix: String,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<FieldValueCount>> {
        let first = usize::try_from(first.clamp(1, 50)).unwrap_or(10);
        let values = self
            .services
            .segments
            .field_values(&*caller(ctx)?, field.trim(), &prefix, first)
            .await
            .api()?;
        Ok(values
            .into_iter()
            .map(|(value, count)| FieldValueCount { value, count })
            .collect())
    }

    /// How the members of a segment (its text, as in `contacts(segment:)`; every contact when
    /// omitted) spread over one field (`field` as segments name it): the `buckets` most held
    /// values of text and lists of strings, or `buckets` equal-width bars of numbers and
    /// datetimes (up to 50), with how many members have no value. Computed by the segment
    /// index; not for sensitive attributes, nor fields the key may not read (FORBIDDEN).
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn segment_distribution(
        &self,
        ctx: &Context<'_>,
        segment: Option<String>,
        field: String,
        #[graphql(default = 10)] buckets: i32,
    ) -> async_graphql::Result<SegmentDistribution> {
        let buckets = usize::try_from(buckets.clamp(1, 50)).unwrap_or(10);
        let distribution = self
            .services
            .segments
            .distribution(
                &*caller(ctx)?,
                segment.map(SegmentSource::Text),
                field.trim(),
                buckets,
            )
            .await
            .api()?;
        Ok(distribution.into())
    }

    /// The saved segment `slug`. NOT_FOUND if absent.
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn segment(&self, ctx: &Context<'_>, slug: String) -> async_graphql::Result<SegmentView> {
        let slug = Slug::parse(&slug).map_err(ServiceError::from).api()?;
        Ok(SegmentView(
            self.services.segments.get(&workspace(ctx)?, &slug).api()?,
        ))
    }

    /// Every saved segment, by slug.
    #[graphql(
        guard = "RequireScope(Scope::SegmentsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn segments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentView>> {
        let saved = self.services.segments.list(&workspace(ctx)?);
        let views = saved.into_iter().map(SegmentView).collect();
        segment_page(views, first, after)
    }

    /// Why a `contact` is in or out of a segment (`of` its text, a saved segment's slug or a
    /// structured segment): every part of the segment with the contact's value and whether it
    /// matched.
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn explain_membership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact: `{ id }`, `{ externalId }` or `{ identity }`.")]
        contact: Option<ContactLookupInput>,
        #[graphql(desc = "The segment: `{ text }`, `{ slug }` or `{ where }`.")] of: Option<
            SegmentChoiceInput,
        >,
        #[graphql(
            desc = "The contact's id.",
            deprecation = "Use `contact: { id }`; `contactId` goes in the next release."
        )]
        contact_id: Option<ID>,
        #[graphql(
            desc = "Segment text.",
            deprecation = "Use `of: { text }`; `segment` goes in the next release."
        )]
        segment: Option<String>,
        #[graphql(
            desc = "A saved segment's slug.",
            deprecation = "Use `of: { slug }`; `slug` goes in the next release."
        )]
        slug: Option<String>,
    ) -> async_graphql::Result<MembershipExplanation> {
        let caller = &*caller(ctx)?;
        let workspace = &caller.workspace;
        let lookup = ContactLookupInput::given("contact", contact, contact_id, None, None).api()?;
        let of = SegmentChoiceInput::given(of, segment, slug).api()?;
        // Looked up as every read is, so a key requiring verified identities sees no more here.
        let contact = look_up(&self.services, caller, lookup)
            .await
            .api()?
            .into_contact();
        let source = match of {
            SegmentChoiceInput::Text(text) => SegmentSource::Text(text),
            SegmentChoiceInput::Slug(slug) => {
                let slug = Slug::parse(&slug).map_err(ServiceError::from).api()?;
                SegmentSource::Text(self.services.segments.get(workspace, &slug).api()?.text)
            }
            SegmentChoiceInput::Where(tree) => SegmentSource::Tree(tree.to_expr().api()?),
        };
        let nodes = self
            .services
            .segments
            .explain(&contact, source, caller)
            .api()?;
        Ok(MembershipExplanation { nodes })
    }

    /// Which saved segments one `contact` (by id, external id or identity) belongs
    /// to right now, in one call: each of `slugs` in the order given, or every saved segment the
    /// key may evaluate when `slugs` is omitted. Evaluated in memory against the compiled
    /// segments (no index read), so it reflects the contact's latest write at once.
    #[graphql(guard = "RequireScope(Scope::ContactsRead).and(RequireScope(Scope::SegmentsRead))")]
    async fn match_segments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact: `{ id }`, `{ externalId }` or `{ identity }`.")]
        contact: Option<ContactLookupInput>,
        #[graphql(
            desc = "The contact's id.",
            deprecation = "Use `contact: { id }`; the separate arguments go in the next release."
        )]
        contact_id: Option<ID>,
        #[graphql(
            desc = "The contact's id in your system.",
            deprecation = "Use `contact: { externalId }`; the separate arguments go in the next release."
        )]
        external_id: Option<String>,
        #[graphql(
            desc = "An identity the contact holds.",
            deprecation = "Use `contact: { identity }`; the separate arguments go in the next release."
        )]
        identity: Option<IdentityInput>,
        #[graphql(
            desc = "The saved segments to check, in this order (all it may read when omitted)."
        )]
        slugs: Option<Vec<String>>,
    ) -> async_graphql::Result<SegmentMatches> {
        let caller = &*caller(ctx)?;
        let slugs = slugs
            .map(|slugs| {
                slugs
                    .iter()
                    .map(|slug| Slug::parse(slug).map_err(ServiceError::from))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .api()?;
        let lookup =
            ContactLookupInput::given("contact", contact, contact_id, external_id, identity)
                .api()?;
        let contact = look_up(&self.services, caller, lookup)
            .await
            .api()?
            .into_contact();
        let segments = &self.services.segments;
        let checked = match slugs {
            Some(slugs) => segments.match_saved(&contact, caller, &slugs).api()?,
            None => segments
                .segments_of(&contact, caller)
                .into_iter()
                .map(|segment| (segment, true))
                .collect(),
        };
        Ok(SegmentMatches {
            contact_id: ID(contact.id.to_string()),
            checked,
        })
    }

    /// How current the segment index is.
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn index_status(&self, ctx: &Context<'_>) -> async_graphql::Result<IndexStatusView> {
        Ok(IndexStatusView(
            self.services
                .segments
                .index_status(&workspace(ctx)?)
                .await
                .api()?,
        ))
    }
}

/// Segment mutations.
pub struct SegmentMutation {
    services: Services,
}

impl SegmentMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Segment mutations.
#[Object]
impl SegmentMutation {
    /// Creates or replaces a saved segment, given as `text` or as `expr` (exactly one). Its
    /// references to other segments must exist and must not form a cycle.
    #[graphql(guard = "RequireScope(Scope::SegmentsWrite)")]
    async fn upsert_segment(
        &self,
        ctx: &Context<'_>,
        input: UpsertSegmentInput,
    ) -> async_graphql::Result<UpsertSegmentPayload> {
        let draft = input.into_draft().api()?;
        let saved = self
            .services
            .segments
            .save(&*caller(ctx)?, draft)
            .await
            .api()?;
        Ok(UpsertSegmentPayload {
            segment: SegmentView(saved),
        })
    }

    /// Creates or replaces a saved segment, as `upsertSegment` does.
    #[graphql(
        guard = "RequireScope(Scope::SegmentsWrite)",
        deprecation = "Use `upsertSegment`; `saveSegment` goes in the next release."
    )]
    async fn save_segment(
        &self,
        ctx: &Context<'_>,
        input: SaveSegmentInput,
    ) -> async_graphql::Result<SegmentView> {
        Ok(self.upsert_segment(ctx, input.segment).await?.segment)
    }

    /// Deletes a saved segment; CONFLICT while another segment refers to it.
    #[graphql(guard = "RequireScope(Scope::SegmentsWrite)")]
    async fn delete_segment(
        &self,
        ctx: &Context<'_>,
        input: DeleteSegmentInput,
    ) -> async_graphql::Result<DeleteSegmentPayload> {
        let slug = Slug::parse(&input.slug).map_err(ServiceError::from).api()?;
        self.services
            .segments
            .delete(&workspace(ctx)?, &slug)
            .await
            .api()?;
        Ok(DeleteSegmentPayload {
            deleted_slug: input.slug,
        })
    }
}

/// Input of `upsertSegment`.
#[derive(InputObject)]
struct UpsertSegmentInput {
    /// Address, e.g. `active-trials`.
    slug: String,
    /// Display name.
    name: String,
    /// What the segment is for.
    description: Option<String>,
    /// The segment as text.
    text: Option<String>,
    /// The segment as a tree.
    expr: Option<SegmentExprInput>,
}

/// Input of `saveSegment` (deprecated): the same as `UpsertSegmentInput`.
#[derive(InputObject)]
struct SaveSegmentInput {
    #[graphql(flatten)]
    segment: UpsertSegmentInput,
}

/// The result of `upsertSegment`.
#[derive(SimpleObject)]
struct UpsertSegmentPayload {
    /// The segment as saved.
    segment: SegmentView,
}

/// Input of `deleteSegment`.
#[derive(InputObject)]
struct DeleteSegmentInput {
    /// The segment to delete.
    slug: String,
}

/// The result of `deleteSegment`.
#[derive(SimpleObject)]
struct DeleteSegmentPayload {
    /// The slug of the segment deleted.
    deleted_slug: String,
}

impl UpsertSegmentInput {
    fn into_draft(self) -> Result<SegmentDraft, ServiceError> {
        let source = segment_source(self.text, self.expr)?.ok_or_else(|| {
            ServiceError::invalid("text", "give the segment as `text` or as `expr`")
        })?;
        Ok(SegmentDraft {
            slug: Slug::parse(&self.slug)?,
            name: Text::parse("name", &self.name)?,
            description: self
                .description
                .map(|d| Text::parse("description", &d))
                .transpose()?,
            source,
        })
    }
}

impl SegmentView {
    /// The saved segments of this one's workspace named `slugs`, by slug.
    fn saved(
        &self,
        ctx: &Context<'_>,
        mut slugs: Vec<String>,
    ) -> async_graphql::Result<Vec<SegmentView>> {
        let segments = &services(ctx)?.segments;
        slugs.sort();
        Ok(slugs
            .iter()
            .filter_map(|slug| Slug::parse(slug).ok())
            .filter_map(|slug| segments.get(&self.0.workspace, &slug).ok())
            .map(SegmentView)
            .collect())
    }

    /// The segment's tree with the values the caller may not read masked.
    fn visible_expr(&self, ctx: &Context<'_>) -> async_graphql::Result<qwry_segment::ast::Expr> {
        services(ctx)?
            .segments
            .visible_expr(&*caller(ctx)?, &self.0)
            .ok_or_else(|| {
                ServiceError::Internal(InternalError::UnparsedSegment(self.0.slug.to_string()))
            })
            .api()
    }
}

/// A saved segment: a named condition over contacts, written in the segment language, that
/// counts, pages and explains its members, has a feed of who enters and leaves it, and may be
/// referenced by other segments (`in segment "slug"`).
#[Object(name = "Segment")]
impl SegmentView {
    /// Address.
    async fn slug(&self) -> &str {
        self.0.slug.as_str()
    }

    /// Display name.
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// What the segment is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_ref().map(|d| d.as_str())
    }

    /// The segment in canonical text. Values compared with fields the key may not read (outside
    /// its field policy, or sensitive without `pii:read`) read as `"***"`.
    async fn text(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self.visible_expr(ctx)?.to_string())
    }

    /// The segment as `SegmentExprInput` JSON, for visual builders; values masked as in `text`.
    async fn expr(&self, ctx: &Context<'_>) -> async_graphql::Result<Json<JsonValue>> {
        Ok(Json(expr_json(&self.visible_expr(ctx)?)))
    }

    /// Members, oldest first (at most 100 per page).
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ContactConnection> {
        let services = services(ctx)?;
        let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
        let resume = after.as_deref().map(decode_cursor).transpose().api()?;
        let page = services
            .segments
            .saved_members(&*caller(ctx)?, &self.0.slug, resume, first)
            .await
            .api()?;
        Ok(contact_page::by_id(&self.0.workspace, page, after))
    }

    /// How many contacts are members.
    async fn count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        services(ctx)?
            .segments
            .saved_count(&*caller(ctx)?, &self.0.slug)
            .await
            .api()
    }

    /// The saved segments this one names directly (`in segment "slug"`), by slug.
    async fn references(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentView>> {
        let slugs = services(ctx)?.segments.references_of(&self.0);
        segment_page(self.saved(ctx, slugs)?, first, after)
    }

    /// The saved segments that name this one directly, by slug; it cannot be deleted while
    /// any do.
    async fn referenced_by(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentView>> {
        let slugs = services(ctx)?.segments.referenced_by(&self.0);
        segment_page(self.saved(ctx, slugs)?, first, after)
    }

    /// Its last `days` UTC days (1 to 90; oldest first, today last): how many contacts entered
    /// and left it each day, and its size at the end of each (now, for today; null before the
    /// day it was saved). Read from per-day counts kept with the feed (400 days).
    #[graphql(guard = "RequireScope(Scope::SegmentsRead)")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<Vec<SegmentDayView>> {
        let days = u32::try_from(days.clamp(1, 90)).unwrap_or(30);
        let history = services(ctx)?
            .segments
            .history(&*caller(ctx)?, &self.0.slug, days)
            .await
            .api()?;
        Ok(history
            .into_iter()
            .map(|(day, members)| SegmentDayView {
                day: day.day.to_string(),
                members,
                entered: day.entered,
                exited: day.exited,
            })
            .collect())
    }

    /// When it was first saved.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One problem in segment text.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct SegmentError {
    /// What is wrong.
    message: String,
    /// What kind of problem.
    error_code: SegmentErrorCodeView,
    /// First byte of the offending text.
    start: u32,
    /// One past its last byte.
    end: u32,
    /// How to fix it.
    hint: Option<String>,
}

#[ComplexObject]
impl SegmentError {
    /// The same as text, e.g. `UNKNOWN_FIELD`.
    #[graphql(deprecation = "Use `errorCode`; `code` goes in the next release.")]
    async fn code(&self) -> &'static str {
        qwry_segment::ErrorCode::from(self.error_code).as_str()
    }
}

/// The result of `validateSegment`.
pub struct SegmentValidation(Validation);

/// Advice about a valid segment (not an error): the fix, when there is one, as
/// `did you mean …?` with the text to put at the span.
#[derive(SimpleObject)]
pub struct SegmentHint {
    /// What to say.
    message: String,
    /// First byte of the part of the text it is about.
    start: u32,
    /// One past its last byte.
    end: u32,
}

/// How a segment's members spread over one field.
#[derive(SimpleObject)]
pub struct SegmentDistribution {
    /// Members of the segment.
    members: u64,
    /// Members without a value in the field.
    missing: u64,
    /// Text and lists of strings: the most held values, most first (a member counts once per
    /// value it holds).
    values: Vec<FieldValueCount>,
    /// Text and lists of strings: how many values the list leaves out (counted per member
    /// and value).
    other_values: u64,
    /// Numbers and datetimes: equal-width bars from the smallest value to the largest (each
    /// from `low` up to `high`, the last one including `high`).
    bars: Vec<DistributionBar>,
}

/// One bar of a distribution.
#[derive(SimpleObject)]
pub struct DistributionBar {
    /// Its lowest value (a number, or an RFC 3339 instant).
    low: Json<JsonValue>,
    /// Its upper bound.
    high: Json<JsonValue>,
    /// Members with a value in it.
    count: u64,
}

impl From<crate::index::Distribution> for SegmentDistribution {
    fn from(distribution: crate::index::Distribution) -> Self {
        use crate::index::Spread;
        let (values, other_values, bars) = match distribution.spread {
            Spread::Values { top, other } => (
                top.into_iter()
                    .map(|(value, count)| FieldValueCount { value, count })
                    .collect(),
                other,
                Vec::new(),
            ),
            Spread::Numbers(bars) => (
                Vec::new(),
                0,
                bars.into_iter()
                    .map(|bar| DistributionBar {
                        low: Json(serde_json::json!(bar.low)),
                        high: Json(serde_json::json!(bar.high)),
                        count: bar.count,
                    })
                    .collect(),
            ),
            Spread::Times(bars) => (
                Vec::new(),
                0,
                bars.into_iter()
                    .map(|bar| DistributionBar {
                        low: Json(serde_json::json!(bar.low.to_rfc3339())),
                        high: Json(serde_json::json!(bar.high.to_rfc3339())),
                        count: bar.count,
                    })
                    .collect(),
            ),
        };
        Self {
            members: distribution.members,
            missing: distribution.missing,
            values,
            other_values,
            bars,
        }
    }
}

/// One day of a saved segment.
#[derive(SimpleObject)]
#[graphql(name = "SegmentDay")]
pub struct SegmentDayView {
    /// The UTC day, `YYYY-MM-DD`.
    day: String,
    /// Members at its end (now, for today); null before the segment was saved.
    members: Option<u64>,
    /// Contacts that entered that day.
    entered: u64,
    /// Contacts that left that day.
    exited: u64,
}

/// A value of a field, with how many contacts hold it.
#[derive(SimpleObject)]
pub struct FieldValueCount {
    /// The value, as stored (case included).
    value: String,
    /// How many of the workspace's contacts hold it.
    count: u64,
}

/// The result of `validateSegment`.
#[Object]
impl SegmentValidation {
    /// Whether the segment can be used.
    async fn valid(&self) -> bool {
        self.0.diagnostics.is_empty()
    }

    /// Problems found, with byte spans into the text.
    async fn errors(&self) -> Vec<SegmentError> {
        self.0
            .diagnostics
            .iter()
            .map(|d| SegmentError {
                message: d.message.clone(),
                error_code: d.code.into(),
                start: u32::try_from(d.span.start).unwrap_or(u32::MAX),
                end: u32::try_from(d.span.end).unwrap_or(u32::MAX),
                hint: d.hint.clone(),
            })
            .collect()
    }

    /// When the segment is valid and matches nobody: literals that match no contact while
    /// values differing from them only in case do (values match exactly, case included).
    async fn hints(&self) -> Vec<SegmentHint> {
        self.0
            .hints
            .iter()
            .map(|hint| SegmentHint {
                message: hint.message.clone(),
                start: u32::try_from(hint.span.start).unwrap_or(u32::MAX),
                end: u32::try_from(hint.span.end).unwrap_or(u32::MAX),
            })
            .collect()
    }

    /// The canonical text, when the segment parses.
    async fn canonical(&self) -> Option<String> {
        self.0.expr.as_ref().map(ToString::to_string)
    }

    /// The segment as `SegmentExprInput` JSON, when it parses.
    async fn expr(&self) -> Option<Json<JsonValue>> {
        self.0.expr.as_ref().map(|expr| Json(expr_json(expr)))
    }

    /// How many contacts match right now (an exact count), when valid.
    async fn count(&self) -> Option<u64> {
        self.0.estimated_count
    }

    /// How many contacts match right now, when valid.
    #[graphql(
        deprecation = "Use `count` (the count is exact); `estimatedCount` goes in the next release."
    )]
    async fn estimated_count(&self) -> Option<u64> {
        self.0.estimated_count
    }
}

/// Why a contact is in or out of a segment.
pub struct MembershipExplanation {
    nodes: Vec<ExplainNode>,
}

/// Why a contact is in or out of a segment.
#[Object]
impl MembershipExplanation {
    /// Whether the contact is a member.
    async fn matched(&self) -> bool {
        self.nodes.first().is_some_and(|root| root.matched)
    }

    /// Every part of the segment, depth first; `parentId` links them into the tree.
    async fn nodes(&self) -> Vec<ExplainNodeView> {
        self.nodes.iter().cloned().map(ExplainNodeView).collect()
    }
}

/// One part of a segment in an explanation.
pub struct ExplainNodeView(ExplainNode);

/// What a part of a segment in an explanation is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ExplainPart", remote = "ExplainPart")]
pub enum ExplainPartView {
    /// All of its children.
    And,
    /// Any of its children.
    Or,
    /// Not its child.
    Not,
    /// One test of a field, an attribute, activity or events.
    Condition,
    /// `in segment "slug"`.
    Segment,
}

/// What kind of problem a segment error is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "SegmentErrorCode", remote = "qwry_segment::ErrorCode")]
pub enum SegmentErrorCodeView {
    /// The text does not follow the grammar.
    Syntax,
    /// The text is longer than allowed.
    TooLong,
    /// Parentheses or `not`s nest deeper than allowed.
    TooDeep,
    /// A literal cannot be read (number, date, duration).
    BadLiteral,
    /// The field is neither built in nor a declared attribute.
    UnknownField,
    /// The operator or value does not fit the field's type.
    TypeMismatch,
    /// `in segment` names a segment that does not exist.
    UnknownSegment,
    /// `in segment` references form a cycle or nest too deep.
    SegmentCycle,
    /// The field is not one the caller may read.
    FieldNotApproved,
    /// `consent` names a purpose the workspace did not declare.
    UnknownPurpose,
}

/// One part of a segment in an explanation.
#[Object(name = "ExplainNode")]
impl ExplainNodeView {
    /// Position in the list.
    async fn id(&self) -> u32 {
        u32::try_from(self.0.id).unwrap_or(u32::MAX)
    }

    /// The parent's position; null for the root.
    async fn parent_id(&self) -> Option<u32> {
        self.0.parent.map(|p| u32::try_from(p).unwrap_or(u32::MAX))
    }

    /// What this part is.
    async fn part(&self) -> ExplainPartView {
        self.0.kind.into()
    }

    /// `and`, `or`, `not`, `condition` or `segment`.
    #[graphql(deprecation = "Use `part`; `kind` goes in the next release.")]
    async fn kind(&self) -> &str {
        self.0.kind.as_str()
    }

    /// This part in canonical text.
    async fn text(&self) -> &str {
        &self.0.text
    }

    /// Whether the contact satisfies this part.
    async fn matched(&self) -> bool {
        self.0.matched
    }

    /// For conditions: the contact's value of the field (null when it has none).
    async fn value(&self) -> Option<Json<JsonValue>> {
        self.0.value.clone().map(Json)
    }
}

/// How current the segment index is.
pub struct IndexStatusView(IndexStatus);

/// How current the segment index is.
#[Object(name = "IndexStatus")]
impl IndexStatusView {
    /// Changes of this workspace committed to the store and not yet indexed.
    async fn pending_changes(&self) -> u64 {
        self.0.pending_changes
    }

    /// Contacts those changes name (a contact in several changes counts once per change): the
    /// rows an import still waits for.
    async fn pending_contacts(&self) -> u64 {
        self.0.pending_contacts
    }

    /// Age of the oldest pending change, in milliseconds (0 when none): the index's lag.
    async fn lag_ms(&self) -> u64 {
        self.0
            .oldest_pending_at
            .map(|oldest| (Utc::now() - oldest).num_milliseconds().max(0) as u64)
            .unwrap_or(0)
    }

    /// When the oldest pending change was written.
    async fn oldest_pending_at(&self) -> Option<DateTime<Utc>> {
        self.0.oldest_pending_at
    }

    /// Key of the last change of this workspace applied to the index (since the service started).
    async fn last_applied_change(&self) -> Option<&str> {
        self.0.last_applied_change.as_deref()
    }

    /// When the index last committed a change of this workspace (since the service started).
    async fn last_commit_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_commit_at
    }

    /// Documents of this workspace in the index.
    async fn documents(&self) -> u64 {
        self.0.documents
    }

    /// Whether a full build from the store has completed.
    async fn built(&self) -> bool {
        self.0.built
    }
}

/// The saved segments checked for one contact.
pub struct SegmentMatches {
    contact_id: ID,
    checked: Vec<(SavedSegment, bool)>,
}

/// The saved segments checked for one contact.
#[Object]
impl SegmentMatches {
    /// The contact checked (the survivor, when an id of a merged contact was given).
    async fn contact_id(&self) -> &ID {
        &self.contact_id
    }

    /// Slugs of the segments the contact belongs to, in the order checked.
    async fn slugs(&self) -> Vec<&str> {
        self.checked
            .iter()
            .filter(|(_, member)| *member)
            .map(|(segment, _)| segment.slug.as_str())
            .collect()
    }

    /// The segments the contact belongs to, in the order checked.
    async fn segments(
        &self,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentView>> {
        let members = self
            .checked
            .iter()
            .enumerate()
            .filter(|(_, (_, member))| *member)
            .map(|(place, (segment, _))| (place, SegmentView(segment.clone())))
            .collect();
        in_checked_order(members, first, after)
    }

    /// Every segment checked, member or not, in the order checked.
    async fn results(
        &self,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentMatch>> {
        let results = self
            .checked
            .iter()
            .enumerate()
            .map(|(place, (segment, member))| {
                let result = SegmentMatch {
                    slug: segment.slug.to_string(),
                    member: *member,
                };
                (place, result)
            })
            .collect();
        in_checked_order(results, first, after)
    }
}

/// The segment `explainMembership` explains: exactly one.
#[derive(OneofObject)]
pub enum SegmentChoiceInput {
    /// Segment text, e.g. `plan = "pro" and ltv > 200`.
    Text(String),
    /// A saved segment's slug.
    Slug(String),
    /// A segment in its structured form.
    Where(SegmentExprInput),
}

impl SegmentChoiceInput {
    /// `of`, or exactly one of the deprecated `segment` and `slug`; INVALID_INPUT otherwise.
    fn given(
        of: Option<Self>,
        text: Option<String>,
        slug: Option<String>,
    ) -> Result<Self, ServiceError> {
        exactly_one([of, text.map(Self::Text), slug.map(Self::Slug)]).ok_or_else(|| {
            ServiceError::invalid(
                "of",
                "give exactly one segment to explain: `of: { text | slug | where }`",
            )
        })
    }
}

/// A page of saved segments, by slug.
fn segment_page(
    segments: Vec<SegmentView>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<SegmentView>> {
    Connection::of_list(
        segments,
        first,
        after.as_deref(),
        KeyOrder::Ascending,
        SegmentView::page_key,
    )
    .api()
}

/// A page of what `matchSegments` checked, each item with its place in the order checked.
fn in_checked_order<T: OutputType + Clone>(
    items: Vec<(usize, T)>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<T>> {
    let keyed = items
        .into_iter()
        .map(|(place, item)| (format!("{place:010}"), item))
        .collect();
    Connection::of_keyed(keyed, first, after.as_deref(), KeyOrder::Ascending).api()
}

/// One saved segment checked for one contact.
#[derive(SimpleObject, Clone)]
pub struct SegmentMatch {
    /// The segment's slug.
    pub slug: String,
    /// Whether the contact belongs to it.
    pub member: bool,
}
