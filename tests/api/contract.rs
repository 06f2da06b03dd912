//! The contract kept: `schema.graphql` against the schema of the last release
//! (`docs/contract/released.graphql`). A change that can break a client that works against the
//! release (a type, field, argument, input field, enum value or union member removed; a type
//! changed so that an old query or an old input no longer fits; a new required argument or
//! input field) fails this test unless the `Unreleased` section of CHANGELOG.md names it in
//! backticks (`Type.field`, `Type.field(argument:)`, `Enum.VALUE`). A rename keeps the old name
//! one release as `@deprecated(reason:)`, so it adds and breaks nothing until the old name goes.
//!
//! Parsed with async-graphql's own parser: the same reading of SDL as the server's, and no
//! Node toolchain in CI for `@graphql-inspector/cli`.

use std::collections::BTreeMap;

use async_graphql::Positioned;
use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeKind, TypeSystemDefinition,
};

const RELEASED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/docs/contract/released.graphql"
);
const CURRENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
const CHANGELOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md");

/// What a client relies on at one coordinate of a schema.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    /// A type, by kind (`object`, `input`, `enum`, ...).
    Type(&'static str),
    /// A field of an object or interface: the type it returns.
    Output(Type),
    /// An argument or an input field: its type, and whether it has a default.
    Input(Type, bool),
    /// An enum value or a union member.
    Member,
}

/// An argument or input field: its type and whether it has a default.
fn input(value: &InputValueDefinition) -> Part {
    Part::Input(value.ty.node.clone(), value.default_value.is_some())
}

/// The fields of an object or interface `name`, with their arguments.
fn output_fields(
    parts: &mut BTreeMap<String, Part>,
    name: &str,
    fields: &[Positioned<FieldDefinition>],
) {
    for field in fields {
        let field = &field.node;
        let at = format!("{name}.{}", field.name.node);
        for argument in &field.arguments {
            let argument = &argument.node;
            parts.insert(format!("{at}({}:)", argument.name.node), input(argument));
        }
        parts.insert(at, Part::Output(field.ty.node.clone()));
    }
}

/// The root types' names in `definitions` (`schema { query: QueryRoot ... }`), each with the
/// name clients know it by: an operation never names its root type, so renaming one breaks
/// nothing and its fields are compared as `Query.…`, `Mutation.…`, `Subscription.…`.
fn root_names(definitions: &[TypeSystemDefinition]) -> BTreeMap<String, &'static str> {
    let mut roots = BTreeMap::new();
    for definition in definitions {
        if let TypeSystemDefinition::Schema(schema) = definition {
            let schema = &schema.node;
            for (root, operation) in [
                (&schema.query, "Query"),
                (&schema.mutation, "Mutation"),
                (&schema.subscription, "Subscription"),
            ] {
                if let Some(root) = root {
                    roots.insert(root.node.to_string(), operation);
                }
            }
        }
    }
    roots
}

/// Every coordinate of `sdl` with what a client relies on there.
fn coordinates(sdl: &str) -> BTreeMap<String, Part> {
    let document = parse_schema(sdl).expect("the SDL parses");
    let roots = root_names(&document.definitions);
    let mut parts = BTreeMap::new();
    for definition in document.definitions {
        let TypeSystemDefinition::Type(definition) = definition else {
            continue;
        };
        let definition = definition.node;
        let name = definition.name.node.to_string();
        let name = roots.get(&name).map_or(name, |root| (*root).to_owned());
        let kind = match &definition.kind {
            TypeKind::Scalar => "scalar",
            TypeKind::Object(object) => {
                output_fields(&mut parts, &name, &object.fields);
                "object"
            }
            TypeKind::Interface(interface) => {
                output_fields(&mut parts, &name, &interface.fields);
                "interface"
            }
            TypeKind::Union(union) => {
                for member in &union.members {
                    parts.insert(format!("{name}.{}", member.node), Part::Member);
                }
                "union"
            }
            TypeKind::Enum(enumeration) => {
                for value in &enumeration.values {
                    parts.insert(format!("{name}.{}", value.node.value.node), Part::Member);
                }
                "enum"
            }
            TypeKind::InputObject(object) => {
                for field in &object.fields {
                    let field = &field.node;
                    parts.insert(format!("{name}.{}", field.name.node), input(field));
                }
                "input"
            }
        };
        parts.insert(name, Part::Type(kind));
    }
    parts
}

/// Whether a query written against an output of type `old` still reads one of type `new`:
/// the same type, or one that is non-null where it was nullable.
fn reads_the_same(old: &Type, new: &Type) -> bool {
    if !old.nullable && new.nullable {
        return false;
    }
    match (&old.base, &new.base) {
        (BaseType::Named(old), BaseType::Named(new)) => old == new,
        (BaseType::List(old), BaseType::List(new)) => reads_the_same(old, new),
        _ => false,
    }
}

/// Whether an input of type `old` still fits where one of type `new` is taken: the same
/// type, or one that is nullable where it was required.
fn accepts_the_same(old: &Type, new: &Type) -> bool {
    if old.nullable && !new.nullable {
        return false;
    }
    match (&old.base, &new.base) {
        (BaseType::Named(old), BaseType::Named(new)) => old == new,
        (BaseType::List(old), BaseType::List(new)) => accepts_the_same(old, new),
        _ => false,
    }
}

/// The changes from `old` to `new` that can break a client of `old`, by coordinate, with why.
fn breaking_changes(old: &str, new: &str) -> Vec<(String, String)> {
    let (old, new) = (coordinates(old), coordinates(new));
    let mut breaking = Vec::new();
    for (at, was) in &old {
        // A removed type is one change: its fields and members go with it.
        if let Some((parent, _)) = at.split_once('.')
            && !new.contains_key(parent)
        {
            continue;
        }
        let why = match (was, new.get(at)) {
            (_, None) => Some("removed".to_owned()),
            (Part::Type(was), Some(Part::Type(is))) if was != is => {
                Some(format!("was {was}, is {is}"))
            }
            (Part::Output(was), Some(Part::Output(is))) if !reads_the_same(was, is) => {
                Some(format!("returned {was}, returns {is}"))
            }
            (Part::Input(was, _), Some(Part::Input(is, _))) if !accepts_the_same(was, is) => {
                Some(format!("took {was}, takes {is}"))
            }
            _ => None,
        };
        if let Some(why) = why {
            breaking.push((at.clone(), why));
        }
    }
    for (at, is) in &new {
        // A required input is new to clients of a field or input type they already use.
        let used = match at.find('(') {
            Some(open) => &at[..open],
            None => at
                .rsplit_once('.')
                .map_or(at.as_str(), |(parent, _)| parent),
        };
        if let (None, Part::Input(ty, false)) = (old.get(at), is)
            && !ty.nullable
            && old.contains_key(used)
        {
            breaking.push((at.clone(), format!("new and required ({ty})")));
        }
    }
    breaking
}

/// The `Unreleased` section of the changelog.
fn unreleased(changelog: &str) -> &str {
    let start = changelog
        .find("## [Unreleased]")
        .expect("CHANGELOG.md has an `## [Unreleased]` section");
    let rest = &changelog[start + 1..];
    let end = rest.find("\n## [").map_or(rest.len(), |end| end + 1);
    &rest[..end]
}

#[test]
fn breaking_changes_against_the_last_release_are_listed_in_the_changelog() {
    let released = std::fs::read_to_string(RELEASED).expect("the released schema is checked in");
    let current = std::fs::read_to_string(CURRENT).unwrap();
    let changelog = std::fs::read_to_string(CHANGELOG).expect("CHANGELOG.md exists");
    let listed = unreleased(&changelog);
    let unlisted: Vec<String> = breaking_changes(&released, &current)
        .into_iter()
        .filter(|(at, _)| !listed.contains(&format!("`{at}`")))
        .map(|(at, why)| format!("`{at}`: {why}"))
        .collect();
    assert!(
        unlisted.is_empty(),
        "breaking changes against docs/contract/released.graphql that CHANGELOG.md's Unreleased \
         section does not name (keep the old name one release with @deprecated, or list them):\n{}",
        unlisted.join("\n")
    );
}

#[test]
fn the_contract_check_finds_what_breaks_a_client_and_nothing_else() {
    let old = r#"
        type Query { contact(id: ID!, tag: String): Contact, list: [String!]!, gone: Int }
        type Contact { id: ID!, name: String, age: Int! }
        input Filter { plan: String!, tier: String }
        enum Kind { ENTER EXIT }
        union Node = Contact
    "#;
    let new = r#"
        type Query { contact(id: ID, tag: String!, limit: Int!, page: Int = 1, note: String): Contact!, list: [String]!, added: Int }
        type Contact { id: ID!, name: String!, age: Int }
        input Filter { plan: String, tier: Int, region: String!, zone: String = "eu" }
        enum Kind { ENTER MOVE }
        type Extra { id: ID! }
        union Node = Extra
    "#;
    let found: BTreeMap<String, String> = breaking_changes(old, new).into_iter().collect();
    let expected = [
        "Query.gone",
        "Query.contact(tag:)",
        "Query.contact(limit:)",
        "Query.list",
        "Contact.age",
        "Filter.tier",
        "Filter.region",
        "Kind.EXIT",
        "Node.Contact",
    ];
    assert_eq!(
        found.keys().map(String::as_str).collect::<Vec<_>>().len(),
        expected.len(),
        "{found:#?}"
    );
    for at in expected {
        assert!(found.contains_key(at), "`{at}` not found in {found:#?}");
    }
    // Safe: an optional argument now nullable (`id`), an output now non-null (`contact`,
    // `name`), an input field now nullable (`plan`), additions with defaults or nullable,
    // a new enum value, type or field.
    for safe in [
        "Query.contact(id:)",
        "Query.contact",
        "Contact.name",
        "Filter.plan",
        "Query.contact(page:)",
        "Query.contact(note:)",
        "Filter.zone",
        "Kind.MOVE",
        "Extra",
        "Query.added",
    ] {
        assert!(
            !found.contains_key(safe),
            "`{safe}` is not breaking: {found:#?}"
        );
    }
    assert!(breaking_changes(new, new).is_empty());
}

/// The coordinates of the changes from `old` to `new` that break a client.
fn breaking_coordinates(old: &str, new: &str) -> Vec<String> {
    breaking_changes(old, new)
        .into_iter()
        .map(|(at, _)| at)
        .collect()
}

#[test]
fn a_renamed_root_type_breaks_nothing_but_its_fields_still_count() {
    let old = "schema { query: QueryRoot } type QueryRoot { a: Int, b: Int }";
    let renamed = "schema { query: Query } type Query { a: Int, b: Int }";
    assert!(breaking_changes(old, renamed).is_empty());
    let lost_b = "schema { query: Query } type Query { a: Int }";
    assert_eq!(breaking_coordinates(old, lost_b), ["Query.b"]);
}

#[test]
fn a_removed_type_is_one_change() {
    let old = "type Query { a: Old } type Old { x: Int, y: Int }";
    let new = "type Query { a: New } type New { x: Int, y: Int }";
    assert_eq!(breaking_coordinates(old, new), ["Old", "Query.a"]);
}

#[test]
fn only_the_unreleased_section_counts_as_listed() {
    let changelog = "# Changelog\n\n## [Unreleased]\n\n### Removed\n- `A.b`\n\n## [0.9.0] - 2026-12-07\n- `C.d`\n";
    let listed = unreleased(changelog);
    assert!(listed.contains("`A.b`"));
    assert!(!listed.contains("`C.d`"));
}
