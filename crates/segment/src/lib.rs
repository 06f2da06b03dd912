//! The segment language of qwry-contacts: text in, checked tree out, and an in-memory evaluator.
//!
//! ```text
//! plan = "pro" and ltv >= 100 and (country in ["DE", "FR"] or tags has "vip")
//!   and last_seen_at within 30d and not email ends_with "@example.com" and in segment "trials"
//! ```
//! [`parse`] gives the syntax tree ([`ast::Expr`], whose `Display` is the canonical text);
//! [`check`] resolves fields against a [`Catalog`] and yields a [`Checked`] tree; [`eval::matches`]
//! decides one record. This crate does no I/O.

#![deny(missing_docs)]

pub mod ast;
mod catalog;
mod check;
mod checked;
mod error;
pub mod eval;
mod lexer;
pub mod mask;
mod parser;
mod span;

pub use catalog::Catalog;
pub use check::{check, snake_case};
pub use checked::{
    BuiltinField, Checked, Field, FieldType, MAX_EVENT_NAME_BYTES, MAX_EVENT_WINDOW_COUNT,
    MAX_PURPOSE_NAME_BYTES, Test, TimePoint, is_event_name, is_purpose_name,
};
pub use error::{Diagnostic, ErrorCode};
pub use lexer::MAX_SOURCE_BYTES;
pub use parser::{
    MAX_DEPTH, MAX_LIST_LEN, MAX_SYNTAX_DIAGNOSTICS, parse, parse_date, parse_recovering,
};
pub use span::Span;

#[cfg(test)]
mod roundtrip_tests;
