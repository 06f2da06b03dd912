//! tantivy, and nothing else: the segment index, a projection of the store that can always be
//! rebuilt from it. Blocking calls; async callers go through `spawn_blocking`.

mod automaton;
mod bits;
mod collect;
mod compile;
mod distribution;
mod document;
mod execute;
mod facts;
mod inventory;
mod order;
mod record;
mod schema;
mod search;
mod search_text;
mod values;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use qwry_segment::Checked;
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::Schema;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term};
use tracing::warn;

pub use compile::UnexpandedReference;
pub use distribution::{Bar, Distribution, Spread, SpreadKind};
pub use order::{OrderedMembers, Rank, SortColumn, SortKey};
pub use record::{ContactRecord, field_path};
pub use search::{Found, SearchQuery};
pub use search_text::{SEARCHABLE, fold_words};
pub use values::{SCAN_VALUES, ValueKind};

use crate::domain::{Contact, ContactId, WorkspaceId};
use bits::Bits;
use collect::SmallestIds;
use document::{contact_document, document_key};
use execute::{Context, LeafCache};
use facts::{FactsWarmer, SegmentFacts};
use order::BestRanks;
use schema::{IndexFields, build_schema, fields_of};

/// Memory the writer may buffer before it flushes a segment, unless told otherwise.
pub const DEFAULT_WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// Threads that merge index segments: half the cores (at least one), so that merges after a
/// bulk load leave room for requests; they also run at the lowest CPU priority
/// ([`crate::thread_priority`]).
fn merge_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

/// Failures of the index layer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed (I/O, corruption, a second writer on the same directory).
    #[error("segment index failure: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The caller passed a segment with unexpanded references.
    #[error(transparent)]
    Unexpanded(#[from] UnexpandedReference),
    /// The commit payload could not be read or written.
    #[error("segment index payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// A writer panicked while holding the lock.
    #[error("the segment index writer is unusable after a panic")]
    Poisoned,
    /// The index directory could not be created.
    #[error("cannot create the index directory: {0}")]
    Directory(#[source] std::io::Error),
    /// The index directory could not be opened.
    #[error("cannot open the index directory: {0}")]
    OpenDirectory(#[source] tantivy::directory::error::OpenDirectoryError),
}

impl IndexError {
    /// Whether another writer (another process) holds the index's lock.
    pub fn is_in_use(&self) -> bool {
        matches!(
            self,
            Self::Tantivy(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _
            ))
        )
    }
}

/// The version of what a contact's document holds; an index built at an older one is
/// rebuilt from the store at start-up (2: the activity built-ins; 3: event rollups; 4: the
/// contact's revision).
pub const PROJECTION_VERSION: u32 = 4;

/// What the index records with every commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitPayload {
    /// Whether the index holds every contact of the store (a full build completed).
    pub built: bool,
    /// The [`PROJECTION_VERSION`] its documents were written at (1 before it was recorded).
    #[serde(default = "first_projection")]
    pub projection: u32,
    /// Key of the last change-log entry applied.
    pub last_change: Option<String>,
    /// The change log's watermark: every entry keyed below it is in the index (see
    /// `service::change_cursor`). Absent in older indexes, whose log held only unapplied
    /// entries: they resume from the log's start.
    #[serde(default)]
    pub watermark: Option<String>,
    /// When this commit happened.
    pub committed_at: DateTime<Utc>,
}

impl CommitPayload {
    /// Whether the index holds every contact, written at this version's projection.
    pub fn is_current_build(&self) -> bool {
        self.built && self.projection == PROJECTION_VERSION
    }
}

fn first_projection() -> u32 {
    1
}

/// One change to apply.
#[derive(Debug, Clone)]
pub enum IndexChange {
    /// Index the contact's current state (replacing any earlier document).
    Upsert(Box<Contact>),
    /// Remove the contact's document.
    Remove(WorkspaceId, ContactId),
}

impl IndexChange {
    /// An [`IndexChange::Upsert`] of `contact`.
    pub fn upsert(contact: Contact) -> Self {
        Self::Upsert(Box::new(contact))
    }

    /// The contact it is about.
    pub fn contact(&self) -> (&WorkspaceId, &ContactId) {
        match self {
            Self::Upsert(contact) => (&contact.workspace, &contact.id),
            Self::Remove(workspace, id) => (workspace, id),
        }
    }
}

/// Members of a segment: the exact total and one page of ids in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct Members {
    /// How many contacts match.
    pub total: u64,
    /// The page, ascending by id.
    pub ids: Vec<ContactId>,
    /// Whether matching contacts follow the page.
    pub has_more: bool,
}

/// The segment index.
pub struct SegmentIndex {
    index: Index,
    fields: IndexFields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    cache: LeafCache,
    facts: Arc<SegmentFacts>,
    /// Prepares the facts of new segments on reload (the reader holds it weakly).
    _warmer: Arc<dyn tantivy::Warmer>,
}

impl SegmentIndex {
    /// Opens (or creates) the index in `directory`. Fails fast if another process writes to it.
    pub fn open_in_dir(directory: &Path) -> Result<Self, IndexError> {
        Self::open_in_dir_with(directory, DEFAULT_WRITER_MEMORY_BYTES)
    }

    /// [`SegmentIndex::open_in_dir`] with a writer buffering up to `writer_bytes`.
    pub fn open_in_dir_with(directory: &Path, writer_bytes: usize) -> Result<Self, IndexError> {
        std::fs::create_dir_all(directory).map_err(IndexError::Directory)?;
        let mmap = MmapDirectory::open(directory).map_err(IndexError::OpenDirectory)?;
        let (schema, _) = build_schema();
        let index = match Index::open_or_create(mmap, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(_)) => Self::recreate(directory, schema)?,
            Err(other) => return Err(other.into()),
        };
        Self::from_index(index, writer_bytes)
    }

    /// Replaces an index written with an older schema by an empty one (the indexer then builds
    /// it from the store), after making sure no other process writes to it.
    fn recreate(directory: &Path, schema: Schema) -> Result<Index, IndexError> {
        warn!(path = %directory.display(), "the segment index has an older schema; rebuilding it from the store");
        let directory_error = IndexError::Directory;
        {
            let old = Index::open_in_dir(directory)?;
            // Fails fast (writer lock) when another process holds the index.
            let writer: IndexWriter = old.writer_with_num_threads(1, 15_000_000)?;
            drop(writer);
        }
        for entry in std::fs::read_dir(directory).map_err(directory_error)? {
            let path = entry.map_err(directory_error)?.path();
            if path.is_file() {
                std::fs::remove_file(&path).map_err(directory_error)?;
            }
        }
        let mmap = MmapDirectory::open(directory).map_err(IndexError::OpenDirectory)?;
        Ok(Index::create(
            mmap,
            schema,
            tantivy::IndexSettings::default(),
        )?)
    }

    /// A fresh index in memory (tests, and `mem://` stores).
    pub fn open_in_ram() -> Result<Self, IndexError> {
        let (schema, _) = build_schema();
        Self::from_index(Index::create_in_ram(schema), DEFAULT_WRITER_MEMORY_BYTES)
    }

    fn from_index(index: Index, writer_bytes: usize) -> Result<Self, IndexError> {
        let fields = fields_of(&index.schema())?;
        let options = IndexWriterOptions::builder()
            .num_worker_threads(1)
            .memory_budget_per_thread(writer_bytes)
            .num_merge_threads(merge_threads())
            .build();
        let writer = index.writer_with_options(options)?;
        crate::thread_priority::lower_threads_named("merge_thread_");
        let facts = Arc::new(SegmentFacts::default());
        let warmer: Arc<dyn tantivy::Warmer> = Arc::new(FactsWarmer(Arc::clone(&facts)));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .num_warming_threads(1)
            .warmers(vec![Arc::downgrade(&warmer)])
            .try_into()?;
        Ok(Self {
            index,
            fields,
            reader,
            writer: Mutex::new(writer),
            cache: LeafCache::default(),
            facts,
            _warmer: warmer,
        })
    }

    /// The payload of the last commit, if any commit happened.
    pub fn payload(&self) -> Result<Option<CommitPayload>, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas
            .payload
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?)
    }

    /// Applies `changes` and commits them with `payload`; readers see them on return.
    pub fn apply(
        &self,
        changes: &[IndexChange],
        payload: &CommitPayload,
    ) -> Result<(), IndexError> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        for change in changes {
            let (workspace, id) = change.contact();
            writer.delete_term(Term::from_field_text(
                self.fields.key,
                &document_key(workspace, id),
            ));
            if let IndexChange::Upsert(contact) = change {
                writer.add_document(contact_document(&self.fields, contact))?;
            }
        }
        self.commit(&mut writer, payload)
    }

    /// Removes every document (before a rebuild) and commits with `payload`.
    pub fn clear(&self, payload: &CommitPayload) -> Result<(), IndexError> {
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.delete_all_documents()?;
        self.commit(&mut writer, payload)
    }

    fn commit(&self, writer: &mut IndexWriter, payload: &CommitPayload) -> Result<(), IndexError> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(payload)?);
        prepared.commit()?;
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let live = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        self.cache.retain_segments(&live);
        Ok(())
    }

    /// Documents in the index (all workspaces).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// How many contacts of `workspace` match `segment` (references expanded) at `now`.
    pub fn count(
        &self,
        workspace: &WorkspaceId,
        segment: &Checked,
        now: DateTime<Utc>,
    ) -> Result<u64, IndexError> {
        let plan = compile::plan_for(segment, workspace, now)?;
        let searcher = self.reader.searcher();
        let matches = execute::matching(&plan, &searcher, &self.context())?;
        Ok(matches.iter().map(Bits::count).sum())
    }

    /// The exact number of members and the page of up to `limit` ids after `after`.
    pub fn members(
        &self,
        workspace: &WorkspaceId,
        segment: &Checked,
        now: DateTime<Utc>,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Members, IndexError> {
        let plan = compile::plan_for(segment, workspace, now)?;
        self.page_of(&plan, after, limit)
    }

    /// Every contact of `workspace`: the exact number and the page of up to `limit` ids after
    /// `after` (the unfiltered contact list).
    pub fn workspace_members(
        &self,
        workspace: &WorkspaceId,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Members, IndexError> {
        self.page_of(&compile::workspace_plan(workspace), after, limit)
    }

    /// The members of `segment` (every contact of `workspace` when `None`) ordered by `key`:
    /// the exact number and the page of up to `limit` after the rank `after`. Reads the
    /// column of the members only, keeping the best `limit` as it goes (no full sort).
    pub fn ordered_members(
        &self,
        workspace: &WorkspaceId,
        segment: Option<&Checked>,
        now: DateTime<Utc>,
        key: &SortKey,
        after: Option<Rank>,
        limit: usize,
    ) -> Result<OrderedMembers, IndexError> {
        let plan = match segment {
            Some(segment) => compile::plan_for(segment, workspace, now)?,
            None => compile::workspace_plan(workspace),
        };
        let searcher = self.reader.searcher();
        let matches = execute::matching(&plan, &searcher, &self.context())?;
        let mut best = BestRanks::new(after, limit + 1);
        let mut total = 0;
        for (reader, docs) in searcher.segment_readers().iter().zip(&matches) {
            total += docs.count();
            best.offer_segment(reader, docs, key)?;
        }
        let mut ranks = best.into_sorted();
        let has_more = ranks.len() > limit;
        ranks.truncate(limit);
        Ok(OrderedMembers {
            total,
            ranks,
            has_more,
        })
    }

    /// For each of `segments`, which of the contacts `ids` of `workspace` its members are at
    /// `now`, as the index holds them (a contact without a document is in none). Answers from
    /// one searcher, so every segment sees the same state.
    pub fn members_among(
        &self,
        workspace: &WorkspaceId,
        segments: &[&Checked],
        ids: &[ContactId],
        now: DateTime<Utc>,
    ) -> Result<Vec<HashSet<ContactId>>, IndexError> {
        let searcher = self.reader.searcher();
        let located = self.locate(&searcher, workspace, ids)?;
        segments
            .iter()
            .map(|segment| {
                if located.is_empty() {
                    return Ok(HashSet::new());
                }
                let plan = compile::plan_for(segment, workspace, now)?;
                let matches = execute::matching(&plan, &searcher, &self.context())?;
                Ok(located
                    .iter()
                    .filter(|(_, ordinal, doc)| matches[*ordinal].contains(*doc))
                    .map(|(id, _, _)| *id)
                    .collect())
            })
            .collect()
    }

    /// The revision each of the contacts `ids` of `workspace` has in the index (none for a
    /// contact without a document).
    pub fn indexed_revisions(
        &self,
        workspace: &WorkspaceId,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, u64>, IndexError> {
        let searcher = self.reader.searcher();
        let located = self.locate(&searcher, workspace, ids)?;
        let mut revisions = HashMap::with_capacity(located.len());
        let readers = searcher.segment_readers();
        let columns = readers
            .iter()
            .map(|reader| reader.fast_fields().u64("revision"))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, ordinal, doc) in located {
            if let Some(revision) = columns[ordinal].first(doc) {
                revisions.insert(id, revision);
            }
        }
        Ok(revisions)
    }

    /// Where the live documents of the contacts `ids` of `workspace` are: (id, segment
    /// ordinal, document).
    fn locate(
        &self,
        searcher: &tantivy::Searcher,
        workspace: &WorkspaceId,
        ids: &[ContactId],
    ) -> Result<Vec<(ContactId, usize, tantivy::DocId)>, IndexError> {
        let mut located = Vec::with_capacity(ids.len());
        for id in ids {
            let term = Term::from_field_text(self.fields.key, &document_key(workspace, id));
            for (ordinal, reader) in searcher.segment_readers().iter().enumerate() {
                let postings = reader
                    .inverted_index(self.fields.key)?
                    .read_postings(&term, tantivy::schema::IndexRecordOption::Basic)
                    .map_err(tantivy::TantivyError::from)?;
                let Some(mut postings) = postings else {
                    continue;
                };
                let mut doc = tantivy::DocSet::doc(&postings);
                while doc != tantivy::TERMINATED {
                    if !reader.is_deleted(doc) {
                        located.push((*id, ordinal, doc));
                    }
                    doc = tantivy::DocSet::advance(&mut postings);
                }
            }
        }
        Ok(located)
    }

    /// The members of `plan`: their number and the page of up to `limit` ids after `after`.
    fn page_of(
        &self,
        plan: &compile::Plan,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Members, IndexError> {
        let searcher = self.reader.searcher();
        let matches = execute::matching(plan, &searcher, &self.context())?;
        let after = after.map(ContactId::as_u128);
        let mut page = SmallestIds::new(after, limit + 1);
        let mut total = 0;
        for (reader, docs) in searcher.segment_readers().iter().zip(&matches) {
            let count = docs.count();
            total += count;
            self.facts
                .of(reader)
                .offer_page(reader, docs, count, after, limit + 1, &mut page)?;
        }
        let mut ids = page.into_sorted();
        let has_more = ids.len() > limit;
        ids.truncate(limit);
        Ok(Members {
            total,
            ids: ids.into_iter().map(ContactId::from_u128).collect(),
            has_more,
        })
    }

    fn context(&self) -> Context<'_> {
        Context {
            fields: &self.fields,
            cache: &self.cache,
            facts: &self.facts,
        }
    }

    /// The schema (for diagnostics).
    pub fn schema(&self) -> Schema {
        self.index.schema()
    }
}

#[cfg(test)]
mod equivalence_tests;
