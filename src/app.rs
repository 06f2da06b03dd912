//! Composition root: opens the store, builds the schema and the router, serves until shutdown.

use std::future::Future;
use std::io;

use axum::Router;
use tokio::net::TcpListener;
use tracing::info;

use crate::config::{DatabaseUrl, Settings};
use crate::graphql::{ApiSchema, build_schema};
use crate::http::{HttpState, router};
use crate::service::Services;
use crate::store::{Store, StoreError};

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
}

/// A ready-to-serve service.
pub struct App {
    store: Store,
    schema: ApiSchema,
}

impl App {
    /// Opens the store named by `settings` and wires every layer.
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        if let DatabaseUrl::SurrealKv(path) = &settings.store.url {
            std::fs::create_dir_all(path).map_err(|source| StartError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
        }
        let store = Store::connect(&settings.store).await?;
        let schema = build_schema(Services::new(store.clone()));
        Ok(Self { store, schema })
    }

    /// The GraphQL schema (for printing the SDL).
    pub fn schema(&self) -> &ApiSchema {
        &self.schema
    }

    /// The HTTP routes.
    pub fn router(&self) -> Router {
        router(HttpState {
            schema: self.schema.clone(),
            store: self.store.clone(),
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes in-flight requests and
    /// closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        info!(address = %listener.local_addr()?, "serving GraphQL at /graphql");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await?;
        info!("stopped serving; closing the store");
        let Self { store, schema } = self;
        drop(schema);
        store.close().await;
        info!("store closed");
        Ok(())
    }
}
