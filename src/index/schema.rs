//! The tantivy schema: fixed fields for identity and confinement, and one JSON field per value
//! type, keyed by path (`@email` for built-ins, the attribute's name for custom attributes).
//!
//! | field | holds | serves |
//! | --- | --- | --- |
//! | `ws` | workspace slug (raw term) | confining every query to one workspace |
//! | `key` | `workspace/contact-id` (raw term) | replacing a contact's document |
//! | `id_hi`, `id_lo` | the ULID's two halves (fast) | paging by id without stored fields |
//! | `revision` | the contact's revision (fast) | never replacing a document by an older state |
//! | `present` | one term per field with a value | `exists` |
//! | `text` | strings, exact (raw terms) | `=`, `in` |
//! | `text_lower` | strings, lower-cased (raw terms) | `contains`, `starts_with`, `ends_with`, by an automaton over the term dictionary (no n-gram blow-up) |
//! | `number` | finite numbers (fast) | ranges and equality |
//! | `time` | datetimes as i64 nanoseconds (fast) | exact ranges at full precision |
//! | `flag` | booleans (terms) | `= true/false` |
//! | `list` | string-list items (raw terms) | `has`, `has any`, `has all` |
//! | `search` | name, email, phone, external id, company: lower-cased, accents folded, whole (raw terms) | type-ahead search inside values |
//! | `search_words` | the same values' words, folded (raw terms) | type-ahead search by word, word prefix and one typo |

use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, STRING, Schema, TextFieldIndexing,
};

/// Handles to every field of the schema.
#[derive(Debug, Clone, Copy)]
pub struct IndexFields {
    /// Workspace slug.
    pub workspace: Field,
    /// `workspace/contact-id`.
    pub key: Field,
    /// High 64 bits of the contact's ULID.
    pub id_hi: Field,
    /// Low 64 bits of the contact's ULID.
    pub id_lo: Field,
    /// The contact's revision.
    pub revision: Field,
    /// Paths that have a value.
    pub present: Field,
    /// Exact strings by path.
    pub text: Field,
    /// Lower-cased strings by path.
    pub text_lower: Field,
    /// Numbers by path.
    pub number: Field,
    /// Datetimes (i64 ns) by path.
    pub time: Field,
    /// Booleans by path.
    pub flag: Field,
    /// String-list items by path.
    pub list: Field,
    /// Searchable built-ins, folded, whole, by path.
    pub search: Field,
    /// Searchable built-ins' folded words, by path.
    pub search_words: Field,
}

fn raw_terms() -> JsonObjectOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic);
    JsonObjectOptions::default().set_indexing_options(indexing)
}

/// Builds the schema and returns it with its field handles.
pub fn build_schema() -> (Schema, IndexFields) {
    let mut builder = Schema::builder();
    let fields = IndexFields {
        workspace: builder.add_text_field("ws", STRING),
        key: builder.add_text_field("key", STRING),
        id_hi: builder.add_u64_field("id_hi", FAST),
        id_lo: builder.add_u64_field("id_lo", FAST),
        revision: builder.add_u64_field("revision", FAST),
        present: builder.add_text_field("present", STRING),
        text: builder.add_json_field("text", raw_terms()),
        text_lower: builder.add_json_field("text_lower", raw_terms()),
        number: builder.add_json_field("number", JsonObjectOptions::default().set_fast(None)),
        time: builder.add_json_field("time", JsonObjectOptions::default().set_fast(None)),
        flag: builder.add_json_field("flag", raw_terms()),
        list: builder.add_json_field("list", raw_terms()),
        search: builder.add_json_field("search", raw_terms()),
        search_words: builder.add_json_field("search_words", raw_terms()),
    };
    (builder.build(), fields)
}

/// Resolves the handles of an existing index's schema.
pub fn fields_of(schema: &Schema) -> tantivy::Result<IndexFields> {
    let field = |name: &str| schema.get_field(name);
    Ok(IndexFields {
        workspace: field("ws")?,
        key: field("key")?,
        id_hi: field("id_hi")?,
        id_lo: field("id_lo")?,
        revision: field("revision")?,
        present: field("present")?,
        text: field("text")?,
        text_lower: field("text_lower")?,
        number: field("number")?,
        time: field("time")?,
        flag: field("flag")?,
        list: field("list")?,
        search: field("search")?,
        search_words: field("search_words")?,
    })
}
