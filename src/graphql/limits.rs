//! Query shape limits, checked by the request gate ([`super::gate`]) right after parsing and
//! before async-graphql walks the document (its recursion-depth check and its validation both
//! expand fragment spreads, so a short document whose fragments spread each other twice would
//! cost exponential time): the size and depth of the document with every fragment spread
//! expanded (async-graphql's own depth limit would count introspection's `ofType` chains), a cap
//! on aliases (counted expanded too), a clear refusal of introspection where it is turned off
//! (async-graphql would answer null), and of mutations sent by GET.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult};

use crate::service::ErrorCode;

/// Most aliased fields one request may hold, counted with fragments expanded.
pub const MAX_ALIASES: usize = 30;
/// Deepest nesting of fields, counted with fragments expanded. Introspection's `ofType` links
/// are not counted: each leads to one type (no fan-out), and the introspection query GraphiQL
/// and code generators send nests nine of them.
pub const MAX_DEPTH: usize = 12;
/// The field that [`MAX_DEPTH`] does not count.
const UNCOUNTED_LINK: &str = "ofType";
/// Most field selections one document may hold once every fragment spread is expanded. The
/// introspection query GraphiQL sends expands to a few hundred.
pub const MAX_EXPANDED_FIELDS: usize = 5_000;

fn coded(code: ErrorCode, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code.as_str());
    error.extensions = Some(extensions);
    error
}

/// The refusal of a request that came by GET (read-only) and would run a mutation.
pub fn read_only_refusal(
    document: &ExecutableDocument,
    operation: Option<&str>,
) -> Option<ServerError> {
    runs_mutation(document, operation).then(|| {
        coded(
            ErrorCode::InvalidInput,
            "a GET request may only run queries; send mutations with POST".to_owned(),
        )
    })
}

/// Whether the operation `name` (or the only one) of `document` is a mutation or subscription.
fn runs_mutation(document: &ExecutableDocument, name: Option<&str>) -> bool {
    document
        .operations
        .iter()
        .filter(|(operation, _)| name.is_none() || operation.map(|n| n.as_str()) == name)
        .any(|(_, operation)| operation.node.ty != OperationType::Query)
}

/// Refuses documents that expand to more than [`MAX_EXPANDED_FIELDS`] fields, nest deeper than
/// [`MAX_DEPTH`] or hold more than [`MAX_ALIASES`] aliases (QUERY_TOO_COMPLEX), fragments that spread themselves (INVALID_INPUT)
/// and, unless `introspection` is on, documents asking for `__schema` or `__type` (FORBIDDEN).
/// Linear in the document's unexpanded size.
pub fn check_shape(document: &ExecutableDocument, introspection: bool) -> ServerResult<()> {
    let size = expanded_size(document).map_err(|cycle| {
        coded(
            ErrorCode::InvalidInput,
            format!("fragment `{cycle}` spreads itself, directly or through other fragments"),
        )
    })?;
    if size.fields > MAX_EXPANDED_FIELDS {
        let fields = if size.fields == usize::MAX {
            "more than 10^19".to_owned()
        } else {
            size.fields.to_string()
        };
        return Err(coded(
            ErrorCode::QueryTooComplex,
            format!(
                "the query selects {fields} fields once its fragments are expanded; at most {MAX_EXPANDED_FIELDS} are allowed"
            ),
        ));
    }
    if size.depth > MAX_DEPTH {
        return Err(coded(
            ErrorCode::QueryTooComplex,
            format!(
                "the query nests fields {} deep; at most {MAX_DEPTH} are allowed",
                size.depth
            ),
        ));
    }
    if size.aliases > MAX_ALIASES {
        return Err(coded(
            ErrorCode::QueryTooComplex,
            format!(
                "the query uses {} aliases (fragments expanded); at most {MAX_ALIASES} are allowed",
                size.aliases
            ),
        ));
    }
    if !introspection && size.introspection {
        return Err(coded(
            ErrorCode::Forbidden,
            "introspection is turned off on this server (INTROSPECTION=true turns it on)"
                .to_owned(),
        ));
    }
    Ok(())
}

/// What a selection set amounts to once its fragment spreads are expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Expanded {
    /// Field selections (saturating).
    fields: usize,
    /// Aliased field selections (saturating).
    aliases: usize,
    /// Whether `__schema` or `__type` is selected anywhere.
    introspection: bool,
    /// How deep fields nest, `ofType` links not counted (see [`MAX_DEPTH`]).
    depth: usize,
}

impl Expanded {
    /// Adds a sibling selection.
    fn add(&mut self, other: Expanded) {
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.introspection |= other.introspection;
        self.depth = self.depth.max(other.depth);
    }
}

/// Sizes of the document's operations together, each fragment sized once and reused at every
/// spread; `Err` names a fragment that spreads itself. Unknown fragments count as empty
/// (validation reports them).
fn expanded_size(document: &ExecutableDocument) -> Result<Expanded, Name> {
    let mut walk = Walk {
        document,
        sized: HashMap::new(),
        in_progress: Vec::new(),
    };
    let mut total = Expanded::default();
    for (_, operation) in document.operations.iter() {
        total.add(walk.set(&operation.node.selection_set.node)?);
    }
    // Fragments no operation uses are validated too: size them so their cycles are refused.
    for name in document.fragments.keys() {
        walk.fragment(name)?;
    }
    Ok(total)
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    sized: HashMap<&'a Name, Expanded>,
    in_progress: Vec<&'a Name>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> Result<Expanded, Name> {
        let mut total = Expanded::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let below = self.set(&field.selection_set.node)?;
                    total.add(Expanded {
                        fields: below.fields.saturating_add(1),
                        aliases: below
                            .aliases
                            .saturating_add(usize::from(field.alias.is_some())),
                        introspection: below.introspection
                            || name == "__schema"
                            || name == "__type",
                        depth: below.depth + usize::from(name != UNCOUNTED_LINK),
                    });
                }
                Selection::InlineFragment(fragment) => {
                    total.add(self.set(&fragment.node.selection_set.node)?);
                }
                Selection::FragmentSpread(spread) => {
                    total.add(self.fragment(&spread.node.fragment_name.node)?);
                }
            }
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<Expanded, Name> {
        if let Some(size) = self.sized.get(name) {
            return Ok(*size);
        }
        if self.in_progress.contains(&name) {
            return Err(name.clone());
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(Expanded::default());
        };
        self.in_progress.push(name);
        let size = self.set(&fragment.node.selection_set.node);
        self.in_progress.pop();
        let size = size?;
        self.sized.insert(name, size);
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    /// `{ ...F0 }` where each fragment spreads the next one twice: 2^levels leaves.
    fn doubling_chain(levels: usize) -> String {
        let mut query = String::from("{ ...F0 }\n");
        for level in 0..levels {
            let next = level + 1;
            query.push_str(&format!(
                "fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}\n"
            ));
        }
        query.push_str(&format!(
            "fragment F{levels} on QueryRoot {{ indexStatus {{ documents }} }}"
        ));
        query
    }

    #[test]
    fn aliases_are_counted_where_fragments_expand() {
        let document = parse(
            "query { a: contacts { totalCount } b: contacts { edges { n: cursor } } ...F ...F }
             fragment F on QueryRoot { c: attributes { name } ... on QueryRoot { d: segments { slug } } }",
        );
        let size = expanded_size(&document).unwrap();
        assert_eq!(size.aliases, 3 + 2 * 2);
        assert_eq!(size.fields, 2 + 3 + 2 * 4);
        assert!(!size.introspection);
        let probe = parse("query { x: __type(name: \"Contact\") { name } }");
        assert!(expanded_size(&probe).unwrap().introspection);
    }

    #[test]
    fn depth_counts_fields_through_fragments_but_not_of_type_links() {
        let document = parse(
            "query A { a { b { ...F } } } fragment F on B { c { d } }
             query Other { __type(name: \"X\") { ofType { ofType { ofType { name } } } } }",
        );
        let size = expanded_size(&document).unwrap();
        assert_eq!(size.depth, 4, "a b c d; __type name is 2");
        let chain = format!("{{ x {} }}", "{ y ".repeat(12) + &"}".repeat(12));
        let error = check_shape(&parse(&chain), true).unwrap_err();
        assert!(error.message.contains("13 deep"), "{}", error.message);
        let types = format!(
            "{{ __type(name: \"X\") {} name {} }}",
            "{ ofType ".repeat(30),
            "}".repeat(30)
        );
        check_shape(&parse(&types), true).unwrap();
    }

    #[test]
    fn doubling_fragments_are_sized_without_expanding_them() {
        let document = parse(&doubling_chain(200));
        let size = expanded_size(&document).unwrap();
        assert_eq!(size.fields, usize::MAX, "saturates instead of overflowing");
        let error = check_shape(&document, true).unwrap_err();
        assert!(error.message.contains("at most 5000"), "{}", error.message);
        let small = parse(&doubling_chain(3));
        assert_eq!(expanded_size(&small).unwrap().fields, 2 * 8);
    }

    #[test]
    fn fragments_that_spread_themselves_are_refused() {
        let document = parse(
            "{ ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { indexStatus { built } ...A }",
        );
        assert!(expanded_size(&document).is_err());
        let unused = parse("{ indexStatus { built } } fragment C on QueryRoot { ...C }");
        assert_eq!(expanded_size(&unused).unwrap_err().as_str(), "C");
    }
}
