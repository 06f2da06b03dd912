//! What a request passes before async-graphql executes it: automatic persisted queries (the
//! hash-then-query protocol) and the shape limits of [`super::limits`]. Both run here, once per
//! request, rather than as schema extensions: every extension also wraps the resolution of every
//! field, which cost a page of 100 contacts with nested fields a fifth of its time.

use std::any::TypeId;

use async_graphql::extensions::apollo_persisted_queries::{CacheStorage, LruCacheStorage};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError, ServerResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::checked_documents::CheckedDocuments;
use super::limits::{check_shape, read_only_refusal};
use super::{ApiSchema, ReadOnly};

/// Memory for parsed documents that passed the limits (see [`CheckedDocuments`]).
const CHECKED_DOCUMENT_BYTES: u64 = 32 * 1024 * 1024;

/// The `persistedQuery` request extension.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: i32,
    sha256_hash: String,
}

/// Persisted queries and shape limits, in front of the schema.
pub struct RequestGate {
    introspection: bool,
    persisted: LruCacheStorage,
    checked: CheckedDocuments,
}

impl RequestGate {
    /// A gate keeping up to `persisted_queries` queries by hash; `introspection` says whether
    /// introspection queries pass.
    pub fn new(persisted_queries: usize, introspection: bool) -> Self {
        Self {
            introspection,
            persisted: LruCacheStorage::new(persisted_queries),
            checked: CheckedDocuments::new(CHECKED_DOCUMENT_BYTES),
        }
    }

    /// Executes each request of `batch` that passes the gate, one after the other (as
    /// async-graphql does); a request that does not pass answers with its error.
    pub async fn execute_batch(&self, schema: &ApiSchema, batch: BatchRequest) -> BatchResponse {
        match batch {
            BatchRequest::Single(request) => {
                BatchResponse::Single(self.execute(schema, request).await)
            }
            BatchRequest::Batch(requests) => {
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    responses.push(self.execute(schema, request).await);
                }
                BatchResponse::Batch(responses)
            }
        }
    }

    async fn execute(&self, schema: &ApiSchema, request: Request) -> Response {
        match self.prepare(request).await {
            Ok(request) => schema.execute(request).await,
            Err(error) => Response::from_errors(vec![error]),
        }
    }

    /// The request with its document parsed and checked.
    async fn prepare(&self, mut request: Request) -> ServerResult<Request> {
        let document = match request.extensions.remove("persistedQuery") {
            Some(value) => self.persisted_document(&request.query, value).await?,
            None => self.checked_document(&request.query)?,
        };
        if request.data.contains_key(&TypeId::of::<ReadOnly>())
            && let Some(refusal) = read_only_refusal(&document, request.operation_name.as_deref())
        {
            return Err(refusal);
        }
        request.set_parsed_query(document);
        Ok(request)
    }

    /// The document of `query`, parsed and checked, or kept from an earlier request.
    fn checked_document(&self, query: &str) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.checked.get(query) {
            return Ok(document);
        }
        let document = async_graphql::parser::parse_query(query)?;
        check_shape(&document, self.introspection)?;
        self.checked.keep(query.to_owned(), document.clone());
        Ok(document)
    }

    /// The persisted-query protocol: a hash alone runs the query registered under it
    /// (`PersistedQueryNotFound` when none is), a hash with its query registers it.
    async fn persisted_document(
        &self,
        query: &str,
        extension: async_graphql::Value,
    ) -> ServerResult<ExecutableDocument> {
        let persisted: PersistedQuery = async_graphql::from_value(extension).map_err(|_| {
            ServerError::new("Invalid \"PersistedQuery\" extension configuration.", None)
        })?;
        if persisted.version != 1 {
            return Err(ServerError::new(
                format!(
                    "Only the \"PersistedQuery\" extension of version \"1\" is supported, and the current version is \"{}\".",
                    persisted.version
                ),
                None,
            ));
        }
        if query.is_empty() {
            let document = self
                .persisted
                .get(persisted.sha256_hash)
                .await
                .ok_or_else(|| ServerError::new("PersistedQueryNotFound", None))?;
            // Kept only once it passed the limits.
            return Ok(document);
        }
        let sha256_hash = hex::encode(Sha256::digest(query.as_bytes()));
        if persisted.sha256_hash != sha256_hash {
            return Err(ServerError::new("provided sha does not match query", None));
        }
        let document = self.checked_document(query)?;
        self.persisted.set(sha256_hash, document.clone()).await;
        Ok(document)
    }
}
