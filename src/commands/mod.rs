//! Subcommands of the `qwry-contacts` binary that have grown beyond a few lines.

pub mod backup;
pub mod keys;
pub mod remote;
