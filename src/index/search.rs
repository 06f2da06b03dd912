//! Type-ahead search over names, emails, phones, external ids and companies: every word of the
//! query must match a searchable field the caller may read, as a whole word, a word prefix, a
//! part of the value, or (for words of five letters or more) a word one edit away. Text is
//! lower-cased and accents are folded on both sides. Results rank by how well each word
//! matched (a whole word, the start of the value, the start of a word, inside the value, one
//! typo away: in that order), then by recency.

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use qwry_segment::{BuiltinField, Checked, Field};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, SimpleTokenizer, TextAnalyzer,
};

use super::bits::Bits;
use super::compile::{Leaf, Plan, SearchMode, plan_for};
use super::execute;
use super::record::field_path;
use super::{IndexError, SegmentIndex};
use crate::domain::{ContactId, WorkspaceId};

/// The built-in fields search looks in.
pub const SEARCHABLE: [BuiltinField; 5] = [
    BuiltinField::Name,
    BuiltinField::Email,
    BuiltinField::Phone,
    BuiltinField::ExternalId,
    BuiltinField::Company,
];

/// Shortest query word that may match with one typo.
const FUZZY_FROM: usize = 5;
/// Most words a query is searched by.
const MAX_WORDS: usize = 6;

thread_local! {
    static WORDS: RefCell<TextAnalyzer> = RefCell::new(
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build(),
    );
    static WHOLE: RefCell<TextAnalyzer> = RefCell::new(
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build(),
    );
}

/// `text` lower-cased with accents folded, whole.
pub fn fold_whole(text: &str) -> String {
    WHOLE.with(|analyzer| {
        let mut analyzer = analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        let mut folded = String::new();
        while let Some(token) = stream.next() {
            folded.push_str(&token.text);
        }
        folded
    })
}

/// The words of `text`, lower-cased with accents folded.
pub fn fold_words(text: &str) -> Vec<String> {
    WORDS.with(|analyzer| {
        let mut analyzer = analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            words.push(token.text.clone());
        }
        words
    })
}

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
    fn modes(word: &str) -> Vec<(SearchMode, u32)> {
        let mut modes = vec![
            (SearchMode::Word, 8),
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
        let mut ranked: Vec<(u32, i64, u128)> = Vec::new();
        let mut total = 0;
        for (reader, docs) in searcher.segment_readers().iter().zip(&matches) {
            total += docs.count();
            if docs.is_empty() {
                continue;
            }
            let scores = score(query, reader, docs, &context)?;
            let updated = reader.fast_fields().column_opt::<i64>("time.@updated_at")?;
            let hi = reader.fast_fields().u64("id_hi")?;
            let lo = reader.fast_fields().u64("id_lo")?;
            for (doc, score) in docs.iter().zip(scores) {
                let recency = updated
                    .as_ref()
                    .and_then(|column| column.first(doc))
                    .unwrap_or(i64::MIN);
                if let (Some(hi), Some(lo)) = (hi.first(doc), lo.first(doc)) {
                    ranked.push((score, recency, (u128::from(hi) << 64) | u128::from(lo)));
                }
            }
        }
        let wanted = offset.saturating_add(limit).min(ranked.len());
        let best_first = |a: &(u32, i64, u128), b: &(u32, i64, u128)| b.cmp(a);
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

/// Per member of `docs` (in order), the sum over query words of the best way it matched.
fn score(
    query: &SearchQuery,
    reader: &tantivy::SegmentReader,
    docs: &Bits,
    context: &execute::Context<'_>,
) -> tantivy::Result<Vec<u32>> {
    let members: Vec<u32> = docs.iter().collect();
    let mut scores = vec![0u32; members.len()];
    for word in &query.words {
        let mut best = vec![0u32; members.len()];
        for path in &query.paths {
            for (mode, points) in SearchQuery::modes(word) {
                let leaf = Plan::Leaf(Leaf::Search(path.clone(), mode, word.clone()));
                let bits = execute::evaluate_on(&leaf, reader, context)?;
                for (slot, doc) in members.iter().enumerate() {
                    if best[slot] < points && bits.contains(*doc) {
                        best[slot] = points;
                    }
                }
            }
        }
        for (total, best) in scores.iter_mut().zip(best) {
            *total += best;
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
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
}
