//! `resolve`: the one path from segment text or a tree to what the back ends run.

use std::collections::HashSet;

use qwry_segment::ast::Expr;
use qwry_segment::{Checked, Diagnostic, ErrorCode, check, parse, parse_recovering};

use super::compiled::{Expansion, inline, reference_diagnostic};
use super::visible_catalog::CallerCatalog;
use super::{MAX_REFERENCE_DEPTH, SegmentSource};
use crate::service::error::ServiceError;

/// A segment checked against a caller's catalogue, ready for the index and the evaluator.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The tree as written, spans kept (for canonical text and explanations).
    pub expr: Expr,
    /// References to saved segments inlined, sensitive literals blinded.
    pub tree: Checked,
    /// Every saved segment it reaches, directly or not.
    pub references: HashSet<String>,
    /// Whether it compares a sensitive attribute with literal values (saved text must be
    /// sealed then).
    pub names_sensitive_values: bool,
}

/// Why a segment could not be resolved: the tree when it parsed, and every problem found.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The parsed tree, when the text parses.
    pub expr: Option<Box<Expr>>,
    /// The problems, with spans into the text.
    pub diagnostics: Vec<Diagnostic>,
}

impl From<Rejected> for ServiceError {
    /// FORBIDDEN when the segment tests a field the caller may not read, INVALID_SEGMENT
    /// otherwise; the diagnostics go along either way.
    fn from(rejected: Rejected) -> Self {
        let diagnostics = rejected.diagnostics;
        if diagnostics
            .iter()
            .any(|d| d.code == ErrorCode::FieldNotApproved)
        {
            ServiceError::ForbiddenSegment(diagnostics)
        } else {
            ServiceError::InvalidSegment(diagnostics)
        }
    }
}

/// Parses (when text), checks and expands `source` as the owner of `catalog` sees it.
pub fn resolve(catalog: &CallerCatalog<'_>, source: SegmentSource) -> Result<Resolved, Rejected> {
    let expr = match source {
        SegmentSource::Text(text) => parse(&text).map_err(|_| Rejected {
            expr: None,
            diagnostics: every_problem(catalog, &text),
        })?,
        SegmentSource::Tree(expr) => expr,
    };
    resolve_expr(catalog, expr)
}

/// Every problem of `text`, which does not parse: its syntax problems, and the check's
/// problems of the conditions that did parse (an unknown field beside a malformed duration),
/// in the order they appear.
fn every_problem(catalog: &CallerCatalog<'_>, text: &str) -> Vec<Diagnostic> {
    let (partial, mut diagnostics) = parse_recovering(text);
    if let Some(partial) = partial
        && let Err(more) = check(&partial, catalog)
    {
        diagnostics.extend(more);
    }
    diagnostics.sort_by_key(|diagnostic| (diagnostic.span.start, diagnostic.span.end));
    diagnostics
}

/// [`resolve`] for a tree already parsed.
pub fn resolve_expr(catalog: &CallerCatalog<'_>, expr: Expr) -> Result<Resolved, Rejected> {
    let checked = match check(&expr, catalog) {
        Ok(checked) => checked,
        Err(diagnostics) => {
            return Err(Rejected {
                expr: Some(Box::new(expr)),
                diagnostics,
            });
        }
    };
    let workspace = catalog.workspace();
    let expansion: Result<Expansion, Diagnostic> = inline(
        &checked,
        &mut |slug| referenced(catalog, &expr, slug),
        workspace,
    );
    match expansion {
        Ok(expansion) => Ok(Resolved {
            names_sensitive_values: workspace.names_sensitive_values(&checked),
            expr,
            tree: expansion.tree,
            references: expansion.references,
        }),
        Err(diagnostic) => Err(Rejected {
            expr: Some(Box::new(expr)),
            diagnostics: vec![diagnostic],
        }),
    }
}

/// The expansion of saved segment `slug` referenced from `expr`, if the caller may use it.
fn referenced(
    catalog: &CallerCatalog<'_>,
    expr: &Expr,
    slug: &str,
) -> Result<Expansion, Diagnostic> {
    let problem = |code, message| reference_diagnostic(expr, slug, code, message);
    let Some(compiled) = catalog.segment(slug) else {
        return Err(problem(
            ErrorCode::UnknownSegment,
            format!("there is no saved segment `{slug}`"),
        ));
    };
    let expansion = compiled.outcome.as_ref().map_err(|why| {
        problem(
            ErrorCode::UnknownSegment,
            format!("saved segment `{slug}` no longer checks: {why}"),
        )
    })?;
    if let Some(hidden) = expansion.fields.iter().find(|field| catalog.hides(field)) {
        return Err(problem(
            ErrorCode::FieldNotApproved,
            format!(
                "saved segment `{slug}` tests `{}`, which this API key may not read",
                hidden.display_name()
            ),
        ));
    }
    if expansion.depth + 1 > MAX_REFERENCE_DEPTH {
        return Err(problem(
            ErrorCode::SegmentCycle,
            format!("segment references nest deeper than {MAX_REFERENCE_DEPTH} levels"),
        ));
    }
    Ok(expansion.clone())
}

/// Whether saving `resolved` as `slug` would make segments refer to each other in a cycle;
/// the diagnostic points at the reference that leads back.
pub fn cycle_through(
    catalog: &CallerCatalog<'_>,
    resolved: &Resolved,
    slug: &str,
) -> Option<Diagnostic> {
    if !resolved.references.contains(slug) {
        return None;
    }
    let leads_back = |reference: &String| {
        reference == slug
            || catalog
                .segment(reference)
                .and_then(|compiled| compiled.outcome.as_ref().ok())
                .is_some_and(|expansion| expansion.references.contains(slug))
    };
    let via = direct_references(&resolved.expr)
        .into_iter()
        .find(leads_back)
        .unwrap_or_else(|| slug.to_owned());
    Some(reference_diagnostic(
        &resolved.expr,
        &via,
        ErrorCode::SegmentCycle,
        format!("segments refer to each other in a cycle: `{slug}` -> `{via}` -> ... -> `{slug}`"),
    ))
}

/// The slugs `expr` refers to directly, in order.
pub fn direct_references(expr: &Expr) -> Vec<String> {
    fn collect(expr: &Expr, slugs: &mut Vec<String>) {
        match expr {
            Expr::And(operands) | Expr::Or(operands) => {
                operands.iter().for_each(|o| collect(o, slugs))
            }
            Expr::Not(operand, _) => collect(operand, slugs),
            Expr::InSegment(slug, _) => slugs.push(slug.clone()),
            Expr::Condition(_) | Expr::Event(_) | Expr::Consent(_) => {}
        }
    }
    let mut slugs = Vec::new();
    collect(expr, &mut slugs);
    slugs
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::{
        AttributeDefinition, AttributeName, AttributeType, Caller, FieldPolicy, MergeRule, NameSet,
        SavedSegment, Scopes, Slug, Text, WorkspaceId,
    };
    use crate::service::catalog_cache::WorkspaceState;
    use crate::service::segment::compiled::CompiledWorkspace;

    fn attribute(name: &str, value_type: AttributeType) -> AttributeDefinition {
        AttributeDefinition {
            workspace: WorkspaceId::default(),
            name: AttributeName::parse(name).unwrap(),
            value_type,
            description: None,
            merge_rule: MergeRule::default_for(value_type),
            sensitive: false,
            created_at: Utc::now(),
        }
    }

    fn saved(slug: &str, text: &str) -> SavedSegment {
        SavedSegment {
            workspace: WorkspaceId::default(),
            slug: Slug::parse(slug).unwrap(),
            name: Text::parse("name", slug).unwrap(),
            description: None,
            text: text.to_owned(),
            names_sensitive_values: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    /// `pros` tests plan, `big-pros` refers to it and tests ltv, `broken` names an attribute
    /// that does not exist, `loop-a` and `loop-b` refer to each other.
    fn workspace() -> CompiledWorkspace {
        let state = WorkspaceState {
            attributes: vec![
                attribute("plan", AttributeType::String),
                attribute("ltv", AttributeType::Number),
            ],
            segments: vec![
                saved("big-pros", "in segment \"pros\" and ltv > 100"),
                saved("broken", "nope = 1"),
                saved("loop-a", "in segment \"loop-b\""),
                saved("loop-b", "in segment \"loop-a\""),
                saved("pros", "plan = \"pro\""),
            ],
            ..WorkspaceState::default()
        };
        CompiledWorkspace::compile(Arc::new(state), None)
    }

    fn caller(attributes: Option<&[&str]>) -> Caller {
        let mut caller = Caller::operator(WorkspaceId::default(), "test");
        caller.scopes = Scopes::all();
        if let Some(names) = attributes {
            caller.policy = FieldPolicy {
                attributes: NameSet::Only(names.iter().map(|n| (*n).to_owned()).collect()),
                ..FieldPolicy::unrestricted()
            };
        }
        caller
    }

    fn resolved(text: &str, caller: &Caller) -> Result<Resolved, Rejected> {
        let compiled = workspace();
        let catalog = CallerCatalog::new(&compiled, caller);
        resolve(&catalog, SegmentSource::Text(text.to_owned()))
    }

    #[test]
    fn saved_segments_are_compiled_once_with_references_inlined() {
        let compiled = workspace();
        let big = compiled.segments["big-pros"].outcome.as_ref().unwrap();
        assert_eq!(big.depth, 1);
        assert!(big.references.contains("pros"));
        assert!(
            matches!(&big.tree, Checked::And(parts) if !parts.iter().any(|p| matches!(p, Checked::InSegment(_))))
        );
        assert!(compiled.segments["broken"].outcome.is_err());
        let cycle = compiled.segments["loop-a"].outcome.as_ref().unwrap_err();
        assert!(cycle.contains("cycle"), "{cycle}");
    }

    #[test]
    fn references_resolve_through_the_compiled_trees() {
        let everything = caller(None);
        let found = resolved("in segment \"big-pros\" or plan = \"free\"", &everything).unwrap();
        assert_eq!(
            found.references,
            HashSet::from(["big-pros", "pros"].map(str::to_owned))
        );
        assert_eq!(
            found.expr.to_string(),
            "in segment \"big-pros\" or plan = \"free\""
        );
        let broken = resolved("plan exists and in segment \"broken\"", &everything).unwrap_err();
        assert_eq!(broken.diagnostics[0].code, ErrorCode::UnknownSegment);
        assert_eq!(
            broken.diagnostics[0].span.start,
            "plan exists and ".len(),
            "reported at the reference"
        );
    }

    #[test]
    fn a_reference_to_fields_the_caller_may_not_read_is_refused_there() {
        let narrow = caller(Some(&["plan"]));
        assert!(resolved("in segment \"pros\"", &narrow).is_ok());
        let refused = resolved("plan = \"x\" or in segment \"big-pros\"", &narrow).unwrap_err();
        let diagnostic = &refused.diagnostics[0];
        assert_eq!(diagnostic.code, ErrorCode::FieldNotApproved);
        assert!(
            diagnostic.message.contains("`ltv`"),
            "{}",
            diagnostic.message
        );
        assert_eq!(diagnostic.span.start, "plan = \"x\" or ".len());
        assert!(matches!(
            ServiceError::from(refused),
            ServiceError::ForbiddenSegment(_)
        ));
    }

    #[test]
    fn saving_a_segment_into_a_cycle_is_found() {
        let everything = caller(None);
        let compiled = workspace();
        let catalog = CallerCatalog::new(&compiled, &everything);
        let draft = resolve(
            &catalog,
            SegmentSource::Text("in segment \"big-pros\"".into()),
        )
        .unwrap();
        let cycle = cycle_through(&catalog, &draft, "pros").expect("pros -> big-pros -> pros");
        assert_eq!(cycle.code, ErrorCode::SegmentCycle);
        assert!(cycle_through(&catalog, &draft, "other").is_none());
    }
}
