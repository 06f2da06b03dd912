//! Who may do what: API key scopes, field policies (approved fields) and the caller of a request.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use qwry_segment::{BuiltinField, Field};

use super::{Contact, DomainError, FixedField, WorkspaceId};

/// What an API key is allowed to do. `admin` implies every other scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read contacts (fields subject to the key's field policy), attributes, history.
    ContactsRead,
    /// Create, change, delete, merge and import contacts.
    ContactsWrite,
    /// Validate segments, read saved segments, members and counts.
    SegmentsRead,
    /// Save and delete segments.
    SegmentsWrite,
    /// `trackVisitor` and `identify`.
    IdentityWrite,
    /// Read the values of sensitive attributes.
    PiiRead,
    /// Manage keys, the attribute registry and workspace settings; implies every scope.
    Admin,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 7] = [
        Self::ContactsRead,
        Self::ContactsWrite,
        Self::SegmentsRead,
        Self::SegmentsWrite,
        Self::IdentityWrite,
        Self::PiiRead,
        Self::Admin,
    ];

    /// The wire spelling, e.g. `contacts:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::SegmentsRead => "segments:read",
            Self::SegmentsWrite => "segments:write",
            Self::IdentityWrite => "identity:write",
            Self::PiiRead => "pii:read",
            Self::Admin => "admin",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == raw.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
                DomainError::invalid(
                    "scopes",
                    format!("unknown scope `{raw}`; use one of {}", known.join(", ")),
                )
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes a key holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Every scope (an admin key).
    pub fn all() -> Self {
        Self(Scope::ALL.into_iter().collect())
    }

    /// Parses a non-empty list of scope names (duplicates collapse).
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        let scopes = raw
            .iter()
            .map(|scope| Scope::parse(scope.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::of(scopes)
    }

    /// A non-empty set of scopes (duplicates collapse).
    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Result<Self, DomainError> {
        let scopes: BTreeSet<Scope> = scopes.into_iter().collect();
        if scopes.is_empty() {
            return Err(DomainError::invalid(
                "scopes",
                "give at least one scope, e.g. `contacts:read`",
            ));
        }
        Ok(Self(scopes))
    }

    /// Whether the key may act with `scope` (`admin` grants everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.0.contains(&scope) || self.0.contains(&Scope::Admin)
    }

    /// The scopes, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

/// Names of the built-in fields a field policy governs; `id`, `created_at` and `updated_at`
/// are always readable.
pub const GOVERNED_FIELDS: [&str; 10] = [
    "external_id",
    "email",
    "name",
    "phone",
    "company",
    "account_ref",
    "last_seen_at",
    "conversations",
    "events",
    "consents",
];

/// A set of names: everything, or exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NameSet {
    /// Every name, including ones declared later.
    #[default]
    All,
    /// Only these names.
    Only(BTreeSet<String>),
}

impl NameSet {
    /// Adds `name` (no-op for the set of every name).
    pub fn insert(&mut self, name: &str) {
        if let Self::Only(names) = self {
            names.insert(name.to_owned());
        }
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.contains(name),
        }
    }

    /// The names, or `None` for all.
    pub fn names(&self) -> Option<Vec<String>> {
        match self {
            Self::All => None,
            Self::Only(names) => Some(names.iter().cloned().collect()),
        }
    }
}

/// Which fields an API key may read (its approved fields). Applies to query results, exports,
/// identities shown, and to the fields its segments may test, so that counting cannot reveal a
/// hidden value either.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPolicy {
    /// Readable built-in fields (of [`GOVERNED_FIELDS`]).
    pub fields: NameSet,
    /// Readable custom attributes.
    pub attributes: NameSet,
    /// Personalise only for verified visitors: a lookup by anonymous id shows the approved
    /// fields only when a verified `identify` linked that visitor within the workspace's
    /// verification lifetime (meant for a chatbot's key).
    pub require_verified_identity: bool,
}

impl FieldPolicy {
    /// Everything readable.
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// Parses the two lists (`None` = all). Built-in names are checked against
    /// [`GOVERNED_FIELDS`]; attribute names are kept as given (an attribute may be declared later).
    pub fn parse(
        fields: Option<Vec<String>>,
        attributes: Option<Vec<String>>,
    ) -> Result<Self, DomainError> {
        let fields = match fields {
            None => NameSet::All,
            Some(names) => {
                let mut set = BTreeSet::new();
                for given in names {
                    let name = super::segment_field_name(given.trim());
                    if !GOVERNED_FIELDS.contains(&name.as_str()) {
                        let governed: Vec<String> = GOVERNED_FIELDS
                            .iter()
                            .map(|name| super::api_field_name(name))
                            .collect();
                        return Err(DomainError::invalid(
                            "fieldPolicy.fields",
                            format!(
                                "`{}` is not a built-in field a policy governs; use {}",
                                given.trim(),
                                governed.join(", ")
                            ),
                        ));
                    }
                    set.insert(name);
                }
                NameSet::Only(set)
            }
        };
        let attributes = match attributes {
            None => NameSet::All,
            Some(names) => NameSet::Only(
                names
                    .into_iter()
                    .map(|name| name.trim().to_owned())
                    .filter(|name| !name.is_empty())
                    .collect(),
            ),
        };
        Ok(Self {
            fields,
            attributes,
            require_verified_identity: false,
        })
    }

    /// Whether the built-in field named `name` (segment spelling, e.g. `account_ref`) is readable.
    pub fn allows_builtin(&self, name: &str) -> bool {
        !GOVERNED_FIELDS.contains(&name) || self.fields.contains(name)
    }

    /// Whether the custom attribute `name` is readable.
    pub fn allows_attribute(&self, name: &str) -> bool {
        self.attributes.contains(name)
    }

    /// Whether a segment field is readable.
    pub fn allows_field(&self, field: &Field) -> bool {
        match field {
            Field::Builtin(builtin) => self.allows_builtin(governing_name(*builtin)),
            Field::Attribute(name) => self.allows_attribute(name),
            Field::EventCount(_) | Field::EventAt(..) => self.allows_builtin("events"),
            Field::Consent(_) => self.allows_builtin("consents"),
        }
    }
}

/// The policy name that governs a built-in segment field: the activity counters and times
/// go with `conversations`, the first sighting with `last_seen_at`, the rest by their own name.
fn governing_name(builtin: BuiltinField) -> &'static str {
    match builtin {
        BuiltinField::ConversationCount | BuiltinField::LastConversationAt => "conversations",
        BuiltinField::FirstSeenAt => "last_seen_at",
        other => other.name(),
    }
}

/// The opaque id of an API key (a ULID), shown in lists and recorded as the actor of writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// A fresh id.
    pub fn generate() -> Self {
        Self(format!("key_{}", ulid::Ulid::new()))
    }

    /// Parses an id given by a client.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let raw = raw.trim();
        let valid = raw
            .strip_prefix("key_")
            .is_some_and(|rest| ulid::Ulid::from_string(rest).is_ok());
        if !valid {
            return Err(DomainError::invalid(
                "id",
                format!("`{raw}` is not an API key id (they look like `key_01J…`)"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps an id read back from the store.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key's human name: 1 to 100 characters, e.g. `routing engine (prod)`.
pub fn parse_key_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "a key's name must be 1 to 100 printable characters",
        ));
    }
    Ok(name.to_owned())
}

/// A key's own request rate: `per_second` on average, up to `burst` at once after a quiet
/// spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRate {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests at once.
    pub burst: u32,
}

impl KeyRate {
    /// The highest rate a key may be given.
    pub const MAX_PER_SECOND: u32 = 100_000;

    /// A rate of `per_second` (1 to [`Self::MAX_PER_SECOND`]) with bursts of `burst` (from
    /// `per_second` to 10 times it; twice the rate when omitted).
    pub fn parse(per_second: i64, burst: Option<i64>) -> Result<Self, DomainError> {
        let per_second = u32::try_from(per_second)
            .ok()
            .filter(|rate| (1..=Self::MAX_PER_SECOND).contains(rate))
            .ok_or_else(|| {
                DomainError::invalid(
                    "rateLimit.perSecond",
                    format!(
                        "a key's rate is 1 to {} requests a second",
                        Self::MAX_PER_SECOND
                    ),
                )
            })?;
        let burst = match burst {
            None => per_second.saturating_mul(2),
            Some(burst) => u32::try_from(burst)
                .ok()
                .filter(|burst| *burst >= per_second && *burst <= per_second.saturating_mul(10))
                .ok_or_else(|| {
                    DomainError::invalid(
                        "rateLimit.burst",
                        "a key's burst is from its rate to 10 times its rate",
                    )
                })?,
        };
        Ok(Self { per_second, burst })
    }
}

/// An API key as stored (never with its secret; only the secret's hash is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Opaque id.
    pub id: ApiKeyId,
    /// The one workspace the key acts in.
    pub workspace: WorkspaceId,
    /// Human name.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// What it may read.
    pub policy: FieldPolicy,
    /// The first characters of the secret, to tell keys apart in lists.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Which key (or `bootstrap`, `cli`) created it.
    pub created_by: String,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its own request rate; the server's default (`RATE_LIMIT_PER_SECOND`) when `None`.
    pub rate: Option<KeyRate>,
}

/// The authenticated caller of a request: the key's identity, workspace and rights.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The key acting, recorded as the actor of writes.
    pub key_id: String,
    /// The workspace every read and write of the request is confined to.
    pub workspace: WorkspaceId,
    /// What it may do.
    pub scopes: Scopes,
    /// What it may read.
    pub policy: FieldPolicy,
    /// The key's own request rate (`None`: the server's default).
    pub rate: Option<KeyRate>,
}

impl Caller {
    /// The caller an API key authenticates.
    pub fn of_key(key: &ApiKey) -> Self {
        Self {
            key_id: key.id.to_string(),
            workspace: key.workspace.clone(),
            scopes: key.scopes.clone(),
            policy: key.policy.clone(),
            rate: key.rate,
        }
    }

    /// A caller with every right in `workspace`, for commands run by the operator and tests.
    pub fn operator(workspace: WorkspaceId, actor: &str) -> Self {
        Self {
            key_id: actor.to_owned(),
            workspace,
            scopes: Scopes::all(),
            policy: FieldPolicy::unrestricted(),
            rate: None,
        }
    }

    /// Whether the caller holds `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.allows(scope)
    }

    /// Whether the caller may read custom attribute `name`, given whether it is sensitive
    /// (sensitive values need `pii:read` on top of the field policy).
    pub fn reads_attribute(&self, name: &str, sensitive: bool) -> bool {
        self.policy.allows_attribute(name) && (!sensitive || self.allows(Scope::PiiRead))
    }

    /// `contact` with only what the caller may read: unapproved built-in fields cleared,
    /// unapproved (and, without `pii:read`, sensitive) attributes removed; for a key that
    /// requires verified identities (read here in bulk, not through a verified visitor), only
    /// what the visitor itself said.
    pub fn redact(&self, contact: Contact, is_sensitive: impl Fn(&str) -> bool) -> Contact {
        let mut contact = if self.policy.require_verified_identity {
            contact.self_asserted_only()
        } else {
            contact
        };
        let policy = &self.policy;
        let fields = &mut contact.fields;
        for field in FixedField::ALL {
            if !policy.allows_builtin(field.segment_name()) {
                field.clear(fields);
            }
        }
        if !policy.allows_builtin("last_seen_at") {
            fields.last_seen_at = None;
            contact.activity.first_seen_at = None;
        }
        if !policy.allows_builtin("conversations") {
            contact.activity.conversation_count = 0;
            contact.activity.last_conversation_at = None;
        }
        if !policy.allows_builtin("consents") {
            contact.consents.clear();
        }
        let fields = &mut contact.fields;
        fields
            .attributes
            .retain(|name, _| self.reads_attribute(name.as_str(), is_sensitive(name.as_str())));
        contact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_field_is_governed_by_field_policies() {
        for field in FixedField::ALL {
            assert!(GOVERNED_FIELDS.contains(&field.segment_name()), "{field:?}");
        }
    }

    #[test]
    fn admin_implies_every_scope() {
        let admin = Scopes::parse(&["admin"]).unwrap();
        assert!(Scope::ALL.iter().all(|scope| admin.allows(*scope)));
        let reader = Scopes::parse(&["contacts:read"]).unwrap();
        assert!(reader.allows(Scope::ContactsRead));
        assert!(!reader.allows(Scope::ContactsWrite));
        assert!(!reader.allows(Scope::Admin));
    }

    #[test]
    fn scopes_are_parsed_strictly() {
        let error = Scopes::parse(&["contacts:read", "contacts:delete"]).unwrap_err();
        assert!(error.to_string().contains("`contacts:delete`"), "{error}");
        assert!(Scopes::parse::<&str>(&[]).is_err());
    }

    #[test]
    fn policies_govern_named_fields_and_attributes() {
        let policy =
            FieldPolicy::parse(Some(vec!["name".into()]), Some(vec!["plan".into()])).unwrap();
        assert!(policy.allows_builtin("name"));
        assert!(!policy.allows_builtin("email"));
        assert!(policy.allows_builtin("created_at"), "always readable");
        assert!(policy.allows_attribute("plan"));
        assert!(!policy.allows_attribute("ltv"));
        assert!(FieldPolicy::parse(Some(vec!["id".into()]), None).is_err());
        assert!(FieldPolicy::unrestricted().allows_attribute("anything"));
    }

    #[test]
    fn key_ids_round_trip() {
        let id = ApiKeyId::generate();
        assert_eq!(ApiKeyId::parse(id.as_str()).unwrap(), id);
        assert!(ApiKeyId::parse("01J").is_err());
    }
}
