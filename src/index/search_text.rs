//! The text search reads: which built-in fields it looks in, and text lower-cased with accents
//! folded, whole or in words (the same on the document's side and the query's).

use std::cell::RefCell;

use qwry_segment::BuiltinField;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, SimpleTokenizer, TextAnalyzer,
};

/// The built-in fields search looks in.
pub const SEARCHABLE: [BuiltinField; 5] = [
    BuiltinField::Name,
    BuiltinField::Email,
    BuiltinField::Phone,
    BuiltinField::ExternalId,
    BuiltinField::Company,
];

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
