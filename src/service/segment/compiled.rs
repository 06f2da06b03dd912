//! A workspace's catalogue compiled for segments: attribute types, and every saved segment
//! parsed, checked and expanded once (references inlined, sensitive literals blinded), so no
//! request parses saved text again. Rebuilt when the catalogue changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use qwry_segment::ast::Expr;
use qwry_segment::{
    Catalog, Checked, Diagnostic, ErrorCode, Field, FieldType, Span, Test, check, parse,
};

use super::MAX_REFERENCE_DEPTH;
use crate::domain::{AttributeType, SavedSegment, Sealer, WorkspaceId};
use crate::service::catalog_cache::{Catalogs, WorkspaceState};

/// A saved segment, compiled.
#[derive(Debug, Clone)]
pub struct CompiledSegment {
    /// The segment as stored.
    pub saved: SavedSegment,
    /// Its tree as parsed from the stored text (`None` if the text no longer parses).
    pub expr: Option<Expr>,
    /// The expanded tree, or why the segment no longer checks.
    pub outcome: Result<Expansion, String>,
}

/// A checked tree with every reference to a saved segment inlined.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    /// The tree the index and the evaluator run (sensitive literals blinded).
    pub tree: Checked,
    /// Every field it tests, through references too.
    pub fields: HashSet<Field>,
    /// Every saved segment it reaches, directly or not.
    pub references: HashSet<String>,
    /// The longest chain of references below it (0: none).
    pub depth: usize,
}

/// Every workspace's compiled catalogue, compiled again only when its catalogue changed;
/// cheap to clone and shared by the segment use cases and the membership engine.
#[derive(Clone)]
pub struct CompiledCatalogs {
    catalogs: Catalogs,
    sealer: Option<Arc<dyn Sealer>>,
    compiled: Arc<Mutex<HashMap<WorkspaceId, Arc<CompiledWorkspace>>>>,
}

impl CompiledCatalogs {
    /// Compiles the catalogues of `catalogs`; `sealer` blinds sensitive literals.
    pub fn new(catalogs: Catalogs, sealer: Option<Arc<dyn Sealer>>) -> Self {
        Self {
            catalogs,
            sealer,
            compiled: Arc::default(),
        }
    }

    /// The workspace's compiled catalogue at its current state.
    pub fn compiled(&self, workspace: &WorkspaceId) -> Arc<CompiledWorkspace> {
        let state = self.catalogs.workspace(workspace);
        let cached = self
            .compiled
            .lock()
            .ok()
            .and_then(|compiled| compiled.get(workspace).cloned())
            .filter(|compiled| Arc::ptr_eq(&compiled.state, &state));
        if let Some(compiled) = cached {
            return compiled;
        }
        let compiled = Arc::new(CompiledWorkspace::compile(state, self.sealer.clone()));
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(workspace.clone(), Arc::clone(&compiled));
        }
        compiled
    }

    /// The workspaces that have a catalogue.
    pub fn workspaces(&self) -> Vec<WorkspaceId> {
        self.catalogs.workspaces()
    }

    /// The webhook endpoints of `workspace`.
    pub fn webhooks(&self, workspace: &WorkspaceId) -> Vec<crate::domain::Webhook> {
        self.catalogs.workspace(workspace).webhooks.clone()
    }
}

/// One workspace's catalogue as segments see it, at one catalogue state.
pub struct CompiledWorkspace {
    /// The catalogue state this was compiled from.
    pub(crate) state: Arc<WorkspaceState>,
    /// Declared attributes and their types.
    pub(crate) attributes: HashMap<String, FieldType>,
    /// Names of the sensitive attributes.
    pub(crate) sensitive: HashSet<String>,
    /// Saved segments by slug.
    pub(crate) segments: BTreeMap<String, CompiledSegment>,
    /// Turns literals compared with sensitive attributes into blind-index tokens.
    sealer: Option<Arc<dyn Sealer>>,
}

impl CompiledWorkspace {
    /// Compiles `state`; `sealer` blinds literals compared with sensitive attributes.
    pub fn compile(state: Arc<WorkspaceState>, sealer: Option<Arc<dyn Sealer>>) -> Self {
        let attributes = state
            .attributes
            .iter()
            .map(|d| (d.name.as_str().to_owned(), field_type(d.value_type)))
            .collect();
        let sensitive = crate::domain::sensitive_names(&state.attributes);
        let mut compiled = Self {
            attributes,
            sensitive,
            segments: BTreeMap::new(),
            sealer,
            state: Arc::clone(&state),
        };
        let slugs: HashSet<String> = state
            .segments
            .iter()
            .map(|s| s.slug.as_str().to_owned())
            .collect();
        let mut checked: HashMap<String, Result<(Expr, Checked), String>> = HashMap::new();
        {
            let catalog = CompileCatalog {
                workspace: &compiled,
                slugs: &slugs,
            };
            for saved in &state.segments {
                let outcome = parse(&saved.text)
                    .map_err(|d| vec![d])
                    .and_then(|expr| check(&expr, &catalog).map(|checked| (expr, checked)))
                    .map_err(|diagnostics| first_message(&diagnostics));
                checked.insert(saved.slug.as_str().to_owned(), outcome);
            }
        }
        let mut expansions: HashMap<String, Result<Expansion, String>> = HashMap::new();
        for slug in &slugs {
            // Memoised in `expansions`, read below.
            let _ = expand_saved(slug, &checked, &compiled, &mut expansions, &mut Vec::new());
        }
        for saved in &state.segments {
            let slug = saved.slug.as_str().to_owned();
            let expr = checked
                .get(&slug)
                .and_then(|outcome| outcome.as_ref().ok())
                .map(|(expr, _)| expr.clone())
                .or_else(|| parse(&saved.text).ok());
            let outcome = expansions
                .remove(&slug)
                .unwrap_or_else(|| Err("not compiled".to_owned()));
            compiled.segments.insert(
                slug,
                CompiledSegment {
                    saved: saved.clone(),
                    expr,
                    outcome,
                },
            );
        }
        compiled
    }

    /// Every saved segment that checks, with the tree the back ends run.
    pub fn saved_trees(&self) -> impl Iterator<Item = (&SavedSegment, &Checked)> {
        self.segments.values().filter_map(|segment| {
            let expansion = segment.outcome.as_ref().ok()?;
            Some((&segment.saved, &expansion.tree))
        })
    }

    /// The workspace.
    pub fn workspace(&self) -> &WorkspaceId {
        &self.state.workspace
    }

    /// Whether attribute `name` is sensitive.
    pub(crate) fn is_sensitive(&self, field: &Field) -> bool {
        matches!(field, Field::Attribute(name) if self.sensitive.contains(name))
    }

    /// A test as the back ends evaluate it: on a sensitive attribute, its literals become
    /// blind-index tokens, which is all the index and the stored values hold.
    pub(crate) fn blinded(&self, field: &Field, test: &Test) -> Checked {
        let blinded = match (field, test, &self.sealer) {
            (Field::Attribute(name), Test::TextIn(values), Some(sealer))
                if self.sensitive.contains(name) =>
            {
                let tokens = values
                    .iter()
                    .map(|value| sealer.blind(self.workspace(), name, value))
                    .collect();
                Test::TextIn(tokens)
            }
            _ => test.clone(),
        };
        Checked::Test(field.clone(), blinded)
    }

    /// The names of the workspace's consent purposes.
    pub(crate) fn purpose_names(&self) -> Vec<String> {
        self.state
            .purposes
            .iter()
            .map(|purpose| purpose.name.as_str().to_owned())
            .collect()
    }

    /// Whether `checked` compares a sensitive attribute with literal values (which must then
    /// not be stored in the clear).
    pub(crate) fn names_sensitive_values(&self, checked: &Checked) -> bool {
        match checked {
            Checked::And(operands) | Checked::Or(operands) => operands
                .iter()
                .any(|operand| self.names_sensitive_values(operand)),
            Checked::Not(operand) => self.names_sensitive_values(operand),
            Checked::Test(field, Test::TextIn(_)) => self.is_sensitive(field),
            Checked::Test(..) | Checked::InSegment(_) => false,
        }
    }
}

/// The catalogue saved segments are checked against while they are compiled: every field,
/// and every slug saved (their trees are not compiled yet).
struct CompileCatalog<'a> {
    workspace: &'a CompiledWorkspace,
    slugs: &'a HashSet<String>,
}

impl Catalog for CompileCatalog<'_> {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        self.workspace.attributes.get(name).copied()
    }

    fn attribute_names(&self) -> Vec<String> {
        self.workspace.attributes.keys().cloned().collect()
    }

    fn segment_exists(&self, slug: &str) -> bool {
        self.slugs.contains(slug)
    }

    fn purpose_exists(&self, name: &str) -> bool {
        self.workspace.state.purpose(name).is_some()
    }

    fn purpose_names(&self) -> Vec<String> {
        self.workspace.purpose_names()
    }

    fn attribute_sensitive(&self, name: &str) -> bool {
        self.workspace.sensitive.contains(name)
    }
}

/// Expands saved segment `slug` (memoised in `done`), refusing cycles and deep chains.
fn expand_saved(
    slug: &str,
    checked: &HashMap<String, Result<(Expr, Checked), String>>,
    workspace: &CompiledWorkspace,
    done: &mut HashMap<String, Result<Expansion, String>>,
    stack: &mut Vec<String>,
) -> Result<Expansion, String> {
    if let Some(known) = done.get(slug) {
        return known.clone();
    }
    if stack.iter().any(|s| s == slug) {
        return Err(format!("it is part of a cycle through `{slug}`"));
    }
    let outcome = match checked.get(slug) {
        None => Err(format!("there is no saved segment `{slug}`")),
        Some(Err(message)) => Err(message.clone()),
        Some(Ok((_, tree))) => {
            stack.push(slug.to_owned());
            let expanded = inline(
                tree,
                &mut |reference| {
                    expand_saved(reference, checked, workspace, done, stack).map_err(|why| {
                        format!("saved segment `{reference}` no longer checks: {why}")
                    })
                },
                workspace,
            );
            stack.pop();
            expanded.and_then(|expansion| {
                if expansion.depth > MAX_REFERENCE_DEPTH {
                    Err(format!(
                        "segment references nest deeper than {MAX_REFERENCE_DEPTH} levels"
                    ))
                } else {
                    Ok(expansion)
                }
            })
        }
    };
    done.insert(slug.to_owned(), outcome.clone());
    outcome
}

/// Inlines the references of `tree` with `reference` and blinds sensitive literals, collecting
/// the fields, references and depth of the result.
pub(crate) fn inline<E>(
    tree: &Checked,
    reference: &mut dyn FnMut(&str) -> Result<Expansion, E>,
    workspace: &CompiledWorkspace,
) -> Result<Expansion, E> {
    let mut expansion = Expansion {
        tree: Checked::And(Vec::new()),
        fields: HashSet::new(),
        references: HashSet::new(),
        depth: 0,
    };
    expansion.tree = inline_into(tree, reference, workspace, &mut expansion)?;
    Ok(expansion)
}

fn inline_into<E>(
    tree: &Checked,
    reference: &mut dyn FnMut(&str) -> Result<Expansion, E>,
    workspace: &CompiledWorkspace,
    into: &mut Expansion,
) -> Result<Checked, E> {
    Ok(match tree {
        Checked::And(operands) => Checked::And(
            operands
                .iter()
                .map(|o| inline_into(o, reference, workspace, into))
                .collect::<Result<_, _>>()?,
        ),
        Checked::Or(operands) => Checked::Or(
            operands
                .iter()
                .map(|o| inline_into(o, reference, workspace, into))
                .collect::<Result<_, _>>()?,
        ),
        Checked::Not(operand) => {
            Checked::Not(Box::new(inline_into(operand, reference, workspace, into)?))
        }
        Checked::Test(field, test) => {
            into.fields.insert(field.clone());
            workspace.blinded(field, test)
        }
        Checked::InSegment(slug) => {
            let referenced = reference(slug)?;
            into.fields.extend(referenced.fields);
            into.references.insert(slug.clone());
            into.references.extend(referenced.references);
            into.depth = into.depth.max(referenced.depth + 1);
            referenced.tree
        }
    })
}

fn first_message(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .first()
        .map_or_else(|| "invalid".to_owned(), |d| d.message.clone())
}

/// The span of the first `in segment "slug"` in `expr` (where a problem of that reference is
/// reported), else the whole expression.
pub(crate) fn reference_span(expr: &Expr, slug: &str) -> Span {
    fn find(expr: &Expr, slug: &str) -> Option<Span> {
        match expr {
            Expr::InSegment(found, span) if found == slug => Some(*span),
            Expr::And(operands) | Expr::Or(operands) => operands.iter().find_map(|o| find(o, slug)),
            Expr::Not(operand, _) => find(operand, slug),
            _ => None,
        }
    }
    find(expr, slug).unwrap_or_else(|| expr.span())
}

/// A diagnostic about reference `slug` of `expr`.
pub(crate) fn reference_diagnostic(
    expr: &Expr,
    slug: &str,
    code: ErrorCode,
    message: String,
) -> Diagnostic {
    Diagnostic::new(code, reference_span(expr, slug), message)
}

fn field_type(value_type: AttributeType) -> FieldType {
    match value_type {
        AttributeType::String => FieldType::String,
        AttributeType::Number => FieldType::Number,
        AttributeType::Bool => FieldType::Bool,
        AttributeType::Datetime => FieldType::Datetime,
        AttributeType::StringList => FieldType::StringList,
    }
}
