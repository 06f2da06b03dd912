//! GraphQL views over domain types (the domain stays free of GraphQL derives).

use std::sync::{Arc, OnceLock};

use async_graphql::{Context, Enum, ID, Name, Object, SimpleObject, Value as GraphqlValue};
use chrono::{DateTime, Utc};

use super::activity_view::{ConversationView, EventView, conversations_page, events_page};
use super::error::ApiResult;
use super::guard::RequireScope;
use super::identity_view::IdentityView;
use super::json_value::{JsonValue, attribute_value};
use super::page::{Connection, KeyOrder, page_complexity};
use super::page_batch::PageBatch;
use super::segment_view::SegmentView;
use super::{caller, sensitive_attributes, services};
use crate::domain::{
    AttributeDefinition, AttributeType, AttributeValue, Caller, Contact, FieldPolicy, Identity,
    IdentityKind, MergeRule, Scope, Verification, VerificationMethod,
};

/// A contact as the API shows it. Every field the caller's field policy does not approve
/// reads as null (absent from `attributes`), as do sensitive attributes without `pii:read`.
/// The result of a write shown to a key without `contacts:read` holds only what it wrote. A key
/// that requires verified identities sees, on every path but a verified visitor's lookup
/// (and the `identify` that verified it), only what the visitor itself said.
#[derive(Clone)]
pub struct ContactView {
    contact: Arc<Contact>,
    /// The page this contact was read with, whose nested fields load together.
    page: Option<Arc<PageBatch>>,
    /// For a write's result shown to a key without `contacts:read`: the fields it wrote, the
    /// only ones (with `id` and the timestamps) it may see.
    written_only: Option<FieldPolicy>,
    /// A visitor looked up through a key that requires a verified identity, and not verified:
    /// `contact` holds only what the visitor itself said.
    unverified_visitor: bool,
    /// Reached through a visitor whose verification vouches for it (or the `identify` that
    /// verified it): a key requiring verified identities may see it whole.
    vouched: bool,
    /// `contact` reduced to what the visitor said, for keys requiring verified identities
    /// that reached it any other way (made on first use).
    self_asserted: OnceLock<Contact>,
    /// Set once this view noted its caller's read in the access log.
    noted: OnceLock<()>,
}

impl ContactView {
    fn with(contact: Arc<Contact>) -> Self {
        Self {
            contact,
            page: None,
            written_only: None,
            unverified_visitor: false,
            vouched: false,
            self_asserted: OnceLock::new(),
            noted: OnceLock::new(),
        }
    }

    /// A contact read by a caller with `contacts:read`.
    pub fn new(contact: Contact) -> Self {
        Self::with(Arc::new(contact))
    }

    /// A visitor looked up by a key that requires a verified identity, when no verified
    /// `identify` vouches for it: only `id` and what the visitor itself sent are shown, and
    /// segments see the rest as absent.
    pub fn unverified_visitor(contact: &Contact) -> Self {
        Self {
            unverified_visitor: true,
            ..Self::with(Arc::new(contact.self_asserted_only()))
        }
    }

    /// A visitor looked up by an anonymous id that a verified `identify` vouches for.
    pub fn verified_visitor(contact: Contact) -> Self {
        Self {
            vouched: true,
            ..Self::with(Arc::new(contact))
        }
    }

    /// A contact of a page: its nested fields load with the page's other contacts.
    pub fn in_page(contact: Arc<Contact>, page: &Arc<PageBatch>) -> Self {
        Self {
            page: Some(Arc::clone(page)),
            ..Self::with(contact)
        }
    }

    /// The result of a write by `caller` that set the fields `written`: all of it (as the
    /// field policy allows) for a key with `contacts:read`, else only those fields.
    pub fn after_write(contact: Contact, caller: &Caller, written: FieldPolicy) -> Self {
        Self {
            written_only: (!caller.allows(Scope::ContactsRead)).then_some(written),
            ..Self::with(Arc::new(contact))
        }
    }

    /// This view, vouched for by the proof that was just verified (`identify`).
    pub fn vouched(mut self) -> Self {
        self.vouched = true;
        self
    }

    /// Whether `caller` sees only what the visitor itself said.
    fn restricted(&self, caller: &Caller) -> bool {
        self.unverified_visitor || (caller.policy.require_verified_identity && !self.vouched)
    }

    /// The contact as the caller may rely on it: whole, or reduced to what the visitor said.
    fn shown(&self, ctx: &Context<'_>) -> async_graphql::Result<&Contact> {
        let caller = &*caller(ctx)?;
        // Every personal field is read through here: the access log notes it once per view.
        self.noted.get_or_init(|| {
            if let Ok(services) = services(ctx) {
                services.access_log.note(caller, &self.contact.id);
            }
        });
        if self.unverified_visitor || !self.restricted(caller) {
            return Ok(&self.contact);
        }
        Ok(self
            .self_asserted
            .get_or_init(|| self.contact.self_asserted_only()))
    }

    /// Whether the caller may see built-in field `name` (segment spelling) of this contact.
    fn readable(&self, ctx: &Context<'_>, name: &str) -> async_graphql::Result<bool> {
        let allowed_by_policy = caller(ctx)?.policy.allows_builtin(name);
        let written = self
            .written_only
            .as_ref()
            .is_none_or(|written| written.allows_builtin(name));
        Ok(allowed_by_policy && written)
    }

    /// Whether the caller may see custom attribute `name` of this contact.
    fn attribute_readable(&self, caller: &Caller, name: &str, sensitive: bool) -> bool {
        let written = self
            .written_only
            .as_ref()
            .is_none_or(|written| written.allows_attribute(name));
        written && caller.reads_attribute(name, sensitive)
    }
}

/// A page of `identities`, by kind then value.
pub fn identity_page(
    identities: Vec<IdentityView>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<Connection<IdentityView>> {
    Connection::of_list(
        identities,
        first,
        after.as_deref(),
        KeyOrder::Ascending,
        IdentityView::page_key,
    )
    .api()
}

/// The identities a caller with `policy` may see: emails, phones and external ids only where
/// it may read that field.
pub fn visible_identities(policy: &FieldPolicy, identities: Vec<Identity>) -> Vec<IdentityView> {
    identities
        .into_iter()
        .filter(|identity| {
            identity
                .key
                .kind
                .field_name()
                .is_none_or(|field| policy.allows_builtin(field))
        })
        .map(IdentityView::from)
        .collect()
}

/// A contact as the API shows it. Every field the caller's field policy does not approve
/// reads as null (absent from `attributes`), as do sensitive attributes without `pii:read`.
/// The result of a write shown to a key without `contacts:read` holds only what it wrote. A key
/// that requires verified identities sees, on every path but a verified visitor's lookup
/// (and the `identify` that verified it), only what the visitor itself said.
#[Object(name = "Contact")]
impl ContactView {
    /// Stable, opaque id.
    pub async fn id(&self) -> ID {
        ID(self.contact.id.to_string())
    }

    /// The contact's id in the business's own system; null for anonymous visitors.
    async fn external_id(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .external_id
            .as_ref()
            .map(|id| id.as_str());
        Ok(value.filter(|_| self.readable(ctx, "external_id").unwrap_or(false)))
    }

    /// Email address, lower-cased.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .email
            .as_ref()
            .map(|email| email.as_str());
        Ok(value.filter(|_| self.readable(ctx, "email").unwrap_or(false)))
    }

    /// Display name.
    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .name
            .as_ref()
            .map(|name| name.as_str());
        Ok(value.filter(|_| self.readable(ctx, "name").unwrap_or(false)))
    }

    /// Phone number in E.164 form.
    async fn phone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .phone
            .as_ref()
            .map(|phone| phone.as_str());
        Ok(value.filter(|_| self.readable(ctx, "phone").unwrap_or(false)))
    }

    /// Company name.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .company
            .as_ref()
            .map(|company| company.as_str());
        Ok(value.filter(|_| self.readable(ctx, "company").unwrap_or(false)))
    }

    /// Account or order reference in the business's system.
    async fn account_ref(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let value = self
            .shown(ctx)?
            .fields
            .account_ref
            .as_ref()
            .map(|r| r.as_str());
        Ok(value.filter(|_| self.readable(ctx, "account_ref").unwrap_or(false)))
    }

    /// Custom attributes as a JSON object (datetimes as RFC 3339 text), holding only those the
    /// caller may read.
    async fn attributes(&self, ctx: &Context<'_>) -> async_graphql::Result<JsonValue> {
        let caller = &*caller(ctx)?;
        let sensitive = sensitive_attributes(ctx, &self.contact.workspace).await?;
        let revealer = &services(ctx)?.revealer;
        let workspace = &self.contact.workspace;
        let entries = self
            .shown(ctx)?
            .fields
            .attributes
            .iter()
            .filter(|(name, _)| {
                self.attribute_readable(caller, name.as_str(), sensitive.contains(name.as_str()))
            })
            .map(|(name, value)| {
                let shown = match value {
                    AttributeValue::Sealed(_) => revealer
                        .open(workspace, name, value)
                        .map_or(GraphqlValue::Null, |opened| attribute_value(&opened)),
                    plain => attribute_value(plain),
                };
                (Name::new(name.as_str()), shown)
            });
        Ok(JsonValue::object(entries))
    }

    /// When the contact was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.contact.created_at
    }

    /// When its fields last changed; a replayed sync does not move it.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.contact.updated_at
    }

    /// The API key (or command) that created the contact.
    async fn created_by(&self) -> Option<&str> {
        let written = self.contact.written_by.as_ref();
        written.map(|written| written.created_by.as_str())
    }

    /// The API key (or command) that changed it last.
    async fn updated_by(&self) -> Option<&str> {
        let written = self.contact.written_by.as_ref();
        written.map(|written| written.updated_by.as_str())
    }

    /// Last activity seen from this person.
    async fn last_seen_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let value = self.shown(ctx)?.fields.last_seen_at;
        Ok(value.filter(|_| self.readable(ctx, "last_seen_at").unwrap_or(false)))
    }

    /// When this person was first seen: the earliest visit (`lastSeenAt` value) or
    /// conversation start recorded for the contact (null where `lastSeenAt` may not be read).
    async fn first_seen_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let value = self.shown(ctx)?.first_seen_at();
        Ok(value.filter(|_| self.readable(ctx, "last_seen_at").unwrap_or(false)))
    }

    /// The identities (anonymous ids, external ids, emails, phones) that resolve to this
    /// contact; emails, phones and external ids only where the caller may read that field.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn identities(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<IdentityView>> {
        let caller = &*caller(ctx)?;
        let restricted = self.restricted(caller);
        let contacts = &services(ctx)?.contacts;
        let identities = match &self.page {
            Some(page) => page.identities(contacts, &self.contact.id).await,
            None => {
                contacts
                    .identities(&self.contact.workspace, &self.contact.id)
                    .await
            }
        }
        .api()?;
        let identities = identities
            .into_iter()
            .filter(|identity| !restricted || identity.key.kind == IdentityKind::AnonymousId)
            .collect();
        let visible = visible_identities(&caller.policy, identities);
        identity_page(visible, first, after)
    }

    /// Ids of contacts merged into this one; each still resolves here.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn merged_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ID>> {
        if self.restricted(&*caller(ctx)?) {
            return Ok(Vec::new());
        }
        let contacts = &services(ctx)?.contacts;
        let ids = match &self.page {
            Some(page) => page.merged_from(contacts, &self.contact.id).await,
            None => {
                contacts
                    .merged_from(&self.contact.workspace, &self.contact.id)
                    .await
            }
        }
        .api()?;
        Ok(ids.into_iter().map(|id| ID(id.to_string())).collect())
    }

    /// Its conversations, latest start first (`first` 20 unless given, at most 100 per page). Needs `contacts:read`
    /// and, under a field policy, the approved field `conversations`.
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<ConversationView>> {
        if self.restricted(&*caller(ctx)?) || !self.readable(ctx, "conversations")? {
            return Ok(Connection::empty());
        }
        conversations_page(ctx, &self.contact, self.page.as_deref(), first, after).await
    }

    /// Its events, latest first (only those named `name`, when given; at most 100 per page).
    /// Needs `contacts:read` and, under a field policy, the approved field `events`.
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        name: Option<String>,
    ) -> async_graphql::Result<Connection<EventView>> {
        if self.restricted(&*caller(ctx)?) || !self.readable(ctx, "events")? {
            return Ok(Connection::empty());
        }
        events_page(ctx, &self.contact, self.page.as_deref(), first, after, name).await
    }

    /// Its latest statement per consent purpose, by purpose name. Empty where `consents` may
    /// not be read (a field policy without it, or a key that sees only what a visitor said).
    async fn consents(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::consents::ContactConsentView>> {
        if self.restricted(&*caller(ctx)?) || !self.readable(ctx, "consents")? {
            return Ok(Vec::new());
        }
        Ok(self
            .shown(ctx)?
            .consents
            .iter()
            .map(|(purpose, consent)| super::consents::ContactConsentView::new(purpose, consent))
            .collect())
    }

    /// How many conversations it had (null where `conversations` may not be read).
    async fn conversation_count(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<u64>> {
        let readable = !self.restricted(&*caller(ctx)?) && self.readable(ctx, "conversations")?;
        Ok(readable.then_some(self.contact.activity.conversation_count))
    }

    /// When its latest conversation began (null where `conversations` may not be read).
    async fn last_conversation_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let readable = !self.restricted(&*caller(ctx)?) && self.readable(ctx, "conversations")?;
        Ok(self
            .contact
            .activity
            .last_conversation_at
            .filter(|_| readable))
    }

    /// When and how this contact's identity was last verified by `identify`; null if never.
    async fn verification(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<VerificationView>> {
        let Some(verification) = self.shown(ctx)?.verification.as_ref() else {
            return Ok(None);
        };
        Ok(self
            .written_only
            .is_none()
            .then(|| VerificationView::from(verification)))
    }

    /// The values an identity proof vouched for (built-in fields by their API names, e.g.
    /// `externalId`, `email`, and attribute names), among those the caller may read.
    async fn verified_fields(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let caller = &*caller(ctx)?;
        let sensitive = sensitive_attributes(ctx, &self.contact.workspace).await?;
        Ok(self
            .shown(ctx)?
            .verified_keys()
            .into_iter()
            .filter(|key| {
                if crate::domain::GOVERNED_FIELDS.contains(key) {
                    self.readable(ctx, key).unwrap_or(false)
                } else {
                    self.attribute_readable(caller, key, sensitive.contains(*key))
                }
            })
            .map(crate::domain::api_field_name)
            .collect())
    }

    /// The saved segments this contact belongs to, evaluated against its current state; only
    /// segments testing fields the caller may read.
    #[graphql(guard = "RequireScope(Scope::ContactsRead).and(RequireScope(Scope::SegmentsRead))")]
    async fn segments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<SegmentView>> {
        let saved = services(ctx)?
            .segments
            .segments_of(self.shown(ctx)?, &*caller(ctx)?);
        let views = saved.into_iter().map(SegmentView).collect();
        Connection::of_list(
            views,
            first,
            after.as_deref(),
            KeyOrder::Ascending,
            SegmentView::page_key,
        )
        .api()
    }
}

/// Type of a custom attribute.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "AttributeType")]
pub enum AttributeTypeView {
    /// Text.
    String,
    /// A finite number.
    Number,
    /// `true` or `false`.
    Bool,
    /// An instant, as RFC 3339 text.
    Datetime,
    /// A set of short strings, such as tags.
    StringList,
}

impl From<AttributeType> for AttributeTypeView {
    fn from(value: AttributeType) -> Self {
        match value {
            AttributeType::String => Self::String,
            AttributeType::Number => Self::Number,
            AttributeType::Bool => Self::Bool,
            AttributeType::Datetime => Self::Datetime,
            AttributeType::StringList => Self::StringList,
        }
    }
}

impl From<AttributeTypeView> for AttributeType {
    fn from(value: AttributeTypeView) -> Self {
        match value {
            AttributeTypeView::String => Self::String,
            AttributeTypeView::Number => Self::Number,
            AttributeTypeView::Bool => Self::Bool,
            AttributeTypeView::Datetime => Self::Datetime,
            AttributeTypeView::StringList => Self::StringList,
        }
    }
}

/// How a custom attribute's values combine when two contacts merge.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "MergeRule")]
pub enum MergeRuleView {
    /// The survivor's value where it has one, else the absorbed contact's.
    Survivor,
    /// The value of the contact updated most recently, else the other's.
    MostRecent,
    /// The value of the contact created first, else the other's.
    Oldest,
    /// The survivor's value unless empty (`""` or `[]`), else the absorbed contact's.
    NonEmpty,
    /// Both lists, survivor's items first, without duplicates (string lists only).
    Union,
    /// The sum of both values (numbers only).
    Sum,
}

impl From<MergeRule> for MergeRuleView {
    fn from(value: MergeRule) -> Self {
        match value {
            MergeRule::Survivor => Self::Survivor,
            MergeRule::MostRecent => Self::MostRecent,
            MergeRule::Oldest => Self::Oldest,
            MergeRule::NonEmpty => Self::NonEmpty,
            MergeRule::Union => Self::Union,
            MergeRule::Sum => Self::Sum,
        }
    }
}

impl From<MergeRuleView> for MergeRule {
    fn from(value: MergeRuleView) -> Self {
        match value {
            MergeRuleView::Survivor => Self::Survivor,
            MergeRuleView::MostRecent => Self::MostRecent,
            MergeRuleView::Oldest => Self::Oldest,
            MergeRuleView::NonEmpty => Self::NonEmpty,
            MergeRuleView::Union => Self::Union,
            MergeRuleView::Sum => Self::Sum,
        }
    }
}

/// A declared custom attribute.
pub struct AttributeView(pub AttributeDefinition);

/// A declared custom attribute.
#[Object(name = "AttributeDefinition")]
impl AttributeView {
    /// Name, as used in `attributes` and in segments.
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// Declared type; values of another type are refused.
    #[graphql(name = "type")]
    async fn value_type(&self) -> AttributeTypeView {
        self.0.value_type.into()
    }

    /// What the attribute means.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// How its values combine when two contacts merge.
    async fn merge_rule(&self) -> MergeRuleView {
        self.0.merge_rule.into()
    }

    /// Whether values are personal data: encrypted at rest, readable with `pii:read` only.
    async fn sensitive(&self) -> bool {
        self.0.sensitive
    }

    /// When it was first declared.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// How an identity was proven.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "VerificationMethod")]
pub enum VerificationMethodView {
    /// The HMAC `userHash` of the user id.
    UserHash,
    /// A signed, expiring identity token (JWT).
    Token,
}

/// The last verified identification of a contact.
#[derive(SimpleObject)]
#[graphql(name = "Verification")]
pub struct VerificationView {
    /// When it happened.
    verified_at: DateTime<Utc>,
    /// How the identity was proven.
    method: VerificationMethodView,
    /// The visitor id it linked, if the widget sent one.
    anonymous_id: Option<String>,
}

impl From<&Verification> for VerificationView {
    fn from(verification: &Verification) -> Self {
        Self {
            verified_at: verification.verified_at,
            method: match verification.method {
                VerificationMethod::UserHash => VerificationMethodView::UserHash,
                VerificationMethod::Token => VerificationMethodView::Token,
            },
            anonymous_id: verification.anonymous_id.clone(),
        }
    }
}
