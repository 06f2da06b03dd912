//! Segment use cases: validate, members (index back end), saved segments, a contact's segments
//! and explanations (in-memory back end).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use qwry_segment::ast::Expr;
use qwry_segment::eval::{EvalContext, FieldValue, Record, matches};
use qwry_segment::{Catalog, Checked, Diagnostic, ErrorCode, FieldType, check, parse};
use serde_json::Value as Json;

use super::ServiceError;
use super::indexer::{IndexStatus, Indexer};
use crate::domain::{AttributeType, Contact, ContactId, SavedSegment, Slug, Text, WorkspaceId};
use crate::index::{ContactRecord, Members, SegmentIndex};
use crate::store::Store;

/// Deepest chain of `in segment` references accepted.
pub const MAX_REFERENCE_DEPTH: usize = 8;
/// Longest a `LATEST` read waits for the index to catch up.
pub const LATEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A segment as a request gives it.
#[derive(Debug, Clone)]
pub enum SegmentSource {
    /// Segment text.
    Text(String),
    /// A tree built by a visual builder.
    Tree(Expr),
}

/// How fresh the index must be for a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// The latest committed index (writes become visible within the indexing delay).
    #[default]
    Committed,
    /// Wait (bounded) until every write committed before the read began is indexed.
    Latest,
}

/// What `validateSegment` reports.
#[derive(Debug, Clone)]
pub struct Validation {
    /// Problems found; empty when valid.
    pub diagnostics: Vec<Diagnostic>,
    /// Canonical text, when the segment parses.
    pub canonical: Option<String>,
    /// Members right now, when valid.
    pub estimated_count: Option<u64>,
}

/// A page of a segment's members.
#[derive(Debug, Clone)]
pub struct SegmentPage {
    /// Members of the page, ascending by id.
    pub contacts: Vec<Contact>,
    /// Exact number of members.
    pub total: u64,
    /// Whether members follow the page.
    pub has_more: bool,
}

/// Input of `save`.
#[derive(Debug, Clone)]
pub struct SegmentDraft {
    /// Address.
    pub slug: Slug,
    /// Display name.
    pub name: Text,
    /// What it is for.
    pub description: Option<Text>,
    /// The segment.
    pub source: SegmentSource,
}

/// One node of an explanation, in depth-first order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainNode {
    /// Position in the list.
    pub id: usize,
    /// The parent's position; `None` for the root.
    pub parent: Option<usize>,
    /// `and`, `or`, `not`, `condition` or `segment`.
    pub kind: &'static str,
    /// Canonical text of this part.
    pub text: String,
    /// Whether the contact satisfies this part.
    pub matched: bool,
    /// For conditions: the contact's value of the field (JSON `null` when missing).
    pub value: Option<Json>,
}

/// The attributes and saved segments a workspace's segments may refer to.
struct WorkspaceCatalog {
    attributes: HashMap<String, FieldType>,
    segments: HashMap<String, String>,
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
}

impl WorkspaceCatalog {
    async fn load(store: &Store, workspace: &WorkspaceId) -> Result<Self, ServiceError> {
        let attributes = store
            .attribute_definitions(workspace)
            .await?
            .into_iter()
            .map(|d| (d.name.as_str().to_owned(), field_type(d.value_type)))
            .collect();
        let segments = store
            .segments(workspace)
            .await?
            .into_iter()
            .map(|s| (s.slug.as_str().to_owned(), s.text))
            .collect();
        Ok(Self {
            attributes,
            segments,
        })
    }
}

/// Checks segment text against the workspace's attributes and saved segments, without the index
/// (for the command line): the canonical text, or every problem found.
pub async fn check_text(
    store: &Store,
    workspace: &WorkspaceId,
    text: &str,
) -> Result<Result<String, Vec<Diagnostic>>, ServiceError> {
    let catalog = WorkspaceCatalog::load(store, workspace).await?;
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

/// Segment use cases over the store and the index.
#[derive(Clone)]
pub struct SegmentService {
    store: Store,
    index: Arc<SegmentIndex>,
    indexer: Arc<Indexer>,
}

impl SegmentService {
    /// Segment use cases over `store`, `index` and its `indexer`.
    pub fn new(store: Store, index: Arc<SegmentIndex>, indexer: Arc<Indexer>) -> Self {
        Self {
            store,
            index,
            indexer,
        }
    }

    async fn catalog(&self, workspace: &WorkspaceId) -> Result<WorkspaceCatalog, ServiceError> {
        WorkspaceCatalog::load(&self.store, workspace).await
    }

    /// Parses, checks and expands `source`; the tree comes back with references inlined.
    async fn resolve(
        &self,
        workspace: &WorkspaceId,
        source: SegmentSource,
    ) -> Result<(Expr, Checked), ServiceError> {
        let catalog = self.catalog(workspace).await?;
        let (expr, checked) = prepare(&catalog, source).map_err(ServiceError::InvalidSegment)?;
        let expanded =
            expand(&checked, &catalog, &mut Vec::new()).map_err(|problem| problem.at(&expr))?;
        Ok((expr, expanded))
    }

    /// Checks segment text and, when valid, estimates its members.
    pub async fn validate(
        &self,
        workspace: &WorkspaceId,
        text: &str,
    ) -> Result<Validation, ServiceError> {
        let catalog = self.catalog(workspace).await?;
        let expr = match parse(text) {
            Ok(expr) => expr,
            Err(diagnostic) => {
                return Ok(Validation {
                    diagnostics: vec![diagnostic],
                    canonical: None,
                    estimated_count: None,
                });
            }
        };
        let canonical = Some(expr.to_string());
        let checked = match check(&expr, &catalog) {
            Ok(checked) => checked,
            Err(diagnostics) => {
                return Ok(Validation {
                    diagnostics,
                    canonical,
                    estimated_count: None,
                });
            }
        };
        let expanded = match expand(&checked, &catalog, &mut Vec::new()) {
            Ok(expanded) => expanded,
            Err(problem) => {
                return Ok(Validation {
                    diagnostics: vec![problem.diagnostic(&expr)],
                    canonical,
                    estimated_count: None,
                });
            }
        };
        let count = self.count_checked(workspace, expanded).await?;
        Ok(Validation {
            diagnostics: Vec::new(),
            canonical,
            estimated_count: Some(count),
        })
    }

    /// The exact number of members and one page of them, in id order.
    pub async fn members(
        &self,
        workspace: &WorkspaceId,
        source: SegmentSource,
        after: Option<ContactId>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        let (_, segment) = self.resolve(workspace, source).await?;
        self.members_of_checked(workspace, segment, after, first, consistency)
            .await
    }

    /// Members of a saved segment.
    pub async fn saved_members(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
        after: Option<ContactId>,
        first: usize,
    ) -> Result<SegmentPage, ServiceError> {
        let saved = self.get(workspace, slug).await?;
        self.members(
            workspace,
            SegmentSource::Text(saved.text),
            after,
            first,
            Consistency::Committed,
        )
        .await
    }

    async fn members_of_checked(
        &self,
        workspace: &WorkspaceId,
        segment: Checked,
        after: Option<ContactId>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        if consistency == Consistency::Latest {
            self.sync().await?;
        }
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let now = Utc::now();
        let members: Members = tokio::task::spawn_blocking(move || {
            index.members(&scoped, &segment, now, after.as_ref(), first)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let contacts = self.store.contacts_by_ids(workspace, &members.ids).await?;
        Ok(SegmentPage {
            contacts,
            total: members.total,
            has_more: members.has_more,
        })
    }

    async fn count_checked(
        &self,
        workspace: &WorkspaceId,
        segment: Checked,
    ) -> Result<u64, ServiceError> {
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let now = Utc::now();
        tokio::task::spawn_blocking(move || index.count(&scoped, &segment, now))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The exact number of members of a saved segment.
    pub async fn saved_count(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
    ) -> Result<u64, ServiceError> {
        let saved = self.get(workspace, slug).await?;
        let (_, segment) = self
            .resolve(workspace, SegmentSource::Text(saved.text))
            .await?;
        self.count_checked(workspace, segment).await
    }

    /// Waits (bounded) until every write committed before this call is indexed.
    async fn sync(&self) -> Result<(), ServiceError> {
        match tokio::time::timeout(LATEST_TIMEOUT, self.indexer.catch_up()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(ServiceError::Internal(error.to_string())),
            Err(_) => Err(ServiceError::Unavailable(format!(
                "the segment index did not catch up within {} s; retry, or read without `consistency: LATEST`",
                LATEST_TIMEOUT.as_secs()
            ))),
        }
    }

    /// How current the index is.
    pub async fn index_status(&self) -> Result<IndexStatus, ServiceError> {
        self.indexer
            .status()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The saved segment `slug`, or NOT_FOUND.
    pub async fn get(
        &self,
        workspace: &WorkspaceId,
        slug: &Slug,
    ) -> Result<SavedSegment, ServiceError> {
        self.store
            .segment(workspace, slug)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("segment `{slug}` does not exist")))
    }

    /// Every saved segment, by slug.
    pub async fn list(&self, workspace: &WorkspaceId) -> Result<Vec<SavedSegment>, ServiceError> {
        Ok(self.store.segments(workspace).await?)
    }

    /// Creates or replaces a saved segment after checking it (including reference cycles).
    pub async fn save(
        &self,
        workspace: &WorkspaceId,
        draft: SegmentDraft,
    ) -> Result<SavedSegment, ServiceError> {
        let mut catalog = self.catalog(workspace).await?;
        let (expr, _) = prepare(&catalog, draft.source).map_err(ServiceError::InvalidSegment)?;
        let text = expr.to_string();
        catalog
            .segments
            .insert(draft.slug.as_str().to_owned(), text.clone());
        let as_reference = Checked::InSegment(draft.slug.as_str().to_owned());
        expand(&as_reference, &catalog, &mut Vec::new()).map_err(|problem| problem.at(&expr))?;
        let now = Utc::now();
        let existing = self.store.segment(workspace, &draft.slug).await?;
        let segment = SavedSegment {
            workspace: workspace.clone(),
            slug: draft.slug,
            name: draft.name,
            description: draft.description,
            text,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        if existing.as_ref().is_some_and(|e| same_content(e, &segment)) {
            return Ok(existing.unwrap_or(segment));
        }
        self.store.put_segment(&segment).await?;
        Ok(segment)
    }

    /// Deletes a saved segment that no other segment refers to.
    pub async fn delete(&self, workspace: &WorkspaceId, slug: &Slug) -> Result<(), ServiceError> {
        let catalog = self.catalog(workspace).await?;
        let users: Vec<&String> = catalog
            .segments
            .iter()
            .filter(|(other, text)| {
                other.as_str() != slug.as_str()
                    && references(text).contains(&slug.as_str().to_owned())
            })
            .map(|(other, _)| other)
            .collect();
        if let Some(user) = users.first() {
            return Err(ServiceError::Conflict(format!(
                "segment `{slug}` is used by segment `{user}`; change that one first"
            )));
        }
        if self.store.delete_segment(workspace, slug).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "segment `{slug}` does not exist"
            )))
        }
    }

    /// The saved segments `contact` belongs to, evaluated in memory against it.
    pub async fn segments_of(&self, contact: &Contact) -> Result<Vec<SavedSegment>, ServiceError> {
        let catalog = self.catalog(&contact.workspace).await?;
        let saved = self.store.segments(&contact.workspace).await?;
        let now = Utc::now();
        let record = ContactRecord(contact);
        let mut member_of = Vec::new();
        for segment in saved {
            let Ok((_, checked)) = prepare(&catalog, SegmentSource::Text(segment.text.clone()))
            else {
                continue;
            };
            let Ok(expanded) = expand(&checked, &catalog, &mut Vec::new()) else {
                continue;
            };
            if evaluate(&expanded, &record, now) {
                member_of.push(segment);
            }
        }
        Ok(member_of)
    }

    /// Why `contact` is in or out of the segment: every part with the contact's value and outcome.
    pub async fn explain(
        &self,
        contact: &Contact,
        source: SegmentSource,
    ) -> Result<Vec<ExplainNode>, ServiceError> {
        let catalog = self.catalog(&contact.workspace).await?;
        let (expr, _) = self.resolve(&contact.workspace, source).await?;
        let mut nodes = Vec::new();
        explain_node(
            &expr,
            None,
            &catalog,
            &ContactRecord(contact),
            Utc::now(),
            &mut nodes,
        );
        Ok(nodes)
    }
}

fn same_content(a: &SavedSegment, b: &SavedSegment) -> bool {
    a.name == b.name && a.description == b.description && a.text == b.text
}

/// Parses (when text) and checks a segment.
fn prepare(
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
fn references(text: &str) -> Vec<String> {
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
struct ReferenceProblem {
    /// The top-level reference through which the problem was reached.
    via: String,
    code: ErrorCode,
    message: String,
}

impl ReferenceProblem {
    fn diagnostic(&self, expr: &Expr) -> Diagnostic {
        let span = reference_span(expr, &self.via).unwrap_or_else(|| expr.span());
        Diagnostic::new(self.code, span, self.message.clone())
    }

    fn at(&self, expr: &Expr) -> ServiceError {
        ServiceError::InvalidSegment(vec![self.diagnostic(expr)])
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
fn expand(
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
        Checked::Test(..) => checked.clone(),
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
                    ReferenceProblem {
                        via: via.clone(),
                        code: ErrorCode::UnknownSegment,
                        message: format!(
                            "saved segment `{slug}` no longer checks: {}",
                            diagnostics
                                .first()
                                .map(|d| d.message.as_str())
                                .unwrap_or("invalid")
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

fn evaluate(segment: &Checked, record: &dyn Record, now: DateTime<Utc>) -> bool {
    let context = EvalContext {
        now,
        in_segment: &|_| false,
    };
    matches(segment, record, &context)
}

/// The JSON form of a field value, for explanations.
fn value_json(value: Option<FieldValue<'_>>) -> Json {
    match value {
        None => Json::Null,
        Some(FieldValue::Text(text)) => Json::String(text.to_owned()),
        Some(FieldValue::Number(number)) => {
            serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
        }
        Some(FieldValue::Bool(flag)) => Json::Bool(flag),
        Some(FieldValue::Time(at)) => Json::String(at.to_rfc3339()),
        Some(FieldValue::List(items)) => {
            Json::Array(items.iter().cloned().map(Json::String).collect())
        }
    }
}

fn explain_node(
    expr: &Expr,
    parent: Option<usize>,
    catalog: &WorkspaceCatalog,
    record: &ContactRecord<'_>,
    now: DateTime<Utc>,
    nodes: &mut Vec<ExplainNode>,
) -> bool {
    let id = nodes.len();
    nodes.push(ExplainNode {
        id,
        parent,
        kind: "condition",
        text: expr.to_string(),
        matched: false,
        value: None,
    });
    let (kind, matched, value) = match expr {
        Expr::And(operands) => {
            let results: Vec<bool> = operands
                .iter()
                .map(|o| explain_node(o, Some(id), catalog, record, now, nodes))
                .collect();
            ("and", results.iter().all(|r| *r), None)
        }
        Expr::Or(operands) => {
            let results: Vec<bool> = operands
                .iter()
                .map(|o| explain_node(o, Some(id), catalog, record, now, nodes))
                .collect();
            ("or", results.iter().any(|r| *r), None)
        }
        Expr::Not(operand, _) => (
            "not",
            !explain_node(operand, Some(id), catalog, record, now, nodes),
            None,
        ),
        Expr::InSegment(..) => {
            let matched = check(expr, catalog)
                .ok()
                .and_then(|checked| expand(&checked, catalog, &mut Vec::new()).ok())
                .is_some_and(|expanded| evaluate(&expanded, record, now));
            ("segment", matched, None)
        }
        Expr::Condition(_) => {
            let checked = check(expr, catalog).ok();
            let matched = checked.as_ref().is_some_and(|c| evaluate(c, record, now));
            let field = checked.as_ref().and_then(first_field);
            let value = field.map(|f| value_json(record.value(&f)));
            ("condition", matched, Some(value.unwrap_or(Json::Null)))
        }
    };
    let node = &mut nodes[id];
    node.kind = kind;
    node.matched = matched;
    node.value = value;
    matched
}

fn first_field(checked: &Checked) -> Option<qwry_segment::Field> {
    match checked {
        Checked::Test(field, _) => Some(field.clone()),
        Checked::Not(inner) => first_field(inner),
        Checked::And(operands) | Checked::Or(operands) => operands.first().and_then(first_field),
        Checked::InSegment(_) => None,
    }
}
