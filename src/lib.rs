//! qwry-contacts: the system of record that turns anonymous chat visitors into identified
//! customers, served over GraphQL. See `README.md` for running it and `../shared/DESIGN.md`
//! for the architecture.

#![deny(missing_docs)]

pub mod actor;
pub mod app;
pub mod config;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod huge_pages;
pub mod index;
pub mod private_file;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod thread_priority;
pub mod vault;
