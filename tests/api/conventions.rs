//! The schema's conventions (docs/contract/CONVENTIONS.md), checked on `schema.graphql`:
//! - every type and every field has a description;
//! - a list of objects is a connection, unless the set it lists is bounded; a connection has
//!   `edges`, `nodes`, `pageInfo: PageInfo!` and `totalCount`, `PageInfo` is the only page-info
//!   type, and a field answering a connection takes `first: Int = 20` and `after: String`;
//! - a closed set is an enum, not a `String` (fields named like one: `kind`, `code`, `status`,
//!   `reason`, `eventType`, `scopes`, `type`, `op`, `operator`);
//! - a mutation is `name(input: NameInput!): NamePayload!`.
//!
//! A deprecated field is exempt: it goes in the next release (CHANGELOG.md).
//!
//! The schema grew before these were written down; what breaks them today is listed, with why,
//! in `docs/contract/exceptions.txt`. The list may only shrink: a new violation fails the test,
//! and so does an entry that no longer breaks anything (remove it).

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};

const CURRENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
const EXCEPTIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/contract/exceptions.txt");

/// Field names that hold a closed set of values.
const CLOSED_SET_NAMES: &[&str] = &[
    "kind",
    "code",
    "status",
    "reason",
    "eventType",
    "scopes",
    "type",
    "op",
    "operator",
];

/// The innermost named type of `ty`, and whether it is a list.
fn named(ty: &Type) -> (&str, bool) {
    match &ty.base {
        BaseType::Named(name) => (name.as_str(), false),
        BaseType::List(inner) => (named(inner).0, true),
    }
}

/// Each rule `sdl` breaks, as `rule: coordinate`.
fn violations(sdl: &str) -> BTreeSet<String> {
    let document = parse_schema(sdl).expect("the SDL parses");
    let mut kinds: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut types = Vec::new();
    for definition in document.definitions {
        if let TypeSystemDefinition::Type(definition) = definition {
            let definition = definition.node;
            let kind = match &definition.kind {
                TypeKind::Scalar => "scalar",
                TypeKind::Object(_) => "object",
                TypeKind::Interface(_) => "interface",
                TypeKind::Union(_) => "union",
                TypeKind::Enum(_) => "enum",
                TypeKind::InputObject(_) => "input",
            };
            kinds.insert(definition.name.node.to_string(), kind);
            types.push(definition);
        }
    }
    let mut found = BTreeSet::new();
    for definition in &types {
        let name = definition.name.node.as_str();
        if definition.description.is_none() {
            found.insert(format!("described: {name}"));
        }
        if name.ends_with("PageInfo") && name != "PageInfo" {
            found.insert(format!("page info: {name}"));
        }
        if let (true, TypeKind::Object(object)) = (name.ends_with("Connection"), &definition.kind) {
            let shape: BTreeMap<&str, String> = object
                .fields
                .iter()
                .map(|f| (f.node.name.node.as_str(), f.node.ty.node.to_string()))
                .collect();
            let complete = ["edges", "nodes", "totalCount"]
                .iter()
                .all(|field| shape.contains_key(field))
                && shape.get("pageInfo").map(String::as_str) == Some("PageInfo!");
            if !complete {
                found.insert(format!("connection shape: {name}"));
            }
        }
        let fields: Vec<_> = match &definition.kind {
            TypeKind::Object(object) => object.fields.iter().map(|f| &f.node).collect(),
            TypeKind::Interface(interface) => interface.fields.iter().map(|f| &f.node).collect(),
            _ => Vec::new(),
        };
        for field in fields {
            // A deprecated field goes in the next release: the rules are for what stays.
            if field
                .directives
                .iter()
                .any(|directive| directive.node.name.node == "deprecated")
            {
                continue;
            }
            let at = format!("{name}.{}", field.name.node);
            if field.description.is_none() {
                found.insert(format!("described: {at}"));
            }
            let (item, list) = named(&field.ty.node);
            let item_kind = kinds.get(item).copied().unwrap_or("scalar");
            let in_connection = name.ends_with("Connection");
            if list && !in_connection && matches!(item_kind, "object" | "interface" | "union") {
                found.insert(format!("connection: {at}"));
            }
            if item.ends_with("Connection") && !list {
                let argument = |wanted: &str| {
                    field.arguments.iter().find_map(|argument| {
                        let argument = &argument.node;
                        (argument.name.node == wanted).then(|| {
                            let default = argument.default_value.as_ref();
                            (
                                argument.ty.node.to_string(),
                                default.map(|value| value.node.to_string()),
                            )
                        })
                    })
                };
                let pages = argument("first") == Some(("Int".to_owned(), Some("20".to_owned())))
                    && argument("after") == Some(("String".to_owned(), None));
                if !pages {
                    found.insert(format!("paging: {at}"));
                }
            }
            if item == "String" && CLOSED_SET_NAMES.contains(&field.name.node.as_str()) {
                found.insert(format!("enum: {at}"));
            }
            if name == "Mutation" {
                let field_name = field.name.node.as_str();
                let mut capitalised = field_name.to_owned();
                if let Some(first) = capitalised.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                let input_form = field.arguments.len() == 1
                    && field.arguments[0].node.name.node == "input"
                    && field.arguments[0].node.ty.node.to_string()
                        == format!("{capitalised}Input!");
                let payload_form = field.ty.node.to_string() == format!("{capitalised}Payload!");
                if !(input_form && payload_form) {
                    found.insert(format!("mutation: {at}"));
                }
            }
        }
        if let TypeKind::InputObject(object) = &definition.kind {
            for field in &object.fields {
                let field = &field.node;
                if field.description.is_none() {
                    found.insert(format!("described: {name}.{}", field.name.node));
                }
            }
        }
    }
    found
}

/// The listed exceptions: one `rule: coordinate` a line, then `#` and why.
fn exceptions(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_schema_follows_its_conventions_but_for_the_listed_exceptions() {
    let sdl = std::fs::read_to_string(CURRENT).unwrap();
    let listed = exceptions(&std::fs::read_to_string(EXCEPTIONS).unwrap_or_default());
    let found = violations(&sdl);
    let new: Vec<&String> = found.difference(&listed).collect();
    let gone: Vec<&String> = listed.difference(&found).collect();
    assert!(
        new.is_empty(),
        "schema.graphql breaks its conventions (README, \"The contract\"); fix these, or list \
         them with why in docs/contract/exceptions.txt:\n{}",
        new.iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        gone.is_empty(),
        "these exceptions no longer apply; remove them from docs/contract/exceptions.txt:\n{}",
        gone.iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_conventions_check_finds_each_kind_of_violation() {
    let sdl = r#"
        "Reads." type Mutation {
          "ok" saveThing(input: SaveThingInput!): SaveThingPayload!
          "positional" dropThing(id: ID!): Boolean!
        }
        "A thing." type Thing {
          "paged" pieces(first: Int = 20, after: String): PartConnection!
          "paged otherwise" others(first: Int! = 50, after: String): PartConnection!
          "bounded?" parts: [Part!]!
          "closed" kind: String!
          "going" status: String! @deprecated(reason: "use `state`")
          "open" name: String!
          bare: Int
        }
        type Part { "x" x: Int }
        "Parts." type PartConnection { "e" edges: [Int!]! "n" nodes: [Part!]! "p" pageInfo: PageInfo! "t" totalCount: Int! }
        "Odd." type OddConnection { "e" edges: [Int!]! "p" pageInfo: OddPageInfo! }
        "Odd page." type OddPageInfo { "h" hasNextPage: Boolean! }
        "In." input SaveThingInput { "x" x: Int, y: Int }
        "Out." type SaveThingPayload { "t" thing: Thing }
    "#;
    let found = violations(sdl);
    let expected: BTreeSet<String> = [
        "mutation: Mutation.dropThing",
        "connection: Thing.parts",
        "paging: Thing.others",
        "connection shape: OddConnection",
        "page info: OddPageInfo",
        "enum: Thing.kind",
        "described: Thing.bare",
        "described: Part",
        "described: SaveThingInput.y",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(found, expected);
    assert_eq!(
        exceptions("enum: A.kind   # why\n\n# a comment\nmutation: M.x"),
        ["enum: A.kind", "mutation: M.x"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
}
