//! Type-ahead search over names, emails, phones, external ids and companies: every word of the
//! query must match a searchable field the caller may read, as a whole word, a word prefix, a
//! part of the value, or (for words of five letters or more) a word one edit away. Text is
//! lower-cased and accents are folded on both sides. Results rank by how well each word
//! matched (a whole word, the start of the value, the start of a word, inside the value, one
//! typo away: in that order), then by recency.

use chrono::{DateTime, Utc};
use qwry_segment::{BuiltinField, Checked, Field};

use super::bits::Bits;
use super::compile::{Leaf, Plan, SearchMode, plan_for};
use super::execute;
use super::facts::{Timeline, contact_id};
use super::record::field_path;
use super::search_text::{SEARCHABLE, fold_words};
use super::{IndexError, SegmentIndex};
use crate::domain::{ContactId, WorkspaceId};

/// Shortest query word that may match with one typo.
const FUZZY_FROM: usize = 5;
/// Most words a query is searched by.
const MAX_WORDS: usize = 6;
/// Points for a word matched whole, the best way.
const WORD_POINTS: u8 = 8;

/// A search as the index runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Folded query words (at most [`MAX_WORDS`]).
    words: Vec<String>,
    /// Index paths of the fields it may look in.
    paths: Vec<String>,
}

impl SearchQuery {
    /// A search for `text` over the searchable built-ins `readable` allows; `None` when the
    /// text has no word or no field is readable.
    pub fn new(text: &str, readable: impl Fn(BuiltinField) -> bool) -> Option<Self> {
        let mut words = fold_words(text);
        words.dedup();
        words.truncate(MAX_WORDS);
        let paths: Vec<String> = SEARCHABLE
            .into_iter()
            .filter(|field| readable(*field))
            .map(|field| field_path(&Field::Builtin(field)))
            .collect();
        (!words.is_empty() && !paths.is_empty()).then_some(Self { words, paths })
    }

    /// The ways `word` can match in one path, best first, with their score.
    fn modes(word: &str) -> Vec<(SearchMode, u8)> {
        let mut modes = vec![
            (SearchMode::Word, WORD_POINTS),
            (SearchMode::ValuePrefix, 6),
            (SearchMode::Prefix, 4),
            (SearchMode::Infix, 2),
        ];
        if word.chars().count() >= FUZZY_FROM {
            modes.push((SearchMode::Fuzzy, 1));
        }
        modes
    }

    /// The plan matching every word somewhere.
    fn plan(&self) -> Plan {
        Plan::And(
            self.words
                .iter()
                .map(|word| {
                    Plan::Or(
                        self.paths
                            .iter()
                            .flat_map(|path| {
                                Self::modes(word).into_iter().map(|(mode, _)| {
                                    Plan::Leaf(Leaf::Search(path.clone(), mode, word.clone()))
                                })
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

/// A ranked page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// How many contacts match.
    pub total: u64,
    /// The page, best first.
    pub ids: Vec<ContactId>,
}

impl SegmentIndex {
    /// Contacts of `workspace` matching `query` (and `segment`, when given), ranked by score
    /// then recency; `limit` of them after skipping `offset`.
    pub fn search(
        &self,
        workspace: &WorkspaceId,
        query: &SearchQuery,
        segment: Option<&Checked>,
        now: DateTime<Utc>,
        offset: usize,
        limit: usize,
    ) -> Result<Found, IndexError> {
        let everyone = Checked::And(Vec::new());
        let scope = plan_for(segment.unwrap_or(&everyone), workspace, now)?;
        let plan = Plan::And(vec![scope, query.plan()]);
        let searcher = self.reader.searcher();
        let context = self.context();
        let matches = execute::matching(&plan, &searcher, &context)?;
        let readers = searcher.segment_readers();
        let total = matches.iter().map(Bits::count).sum();
        let wanted = offset.saturating_add(limit);
        let mut scored = Vec::with_capacity(readers.len());
        let mut members_by_score = [0u64; MAX_SCORE + 1];
        for (reader, docs) in readers.iter().zip(&matches) {
            let segment = Scored::new(query, reader, docs, &context)?;
            for (all, here) in members_by_score.iter_mut().zip(&segment.members_by_score) {
                *all += here;
            }
            scored.push(segment);
        }
        // Members above the page's score threshold all make it; at the threshold, only the
        // most recent `room` of them can, which each index segment finds in its sorted
        // `updated_at` column without reading every member's.
        let threshold = page_threshold(&members_by_score, wanted);
        let above: u64 = members_by_score[usize::from(threshold) + 1..].iter().sum();
        let room = wanted.saturating_sub(above as usize);
        let whole_threshold = members_by_score[usize::from(threshold)] <= room as u64;
        let lowest = if whole_threshold {
            threshold
        } else {
            threshold + 1
        };
        let mut ranked: Vec<(u8, i64, u128)> = Vec::new();
        for ((reader, docs), segment) in readers.iter().zip(&matches).zip(&scored) {
            if docs.is_empty() {
                continue;
            }
            let columns = RankColumns::open(reader)?;
            for doc in docs.iter() {
                let score = segment.scores[doc as usize];
                if score >= lowest {
                    ranked.extend(columns.rank(score, doc));
                }
            }
            if !whole_threshold {
                let timeline = context.facts.of(reader).timeline(reader, "@updated_at")?;
                segment.most_recent(threshold, room, docs, &timeline, &columns, &mut ranked);
            }
        }
        let wanted = wanted.min(ranked.len());
        let best_first = |a: &(u8, i64, u128), b: &(u8, i64, u128)| b.cmp(a);
        if wanted < ranked.len() {
            ranked.select_nth_unstable_by(wanted, best_first);
            ranked.truncate(wanted);
        }
        ranked.sort_unstable_by(best_first);
        let ids = ranked
            .into_iter()
            .skip(offset)
            .map(|(_, _, id)| ContactId::from_u128(id))
            .collect();
        Ok(Found { total, ids })
    }
}

/// Highest score a member can reach: every word matched whole.
const MAX_SCORE: usize = MAX_WORDS * WORD_POINTS as usize;

/// The lowest score a member needs to be among the best `wanted`, given how many members have
/// each score; 0 (everyone) when there are no more members than that.
fn page_threshold(members_by_score: &[u64], wanted: usize) -> u8 {
    let mut at_or_above = 0u64;
    for (score, members) in members_by_score.iter().enumerate().rev() {
        at_or_above += members;
        if at_or_above >= wanted as u64 {
            return score as u8;
        }
    }
    0
}

/// The columns a ranked member is read from.
struct RankColumns {
    updated: Option<tantivy::columnar::Column<i64>>,
    hi: tantivy::columnar::Column<u64>,
    lo: tantivy::columnar::Column<u64>,
}

impl RankColumns {
    fn open(reader: &tantivy::SegmentReader) -> tantivy::Result<Self> {
        let fast = reader.fast_fields();
        Ok(Self {
            updated: fast.column_opt::<i64>("time.@updated_at")?,
            hi: fast.u64("id_hi")?,
            lo: fast.u64("id_lo")?,
        })
    }

    /// `(score, recency, id)` of `doc`; contacts without `updated_at` rank last among equals.
    fn rank(&self, score: u8, doc: u32) -> Option<(u8, i64, u128)> {
        let recency = self.recency(doc);
        contact_id(&self.hi, &self.lo, doc).map(|id| (score, recency, id))
    }

    fn recency(&self, doc: u32) -> i64 {
        self.updated
            .as_ref()
            .and_then(|column| column.first(doc))
            .unwrap_or(i64::MIN)
    }
}

/// One index segment's members with their scores.
struct Scored {
    /// Per document (by doc id), the sum over query words of the best way it matched; 0 for
    /// documents that are not members.
    scores: Vec<u8>,
    /// How many members have each score.
    members_by_score: [u64; MAX_SCORE + 1],
}

impl Scored {
    /// Scores the members `docs` of `reader`'s segment: for each word, each member takes the
    /// points of the best way it matched in any path, visiting each member once per word.
    fn new(
        query: &SearchQuery,
        reader: &tantivy::SegmentReader,
        docs: &Bits,
        context: &execute::Context<'_>,
    ) -> tantivy::Result<Self> {
        let mut members_by_score = [0u64; MAX_SCORE + 1];
        if docs.is_empty() {
            return Ok(Self {
                scores: Vec::new(),
                members_by_score,
            });
        }
        let mut scores = vec![0u8; reader.max_doc() as usize];
        for word in &query.words {
            let mut unscored = docs.clone();
            for (mode, points) in SearchQuery::modes(word) {
                let mut matched = Bits::empty(reader.max_doc());
                for path in &query.paths {
                    let leaf = Plan::Leaf(Leaf::Search(path.clone(), mode, word.clone()));
                    matched.or(&*execute::evaluate_on(&leaf, reader, context)?);
                }
                for doc in matched.iter_and(&unscored) {
                    scores[doc as usize] += points;
                }
                unscored.and_not(&matched);
            }
        }
        for doc in docs.iter() {
            members_by_score[usize::from(scores[doc as usize])] += 1;
        }
        Ok(Self {
            scores,
            members_by_score,
        })
    }

    /// Adds to `ranked` this segment's `room` most recent members scoring `score` (and any
    /// that tie with the last of them on recency): from the newest down the sorted `updated_at`
    /// column when that finds them sooner than reading every member, else from the members.
    fn most_recent(
        &self,
        score: u8,
        room: usize,
        docs: &Bits,
        timeline: &Timeline,
        columns: &RankColumns,
        ranked: &mut Vec<(u8, i64, u128)>,
    ) {
        let here = self.members_by_score[usize::from(score)];
        if here == 0 || room == 0 {
            return;
        }
        let expected_walk = room as u64 * self.scores.len() as u64 / here;
        if expected_walk < here {
            let mut found = Vec::with_capacity(room);
            let mut last = None;
            for (value, doc) in timeline.newest_first() {
                if found.len() >= room && last != Some(value) {
                    break;
                }
                if self.scores[doc as usize] == score
                    && let Some(id) = contact_id(&columns.hi, &columns.lo, doc)
                {
                    found.push((score, value, id));
                    last = Some(value);
                }
            }
            // Members without `updated_at` are not in the column; read them all if needed.
            if found.len() >= room || found.len() as u64 == here {
                ranked.extend(found);
                return;
            }
        }
        ranked.extend(
            docs.iter()
                .filter(|doc| self.scores[*doc as usize] == score)
                .filter_map(|doc| columns.rank(score, doc)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::search_text::fold_whole;
    use super::*;

    #[test]
    fn text_is_folded_and_split() {
        assert_eq!(fold_whole("Zoë Ångström"), "zoe angstrom");
        assert_eq!(
            fold_words("Zoë Ångström-Smith"),
            vec!["zoe", "angstrom", "smith"]
        );
        let query = SearchQuery::new("Ann  ÉCOLE", |field| field != BuiltinField::Email).unwrap();
        assert_eq!(query.words, vec!["ann", "ecole"]);
        assert!(!query.paths.contains(&"@email".to_owned()));
        assert!(SearchQuery::new("  ", |_| true).is_none());
        assert!(SearchQuery::new("ann", |_| false).is_none());
    }

    /// Pages of a search (only members at or above the page's score threshold are ranked)
    /// equal the same window of the ranking of every member, across index segments, with ties
    /// on score and recency.
    #[test]
    fn pages_equal_windows_of_the_full_ranking() {
        use crate::domain::{Contact, ContactFields, Email, Text};
        use crate::index::{CommitPayload, IndexChange, PROJECTION_VERSION};

        let workspace = WorkspaceId::parse("main").unwrap();
        let index = SegmentIndex::open_in_ram().unwrap();
        let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().unwrap();
        let payload = CommitPayload {
            projection: PROJECTION_VERSION,
            built: true,
            last_change: None,
            watermark: None,
            committed_at: now,
        };
        let names = [
            "Grace Hopper",
            "Grace Kelly",
            "Gracie Allen",
            "Ada Grace",
            "Bob Gracey",
            "Mary Grace Smith",
            "Grant Graze",
            "Ada Lovelace",
        ];
        for batch in 0..3i64 {
            let contacts: Vec<Contact> = (0..300i64)
                .map(|n| {
                    let name = names[(n as usize * 7 + batch as usize) % names.len()];
                    let fields = ContactFields {
                        name: Some(Text::parse("name", name).unwrap()),
                        email: Some(
                            Email::parse(&format!("{}.{n}@grace-{batch}.io", name.len())).unwrap(),
                        ),
                        ..ContactFields::default()
                    };
                    // Recency ties in threes.
                    let updated = now - chrono::TimeDelta::seconds(n / 3);
                    Contact::new(workspace.clone(), fields, updated)
                })
                .collect();
            // Documents in the opposite order of their ids, so that ties on recency break by
            // id against the documents' order.
            let changes: Vec<IndexChange> = contacts
                .into_iter()
                .rev()
                .map(IndexChange::upsert)
                .collect();
            index.apply(&changes, &payload).unwrap();
        }
        for text in ["grace", "gra", "grace hopper", "race", "ada", "gracy"] {
            let query = SearchQuery::new(text, |_| true).unwrap();
            let all = index
                .search(&workspace, &query, None, now, 0, usize::MAX)
                .unwrap();
            assert_eq!(all.total as usize, all.ids.len(), "{text}");
            assert!(!all.ids.is_empty(), "{text}");
            for (offset, limit) in [(0, 1), (0, 10), (5, 10), (99, 50), (0, 1_000)] {
                let page = index
                    .search(&workspace, &query, None, now, offset, limit)
                    .unwrap();
                let end = (offset + limit).min(all.ids.len());
                let window = all.ids.get(offset.min(end)..end).unwrap();
                assert_eq!(page.ids, window, "{text} at {offset}+{limit}");
                assert_eq!(page.total, all.total, "{text}");
            }
        }
    }

    #[test]
    fn the_page_threshold_keeps_every_member_that_can_make_the_page() {
        let mut members_by_score = [0u64; MAX_SCORE + 1];
        members_by_score[8] = 3;
        members_by_score[4] = 5;
        members_by_score[1] = 100;
        assert_eq!(page_threshold(&members_by_score, 3), 8);
        assert_eq!(
            page_threshold(&members_by_score, 4),
            4,
            "ties at 4 may all make it"
        );
        assert_eq!(page_threshold(&members_by_score, 8), 4);
        assert_eq!(page_threshold(&members_by_score, 9), 1);
        assert_eq!(
            page_threshold(&members_by_score, 1_000),
            0,
            "fewer than wanted: all"
        );
        assert_eq!(page_threshold(&members_by_score, 0), MAX_SCORE as u8);
    }
}
