//! What every GraphQL document passes before async-graphql executes it, on every transport
//! (POST, GET, persisted queries, and each operation over the socket): automatic persisted
//! queries (the hash-then-query protocol) and the shape limits of [`super::limits`]. Both run
//! here, once per operation, rather than as schema extensions: every extension also wraps the
//! resolution of every field, which cost a page of 100 contacts with nested fields a fifth of
//! its time. (The complexity limit is the schema's own, so it holds on every transport too.)

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection,
};
use async_graphql::{BatchRequest, BatchResponse, Request, Response, ServerError, ServerResult};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::checked_documents::CheckedDocuments;
use super::limits::{check_shape, read_only_refusal};
use super::persisted::PersistedQueries;
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

/// A request that passed the gate, with what the transport needs to know of it.
pub struct Prepared {
    /// The request, its document parsed and checked.
    pub request: Request,
    /// Whether it runs a query, a mutation or a subscription.
    pub kind: OperationType,
    /// A metrics label drawn from the schema, never from the client: the operation type and
    /// its first root field (`query contacts`, `mutation upsertContact+` when more follow).
    pub label: String,
}

/// Persisted queries and shape limits, in front of the schema.
pub struct RequestGate {
    introspection: bool,
    persisted: PersistedQueries,
    checked: CheckedDocuments,
}

impl RequestGate {
    /// A gate keeping up to `persisted_bytes` of persisted query text by hash;
    /// `introspection` says whether introspection queries pass.
    pub fn new(persisted_bytes: u64, introspection: bool) -> Self {
        Self {
            introspection,
            persisted: PersistedQueries::new(persisted_bytes),
            checked: CheckedDocuments::new(CHECKED_DOCUMENT_BYTES),
        }
    }

    /// Executes each request of `batch` that passes the gate, one after the other (as
    /// async-graphql does); a request that does not pass answers with its error. Returns the
    /// metrics label of a single request (`batch` for a batch, `-` for a refused one).
    pub async fn execute_batch(
        &self,
        schema: &ApiSchema,
        batch: BatchRequest,
    ) -> (BatchResponse, String) {
        match batch {
            BatchRequest::Single(request) => {
                let (response, label) = self.execute(schema, request).await;
                (BatchResponse::Single(response), label)
            }
            BatchRequest::Batch(requests) => {
                let mut responses = Vec::with_capacity(requests.len());
                for request in requests {
                    responses.push(self.execute(schema, request).await.0);
                }
                (BatchResponse::Batch(responses), "batch".to_owned())
            }
        }
    }

    async fn execute(&self, schema: &ApiSchema, request: Request) -> (Response, String) {
        match self.prepare(request).await {
            Ok(prepared) => (schema.execute(prepared.request).await, prepared.label),
            Err(error) => (Response::from_errors(vec![error]), "-".to_owned()),
        }
    }

    /// The request with its document parsed and checked, or the error that refuses it.
    pub async fn prepare(&self, mut request: Request) -> ServerResult<Prepared> {
        let document = match request.extensions.remove("persistedQuery") {
            Some(value) => self.persisted_document(&request.query, value).await?,
            None => self.checked_document(&request.query)?,
        };
        let operation_name = request.operation_name.as_deref();
        if request.data.contains_key(&TypeId::of::<ReadOnly>())
            && let Some(refusal) = read_only_refusal(&document, operation_name)
        {
            return Err(refusal);
        }
        let operation = selected_operation(&document, operation_name);
        let kind = operation.map_or(OperationType::Query, |operation| operation.ty);
        let label = operation.map_or_else(|| "-".to_owned(), operation_label);
        request.set_parsed_query(document);
        Ok(Prepared {
            request,
            kind,
            label,
        })
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
            let text = self
                .persisted
                .get(&persisted.sha256_hash)
                .ok_or_else(|| ServerError::new("PersistedQueryNotFound", None))?;
            // Kept only once it passed the limits; checked again if its parse was evicted.
            return self.checked_document(&text);
        }
        let sha256_hash = hex::encode(Sha256::digest(query.as_bytes()));
        if persisted.sha256_hash != sha256_hash {
            return Err(ServerError::new("provided sha does not match query", None));
        }
        let document = self.checked_document(query)?;
        self.persisted.keep(sha256_hash, Arc::from(query));
        Ok(document)
    }
}

/// The operation `name` names, or the document's only one.
fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = document.operations.iter();
    match name {
        Some(name) => operations
            .find(|(operation, _)| operation.is_some_and(|own| own.as_str() == name))
            .map(|(_, operation)| &operation.node),
        None => {
            let first = operations.next()?;
            operations.next().is_none().then_some(&first.1.node)
        }
    }
}

/// `query contacts`, `mutation upsertContact+`: the type and the first root field, `+` when
/// more root selections follow. Built from names the schema validates, so its values stay
/// few and reveal nothing a tenant chose.
fn operation_label(operation: &OperationDefinition) -> String {
    let kind = match operation.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let items = &operation.selection_set.node.items;
    let first = match items.first().map(|item| &item.node) {
        Some(Selection::Field(field)) => field.node.name.node.as_str(),
        Some(_) => "(fragment)",
        None => "-",
    };
    let more = if items.len() > 1 { "+" } else { "" };
    format!("{kind} {first}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_of(query: &str, name: Option<&str>) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).unwrap();
        selected_operation(&document, name).map(operation_label)
    }

    #[test]
    fn labels_name_the_schema_not_the_client() {
        assert_eq!(
            label_of(
                "query AcmeLayoffsList2027 { contacts { totalCount } }",
                None
            )
            .as_deref(),
            Some("query contacts")
        );
        assert_eq!(
            label_of(
                "mutation { upsertContact(input: {}) { id } attributes { name } }",
                None
            )
            .as_deref(),
            Some("mutation upsertContact+")
        );
        let two =
            "query A { segments { slug } } subscription B { contactChanged(id: \"x\") { id } }";
        assert_eq!(
            label_of(two, Some("B")).as_deref(),
            Some("subscription contactChanged")
        );
        assert_eq!(label_of(two, None), None, "ambiguous without a name");
        assert_eq!(
            label_of(
                "{ ...F } fragment F on QueryRoot { segments { slug } }",
                None
            )
            .as_deref(),
            Some("query (fragment)")
        );
    }
}
