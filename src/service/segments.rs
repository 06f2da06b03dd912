//! Segment use cases: validate, count and page members (index back end), saved segments, a
//! contact's segments and explanations (in-memory back end). Every one resolves its segment
//! through [`resolve`] against the caller's view of the compiled catalogue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use qwry_segment::ast::Expr;
use qwry_segment::mask::mask_hidden;
use qwry_segment::{Checked, Diagnostic};

use super::segment::SegmentSource;
use super::segment::compiled::{CompiledCatalogs, CompiledWorkspace};
use super::segment::explain::{ExplainNode, evaluate, explain_node};
use super::segment::literals::{self, LiteralHint};
use super::segment::order::sort_key;
use super::segment::resolve::{
    Rejected, Resolved, cycle_through, direct_references, resolve, resolve_expr,
};
use super::segment::visible_catalog::CallerCatalog;
use crate::domain::{Caller, Contact, ContactId, SavedSegment, Slug, Text, WorkspaceId};
use crate::index::{
    ContactRecord, Distribution, Members, Rank, SearchQuery, SegmentIndex, fold_words,
};
use crate::service::catalog_cache::{Catalogs, WorkspaceState};
use crate::service::error::{InternalError, ServiceError};
use crate::service::indexer::{IndexStatus, Indexer};
use crate::store::{SegmentDay, Store};
use crate::telemetry::Metrics;

/// Longest a `LATEST` read waits for the index to catch up.
pub const LATEST_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The tree as parsed (with spans), when the text parses.
    pub expr: Option<Expr>,
    /// Members right now, when valid.
    pub estimated_count: Option<u64>,
    /// When valid and nobody matches: literals that match nothing but differ only in case
    /// from values contacts hold.
    pub hints: Vec<LiteralHint>,
}

/// A page of a segment's members.
#[derive(Debug, Clone)]
pub struct SegmentPage {
    /// Members of the page, ascending by id (shared with the store's memory of them).
    pub contacts: Vec<Arc<Contact>>,
    /// Exact number of members.
    pub total: u64,
    /// Whether members follow the page.
    pub has_more: bool,
    /// For a page in an order other than by id: each contact's place in it (its cursor).
    pub ranks: Vec<Rank>,
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

/// Segment use cases over the store, the in-memory catalogue and the index.
#[derive(Clone)]
pub struct SegmentService {
    store: Store,
    catalogs: Catalogs,
    index: Arc<SegmentIndex>,
    indexer: Arc<Indexer>,
    /// The compiled catalogue of each workspace, for the catalogue state it was built from.
    compiled: CompiledCatalogs,
    metrics: Arc<Metrics>,
}

impl SegmentService {
    /// Segment use cases over `store`, the in-memory `catalogs`, `index` and its `indexer`.
    pub fn new(
        store: Store,
        catalogs: Catalogs,
        index: Arc<SegmentIndex>,
        indexer: Arc<Indexer>,
    ) -> Self {
        let compiled = CompiledCatalogs::new(catalogs.clone(), store.sealer().cloned());
        Self {
            store,
            catalogs,
            index,
            indexer,
            compiled,
            metrics: Arc::default(),
        }
    }

    /// These use cases, timing every index evaluation in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs `work` on a blocking thread, timed as an index evaluation of `kind`.
    async fn timed<T: Send + 'static>(
        &self,
        kind: &'static str,
        work: impl FnOnce() -> Result<T, crate::index::IndexError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let outcome = work();
            metrics.segment_evaluation(kind, started.elapsed());
            outcome
        })
        .await
        .map_err(InternalError::Task)?
        .map_err(|error| InternalError::from(error).into())
    }

    /// The workspace's compiled catalogue, compiled again only when the catalogue changed.
    pub fn compiled(&self, workspace: &WorkspaceId) -> Arc<CompiledWorkspace> {
        self.compiled.compiled(workspace)
    }

    /// The compiled catalogues, shared (the membership engine evaluates the same trees).
    pub fn compiled_catalogs(&self) -> CompiledCatalogs {
        self.compiled.clone()
    }

    /// Resolves `source` as `caller` sees the catalogue.
    pub fn resolve(
        &self,
        caller: &Caller,
        source: SegmentSource,
    ) -> Result<Resolved, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        Ok(resolve(&catalog, source)?)
    }

    /// Checks segment text and, when valid, counts its members; the parsed tree comes back so
    /// nothing is parsed twice.
    pub async fn validate(&self, caller: &Caller, text: &str) -> Result<Validation, ServiceError> {
        match self.resolve_validation(caller, text) {
            Ok(resolved) => {
                let count = self.count_resolved(&caller.workspace, &resolved).await?;
                let hints = if count == 0 {
                    self.case_hints(caller, &resolved.expr).await?
                } else {
                    Vec::new()
                };
                Ok(Validation {
                    diagnostics: Vec::new(),
                    expr: Some(resolved.expr),
                    estimated_count: Some(count),
                    hints,
                })
            }
            Err(rejected) => Ok(Validation {
                diagnostics: rejected.diagnostics,
                expr: rejected.expr.map(|expr| *expr),
                estimated_count: None,
                hints: Vec::new(),
            }),
        }
    }

    /// The case hints of `expr` (see [`literals::case_hints`]).
    async fn case_hints(
        &self,
        caller: &Caller,
        expr: &Expr,
    ) -> Result<Vec<LiteralHint>, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let (index, caller, expr) = (Arc::clone(&self.index), caller.clone(), expr.clone());
        self.timed("case_hints", move || {
            let catalog = CallerCatalog::new(&compiled, &caller);
            literals::case_hints(&expr, &catalog, &index, &caller.workspace)
        })
        .await
    }

    /// Up to `first` values of the field `name` (segment spelling: a text built-in, or a text
    /// or string-list attribute the caller may read) that start with `prefix`, most held first,
    /// each with how many contacts hold it: suggestions for a literal being typed.
    pub async fn field_values(
        &self,
        caller: &Caller,
        name: &str,
        prefix: &str,
        first: usize,
    ) -> Result<Vec<(String, u64)>, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let source = literals::value_source(&CallerCatalog::new(&compiled, caller), name)?;
        let (index, workspace, prefix) = (
            Arc::clone(&self.index),
            caller.workspace.clone(),
            prefix.to_owned(),
        );
        self.timed("values", move || {
            index.field_values(&workspace, &source.path, source.kind, &prefix, first)
        })
        .await
    }

    /// How the members of `segment` (every contact when `None`) spread over the field `name`:
    /// its `limit` most held values, or `limit` bars of its numbers or datetimes.
    pub async fn distribution(
        &self,
        caller: &Caller,
        segment: Option<SegmentSource>,
        name: &str,
        limit: usize,
    ) -> Result<Distribution, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let (path, kind) = literals::spread_source(&CallerCatalog::new(&compiled, caller), name)?;
        let tree = segment
            .map(|source| self.resolve(caller, source).map(|resolved| resolved.tree))
            .transpose()?;
        let (index, workspace, now) = (
            Arc::clone(&self.index),
            caller.workspace.clone(),
            Utc::now(),
        );
        self.timed("distribution", move || {
            index.distribution(&workspace, tree.as_ref(), now, &path, kind, limit)
        })
        .await
    }

    fn resolve_validation(&self, caller: &Caller, text: &str) -> Result<Resolved, Rejected> {
        let compiled = self.compiled(&caller.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        resolve(&catalog, SegmentSource::Text(text.to_owned()))
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
        let resolved = self.resolve(caller, source)?;
        self.members_of(&caller.workspace, &resolved, after, first, consistency)
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
        let resolved = self.resolve_saved(caller, slug)?;
        self.members_of(
            &caller.workspace,
            &resolved,
            after,
            first,
            Consistency::Committed,
        )
        .await
    }

    /// The exact number of members of a saved segment.
    pub async fn saved_count(&self, caller: &Caller, slug: &Slug) -> Result<u64, ServiceError> {
        let resolved = self.resolve_saved(caller, slug)?;
        self.count_resolved(&caller.workspace, &resolved).await
    }

    /// The last `days` UTC days of saved segment `slug` (oldest first, today last): how many
    /// contacts entered and left it each day, and its size at the end of each (now, for
    /// today), worked back from its size now; `None` before the day it was saved.
    pub async fn history(
        &self,
        caller: &Caller,
        slug: &Slug,
        days: u32,
    ) -> Result<Vec<(SegmentDay, Option<u64>)>, ServiceError> {
        let saved = self.get(&caller.workspace, slug)?;
        // The feed's counts run ahead of the index: the size now must include every write
        // they count.
        self.sync().await?;
        let now = self.saved_count(caller, slug).await?;
        let today = Utc::now().date_naive();
        let first = today - chrono::Days::new(u64::from(days.max(1) - 1));
        let recorded = self
            .store
            .segment_days(&caller.workspace, slug, first, today)
            .await?;
        let of_day = |day| {
            recorded
                .iter()
                .find(|recorded| recorded.day == day)
                .copied()
                .unwrap_or(SegmentDay {
                    day,
                    entered: 0,
                    exited: 0,
                })
        };
        let saved_on = saved.created_at.date_naive();
        let mut size = i128::from(now);
        let mut history = Vec::new();
        let mut day = today;
        while day >= first {
            let counts = of_day(day);
            let known = day >= saved_on;
            history.push((
                counts,
                known.then(|| u64::try_from(size.max(0)).unwrap_or(0)),
            ));
            size = size - i128::from(counts.entered) + i128::from(counts.exited);
            let Some(before) = day.pred_opt() else { break };
            day = before;
        }
        history.reverse();
        Ok(history)
    }

    /// A saved segment resolved for `caller` from its compiled tree (no parsing).
    fn resolve_saved(&self, caller: &Caller, slug: &Slug) -> Result<Resolved, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let saved = catalog
            .segment(slug.as_str())
            .ok_or_else(|| not_found(slug))?;
        let expr = saved
            .expr
            .clone()
            .ok_or_else(|| InternalError::UnparsedSegment(slug.to_string()))?;
        Ok(resolve_expr(&catalog, expr)?)
    }

    /// The page of members of a resolved segment after `after`.
    pub async fn members_of(
        &self,
        workspace: &WorkspaceId,
        resolved: &Resolved,
        after: Option<ContactId>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        if consistency == Consistency::Latest {
            self.sync().await?;
        }
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let tree = resolved.tree.clone();
        let now = Utc::now();
        let members: Members = self
            .timed("page", move || {
                index.members(&scoped, &tree, now, after.as_ref(), first)
            })
            .await?;
        self.page_from(workspace, members).await
    }

    /// Every contact of the workspace, the exact number and a page in id order, from the
    /// index like segment members (fresh within the index delay; `Latest` waits for it).
    /// SurrealDB 3.3 reads a whole record range before applying `LIMIT`, so a page read from
    /// the store would cost the size of the workspace.
    pub async fn all_contacts(
        &self,
        workspace: &WorkspaceId,
        after: Option<ContactId>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        if consistency == Consistency::Latest {
            self.sync().await?;
        }
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let members: Members = self
            .timed("page", move || {
                index.workspace_members(&scoped, after.as_ref(), first)
            })
            .await?;
        self.page_from(workspace, members).await
    }

    /// Members of `source` (every contact when `None`) ordered by the field `order_by` (a
    /// built-in datetime, or a number or datetime attribute; missing values last, ties by
    /// id): the exact number and the page of `first` after the rank `after`, chosen in the
    /// index from its fast columns.
    // One parameter per part of the request.
    #[allow(clippy::too_many_arguments)]
    pub async fn ordered(
        &self,
        caller: &Caller,
        source: Option<SegmentSource>,
        order_by: &str,
        descending: bool,
        after: Option<Rank>,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        let key = {
            let compiled = self.compiled(&caller.workspace);
            sort_key(&CallerCatalog::new(&compiled, caller), order_by, descending)?
        };
        let tree = self.narrowing(caller, source, consistency).await?;
        let index = Arc::clone(&self.index);
        let workspace = caller.workspace.clone();
        let now = Utc::now();
        let members = self
            .timed("page", move || {
                index.ordered_members(&workspace, tree.as_ref(), now, &key, after, first)
            })
            .await?;
        let ids: Vec<ContactId> = members
            .ranks
            .iter()
            .map(|rank| ContactId::from_u128(rank.id))
            .collect();
        let contacts = self.store.contacts_by_ids(&caller.workspace, &ids).await?;
        let rank_of: HashMap<u128, Rank> =
            members.ranks.iter().map(|rank| (rank.id, *rank)).collect();
        let ranks = contacts
            .iter()
            .filter_map(|contact| rank_of.get(&contact.id.as_u128()).copied())
            .collect();
        Ok(SegmentPage {
            contacts,
            total: members.total,
            has_more: members.has_more,
            ranks,
        })
    }

    /// The tree of an optional segment that narrows a list (resolved for `caller`), once the
    /// index is as fresh as `consistency` asks.
    async fn narrowing(
        &self,
        caller: &Caller,
        source: Option<SegmentSource>,
        consistency: Consistency,
    ) -> Result<Option<Checked>, ServiceError> {
        let tree = source
            .map(|source| self.resolve(caller, source))
            .transpose()?
            .map(|resolved| resolved.tree);
        if consistency == Consistency::Latest {
            self.sync().await?;
        }
        Ok(tree)
    }

    /// The page of `members`, read from the store.
    async fn page_from(
        &self,
        workspace: &WorkspaceId,
        members: Members,
    ) -> Result<SegmentPage, ServiceError> {
        let contacts = self.store.contacts_by_ids(workspace, &members.ids).await?;
        Ok(SegmentPage {
            contacts,
            total: members.total,
            has_more: members.has_more,
            ranks: Vec::new(),
        })
    }

    /// Type-ahead search: contacts whose name, email, phone, external id or company (those the
    /// caller may read) match every word of `text`, within `source` when given, best first
    /// (then most recently updated); `first` of them after skipping `offset`.
    pub async fn search(
        &self,
        caller: &Caller,
        text: &str,
        source: Option<SegmentSource>,
        offset: usize,
        first: usize,
        consistency: Consistency,
    ) -> Result<SegmentPage, ServiceError> {
        if fold_words(text).is_empty() {
            return Err(ServiceError::invalid(
                "search",
                "give at least one letter or digit to search for",
            ));
        }
        let readable = |field| {
            caller
                .policy
                .allows_field(&qwry_segment::Field::Builtin(field))
        };
        let Some(query) = SearchQuery::new(text, readable) else {
            return Ok(SegmentPage {
                contacts: Vec::new(),
                total: 0,
                has_more: false,
                ranks: Vec::new(),
            });
        };
        let tree = self.narrowing(caller, source, consistency).await?;
        let index = Arc::clone(&self.index);
        let workspace = caller.workspace.clone();
        let now = Utc::now();
        let found = self
            .timed("search", move || {
                index.search(&workspace, &query, tree.as_ref(), now, offset, first)
            })
            .await?;
        let contacts = self
            .store
            .contacts_by_ids(&caller.workspace, &found.ids)
            .await?;
        Ok(SegmentPage {
            has_more: (offset + found.ids.len()) < found.total as usize,
            total: found.total,
            contacts,
            ranks: Vec::new(),
        })
    }

    /// How many contacts of `workspace` match a resolved segment now.
    pub async fn count_resolved(
        &self,
        workspace: &WorkspaceId,
        resolved: &Resolved,
    ) -> Result<u64, ServiceError> {
        self.count_tree(workspace, resolved.tree.clone()).await
    }

    async fn count_tree(
        &self,
        workspace: &WorkspaceId,
        tree: Checked,
    ) -> Result<u64, ServiceError> {
        let index = Arc::clone(&self.index);
        let scoped = workspace.clone();
        let now = Utc::now();
        self.timed("count", move || index.count(&scoped, &tree, now))
            .await
    }

    /// Waits (bounded) until every write committed before this call is indexed.
    async fn sync(&self) -> Result<(), ServiceError> {
        match tokio::time::timeout(LATEST_TIMEOUT, self.indexer.catch_up()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(InternalError::from(error).into()),
            Err(_) => Err(ServiceError::Unavailable(format!(
                "the segment index did not catch up within {} s; retry, or read without `consistency: LATEST`",
                LATEST_TIMEOUT.as_secs()
            ))),
        }
    }

    /// How far the index is behind the store, over every workspace.
    pub async fn backlog(&self) -> Result<crate::store::Backlog, ServiceError> {
        self.indexer
            .backlog()
            .await
            .map_err(|error| InternalError::from(error).into())
    }

    /// How many contact states the indexer applied since start, by where they came from.
    pub fn index_state_sources(&self) -> crate::service::indexer::StateSources {
        self.indexer.state_sources()
    }

    /// How current the index is, as far as `workspace` is concerned.
    pub async fn index_status(&self, workspace: &WorkspaceId) -> Result<IndexStatus, ServiceError> {
        self.indexer
            .status(workspace)
            .await
            .map_err(|error| InternalError::from(error).into())
    }

    /// The saved segment `slug`, or NOT_FOUND.
    pub fn get(&self, workspace: &WorkspaceId, slug: &Slug) -> Result<SavedSegment, ServiceError> {
        self.catalogs
            .workspace(workspace)
            .segment(slug)
            .cloned()
            .ok_or_else(|| not_found(slug))
    }

    /// The saved segment `slug` if `caller` may follow its members: NOT_FOUND for an unknown
    /// slug, FORBIDDEN when it tests a field the caller may not read (membership would
    /// reveal the value).
    pub fn readable(&self, caller: &Caller, slug: &Slug) -> Result<SavedSegment, ServiceError> {
        let compiled = self.compiled(&caller.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let segment = compiled
            .segments
            .get(slug.as_str())
            .ok_or_else(|| not_found(slug))?;
        if let Ok(expansion) = &segment.outcome
            && let Some(field) = expansion.fields.iter().find(|field| catalog.hides(field))
        {
            return Err(ServiceError::Forbidden(format!(
                "segment `{slug}` tests `{}`, which this key may not read",
                field.display_name()
            )));
        }
        Ok(segment.saved.clone())
    }

    /// Every saved segment, by slug.
    pub fn list(&self, workspace: &WorkspaceId) -> Vec<SavedSegment> {
        self.catalogs.workspace(workspace).segments.clone()
    }

    /// `segment`'s tree as `caller` may see it: literals compared with fields the caller may
    /// not read (outside its field policy, or sensitive without `pii:read`) are masked.
    pub fn visible_expr(&self, caller: &Caller, segment: &SavedSegment) -> Option<Expr> {
        let compiled = self.compiled(&caller.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let expr = catalog.segment(segment.slug.as_str())?.expr.as_ref()?;
        Some(mask_hidden(expr, &|field| catalog.hides(field)))
    }

    /// The saved segments `segment` refers to directly.
    pub fn references_of(&self, segment: &SavedSegment) -> Vec<String> {
        let compiled = self.compiled(&segment.workspace);
        compiled
            .segments
            .get(segment.slug.as_str())
            .and_then(|compiled| compiled.expr.as_ref())
            .map(direct_references)
            .unwrap_or_default()
    }

    /// The saved segments that refer to `segment` directly.
    pub fn referenced_by(&self, segment: &SavedSegment) -> Vec<String> {
        let compiled = self.compiled(&segment.workspace);
        let slug = segment.slug.as_str();
        compiled
            .segments
            .iter()
            .filter(|(other, compiled)| {
                other.as_str() != slug
                    && compiled
                        .expr
                        .as_ref()
                        .is_some_and(|expr| direct_references(expr).iter().any(|r| r == slug))
            })
            .map(|(other, _)| other.clone())
            .collect()
    }

    /// Creates or replaces a saved segment after checking it (including reference cycles).
    pub async fn save(
        &self,
        caller: &Caller,
        draft: SegmentDraft,
    ) -> Result<SavedSegment, ServiceError> {
        let workspace = &caller.workspace;
        let (resolved, cycle) = {
            let compiled = self.compiled(workspace);
            let catalog = CallerCatalog::new(&compiled, caller);
            let resolved = resolve(&catalog, draft.source)?;
            let cycle = cycle_through(&catalog, &resolved, draft.slug.as_str());
            (resolved, cycle)
        };
        if let Some(cycle) = cycle {
            return Err(ServiceError::InvalidSegment(vec![cycle]));
        }
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
            text: resolved.expr.to_string(),
            names_sensitive_values: resolved.names_sensitive_values,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        if let Some(existing) = existing.filter(|e| same_content(e, &segment)) {
            return Ok(existing);
        }
        self.store.put_segment(&segment).await?;
        self.catalogs.refresh(workspace).await?;
        Ok(segment)
    }

    /// Deletes a saved segment that no other segment refers to.
    pub async fn delete(&self, workspace: &WorkspaceId, slug: &Slug) -> Result<(), ServiceError> {
        let existing = self.get(workspace, slug)?;
        if let Some(user) = self.referenced_by(&existing).first() {
            return Err(ServiceError::Conflict(format!(
                "segment `{slug}` is used by segment `{user}`; change that one first"
            )));
        }
        if self.store.delete_segment(workspace, slug).await? {
            self.catalogs.refresh(workspace).await?;
            Ok(())
        } else {
            Err(not_found(slug))
        }
    }

    /// The saved segments `contact` belongs to, evaluated in memory against their compiled
    /// trees; segments testing fields `caller` may not read are left out, as their membership
    /// would reveal those values.
    pub fn segments_of(&self, contact: &Contact, caller: &Caller) -> Vec<SavedSegment> {
        let compiled = self.compiled(&contact.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let now = Utc::now();
        let record = ContactRecord(contact);
        compiled
            .segments
            .values()
            .filter_map(|segment| {
                let expansion = segment.outcome.as_ref().ok()?;
                let visible = !expansion.fields.iter().any(|field| catalog.hides(field));
                (visible && evaluate(&expansion.tree, &record, now)).then(|| segment.saved.clone())
            })
            .collect()
    }

    /// Whether `contact` belongs to each of the saved segments `slugs`, in the order given,
    /// evaluated in memory against their compiled trees. NOT_FOUND for an unknown slug,
    /// FORBIDDEN for a segment testing a field `caller` may not read, INVALID_SEGMENT for one
    /// that no longer checks (its attribute was dropped, say).
    pub fn match_saved(
        &self,
        contact: &Contact,
        caller: &Caller,
        slugs: &[Slug],
    ) -> Result<Vec<(SavedSegment, bool)>, ServiceError> {
        let compiled = self.compiled(&contact.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let now = Utc::now();
        let record = ContactRecord(contact);
        slugs
            .iter()
            .map(|slug| {
                let segment = compiled
                    .segments
                    .get(slug.as_str())
                    .ok_or_else(|| not_found(slug))?;
                let expansion = segment.outcome.as_ref().map_err(|reason| {
                    ServiceError::invalid(
                        "slugs",
                        format!("segment `{slug}` no longer checks: {reason}"),
                    )
                })?;
                if let Some(field) = expansion.fields.iter().find(|field| catalog.hides(field)) {
                    return Err(ServiceError::Forbidden(format!(
                        "segment `{slug}` tests `{}`, which this key may not read",
                        field.display_name()
                    )));
                }
                let member = evaluate(&expansion.tree, &record, now);
                Ok((segment.saved.clone(), member))
            })
            .collect()
    }

    /// Why `contact` is in or out of the segment: every part with the contact's value and outcome.
    pub fn explain(
        &self,
        contact: &Contact,
        source: SegmentSource,
        caller: &Caller,
    ) -> Result<Vec<ExplainNode>, ServiceError> {
        let compiled = self.compiled(&contact.workspace);
        let catalog = CallerCatalog::new(&compiled, caller);
        let resolved = resolve(&catalog, source)?;
        let mut nodes = Vec::new();
        explain_node(
            &resolved.expr,
            None,
            &catalog,
            &ContactRecord(contact),
            Utc::now(),
            &mut nodes,
        );
        Ok(nodes)
    }
}

fn not_found(slug: &Slug) -> ServiceError {
    ServiceError::NotFound(format!("segment `{slug}` does not exist"))
}

fn same_content(a: &SavedSegment, b: &SavedSegment) -> bool {
    a.name == b.name && a.description == b.description && a.text == b.text
}

/// Checks segment text against the workspace's attributes and saved segments, without the index
/// (for the command line): the canonical text, or every problem found.
pub async fn check_text(
    store: &Store,
    workspace: &WorkspaceId,
    text: &str,
) -> Result<Result<String, Vec<Diagnostic>>, ServiceError> {
    let state = Arc::new(WorkspaceState::load(store, workspace).await?);
    let compiled = CompiledWorkspace::compile(state, store.sealer().cloned());
    let operator = Caller::operator(workspace.clone(), "cli");
    let catalog = CallerCatalog::new(&compiled, &operator);
    Ok(
        match resolve(&catalog, SegmentSource::Text(text.to_owned())) {
            Ok(resolved) => Ok(resolved.expr.to_string()),
            Err(rejected) => Err(rejected.diagnostics),
        },
    )
}
