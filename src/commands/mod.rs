//! Subcommands of the `qwry-contacts` binary that have grown beyond a few lines.

pub mod backup;
pub mod import;
pub mod import_progress;
pub mod keys;
pub mod remote;
