//! Pure types and rules of the contacts domain: no I/O, no async, no framework types.

mod access;
mod activity;
mod attribute;
mod consent;
mod contact;
mod error;
mod field_name;
mod fixed_field;
mod identifiers;
mod identity;
mod import_row;
mod membership;
mod merge;
mod merge_record;
mod network;
mod segment;
mod verification;
mod webhook;
mod workspace;

pub use access::{
    ApiKey, ApiKeyId, Caller, FieldPolicy, GOVERNED_FIELDS, KeyRate, NameSet, Scope, Scopes,
    parse_key_name,
};
pub use activity::{
    ActivityId, ActivitySummary, Conversation, ConversationInput, Event, EventName, EventRollup,
    MAX_EVENT_NAME_BYTES, MAX_EVENT_WINDOW_COUNT, earliest, event_properties,
};
pub use attribute::{
    AttributeChanges, AttributeDefinition, AttributeName, AttributeRegistry, AttributeType,
    AttributeValue, Declaration, DeclarationConflict, SealError, SealedValue, Sealer, json_number,
    normalise_sensitive, sensitive_names,
};
pub use consent::{
    Consent, ConsentOrigin, ConsentPurpose, ConsentStatement, Consents, MAX_CONSENT_SOURCE_BYTES,
    MAX_PURPOSE_DESCRIPTION_BYTES, MAX_PURPOSES, PurposeName, changes_any, check_statements,
    combine_consents, parse_consents_json, state_consents,
};
pub use contact::{Contact, ContactFields, ContactPatch, FieldChange, Text, WrittenBy};
pub use error::DomainError;
pub use field_name::{api_field_name, segment_field_name};
pub use fixed_field::FixedField;
pub use identifiers::{ContactId, Email, ExternalId, Phone, WorkspaceId};
pub use identity::{
    Identity, IdentityKey, IdentityKind, MAX_BLOCKED_VALUES, NEVER_LINKED, Provenance, Refusal,
    user_hash, verify_user_hash,
};
pub use import_row::{ImportRow, ParsedRow, check_columns};
pub use membership::{FeedEvent, MembershipCause, MembershipChange, MembershipKind};
pub use merge::{
    FieldDecision, FieldRule, MergeConflict, MergePlan, MergeRule, MergeSide, MergeStrategy,
    ValueSource, plan_merge,
};
pub use merge_record::{MergeId, MergeRecord};
pub use network::{TargetRules, is_global, parse_target_url};
pub use segment::{SavedSegment, Slug};
pub use verification::{
    FieldSources, MAX_VERIFIED_VISITORS, Verification, VerificationMethod, merged_sources,
};
pub use webhook::{
    DeliveryStatus, MAX_RETRY_AFTER, MAX_WEBHOOKS, RETRY_SCHEDULE, Webhook, WebhookDelivery,
    WebhookEvent, WebhookId, message_id, parse_webhook_url,
};
pub use workspace::{MAX_ACTIVE_KEYS, WorkspaceSettings};
