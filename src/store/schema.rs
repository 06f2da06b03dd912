//! The SurrealQL schema, applied idempotently at every start.
//!
//! Record ids embed the workspace (`contact:['acme', '01J…']`), so every key of a tenant is a
//! contiguous range: lookups, pages and counts cannot reach another workspace's records.
//! An identity's record id is its `(workspace, kind, value)`, so SurrealDB's primary key makes
//! identities unique per workspace; a second unique index on those fields only doubled the
//! writes of every identity and is removed from stores that had it. A contact's identities are
//! listed on its record (schema version 2, see `migrations`), so they need no owner index. An
//! external id is unique through its identity record; the contacts' unique index on it, which
//! only did that job again, is gone since schema version 3. The webhook outbox is read through a
//! cursor and a retry lane instead of an index on the deliveries' status (schema version 5, see
//! `outbox`).

/// Statements run at connect time; each is a no-op when already applied.
pub const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS contact SCHEMALESS;
DEFINE TABLE IF NOT EXISTS attribute SCHEMALESS;
DEFINE INDEX IF NOT EXISTS attribute_workspace ON attribute FIELDS workspace;
DEFINE TABLE IF NOT EXISTS segment SCHEMALESS;
DEFINE INDEX IF NOT EXISTS segment_workspace ON segment FIELDS workspace;
DEFINE TABLE IF NOT EXISTS change SCHEMALESS;
DEFINE TABLE IF NOT EXISTS contact_identity SCHEMALESS;
REMOVE INDEX IF EXISTS contact_identity_value ON contact_identity;
DEFINE TABLE IF NOT EXISTS contact_alias SCHEMALESS;
DEFINE INDEX IF NOT EXISTS contact_alias_survivor ON contact_alias FIELDS workspace, survivor;
DEFINE TABLE IF NOT EXISTS merge_audit SCHEMALESS;
DEFINE INDEX IF NOT EXISTS merge_audit_survivor ON merge_audit FIELDS workspace, survivor;
DEFINE INDEX IF NOT EXISTS merge_audit_absorbed ON merge_audit FIELDS workspace, absorbed;
DEFINE TABLE IF NOT EXISTS workspace_settings SCHEMALESS;
DEFINE TABLE IF NOT EXISTS api_key SCHEMALESS;
DEFINE INDEX IF NOT EXISTS api_key_secret ON api_key FIELDS secret_hash UNIQUE;
DEFINE INDEX IF NOT EXISTS api_key_workspace ON api_key FIELDS workspace;
DEFINE TABLE IF NOT EXISTS catalog_version SCHEMALESS;
DEFINE TABLE IF NOT EXISTS token_use SCHEMALESS;
DEFINE TABLE IF NOT EXISTS conversation SCHEMALESS;
DEFINE INDEX IF NOT EXISTS conversation_contact ON conversation FIELDS workspace, contact, started_at;
DEFINE TABLE IF NOT EXISTS contact_event SCHEMALESS;
DEFINE TABLE IF NOT EXISTS segment_change SCHEMALESS;
DEFINE TABLE IF NOT EXISTS live_clock SCHEMALESS;
DEFINE TABLE IF NOT EXISTS lease SCHEMALESS;
DEFINE TABLE IF NOT EXISTS schema_version SCHEMALESS;
DEFINE TABLE IF NOT EXISTS webhook SCHEMALESS;
DEFINE INDEX IF NOT EXISTS webhook_workspace ON webhook FIELDS workspace;
DEFINE TABLE IF NOT EXISTS webhook_delivery SCHEMALESS;
DEFINE TABLE IF NOT EXISTS webhook_retry SCHEMALESS;
DEFINE TABLE IF NOT EXISTS webhook_cursor SCHEMALESS;
DEFINE INDEX IF NOT EXISTS contact_event_contact ON contact_event FIELDS workspace, contact, at;
DEFINE TABLE IF NOT EXISTS suppressed SCHEMALESS;
DEFINE TABLE IF NOT EXISTS erased_contact SCHEMALESS;
DEFINE TABLE IF NOT EXISTS contact_access SCHEMALESS;
DEFINE TABLE IF NOT EXISTS erasure_receipt SCHEMALESS;
DEFINE TABLE IF NOT EXISTS consent_purpose SCHEMALESS;
DEFINE TABLE IF NOT EXISTS segment_day SCHEMALESS;
DEFINE INDEX IF NOT EXISTS consent_purpose_workspace ON consent_purpose FIELDS workspace;
DEFINE INDEX IF NOT EXISTS erasure_receipt_workspace ON erasure_receipt FIELDS workspace;
"#;
