//! Composition root: opens the store and the index, starts the indexer, builds the schema and
//! the router, serves until shutdown.

mod bootstrap;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{AllowedOrigins, DatabaseUrl, Mode, Settings, TlsFiles};
use crate::domain::WorkspaceId;
use crate::graphql::{ApiSchema, RequestGate, build_schema};
use crate::http::tls::TlsListener;
use crate::http::{AddressGuard, HttpState, KeyRateLimit, SocketLimits, SocketSeats, router};
use crate::index::{IndexError, SegmentIndex};
use crate::service::indexer::{ChangeNotifier, Indexer, IndexerError, LogSharing};
use crate::service::webhooks::Sender;
use crate::service::{Catalogs, LiveSettings, Services};

/// How long a stopping service waits for webhook attempts in flight.
const DISPATCH_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a stop waits for the background tasks and the lease releases when the store is a
/// SurrealDB server: one that went away must not hold the process (its leases run out by
/// themselves, and the change log and the feed are replayed at the next start).
const REMOTE_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(4);
/// Stack of the thread that builds the schema (virtual memory, touched only as deep as used).
const SCHEMA_BUILD_STACK: usize = 64 * 1024 * 1024;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;
use crate::telemetry::supervise::spawn_supervised;
use crate::vault::{KEY_FILE, KeySource, Vault, VaultError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create the data directory `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O failure.
        source: io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The segment index could not be opened (another process may hold it).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Another process (a running service) holds the segment index's lock.
    #[error(
        "the segment index at `{0}` is in use by another process (a running service holds its lock): stop that process first, or give this command a DATA_DIR of its own (over a SurrealDB server it builds its own index there)"
    )]
    IndexInUse(String),
    /// The segment index could not be brought up to date.
    #[error(transparent)]
    Indexer(#[from] IndexerError),
    /// Start-up settings could not be stored.
    #[error("cannot store start-up settings: {0}")]
    Settings(String),
    /// The encryption key could not be loaded or made.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The first admin key could not be set up.
    #[error("cannot set up the admin API key: {0}")]
    AdminKey(String),
    /// `MODE=production` with a configuration that is not safe to serve.
    #[error("refusing to start in production: {0}")]
    Unsafe(&'static str),
}

/// A ready-to-serve service.
pub struct App {
    store: Store,
    schema: ApiSchema,
    gate: Arc<RequestGate>,
    services: Services,
    rate_limit: Arc<KeyRateLimit>,
    address_guard: Option<Arc<AddressGuard>>,
    client_address_header: Option<Arc<str>>,
    allowed_origins: AllowedOrigins,
    metrics: Arc<Metrics>,
    metrics_token: Option<secrecy::SecretString>,
    socket_limits: SocketLimits,
    sockets: Arc<SocketSeats>,
    indexer: Arc<Indexer>,
    indexer_task: JoinHandle<()>,
    catalog_task: JoinHandle<()>,
    access_log_task: JoinHandle<()>,
    stop_indexer: watch::Sender<bool>,
    tls: Option<TlsFiles>,
    mode: Mode,
    /// Over a SurrealDB server: the stop does not wait on it past [`REMOTE_STOP_GRACE`].
    remote_store: bool,
}

impl App {
    /// Opens the store and the index named by `settings`, brings the index up to date with the
    /// store, starts following the change log, and wires every layer.
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        if settings.api.mode == Mode::Production && settings.encryption_key.is_none() {
            return Err(StartError::Unsafe(
                "set ENCRYPTION_KEY (base64 of 32 bytes, e.g. `openssl rand -base64 32`) and keep it; sensitive values and identity secrets are sealed with it",
            ));
        }
        let embedded = !matches!(settings.store.url, DatabaseUrl::Memory);
        if let Some(path) = settings.store.url.embedded_path() {
            create_dir(path)?;
        }
        let vault = open_vault(settings, embedded)?;
        let store = Store::connect(&settings.store).await?.with_sealer(vault);
        let index = if embedded {
            create_dir(&settings.data_dir)?;
            let writer_bytes = usize::try_from(settings.index_writer_bytes).unwrap_or(usize::MAX);
            let path = settings.data_dir.join("index");
            SegmentIndex::open_in_dir_with(&path, writer_bytes).map_err(|error| {
                if error.is_in_use() {
                    StartError::IndexInUse(path.display().to_string())
                } else {
                    StartError::Index(error)
                }
            })?
        } else {
            SegmentIndex::open_in_ram()?
        };
        let index = Arc::new(index);
        let notifier = ChangeNotifier::default();
        // Over a SurrealDB server, other instances may follow the same change log.
        let sharing = match settings.store.url {
            DatabaseUrl::Remote(_) => LogSharing::Shared {
                retention: settings.change_log_retention,
            },
            _ => LogSharing::Exclusive,
        };
        let indexer = Arc::new(
            Indexer::new(
                store.clone(),
                Arc::clone(&index),
                notifier.clone(),
                settings.index_commit_delay,
            )?
            .sharing(sharing),
        );
        let catalogs = Catalogs::load(store.clone()).await?;
        let metrics = Arc::new(Metrics::new());
        // Wiring attaches the membership engine to the indexer before it applies anything.
        let services = Services::new(
            store.clone(),
            catalogs.clone(),
            index,
            Arc::clone(&indexer),
            notifier,
            Arc::clone(&metrics),
            LiveSettings {
                feed_retention: settings.feed_retention,
                access_log_retention: settings.access_log_retention,
                webhook_sender: Arc::new(
                    Sender::new(settings.api.webhook_allow_private_targets)
                        .map_err(StartError::Settings)?,
                ),
                instance: matches!(sharing, LogSharing::Shared { .. })
                    .then(|| ulid::Ulid::new().to_string()),
            },
        );
        indexer.ensure_built().await?;
        indexer.settle().await?;
        let (stop_indexer, stopped) = watch::channel(false);
        let indexer_task = spawn_supervised("indexer", Arc::clone(&metrics), {
            let (indexer, stopped) = (Arc::clone(&indexer), stopped.clone());
            move || Arc::clone(&indexer).run(stopped.clone())
        });
        let access_log_task = spawn_supervised("access-log", Arc::clone(&metrics), {
            let (log, stopped) = (Arc::clone(&services.access_log), stopped.clone());
            move || {
                let (log, stopped) = (Arc::clone(&log), stopped.clone());
                async move { log.run(stopped).await }
            }
        });
        let catalog_task = spawn_supervised("catalogue-follower", Arc::clone(&metrics), {
            let catalogs = catalogs.clone();
            move || catalogs.clone().follow(stopped.clone())
        });
        if let Some(secret) = &settings.identity_secret {
            services
                .identity
                .ensure_identity_secret(&WorkspaceId::default(), secret)
                .await
                .map_err(|error| StartError::Settings(error.to_string()))?;
        }
        bootstrap::ensure_admin_key(&services.keys, settings).await?;
        // Registering every type recurses once per nesting level of the API's types, which in
        // a debug build outgrows a worker's 2 MiB stack: a thread of its own, with room to spare.
        let schema = {
            let (services, introspection) = (services.clone(), settings.api.introspection);
            let default_rate = settings.api.default_key_rate();
            let (built, schema) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("schema-build".to_owned())
                .stack_size(SCHEMA_BUILD_STACK)
                .spawn(move || {
                    let _ = built.send(build_schema(services, introspection, default_rate));
                })
                .map_err(|error| {
                    StartError::Settings(format!("cannot start the schema build: {error}"))
                })?;
            schema.await.map_err(|_| {
                StartError::Settings("building the schema failed (its thread panicked)".to_owned())
            })?
        };
        let gate = Arc::new(RequestGate::new(
            settings.api.persisted_query_bytes,
            settings.api.introspection,
        ));
        let rate_limit = Arc::new(KeyRateLimit::new(settings.api.default_key_rate()));
        let address_guard = AddressGuard::new(
            settings.api.auth_failures_per_second,
            settings.api.auth_failures_burst,
        )
        .map(Arc::new);
        Ok(Self {
            store,
            schema,
            gate,
            services,
            rate_limit,
            address_guard,
            client_address_header: settings.api.client_address_header.as_deref().map(Arc::from),
            allowed_origins: settings.api.allowed_origins.clone(),
            metrics,
            metrics_token: settings.api.metrics_token.clone(),
            socket_limits: SocketLimits {
                max_sockets_per_key: settings.api.max_sockets_per_key,
                max_subscriptions_per_socket: settings.api.max_subscriptions_per_socket,
            },
            sockets: Arc::default(),
            indexer,
            indexer_task,
            catalog_task,
            access_log_task,
            stop_indexer,
            tls: settings.tls.clone(),
            mode: settings.api.mode,
            remote_store: matches!(settings.store.url, DatabaseUrl::Remote(_)),
        })
    }

    /// The GraphQL schema (for printing the SDL).
    pub fn schema(&self) -> &ApiSchema {
        &self.schema
    }

    /// The use cases, for commands (import, export).
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The indexer, for commands that rebuild or inspect the index.
    pub fn indexer(&self) -> &Arc<Indexer> {
        &self.indexer
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        router(
            HttpState {
                schema: self.schema.clone(),
                gate: Arc::clone(&self.gate),
                store: self.store.clone(),
                services: self.services.clone(),
                rate_limit: self.rate_limit.clone(),
                address_guard: self.address_guard.clone(),
                client_address_header: self.client_address_header.clone(),
                metrics: Arc::clone(&self.metrics),
                metrics_token: self.metrics_token.clone(),
                socket_limits: self.socket_limits,
                sockets: Arc::clone(&self.sockets),
            },
            &self.allowed_origins,
        )
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests, stops the
    /// indexer and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let address = listener.local_addr()?;
        let dispatcher = Arc::new(self.services.webhooks.dispatcher());
        let dispatch_task = spawn_supervised("webhook-dispatcher", Arc::clone(&self.metrics), {
            let engine = Arc::clone(self.services.live.engine());
            let stop = self.stop_indexer.subscribe();
            move || Arc::clone(&dispatcher).run(engine.subscribe(), stop.clone())
        });
        let service = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        match self.tls.clone() {
            Some(files) => {
                let listener = TlsListener::new(listener, files).map_err(io::Error::other)?;
                info!(%address, "serving GraphQL at https://{address}/graphql (and wss:// at /graphql/ws)");
                axum::serve(listener.tap_io(|_| ()), service)
                    .with_graceful_shutdown(shutdown)
                    .await?;
            }
            None => {
                if self.mode == Mode::Production && !address.ip().is_loopback() {
                    warn!(
                        %address,
                        "PLAIN HTTP on a non-loopback address in production: API keys, identity tokens and contact data cross the network unencrypted. Set TLS_CERT_FILE and TLS_KEY_FILE, or terminate TLS in front of this service"
                    );
                }
                info!(%address, "serving GraphQL at /graphql");
                axum::serve(listener, service)
                    .with_graceful_shutdown(shutdown)
                    .await?;
            }
        }
        info!("stopped serving; closing the store");
        let _ = self.stop_indexer.send(true);
        // An attempt cut short is sent again after the restart (at least once).
        if tokio::time::timeout(DISPATCH_STOP_GRACE, dispatch_task)
            .await
            .is_err()
        {
            warn!(
                "webhook deliveries in flight were cut short; they are sent again at the next start"
            );
        }
        self.close().await;
        Ok(())
    }

    /// Stops the indexer and closes the store (waiting until an embedded store released its files).
    pub async fn close(self) {
        let Self {
            store,
            schema,
            services,
            rate_limit,
            indexer,
            indexer_task,
            catalog_task,
            access_log_task,
            stop_indexer,
            remote_store,
            ..
        } = self;
        drop(rate_limit);
        let _ = stop_indexer.send(true);
        let stopping = async {
            let _ = indexer_task.await;
            let _ = catalog_task.await;
            let _ = access_log_task.await;
            services.release_leases().await;
        };
        if !remote_store {
            stopping.await;
        } else if tokio::time::timeout(REMOTE_STOP_GRACE, stopping)
            .await
            .is_err()
        {
            warn!(
                "the SurrealDB server did not let the background tasks finish within {} s; stopping without them (the next start replays what they left)",
                REMOTE_STOP_GRACE.as_secs()
            );
        }
        drop(schema);
        drop(services);
        drop(indexer);
        store.close().await;
        info!("store closed");
    }
}

/// The vault of sensitive values: `ENCRYPTION_KEY`, else the key file under `DATA_DIR` for
/// embedded stores (made, with a warning, at first start), else a key for this process only.
fn open_vault(settings: &Settings, embedded: bool) -> Result<Arc<Vault>, StartError> {
    let data_dir = embedded.then_some(settings.data_dir.as_path());
    if let Some(dir) = data_dir {
        create_dir(dir)?;
    }
    let (vault, source) = Vault::load(settings.encryption_key.as_ref(), data_dir)?;
    match source {
        KeySource::File { created: true } => warn!(
            path = %settings.data_dir.join(KEY_FILE).display(),
            "made an encryption key for sensitive attributes; production must set ENCRYPTION_KEY (and keep it: values sealed with a lost key cannot be read)"
        ),
        KeySource::Ephemeral => warn!(
            "sensitive attributes are sealed with a key of this process only; set ENCRYPTION_KEY"
        ),
        KeySource::Configured | KeySource::File { created: false } => {}
    }
    Ok(Arc::new(vault))
}

fn create_dir(path: &std::path::Path) -> Result<(), StartError> {
    std::fs::create_dir_all(path).map_err(|source| StartError::DataDir {
        path: path.display().to_string(),
        source,
    })
}
