//! Segment use cases: validate, members (index back end), saved segments, a contact's segments
//! and explanations (in-memory back end).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use qwry_segment::ast::Expr;
use qwry_segment::mask::mask_hidden;
use qwry_segment::{Checked, Diagnostic, check, parse};

use super::ServiceError;
use super::catalog::Catalogs;
use super::explain::{ExplainNode, evaluate, explain_node};
use super::indexer::{IndexStatus, Indexer};
use super::segment_catalog::{WorkspaceCatalog, expand, prepare, references, segment_error};
use crate::domain::{Caller, Contact, ContactId, SavedSegment, Slug, Text, WorkspaceId};
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

/// Segment use cases over the store and the index.
#[derive(Clone)]
pub struct SegmentService {
    store: Store,
    catalogs: Catalogs,
    index: Arc<SegmentIndex>,
    indexer: Arc<Indexer>,
}

impl SegmentService {
    /// Segment use cases over `store`, the in-memory `catalogs`, `index` and its `indexer`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        index: Arc<SegmentIndex>,
        indexer: Arc<Indexer>,
    ) -> Self {
        Self {
            store,
            catalogs,
            index,
            indexer,
        }
    }

    /// The caller's workspace's catalogue as the caller sees it.
    fn catalog(&self, caller: &Caller) -> WorkspaceCatalog {
        let state = self.catalogs.workspace(&caller.workspace);
        WorkspaceCatalog::for_caller(&state, caller, self.store.sealer().cloned())
    }

    /// Parses, checks (against the caller's approved fields) and expands `source`; the tree
    /// comes back with references inlined.
    async fn resolve(
        &self,
        caller: &Caller,
        source: SegmentSource,
    ) -> Result<(Expr, Checked), ServiceError> {
        let catalog = self.catalog(caller);
        let (expr, checked) = prepare(&catalog, source).map_err(segment_error)?;
        let expanded =
            expand(&checked, &catalog, &mut Vec::new()).map_err(|problem| problem.at(&expr))?;
        Ok((expr, expanded))
    }

    /// Checks segment text and, when valid, estimates its members.
    pub async fn validate(&self, caller: &Caller, text: &str) -> Result<Validation, ServiceError> {
        let workspace = &caller.workspace;
        let catalog = self.catalog(caller);
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
        caller: &Caller,
        source: SegmentSource,
        after: Option<ContactId>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        let (_, segment) = self.resolve(caller, source).await?;
        self.members_of_checked(&caller.workspace, segment, after, first, consistency)
            .await
    }

    /// Members of a saved segment.
    pub async fn saved_members(
        &self,
        caller: &Caller,
        slug: &Slug,
        after: Option<ContactId>,
        first: usize,
    ) -> Result<SegmentPage, ServiceError> {
        let saved = self.get(&caller.workspace, slug)?;
        self.members(
            caller,
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
    pub async fn saved_count(&self, caller: &Caller, slug: &Slug) -> Result<u64, ServiceError> {
        let saved = self.get(&caller.workspace, slug)?;
        let (_, segment) = self
            .resolve(caller, SegmentSource::Text(saved.text))
            .await?;
        self.count_checked(&caller.workspace, segment).await
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

    /// How current the index is, as far as `workspace` is concerned.
    pub async fn index_status(&self, workspace: &WorkspaceId) -> Result<IndexStatus, ServiceError> {
        self.indexer
            .status(workspace)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The saved segment `slug`, or NOT_FOUND.
    pub fn get(&self, workspace: &WorkspaceId, slug: &Slug) -> Result<SavedSegment, ServiceError> {
        self.catalogs
            .workspace(workspace)
            .segment(slug)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("segment `{slug}` does not exist")))
    }

    /// Every saved segment, by slug.
    pub fn list(&self, workspace: &WorkspaceId) -> Vec<SavedSegment> {
        self.catalogs.workspace(workspace).segments.clone()
    }

    /// `segment`'s text as `caller` may see it: literals compared with fields the caller may
    /// not read (outside its field policy, or sensitive without `pii:read`) are masked.
    pub fn visible_expr(&self, caller: &Caller, segment: &SavedSegment) -> Option<Expr> {
        let expr = parse(&segment.text).ok()?;
        let catalog = self.catalog(caller);
        Some(mask_hidden(&expr, &|field| catalog.hides(field)))
    }

    /// Creates or replaces a saved segment after checking it (including reference cycles).
    pub async fn save(
        &self,
        caller: &Caller,
        draft: SegmentDraft,
    ) -> Result<SavedSegment, ServiceError> {
        let workspace = &caller.workspace;
        let mut catalog = self.catalog(caller);
        let (expr, checked) = prepare(&catalog, draft.source).map_err(segment_error)?;
        let names_sensitive_values = catalog.names_sensitive_values(&checked);
        let text = expr.to_string();
        catalog
            .segments
            .insert(draft.slug.as_str().to_owned(), text.clone());
        let as_reference = Checked::InSegment(draft.slug.as_str().to_owned());
        expand(&as_reference, &catalog, &mut Vec::new()).map_err(|problem| problem.at(&expr))?;
        let now = Utc::now();
        let existing = self
            .catalogs
            .workspace(workspace)
            .segment(&draft.slug)
            .cloned();
        let segment = SavedSegment {
            workspace: workspace.clone(),
            slug: draft.slug,
            name: draft.name,
            description: draft.description,
            text,
            names_sensitive_values,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        if existing.as_ref().is_some_and(|e| same_content(e, &segment)) {
            return Ok(existing.unwrap_or(segment));
        }
        self.store.put_segment(&segment).await?;
        self.catalogs.refresh(workspace).await?;
        Ok(segment)
    }

    /// Deletes a saved segment that no other segment refers to.
    pub async fn delete(&self, workspace: &WorkspaceId, slug: &Slug) -> Result<(), ServiceError> {
        let operator = Caller::operator(workspace.clone(), "delete");
        let catalog = self.catalog(&operator);
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
            self.catalogs.refresh(workspace).await?;
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "segment `{slug}` does not exist"
            )))
        }
    }

    /// The saved segments `contact` belongs to, evaluated in memory against it; segments that
    /// test fields `caller` may not read are left out, as their membership would reveal those
    /// values.
    pub fn segments_of(&self, contact: &Contact, caller: &Caller) -> Vec<SavedSegment> {
        let catalog = self.catalog(caller);
        let saved = self.catalogs.workspace(&contact.workspace).segments.clone();
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
        member_of
    }

    /// Why `contact` is in or out of the segment: every part with the contact's value and outcome.
    pub async fn explain(
        &self,
        contact: &Contact,
        source: SegmentSource,
        caller: &Caller,
    ) -> Result<Vec<ExplainNode>, ServiceError> {
        let catalog = self.catalog(caller);
        let (expr, checked) = prepare(&catalog, source).map_err(segment_error)?;
        expand(&checked, &catalog, &mut Vec::new()).map_err(|problem| problem.at(&expr))?;
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
