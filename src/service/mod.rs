//! Use cases over the store and the segment index. The only layer the GraphQL API calls.

mod activity;
mod attributes;
mod catalog;
#[cfg(test)]
mod catalog_tests;
mod claims;
mod contacts;
mod error;
mod export;
mod identity;
mod identity_token;
mod import;
pub mod indexer;
mod keys;
mod merges;
mod segment;
mod sensitive;
mod subject;

pub use activity::{ActivityService, ActivitySubject, EventInput, Recorded};
pub use attributes::AttributeService;
pub use catalog::{Catalogs, FOLLOW_INTERVAL, StoredKey, WorkspaceState};
pub use contacts::{ContactService, MAX_PAGE_SIZE, PatchInput, UpsertOutcome};
pub use error::{ErrorCode, ServiceError};
pub use export::{ExportService, contact_json};
pub use identity::{IdentifyRequest, IdentityProof, IdentityService, VerificationChange};
pub use identity_token::{CLOCK_LEEWAY_SECS, Refusal, install_crypto_provider};
pub use import::{
    ImportFormat, ImportOptions, ImportReport, ImportService, JobStatus, MatchBy, RowError,
};
pub use keys::{CreatedKey, KeyChange, KeyService, secret_hash};
pub use merges::{MergePreview, MergeReason, MergeService};
pub use segment::{
    Consistency, ExplainNode, LATEST_TIMEOUT, MAX_REFERENCE_DEPTH, Resolved, SegmentDraft,
    SegmentPage, SegmentService, SegmentSource, Validation, check_text,
};
pub use sensitive::Revealer;
pub use subject::SubjectService;

use std::sync::Arc;

use indexer::{ChangeNotifier, Indexer};

use crate::index::SegmentIndex;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Every use case, cheap to clone, shared by all requests.
#[derive(Clone)]
pub struct Services {
    /// Contacts.
    pub contacts: ContactService,
    /// The attribute registry.
    pub attributes: AttributeService,
    /// Segments.
    pub segments: SegmentService,
    /// Anonymous visitors, verified identification, workspace identity settings.
    pub identity: IdentityService,
    /// Merges, their history and undo.
    pub merges: MergeService,
    /// Bulk import jobs.
    pub imports: ImportService,
    /// Streaming exports.
    pub exports: ExportService,
    /// API keys and authentication.
    pub keys: KeyService,
    /// Opens sensitive values for callers with `pii:read`.
    pub revealer: Revealer,
    /// Data subject requests.
    pub subjects: SubjectService,
    /// Keys, attribute registries, settings and saved segments, held in memory.
    pub catalogs: Catalogs,
    /// Conversation history and events.
    pub activity: ActivityService,
}

impl Services {
    /// Wires the use cases to `store`, its loaded `catalogs`, the segment `index` and its
    /// `indexer`, recording what they measure in `metrics`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        index: Arc<SegmentIndex>,
        indexer: Arc<Indexer>,
        notifier: ChangeNotifier,
        metrics: Arc<Metrics>,
    ) -> Self {
        let merges = MergeService::new(store.clone(), catalogs.clone(), notifier.clone());
        let segments = SegmentService::new(store.clone(), catalogs.clone(), index, indexer)
            .with_metrics(Arc::clone(&metrics));
        let contacts = ContactService::new(
            store.clone(),
            catalogs.clone(),
            notifier.clone(),
            merges.clone(),
        );
        let revealer = Revealer::new(store.sealer().cloned());
        let identity = IdentityService::new(
            store.clone(),
            catalogs.clone(),
            notifier.clone(),
            contacts.clone(),
            merges.clone(),
        );
        let activity = ActivityService::new(
            store.clone(),
            notifier.clone(),
            contacts.clone(),
            identity.clone(),
        );
        Self {
            subjects: SubjectService::new(
                contacts.clone(),
                merges.clone(),
                segments.clone(),
                activity.clone(),
                revealer.clone(),
            ),
            identity,
            activity,
            imports: ImportService::new(store.clone(), catalogs.clone(), notifier)
                .with_metrics(metrics),
            exports: ExportService::new(
                store.clone(),
                catalogs.clone(),
                segments.clone(),
                revealer.clone(),
            ),
            attributes: AttributeService::new(store.clone(), catalogs.clone()),
            keys: KeyService::new(store, catalogs.clone()),
            catalogs,
            contacts,
            merges,
            revealer,
            segments,
        }
    }
}
