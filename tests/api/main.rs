//! Black-box tests: the real service on 127.0.0.1:0 with a real embedded SurrealDB, spoken to
//! over HTTP. One binary, one module per area.

mod access;
mod activity;
mod attributes;
mod bulk;
mod cached_reads;
mod catalog;
mod contacts;
mod crash;
mod errors;
mod frontend;
mod hardening;
mod helpers;
mod http;
mod identity;
mod identity_tokens;
mod instances;
mod kill_loop;
mod live;
mod merges;
mod operations;
mod outside_probes;
mod persistence;
mod privacy;
mod process;
mod routing;
mod schema;
mod segments;
mod sensitive;
mod server_mode;
mod socket_gate;
mod strict_input;
mod tenancy;
mod test_store;
mod upsert;
mod webhooks;
