//! Use cases over the store and the segment index. The only layer the GraphQL API calls.

mod access_log;
mod activity;
mod attributes;
mod catalog_cache;
#[cfg(test)]
mod catalog_tests;
mod claims;
pub mod consents;
mod contacts;
mod contention;
mod erasure;
mod error;
mod event_import;
mod export;
mod identity;
mod identity_token;
mod import;
pub mod indexer;
mod keys;
mod lease;
pub use lease::Lease;
pub mod feed;
pub mod membership;
mod merges;
mod outbound;
mod segment;
mod segments;
mod sensitive;
mod subject;
mod suppression;
pub mod webhooks;

pub use access_log::{AccessLog, DEFAULT_ACCESS_LOG_RETENTION};
pub use activity::{ActivityService, ActivitySubject, EventInput, Recorded};
pub use attributes::AttributeService;
pub use catalog_cache::{Catalogs, FOLLOW_INTERVAL, StoredKey, WorkspaceState};
pub use consents::ConsentService;
pub use contacts::{ContactService, MAX_PAGE_SIZE, PatchInput, UpsertOutcome};
pub use erasure::{ErasureRequest, ErasureService, MAX_ERASURE_IDENTIFIERS};
pub use error::{ErrorCode, InternalError, ServiceError};
pub use event_import::EventImportReport;
pub use export::{ExportService, contact_json};
pub use identity::{IdentifyRequest, IdentityProof, IdentityService, VerificationChange};
pub use identity_token::{CLOCK_LEEWAY_SECS, install_crypto_provider};
pub use import::{
    CHUNK_ROWS, ImportFormat, ImportOptions, ImportReport, ImportService, JobStatus, MatchBy,
    RowError,
};
pub use keys::{CreatedKey, KeyChange, KeyService, NewKey, secret_hash};
pub use merges::{MergePreview, MergeReason, MergeService};
pub use segment::{ExplainNode, ExplainPart, MAX_REFERENCE_DEPTH, Resolved, SegmentSource};
pub use segments::{
    Consistency, LATEST_TIMEOUT, SegmentDraft, SegmentPage, SegmentService, Validation, check_text,
};
pub use sensitive::Revealer;
pub use subject::SubjectService;
pub use webhooks::{CreatedWebhook, DeliveryPage, WebhookInput, WebhookService};

use std::sync::Arc;

use feed::LiveService;
use indexer::{ChangeNotifier, Indexer};
use membership::MembershipEngine;
use segment::CompiledCatalogs;

use crate::index::SegmentIndex;
use crate::store::Store;
use crate::telemetry::Metrics;

/// How the live side runs.
pub struct LiveSettings {
    /// How long segment feed entries are kept.
    pub feed_retention: chrono::TimeDelta,
    /// Sends webhook deliveries.
    pub webhook_sender: Arc<webhooks::Sender>,
    /// How long the access log keeps who read whom (`ACCESS_LOG_RETENTION_DAYS`).
    pub access_log_retention: chrono::TimeDelta,
    /// With several instances on one store (a SurrealDB server): this instance's id, under
    /// which it competes for recording the feed and sending webhooks (one instance at a time).
    pub instance: Option<String>,
}

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
    /// The segment membership feed and its followers.
    pub live: LiveService,
    /// Webhook endpoints, their outbox and its dispatcher.
    pub webhooks: WebhookService,
    /// Erasure with suppression, and its receipts.
    pub erasure: ErasureService,
    /// Consent purposes and what contacts said about them.
    pub consents: ConsentService,
    /// Who read whom.
    pub access_log: Arc<AccessLog>,
    /// The leases this instance competes for (several instances on one store).
    leases: Vec<Arc<Lease>>,
}

impl Services {
    /// Gives up the leases this instance holds (at a graceful stop, once the indexer and the
    /// dispatcher stopped), so another instance takes over at once.
    pub async fn release_leases(&self) {
        for lease in &self.leases {
            lease.release().await;
        }
    }

    /// Wires the use cases to `store`, its loaded `catalogs`, the segment `index` and its
    /// `indexer`, recording what they measure in `metrics`; feed entries are kept for
    /// `settings.feed_retention`, webhooks go out through `settings.webhook_sender`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        index: Arc<SegmentIndex>,
        indexer: Arc<Indexer>,
        notifier: ChangeNotifier,
        metrics: Arc<Metrics>,
        settings: LiveSettings,
    ) -> Self {
        let merges = MergeService::new(store.clone(), catalogs.clone(), notifier.clone());
        let access_log = Arc::new(AccessLog::new(store.clone(), settings.access_log_retention));
        let lease = |name| {
            settings
                .instance
                .clone()
                .map(|holder| Arc::new(Lease::new(store.clone(), name, holder)))
        };
        let membership_lease = lease("membership");
        let webhook_lease = lease("webhooks");
        let leases: Vec<Arc<Lease>> = membership_lease
            .iter()
            .chain(&webhook_lease)
            .cloned()
            .collect();
        let mut engine = MembershipEngine::new(
            store.clone(),
            Arc::clone(&index),
            CompiledCatalogs::new(catalogs.clone(), store.sealer().cloned()),
            settings.feed_retention,
        );
        if let Some(lease) = membership_lease {
            engine = engine.led_by(lease);
        }
        let engine = Arc::new(engine);
        indexer.attach(Arc::clone(&engine));
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
        )
        .with_private_targets(settings.webhook_sender.allows_private());
        let activity = ActivityService::new(
            store.clone(),
            notifier.clone(),
            contacts.clone(),
            identity.clone(),
        );
        let live = LiveService::new(engine, store.clone(), segments.clone(), contacts.clone());
        let mut webhooks = WebhookService::new(
            store.clone(),
            catalogs.clone(),
            settings.webhook_sender,
            Arc::clone(&metrics),
        );
        if let Some(lease) = webhook_lease {
            webhooks = webhooks.led_by(lease);
        }
        let erasure = ErasureService::new(store.clone(), contacts.clone());
        let consents = ConsentService::new(
            store.clone(),
            catalogs.clone(),
            notifier.clone(),
            contacts.clone(),
        );
        Self {
            consents,
            access_log: Arc::clone(&access_log),
            leases,
            live,
            webhooks,
            erasure,
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
            )
            .with_access_log(Arc::clone(&access_log)),
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
