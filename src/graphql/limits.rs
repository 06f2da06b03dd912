//! Query shape limits beyond async-graphql's own depth and complexity checks: a cap on aliases,
//! which otherwise let one small query repeat an expensive field many times, and a clear
//! refusal of introspection where it is turned off (async-graphql would answer null).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{ServerError, ServerResult, Variables};

use crate::service::ErrorCode;

/// Most aliased fields one request may hold.
pub const MAX_ALIASES: usize = 30;

/// Refuses documents with more than [`MAX_ALIASES`] aliases (QUERY_TOO_COMPLEX) and, unless
/// `introspection` is on, documents asking for `__schema` or `__type` (FORBIDDEN).
pub struct QueryLimits {
    /// Whether introspection queries are answered.
    pub introspection: bool,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            introspection: self.introspection,
        })
    }
}

struct QueryLimitsExtension {
    introspection: bool,
}

fn coded(code: ErrorCode, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > MAX_ALIASES {
            return Err(coded(
                ErrorCode::QueryTooComplex,
                format!("the query uses {aliases} aliases; at most {MAX_ALIASES} are allowed"),
            ));
        }
        if !self.introspection && asks_for_introspection(&document) {
            return Err(coded(
                ErrorCode::Forbidden,
                "introspection is turned off on this server (INTROSPECTION=true turns it on)"
                    .to_owned(),
            ));
        }
        Ok(document)
    }
}

/// Whether any selection set of the document asks for `__schema` or `__type`.
fn asks_for_introspection(document: &ExecutableDocument) -> bool {
    let operations: Vec<&SelectionSet> = match &document.operations {
        DocumentOperations::Single(operation) => vec![&operation.node.selection_set.node],
        DocumentOperations::Multiple(operations) => operations
            .values()
            .map(|operation| &operation.node.selection_set.node)
            .collect(),
    };
    let fragments = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set.node);
    operations
        .into_iter()
        .chain(fragments)
        .any(selects_introspection)
}

fn selects_introspection(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            let name = field.node.name.node.as_str();
            name == "__schema"
                || name == "__type"
                || selects_introspection(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => {
            selects_introspection(&fragment.node.selection_set.node)
        }
        Selection::FragmentSpread(_) => false,
    })
}

/// Aliased fields in every operation and fragment of the document.
fn count_aliases(document: &ExecutableDocument) -> usize {
    let operations: usize = match &document.operations {
        DocumentOperations::Single(operation) => in_set(&operation.node.selection_set.node),
        DocumentOperations::Multiple(operations) => operations
            .values()
            .map(|operation| in_set(&operation.node.selection_set.node))
            .sum(),
    };
    let fragments: usize = document
        .fragments
        .values()
        .map(|fragment| in_set(&fragment.node.selection_set.node))
        .sum();
    operations + fragments
}

fn in_set(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node)
            }
            Selection::InlineFragment(fragment) => in_set(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_everywhere() {
        let document = async_graphql::parser::parse_query(
            "query { a: contacts { totalCount } b: contacts { edges { n: cursor } } ...F }
             fragment F on QueryRoot { c: attributes { name } ... on QueryRoot { d: segments { slug } } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&document), 5);
        assert!(!asks_for_introspection(&document));
        let probe =
            async_graphql::parser::parse_query("query { x: __type(name: \"Contact\") { name } }")
                .unwrap();
        assert!(asks_for_introspection(&probe));
    }
}
