//! Where a contact's values came from and when its identity was last verified: the rules that
//! keep a verified value from being overwritten by what a browser says, and that decide
//! whether a visitor may be personalised for.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Contact, ContactFields, ContactPatch, FixedField, Provenance};

/// How many verified visitor ids a contact remembers (the most recent ones).
pub const MAX_VERIFIED_VISITORS: usize = 20;

/// How an identity was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationMethod {
    /// hex(HMAC-SHA256(identity secret, user id)), the older scheme.
    UserHash,
    /// A signed, expiring JWT minted by the business's backend.
    Token,
}

impl VerificationMethod {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserHash => "user_hash",
            Self::Token => "token",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user_hash" => Some(Self::UserHash),
            "token" => Some(Self::Token),
            _ => None,
        }
    }
}

/// The last verified identification of a contact, and the visitor ids it vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// When the identity was last verified.
    pub verified_at: DateTime<Utc>,
    /// How it was verified then.
    pub method: VerificationMethod,
    /// The visitor id linked by that verification, if the widget sent one.
    pub anonymous_id: Option<String>,
    /// Visitor ids linked by a verified identification, with when (at most
    /// [`MAX_VERIFIED_VISITORS`], the most recent).
    pub visitors: BTreeMap<String, DateTime<Utc>>,
}

impl Verification {
    /// Records a verification at `at` by `method`, linking `anonymous_id` if given.
    pub fn record(
        previous: Option<&Verification>,
        at: DateTime<Utc>,
        method: VerificationMethod,
        anonymous_id: Option<&str>,
    ) -> Self {
        let mut visitors = previous.map(|p| p.visitors.clone()).unwrap_or_default();
        if let Some(anonymous_id) = anonymous_id {
            visitors.insert(anonymous_id.to_owned(), at);
        }
        while visitors.len() > MAX_VERIFIED_VISITORS {
            let oldest = visitors
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => visitors.remove(&id),
                None => break,
            };
        }
        Self {
            verified_at: at,
            method,
            anonymous_id: anonymous_id.map(str::to_owned),
            visitors,
        }
    }

    /// Whether the visitor `anonymous_id` was linked by a verified identification within
    /// `lifetime` before `now`.
    pub fn vouches_for(&self, anonymous_id: &str, lifetime: Duration, now: DateTime<Utc>) -> bool {
        self.visitors
            .get(anonymous_id)
            .is_some_and(|at| now.signed_duration_since(*at) <= lifetime)
    }

    /// The union of two contacts' verifications (a merge): the latest, with both visitor lists.
    pub fn combine(a: Option<&Verification>, b: Option<&Verification>) -> Option<Verification> {
        let (latest, other) = match (a, b) {
            (None, None) => return None,
            (Some(one), None) | (None, Some(one)) => return Some(one.clone()),
            (Some(a), Some(b)) if a.verified_at >= b.verified_at => (a, b),
            (Some(a), Some(b)) => (b, a),
        };
        let mut combined = latest.clone();
        for (id, at) in &other.visitors {
            let entry = combined.visitors.entry(id.clone()).or_insert(*at);
            *entry = (*entry).max(*at);
        }
        Some(Verification::record(
            Some(&combined),
            combined.verified_at,
            combined.method,
            combined.anonymous_id.clone().as_deref(),
        ))
    }
}

/// Where each present value of a contact came from, by field key: built-in fields by their
/// segment spelling (`email`, `account_ref`, …), attributes by name.
pub type FieldSources = BTreeMap<String, Provenance>;

/// The keys of the values of `fields` that are present.
pub fn present_keys(fields: &ContactFields) -> Vec<String> {
    FixedField::ALL
        .into_iter()
        .filter(|field| field.value(fields).is_some())
        .map(|field| field.segment_name().to_owned())
        .chain(fields.last_seen_at.map(|_| "last_seen_at".to_owned()))
        .chain(
            fields
                .attributes
                .keys()
                .map(|name| name.as_str().to_owned()),
        )
        .collect()
}

/// Whether `a` and `b` hold the same value under `key` (both absent counts as the same).
pub fn same_value(a: &ContactFields, b: &ContactFields, key: &str) -> bool {
    if let Some(field) = FixedField::of_segment_name(key) {
        return field.value(a) == field.value(b);
    }
    match key {
        "last_seen_at" => a.last_seen_at == b.last_seen_at,
        attribute => {
            a.attributes
                .iter()
                .find(|(name, _)| name.as_str() == attribute)
                == b.attributes
                    .iter()
                    .find(|(name, _)| name.as_str() == attribute)
        }
    }
}

impl Contact {
    /// Records `provenance` as the source of every value that differs from `before`, and
    /// forgets the sources of values now absent.
    pub fn record_sources(&mut self, before: &ContactFields, provenance: Provenance) {
        for key in present_keys(&self.fields) {
            if !same_value(&self.fields, before, &key) || !self.field_sources.contains_key(&key) {
                self.field_sources.insert(key, provenance);
            }
        }
        let present = present_keys(&self.fields);
        self.field_sources
            .retain(|key, _| present.iter().any(|p| p == key));
    }

    /// Records `provenance` as the source of every present value that has none yet (a new
    /// contact).
    pub fn fill_sources(&mut self, provenance: Provenance) {
        for key in present_keys(&self.fields) {
            self.field_sources.entry(key).or_insert(provenance);
        }
    }

    /// Marks the values under `keys` as verified (they came from a verified token).
    pub fn mark_verified<'k>(&mut self, keys: impl IntoIterator<Item = &'k str>) {
        let present = present_keys(&self.fields);
        for key in keys {
            if present.iter().any(|p| p == key) {
                self.field_sources
                    .insert(key.to_owned(), Provenance::Verified);
            }
        }
    }

    /// The keys of the values that are verified.
    pub fn verified_keys(&self) -> Vec<&str> {
        self.field_sources
            .iter()
            .filter(|(_, provenance)| **provenance == Provenance::Verified)
            .map(|(key, _)| key.as_str())
            .collect()
    }

    /// The contact as a consumer that may not rely on its identity sees it: only what the
    /// visitor itself said (self-asserted values), everything else absent.
    pub fn self_asserted_only(&self) -> Contact {
        let asserted = |key: &str| self.field_sources.get(key) == Some(&Provenance::SelfAsserted);
        let fields = &self.fields;
        let mut view = self.clone();
        view.fields = ContactFields {
            attributes: fields
                .attributes
                .iter()
                .filter(|(name, _)| asserted(name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            last_seen_at: fields.last_seen_at,
            ..ContactFields::default()
        };
        // The external id is the business's, never the visitor's own word.
        for field in FixedField::ALL {
            if field != FixedField::ExternalId && asserted(field.segment_name()) {
                field.set_trusted(&mut view.fields, field.value(fields).map(str::to_owned));
            }
        }
        view.verification = None;
        // Consents come from the business's systems or a verified token, never the visitor.
        view.consents.clear();
        view
    }
}

/// The sources of a merged contact: each value keeps the source it had on the contact it was
/// taken from (the survivor's when both held it).
pub fn merged_sources(
    survivor: &Contact,
    absorbed: &Contact,
    merged: &ContactFields,
) -> FieldSources {
    present_keys(merged)
        .into_iter()
        .filter_map(|key| {
            let from = |contact: &Contact| {
                same_value(&contact.fields, merged, &key)
                    .then(|| contact.field_sources.get(&key).copied())
                    .flatten()
            };
            let source = from(survivor).or_else(|| from(absorbed))?;
            Some((key, source))
        })
        .collect()
}

impl ContactPatch {
    /// This patch without the changes to values `sources` says are verified: what a browser
    /// sends never overwrites what a verified token said.
    pub fn sparing_verified(&self, sources: &FieldSources) -> ContactPatch {
        let verified = |key: &str| sources.get(key) == Some(&Provenance::Verified);
        let mut spared = ContactPatch {
            attributes: self
                .attributes
                .iter()
                .filter(|(name, _)| !verified(name.as_str()))
                .map(|(name, change)| (name.clone(), change.clone()))
                .collect(),
            ..self.clone()
        };
        for field in FixedField::ALL {
            if verified(field.segment_name()) {
                field.keep_in(&mut spared);
            }
        }
        spared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AttributeName, AttributeValue, Email, FieldChange, Text, WorkspaceId};

    fn contact() -> Contact {
        let fields = ContactFields {
            email: Some(Email::parse("ada@example.com").unwrap()),
            name: Some(Text::parse("name", "Ada").unwrap()),
            ..ContactFields::default()
        };
        let mut contact = Contact::new(WorkspaceId::parse("acme").unwrap(), fields, Utc::now());
        contact.record_sources(&ContactFields::default(), Provenance::SelfAsserted);
        contact
    }

    #[test]
    fn sources_follow_changes_and_absences() {
        let mut c = contact();
        assert_eq!(c.field_sources.len(), 2);
        let before = c.fields.clone();
        c.fields.name = Some(Text::parse("name", "Ada L.").unwrap());
        c.fields.email = None;
        c.record_sources(&before, Provenance::Api);
        assert_eq!(c.field_sources.get("name"), Some(&Provenance::Api));
        assert!(!c.field_sources.contains_key("email"));
    }

    #[test]
    fn a_patch_spares_verified_values_only() {
        let mut c = contact();
        c.mark_verified(["email"]);
        let plan = AttributeName::parse("plan").unwrap();
        c.field_sources.insert("plan".into(), Provenance::Verified);
        let patch = ContactPatch {
            email: FieldChange::Set(Email::parse("eve@example.com").unwrap()),
            name: FieldChange::Set(Text::parse("name", "Eve").unwrap()),
            attributes: [(plan, Some(AttributeValue::String("pro".into())))].into(),
            ..ContactPatch::default()
        };
        let spared = patch.sparing_verified(&c.field_sources);
        assert!(spared.email.is_kept());
        assert!(!spared.name.is_kept());
        assert!(spared.attributes.is_empty());
    }

    #[test]
    fn self_asserted_view_drops_everything_else() {
        let mut c = contact();
        c.mark_verified(["email"]);
        let view = c.self_asserted_only();
        assert!(view.fields.email.is_none());
        assert_eq!(view.fields.name, c.fields.name);
    }

    #[test]
    fn verification_remembers_recent_visitors_within_lifetime() {
        let now = Utc::now();
        let mut v = Verification::record(
            None,
            now - Duration::days(40),
            VerificationMethod::Token,
            Some("old"),
        );
        v = Verification::record(Some(&v), now, VerificationMethod::UserHash, Some("new"));
        assert!(v.vouches_for("new", Duration::days(30), now));
        assert!(!v.vouches_for("old", Duration::days(30), now));
        assert!(!v.vouches_for("other", Duration::days(30), now));
        for i in 0..(MAX_VERIFIED_VISITORS + 5) {
            v = Verification::record(
                Some(&v),
                now + Duration::seconds(i as i64),
                VerificationMethod::Token,
                Some(&format!("v{i}")),
            );
        }
        assert_eq!(v.visitors.len(), MAX_VERIFIED_VISITORS);
        assert!(!v.visitors.contains_key("new"));
    }
}
