//! Streaming export: every contact of a workspace, or a segment's members, in id order, one
//! page at a time (bounded memory), resumable after any id.

use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use super::access_log::AccessLog;
use super::catalog_cache::Catalogs;
use super::segment::{Resolved, SegmentSource};
use super::segments::{Consistency, SegmentService};
use super::sensitive::Revealer;
use crate::domain::{Caller, Contact, ContactId, FixedField, sensitive_names};
use crate::service::error::ServiceError;
use crate::store::Store;

/// Contacts read per page of an export.
pub const EXPORT_PAGE: usize = 500;

/// Export use cases over the store and the segment index.
#[derive(Clone)]
pub struct ExportService {
    store: Store,
    catalogs: Catalogs,
    segments: SegmentService,
    revealer: Revealer,
    access_log: Option<Arc<AccessLog>>,
}

impl ExportService {
    /// Exports from `store`, or from `segments` when a segment is given; `revealer` opens
    /// sensitive values for callers with `pii:read`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        segments: SegmentService,
        revealer: Revealer,
    ) -> Self {
        Self {
            store,
            catalogs,
            segments,
            revealer,
            access_log: None,
        }
    }

    /// These exports, noting every contact they send in `access_log`.
    pub fn with_access_log(mut self, access_log: Arc<AccessLog>) -> Self {
        self.access_log = Some(access_log);
        self
    }

    /// Resolves the export's segment once, before it starts streaming (errors cannot be sent
    /// mid-stream); every page then runs the resolved tree.
    pub fn resolve(
        &self,
        caller: &Caller,
        segment: Option<&str>,
    ) -> Result<Option<Resolved>, ServiceError> {
        segment
            .map(|text| {
                self.segments
                    .resolve(caller, SegmentSource::Text(text.to_owned()))
            })
            .transpose()
    }

    /// The next page of the export after `after`: contacts ascending by id, showing only what
    /// the caller may read, and whether more follow. Segment pages wait until the index has
    /// applied every earlier write.
    pub async fn page(
        &self,
        caller: &Caller,
        segment: Option<&Resolved>,
        after: Option<ContactId>,
    ) -> Result<(Vec<Contact>, bool), ServiceError> {
        let (contacts, has_more) = self.unredacted_page(caller, segment, after).await?;
        let sensitive = sensitive_names(&self.catalogs.workspace(&caller.workspace).attributes);
        if let Some(log) = &self.access_log {
            contacts
                .iter()
                .for_each(|contact| log.note(caller, &contact.id));
        }
        let visible = contacts
            .into_iter()
            .map(|contact| caller.redact(contact, |name| sensitive.contains(name)))
            .map(|contact| self.revealer.contact(contact))
            .collect();
        Ok((visible, has_more))
    }

    async fn unredacted_page(
        &self,
        caller: &Caller,
        segment: Option<&Resolved>,
        after: Option<ContactId>,
    ) -> Result<(Vec<Contact>, bool), ServiceError> {
        let workspace = &caller.workspace;
        match segment {
            None => {
                let page = self
                    .store
                    .contact_page(workspace, after.as_ref(), EXPORT_PAGE)
                    .await?;
                Ok((page.contacts, page.has_more))
            }
            Some(resolved) => {
                let page = self
                    .segments
                    .members_of(workspace, resolved, after, EXPORT_PAGE, Consistency::Latest)
                    .await?;
                let contacts = page.contacts.into_iter().map(Arc::unwrap_or_clone);
                Ok((contacts.collect(), page.has_more))
            }
        }
    }
}

/// A contact as one line of an export (the field names of the GraphQL API; it imports back).
pub fn contact_json(contact: &Contact) -> Json {
    let fields = &contact.fields;
    let attributes: Map<String, Json> = fields
        .attributes
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.to_json()))
        .collect();
    let mut line = json!({
        "id": contact.id.to_string(),
        "attributes": attributes,
        "createdAt": contact.created_at.to_rfc3339(),
        "updatedAt": contact.updated_at.to_rfc3339(),
        "lastSeenAt": fields.last_seen_at.map(|at| at.to_rfc3339()),
    });
    for field in FixedField::ALL {
        line[field.api_name()] = json!(field.value(fields));
    }
    if !contact.consents.is_empty() {
        let consents: Map<String, Json> = contact
            .consents
            .iter()
            .map(|(purpose, consent)| {
                let statement = json!({
                    "granted": consent.granted,
                    "at": consent.origin.at.to_rfc3339(),
                    "source": consent.origin.source,
                    "provenance": consent.origin.provenance.as_str(),
                    "recordedBy": consent.origin.recorded_by,
                });
                (purpose.as_str().to_owned(), statement)
            })
            .collect();
        line["consents"] = Json::Object(consents);
    }
    line
}
