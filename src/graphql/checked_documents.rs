//! Parsed documents that passed the shape limits, kept by their text. Frontends, routing
//! engines and persisted queries send the same few query texts over and over; parsing one took a
//! fifth of the server's CPU on `contact(id:)`, so a text seen before skips the parse and the
//! shape walk. Validation still runs on every request (it depends on the variables).

use async_graphql::parser::types::ExecutableDocument;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// Estimated heap bytes of a parsed document per byte of its text (names, positions and
/// nodes), measured roughly on the queries of the API tests.
const BYTES_PER_TEXT_BYTE: u64 = 16;
/// Fixed cost per kept document, so that tiny queries still count.
const BYTES_PER_DOCUMENT: u64 = 512;

#[derive(Clone)]
struct ByTextLength;

impl Weighter<String, ExecutableDocument> for ByTextLength {
    fn weight(&self, text: &String, _document: &ExecutableDocument) -> u64 {
        BYTES_PER_DOCUMENT + text.len() as u64 * BYTES_PER_TEXT_BYTE
    }
}

/// A bounded cache of checked documents (evicted by use, bounded by estimated bytes).
pub struct CheckedDocuments {
    documents: Cache<String, ExecutableDocument, ByTextLength>,
}

impl CheckedDocuments {
    /// Keeps documents up to about `bytes` of memory.
    pub fn new(bytes: u64) -> Self {
        let estimated_items = (bytes / (BYTES_PER_DOCUMENT * 4)).max(16) as usize;
        Self {
            documents: Cache::with_weighter(estimated_items, bytes, ByTextLength),
        }
    }

    /// The document parsed from `text`, if it passed the limits before.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.documents.get(text)
    }

    /// Keeps `document`, parsed from `text`, which passed the limits.
    pub fn keep(&self, text: String, document: ExecutableDocument) {
        self.documents.insert(text, document);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_documents_come_back_by_their_text_within_the_budget() {
        let documents = CheckedDocuments::new(64 * 1024);
        let text = "{ contact(id: \"c\") { id } }";
        assert!(documents.get(text).is_none());
        let parsed = async_graphql::parser::parse_query(text).unwrap();
        documents.keep(text.to_owned(), parsed);
        let again = documents.get(text).expect("kept");
        assert_eq!(again.operations.iter().count(), 1);

        for n in 0..1_000 {
            let text = format!("{{ contact(id: \"{n}\") {{ id name email }} }}");
            let parsed = async_graphql::parser::parse_query(&text).unwrap();
            documents.keep(text, parsed);
        }
        let weight = documents.documents.weight();
        assert!(weight <= 64 * 1024, "bounded: {weight}");
    }
}
