//! What a workspace's segments may refer to, and how references to saved segments are
//! checked and inlined (cycles and depth refused).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use qwry_segment::ast::Expr;
use qwry_segment::{Catalog, Checked, Diagnostic, ErrorCode, Field, FieldType, Test, check, parse};

use super::ServiceError;
use super::catalog::WorkspaceState;
use super::segments::{MAX_REFERENCE_DEPTH, SegmentSource};
use crate::domain::{
    AttributeType, Caller, FieldPolicy, Scope, Sealer, WorkspaceId, sensitive_names,
};
use crate::store::Store;

/// The attributes and saved segments a workspace's segments may refer to, as one caller sees
/// them: fields outside the caller's policy are refused, sensitive attributes only matched exactly.
pub(super) struct WorkspaceCatalog {
    pub(super) workspace: WorkspaceId,
    pub(super) attributes: HashMap<String, FieldType>,
    pub(super) sensitive: HashSet<String>,
    pub(super) segments: HashMap<String, String>,
    pub(super) policy: FieldPolicy,
    /// Whether the caller may read (and so test) sensitive attributes (`pii:read`).
    pub(super) reads_sensitive: bool,
    /// Turns literals tested against sensitive attributes into blind-index tokens.
    pub(super) sealer: Option<Arc<dyn Sealer>>,
}

impl Catalog for WorkspaceCatalog {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        self.attributes.get(name).copied()
    }

    fn attribute_names(&self) -> Vec<String> {
        self.attributes.keys().cloned().collect()
    }

    fn segment_exists(&self, slug: &str) -> bool {
        self.segments.contains_key(slug)
    }

    fn field_approved(&self, field: &Field) -> bool {
        self.policy.allows_field(field)
    }

    fn attribute_sensitive(&self, name: &str) -> bool {
        self.sensitive.contains(name)
    }

    fn reads_sensitive(&self) -> bool {
        self.reads_sensitive
    }
}

impl WorkspaceCatalog {
    /// A test as the back ends evaluate it: on a sensitive attribute, its literals become
    /// blind-index tokens, which is all the index and the stored values hold.
    fn blinded(&self, field: &Field, test: &Test) -> Checked {
        let blinded = match (field, test, &self.sealer) {
            (Field::Attribute(name), Test::TextIn(values), Some(sealer))
                if self.sensitive.contains(name) =>
            {
                let tokens = values
                    .iter()
                    .map(|value| sealer.blind(&self.workspace, name, value))
                    .collect();
                Test::TextIn(tokens)
            }
            _ => test.clone(),
        };
        Checked::Test(field.clone(), blinded)
    }

    /// Whether `checked` compares a sensitive attribute with literal values (which must then
    /// not be stored in the clear).
    pub(super) fn names_sensitive_values(&self, checked: &Checked) -> bool {
        match checked {
            Checked::And(operands) | Checked::Or(operands) => operands
                .iter()
                .any(|operand| self.names_sensitive_values(operand)),
            Checked::Not(operand) => self.names_sensitive_values(operand),
            Checked::Test(field, Test::TextIn(_)) => self.is_sensitive(field),
            Checked::Test(..) | Checked::InSegment(_) => false,
        }
    }

    /// Whether the caller may not read `field`: outside its field policy, or sensitive without
    /// `pii:read`. Such fields cannot be tested, and their values are masked in segment text.
    pub(super) fn hides(&self, field: &Field) -> bool {
        !self.policy.allows_field(field) || (self.is_sensitive(field) && !self.reads_sensitive)
    }

    /// Whether `field` is a sensitive attribute (its values are never shown).
    pub(super) fn is_sensitive(&self, field: &Field) -> bool {
        matches!(field, Field::Attribute(name) if self.sensitive.contains(name))
    }

    /// The workspace's catalogue `state` as `caller` sees it.
    pub(super) fn for_caller(
        state: &WorkspaceState,
        caller: &Caller,
        sealer: Option<Arc<dyn Sealer>>,
    ) -> Self {
        let attributes = state
            .attributes
            .iter()
            .map(|d| (d.name.as_str().to_owned(), field_type(d.value_type)))
            .collect();
        let segments = state
            .segments
            .iter()
            .map(|s| (s.slug.as_str().to_owned(), s.text.clone()))
            .collect();
        Self {
            workspace: state.workspace.clone(),
            attributes,
            sensitive: sensitive_names(&state.attributes),
            segments,
            policy: caller.policy.clone(),
            reads_sensitive: caller.allows(Scope::PiiRead),
            sealer,
        }
    }
}

/// Checks segment text against the workspace's attributes and saved segments, without the index
/// (for the command line): the canonical text, or every problem found.
pub async fn check_text(
    store: &Store,
    workspace: &WorkspaceId,
    text: &str,
) -> Result<Result<String, Vec<Diagnostic>>, ServiceError> {
    let state = WorkspaceState::load(store, workspace).await?;
    let operator = Caller::operator(workspace.clone(), "cli");
    let catalog = WorkspaceCatalog::for_caller(&state, &operator, store.sealer().cloned());
    let expr = match parse(text) {
        Ok(expr) => expr,
        Err(diagnostic) => return Ok(Err(vec![diagnostic])),
    };
    let checked = match check(&expr, &catalog) {
        Ok(checked) => checked,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    Ok(match expand(&checked, &catalog, &mut Vec::new()) {
        Ok(_) => Ok(expr.to_string()),
        Err(problem) => Err(vec![problem.diagnostic(&expr)]),
    })
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

/// The error for a segment that does not check: FORBIDDEN when it tests a field the caller may
/// not read, INVALID_SEGMENT otherwise; the diagnostics go along either way.
pub(super) fn segment_error(diagnostics: Vec<Diagnostic>) -> ServiceError {
    if diagnostics
        .iter()
        .any(|d| d.code == ErrorCode::FieldNotApproved)
    {
        ServiceError::ForbiddenSegment(diagnostics)
    } else {
        ServiceError::InvalidSegment(diagnostics)
    }
}

/// Parses (when text) and checks a segment.
pub(super) fn prepare(
    catalog: &WorkspaceCatalog,
    source: SegmentSource,
) -> Result<(Expr, Checked), Vec<Diagnostic>> {
    let expr = match source {
        SegmentSource::Text(text) => parse(&text).map_err(|d| vec![d])?,
        SegmentSource::Tree(expr) => expr,
    };
    let checked = check(&expr, catalog)?;
    Ok((expr, checked))
}

/// Slugs a segment text refers to (empty when it does not parse).
pub(super) fn references(text: &str) -> Vec<String> {
    let Ok(expr) = parse(text) else {
        return Vec::new();
    };
    let mut slugs = Vec::new();
    collect_references(&expr, &mut slugs);
    slugs
}

fn collect_references(expr: &Expr, slugs: &mut Vec<String>) {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => {
            operands.iter().for_each(|o| collect_references(o, slugs))
        }
        Expr::Not(operand, _) => collect_references(operand, slugs),
        Expr::InSegment(slug, _) => slugs.push(slug.clone()),
        Expr::Condition(_) => {}
    }
}

/// Why references could not be expanded.
pub(super) struct ReferenceProblem {
    /// The top-level reference through which the problem was reached.
    via: String,
    code: ErrorCode,
    message: String,
}

impl ReferenceProblem {
    pub(super) fn diagnostic(&self, expr: &Expr) -> Diagnostic {
        let span = reference_span(expr, &self.via).unwrap_or_else(|| expr.span());
        Diagnostic::new(self.code, span, self.message.clone())
    }

    pub(super) fn at(&self, expr: &Expr) -> ServiceError {
        segment_error(vec![self.diagnostic(expr)])
    }
}

fn reference_span(expr: &Expr, slug: &str) -> Option<qwry_segment::Span> {
    match expr {
        Expr::InSegment(found, span) if found == slug => Some(*span),
        Expr::And(operands) | Expr::Or(operands) => {
            operands.iter().find_map(|o| reference_span(o, slug))
        }
        Expr::Not(operand, _) => reference_span(operand, slug),
        _ => None,
    }
}

/// Inlines saved segments for `in segment` references, refusing cycles and deep chains.
pub(super) fn expand(
    checked: &Checked,
    catalog: &WorkspaceCatalog,
    stack: &mut Vec<String>,
) -> Result<Checked, ReferenceProblem> {
    let all = |operands: &[Checked], stack: &mut Vec<String>| {
        operands
            .iter()
            .map(|o| expand(o, catalog, stack))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match checked {
        Checked::And(operands) => Checked::And(all(operands, stack)?),
        Checked::Or(operands) => Checked::Or(all(operands, stack)?),
        Checked::Not(operand) => Checked::Not(Box::new(expand(operand, catalog, stack)?)),
        Checked::Test(field, test) => catalog.blinded(field, test),
        Checked::InSegment(slug) => {
            let via = stack.first().cloned().unwrap_or_else(|| slug.clone());
            if stack.contains(slug) {
                let chain = stack
                    .iter()
                    .chain(std::iter::once(slug))
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(" -> ");
                return Err(ReferenceProblem {
                    via,
                    code: ErrorCode::SegmentCycle,
                    message: format!("segments refer to each other in a cycle: {chain}"),
                });
            }
            if stack.len() >= MAX_REFERENCE_DEPTH {
                return Err(ReferenceProblem {
                    via,
                    code: ErrorCode::SegmentCycle,
                    message: format!(
                        "segment references nest deeper than {MAX_REFERENCE_DEPTH} levels"
                    ),
                });
            }
            let Some(text) = catalog.segments.get(slug) else {
                return Err(ReferenceProblem {
                    via,
                    code: ErrorCode::UnknownSegment,
                    message: format!("there is no saved segment `{slug}`"),
                });
            };
            let (_, referenced) =
                prepare(catalog, SegmentSource::Text(text.clone())).map_err(|diagnostics| {
                    let first = diagnostics.first();
                    let code = match first.map(|d| d.code) {
                        Some(ErrorCode::FieldNotApproved) => ErrorCode::FieldNotApproved,
                        _ => ErrorCode::UnknownSegment,
                    };
                    ReferenceProblem {
                        via: via.clone(),
                        code,
                        message: format!(
                            "saved segment `{slug}` no longer checks: {}",
                            first.map(|d| d.message.as_str()).unwrap_or("invalid")
                        ),
                    }
                })?;
            stack.push(slug.clone());
            let expanded = expand(&referenced, catalog, stack);
            stack.pop();
            expanded?
        }
    })
}
