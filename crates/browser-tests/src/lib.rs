//! Nothing but tests: see `tests/browser.rs`.
#![deny(missing_docs)]
