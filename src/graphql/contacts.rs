//! Contact queries and mutations: thin resolvers over [`crate::service::ContactService`].

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use serde_json::Value as JsonValue;

use super::access_log;
use super::args::{
    ConsistencyView, ContactFieldsInput, ContactOrderInput, IdentityInput, SortDirection,
    page_size, parse_change, segment_source,
};
use super::consents;
use super::contact_page::{
    self, ContactConnection, decode_cursor, decode_order_cursor, decode_rank_cursor,
};
use super::erasure;
use super::error::ApiResult;
use super::guard::RequireScope;
use super::lookup::{ContactLookupInput, look_up};
use super::page::{Connection, DEFAULT_PAGE_SIZE, page_complexity};
use super::segment_input::SegmentExprInput;
use super::views::ContactView;
use super::{caller, workspace};
use crate::domain::Scope;
use crate::domain::{ContactId, ExternalId, FieldChange};
use crate::service::{ServiceError, Services};

/// Contact queries.
pub struct ContactQuery {
    services: Services,
}

impl ContactQuery {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Contact queries.
#[Object]
impl ContactQuery {
    /// One contact, `by` its id, its external id or any identity it holds (exactly one).
    /// Ids and external ids of contacts merged away resolve to the survivor. NOT_FOUND if
    /// absent.
    #[graphql(guard = "RequireScope(Scope::ContactsRead)")]
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How to find it: `{ id }`, `{ externalId }` or `{ identity }`.")]
        by: Option<ContactLookupInput>,
        #[graphql(
            desc = "Its id.",
            deprecation = "Use `by: { id }`; the separate arguments go in the next release."
        )]
        id: Option<ID>,
        #[graphql(
            desc = "Its id in your system.",
            deprecation = "Use `by: { externalId }`; the separate arguments go in the next release."
        )]
        external_id: Option<String>,
        #[graphql(
            desc = "An identity it holds.",
            deprecation = "Use `by: { identity }`; the separate arguments go in the next release."
        )]
        identity: Option<IdentityInput>,
    ) -> async_graphql::Result<ContactView> {
        let caller = &*caller(ctx)?;
        let lookup = ContactLookupInput::given("by", by, id, external_id, identity).api()?;
        Ok(look_up(&self.services, caller, lookup)
            .await
            .api()?
            .into_view())
    }

    /// Contacts of the workspace, oldest first, as a Relay connection (at most 100 per page):
    /// all of them, or the members of a segment given as `segment` text or as a `where` tree.
    /// `totalCount` is exact. Served by the segment index: writes show up within the index
    /// delay, or at once with `consistency: LATEST`. Pages follow contact ids, so they neither
    /// skip nor repeat contacts while others are written. With `search`, type-ahead search: contacts whose name, email,
    /// phone, external id or company (those the key may read) match every word typed, by word,
    /// word prefix, part of the value or one typo (words of 5 letters or more), ignoring case
    /// and accents; best matches first, then most recently updated (combinable with a segment).
    /// With `orderBy`, in the order of a built-in datetime or a number or datetime attribute,
    /// chosen in the index from its columns (a router takes the best N of a segment).
    #[graphql(
        guard = "RequireScope(Scope::ContactsRead)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    // One parameter per GraphQL argument of the field.
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        segment: Option<String>,
        #[graphql(name = "where")] tree: Option<SegmentExprInput>,
        #[graphql(default)] consistency: ConsistencyView,
        search: Option<String>,
        order_by: Option<ContactOrderInput>,
    ) -> async_graphql::Result<ContactConnection> {
        let caller = &*caller(ctx)?;
        let workspace = caller.workspace.clone();
        let first = page_size(first.unwrap_or(DEFAULT_PAGE_SIZE)).api()?;
        let source = segment_source(segment, tree).api()?;
        if source.is_some() {
            ServiceError::require_scope(caller, Scope::SegmentsRead).api()?;
        }
        if let Some(order) = order_by {
            if search.is_some() {
                return Err(ServiceError::invalid(
                    "orderBy",
                    "search results come best match first: give `search` or `orderBy`, not both",
                ))
                .api();
            }
            let resume = after
                .as_deref()
                .map(decode_order_cursor)
                .transpose()
                .api()?;
            let page = self
                .services
                .segments
                .ordered(
                    caller,
                    source,
                    &crate::domain::segment_field_name(&order.field),
                    order.direction == SortDirection::Desc,
                    resume,
                    first,
                    consistency.into(),
                )
                .await
                .api()?;
            return Ok(contact_page::in_order(&workspace, page, after));
        }
        if let Some(text) = search {
            let offset = after
                .as_deref()
                .map(decode_rank_cursor)
                .transpose()
                .api()?
                .unwrap_or(0);
            let page = self
                .services
                .segments
                .search(caller, &text, source, offset, first, consistency.into())
                .await
                .api()?;
            return Ok(contact_page::by_rank(&workspace, page, offset, after));
        }
        let resume = after.as_deref().map(decode_cursor).transpose().api()?;
        if let Some(source) = source {
            ServiceError::require_scope(caller, Scope::SegmentsRead).api()?;
            let page = self
                .services
                .segments
                .members(caller, source, resume, first, consistency.into())
                .await
                .api()?;
            return Ok(contact_page::by_id(&workspace, page, after));
        }
        let page = self
            .services
            .segments
            .all_contacts(&workspace, resume, first, consistency.into())
            .await
            .api()?;
        Ok(contact_page::by_id(&workspace, page, after))
    }

    /// Everything held about a contact, for a data subject request: its fields (sensitive
    /// values opened), identities, merged ids, merge history with snapshots, and segments, as
    /// one JSON document. Ids of contacts merged away resolve to the survivor.
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn export_contact_data(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Json<JsonValue>> {
        let id = ContactId::parse(&id).map_err(ServiceError::from).api()?;
        let workspace = &workspace(ctx)?;
        let mut document = self.services.subjects.export(workspace, &id).await.api()?;
        // This export reads the person too: it is the last entry of its own access log.
        self.services.access_log.note(&*caller(ctx)?, &id);
        let accesses = self.services.access_log.of(workspace, &id).await.api()?;
        document["accessLog"] = accesses
            .iter()
            .map(|access| serde_json::json!({ "keyId": access.key, "hour": access.hour.to_rfc3339() }))
            .collect();
        Ok(Json(document))
    }

    /// Who read the contact's personal fields: one entry per API key and hour, newest first,
    /// kept for `ACCESS_LOG_RETENTION_DAYS` (admin).
    #[graphql(
        guard = "RequireScope(Scope::Admin)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn contact_access_log(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<access_log::ContactAccessView>> {
        access_log::contact_access_log(&self.services, ctx, contact_id, first, after).await
    }

    /// The workspace's erasure receipts, newest first (admin).
    #[graphql(
        guard = "RequireScope(Scope::Admin)",
        complexity = "page_complexity(first, child_complexity)"
    )]
    async fn erasure_receipts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<erasure::ErasureReceiptView>> {
        erasure::erasure_receipts(&self.services, ctx, first, after).await
    }
}

/// Contact mutations. Each is atomic: on error nothing is written.
pub struct ContactMutation {
    services: Services,
}

impl ContactMutation {
    /// Resolvers over `services`.
    pub fn new(services: Services) -> Self {
        Self { services }
    }
}

/// Contact mutations. Each is atomic: on error nothing is written.
#[Object]
impl ContactMutation {
    /// Creates or updates the contact with `input.externalId`. Given fields are set, `null`
    /// clears, attributes merge by name. Replaying the same input changes nothing (not even
    /// `updatedAt`).
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn upsert_contact(
        &self,
        ctx: &Context<'_>,
        input: UpsertContactInput,
    ) -> async_graphql::Result<UpsertContactPayload> {
        let caller = &*caller(ctx)?;
        let external_id = ExternalId::parse(&input.external_id)
            .map_err(ServiceError::from)
            .api()?;
        let patch = input.fields.into_patch_input(FieldChange::Keep).api()?;
        let mut written = patch.written();
        written.fields.insert("external_id");
        let (contact, _outcome) = self
            .services
            .contacts
            .upsert(&caller.workspace, &external_id, patch)
            .await
            .api_for(caller)?;
        Ok(UpsertContactPayload {
            contact: ContactView::after_write(contact, caller, written),
        })
    }

    /// Changes the contact `input.id`: given fields are set, `null` clears a field, and in
    /// `attributes` a `null` value unsets that attribute.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        input: UpdateContactInput,
    ) -> async_graphql::Result<UpdateContactPayload> {
        let caller = &*caller(ctx)?;
        let id = ContactId::parse(&input.id)
            .map_err(ServiceError::from)
            .api()?;
        let patch = input.patch;
        let external_id = parse_change(patch.external_id, ExternalId::parse).api()?;
        let patch = patch.fields.into_patch_input(external_id).api()?;
        let written = patch.written();
        let contact = self
            .services
            .contacts
            .update(&caller.workspace, &id, patch)
            .await
            .api_for(caller)?;
        Ok(UpdateContactPayload {
            contact: ContactView::after_write(contact, caller, written),
        })
    }

    /// Removes the contact entirely; NOT_FOUND if it did not exist.
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        input: DeleteContactInput,
    ) -> async_graphql::Result<DeleteContactPayload> {
        let workspace = &workspace(ctx)?;
        let id = ContactId::parse(&input.id)
            .map_err(ServiceError::from)
            .api()?;
        self.services.contacts.delete(workspace, &id).await.api()?;
        Ok(DeleteContactPayload {
            deleted_id: ID(id.to_string()),
        })
    }

    /// Removes each person named (their contact, identities, aliases, merge records,
    /// conversations and events; the segment index follows) and suppresses their identifiers:
    /// a later write naming one (an upsert, an import row, `identify`, a visit) is refused with
    /// SUPPRESSED until `unsuppressIdentifiers`. Identifiers that name nobody are suppressed
    /// too. All input is checked before anything is removed (admin).
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn erase_contacts(
        &self,
        ctx: &Context<'_>,
        input: erasure::EraseContactsInput,
    ) -> async_graphql::Result<erasure::EraseContactsPayload> {
        erasure::erase_contacts(&self.services, ctx, input).await
    }

    /// Lifts the suppression of these identifiers: writes naming them are accepted again
    /// (admin).
    #[graphql(guard = "RequireScope(Scope::Admin)")]
    async fn unsuppress_identifiers(
        &self,
        ctx: &Context<'_>,
        input: erasure::UnsuppressIdentifiersInput,
    ) -> async_graphql::Result<erasure::UnsuppressIdentifiersPayload> {
        erasure::unsuppress_identifiers(&self.services, ctx, input).await
    }

    /// Records what the person said about declared purposes (`defineConsentPurpose`): each
    /// statement grants or withdraws one, and replaces the one held unless it repeats it. A
    /// withdrawal makes the contact leave segments testing `consent "purpose"` at once (EXIT,
    /// cause CONSENT).
    #[graphql(guard = "RequireScope(Scope::ContactsWrite)")]
    async fn set_consents(
        &self,
        ctx: &Context<'_>,
        input: consents::SetConsentsInput,
    ) -> async_graphql::Result<consents::SetConsentsPayload> {
        consents::set_consents(&self.services, ctx, input).await
    }
}

/// Input of `upsertContact`.
#[derive(InputObject)]
struct UpsertContactInput {
    /// The contact's id in your system: the upsert key.
    external_id: String,
    #[graphql(flatten)]
    fields: ContactFieldsInput,
}

/// Input of `updateContact`.
#[derive(InputObject)]
struct UpdateContactInput {
    /// The contact to change.
    id: ID,
    /// What to change.
    patch: ContactPatchInput,
}

/// The changes of `updateContact`: given fields are set, `null` clears.
#[derive(InputObject)]
struct ContactPatchInput {
    /// New external id; `null` makes the contact anonymous again.
    external_id: MaybeUndefined<String>,
    #[graphql(flatten)]
    fields: ContactFieldsInput,
}

/// Input of `deleteContact`.
#[derive(InputObject)]
struct DeleteContactInput {
    /// The contact to remove.
    id: ID,
}

/// The result of `upsertContact`.
#[derive(SimpleObject)]
struct UpsertContactPayload {
    /// The contact as written.
    contact: ContactView,
}

/// The result of `updateContact`.
#[derive(SimpleObject)]
struct UpdateContactPayload {
    /// The contact as written.
    contact: ContactView,
}

/// The result of `deleteContact`.
#[derive(SimpleObject)]
struct DeleteContactPayload {
    /// The id of the contact removed.
    deleted_id: ID,
}
