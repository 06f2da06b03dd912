//! Black-box tests: the real service on 127.0.0.1:0 with a real embedded SurrealDB, spoken to
//! over HTTP. One binary, one module per area.

mod access;
mod attributes;
mod bulk;
mod contacts;
mod crash;
mod errors;
mod helpers;
mod http;
mod identity;
mod merges;
mod persistence;
mod privacy;
mod process;
mod schema;
mod segments;
mod sensitive;
mod tenancy;
mod upsert;
