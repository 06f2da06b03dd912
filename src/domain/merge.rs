//! Merge plans: how two contacts become one, field by field, with the side each value came from
//! and the rule that decided it. Previews show a plan; merges write exactly that plan.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::{
    AttributeName, AttributeType, AttributeValue, Contact, ContactFields, DomainError, FixedField,
};

/// How a custom attribute is merged, declared per attribute in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeRule {
    /// The survivor's value where it has one, else the absorbed contact's (the default).
    Survivor,
    /// The value of the contact updated most recently, else the other's.
    MostRecent,
    /// The value of the contact created first, else the other's.
    Oldest,
    /// The survivor's value unless it is empty (`""` or `[]`), else the absorbed contact's.
    NonEmpty,
    /// Both lists, survivor's items first, without duplicates (string lists only).
    Union,
    /// The sum of both values (numbers only).
    Sum,
}

impl MergeRule {
    /// Every rule, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Survivor,
        Self::MostRecent,
        Self::Oldest,
        Self::NonEmpty,
        Self::Union,
        Self::Sum,
    ];

    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Survivor => "survivor",
            Self::MostRecent => "most_recent",
            Self::Oldest => "oldest",
            Self::NonEmpty => "non_empty",
            Self::Union => "union",
            Self::Sum => "sum",
        }
    }

    /// Parses the storage spelling.
    pub fn from_storage(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|rule| rule.as_str() == raw)
    }

    /// The rule an attribute of `value_type` gets unless declared otherwise: lists union,
    /// everything else keeps the survivor's value.
    pub fn default_for(value_type: AttributeType) -> Self {
        match value_type {
            AttributeType::StringList => Self::Union,
            _ => Self::Survivor,
        }
    }

    /// Refuses rules that do not fit the attribute's type.
    pub fn check_fits(
        self,
        name: &AttributeName,
        value_type: AttributeType,
    ) -> Result<(), DomainError> {
        let fits = match self {
            Self::Union => value_type == AttributeType::StringList,
            Self::Sum => value_type == AttributeType::Number,
            _ => true,
        };
        if fits {
            return Ok(());
        }
        Err(DomainError::attribute(
            name.as_str(),
            format!(
                "merge rule `{}` does not fit attribute `{name}`, which is {}; use {}",
                self.as_str().to_uppercase(),
                value_type.described(),
                if self == Self::Union {
                    "UNION with string lists"
                } else {
                    "SUM with numbers"
                }
            ),
        ))
    }
}

/// One of the two contacts of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeSide {
    /// The contact that remains.
    Survivor,
    /// The contact merged away.
    Absorbed,
}

/// Where a merged value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// The survivor's value.
    Survivor,
    /// The absorbed contact's value.
    Absorbed,
    /// Combined from both (union, sum).
    Both,
    /// Neither had a value.
    Neither,
}

/// The rule that decided a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// A custom attribute's declared rule (fixed fields use [`MergeRule::Survivor`]).
    Attribute(MergeRule),
    /// The earlier of two instants (`createdAt`).
    Earliest,
    /// The later of two instants (`lastSeenAt`).
    Latest,
    /// The merge strategy chose (conflicting external ids).
    Strategy,
}

/// Choices the caller makes for a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeStrategy {
    /// Whose external id wins when both are set and differ; `None` refuses such merges.
    pub external_id: Option<MergeSide>,
}

/// How one field of the merged contact was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecision {
    /// The field, in the API's spelling (`email`, `lastSeenAt`, or an attribute name).
    pub field: String,
    /// Whether the field is a custom attribute.
    pub is_attribute: bool,
    /// The merged value (`null` when absent).
    pub value: Json,
    /// Where it came from.
    pub source: ValueSource,
    /// Why.
    pub rule: FieldRule,
}

/// The result of merging two contacts, before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct MergePlan {
    /// The survivor as it will be stored (next revision).
    pub merged: Contact,
    /// Every field that either contact has, decided.
    pub decisions: Vec<FieldDecision>,
}

/// Why two contacts cannot be merged as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeConflict {
    /// Both carry an external id and they differ.
    #[error(
        "both contacts have external ids (`{survivor}` and `{absorbed}`); pass `strategy: {{ externalId: SURVIVOR }}` or `ABSORBED` to choose which wins"
    )]
    ExternalIds {
        /// The survivor's.
        survivor: String,
        /// The absorbed contact's.
        absorbed: String,
    },
}

/// Plans merging `absorbed` into `survivor`: fixed fields keep the survivor's value where set,
/// custom attributes follow `rule_of`, `createdAt` is the earlier and `lastSeenAt` the later.
pub fn plan_merge(
    survivor: &Contact,
    absorbed: &Contact,
    rule_of: &dyn Fn(&AttributeName) -> Option<MergeRule>,
    strategy: MergeStrategy,
    now: DateTime<Utc>,
) -> Result<MergePlan, MergeConflict> {
    let (s, a) = (&survivor.fields, &absorbed.fields);
    let mut decisions = Vec::new();
    // Fixed fields keep the survivor's value where set (the external id is decided below).
    let mut fields = ContactFields::default();
    for field in FixedField::ALL {
        if field == FixedField::ExternalId {
            continue;
        }
        let taken = |fields: &ContactFields| field.value(fields).map(str::to_owned);
        let (value, source) = prefer_survivor(taken(s), taken(a));
        decisions.push(FieldDecision {
            field: field.api_name().to_owned(),
            is_attribute: false,
            value: value.clone().map_or(Json::Null, Json::String),
            source,
            rule: FieldRule::Attribute(MergeRule::Survivor),
        });
        field.set_trusted(&mut fields, value);
    }
    let external_id_decision = decide_external_id(survivor, absorbed, strategy)?;
    fields.external_id = match external_id_decision.source {
        ValueSource::Survivor => s.external_id.clone(),
        ValueSource::Absorbed => a.external_id.clone(),
        _ => None,
    };
    decisions.insert(0, external_id_decision);

    let (last_seen_at, last_seen_source) = later(s.last_seen_at, a.last_seen_at);
    decisions.push(FieldDecision {
        field: "lastSeenAt".to_owned(),
        is_attribute: false,
        value: last_seen_at.map_or(Json::Null, |at| Json::String(at.to_rfc3339())),
        source: last_seen_source,
        rule: FieldRule::Latest,
    });
    let (created_at, created_source) = if absorbed.created_at < survivor.created_at {
        (absorbed.created_at, ValueSource::Absorbed)
    } else {
        (survivor.created_at, ValueSource::Survivor)
    };
    decisions.push(FieldDecision {
        field: "createdAt".to_owned(),
        is_attribute: false,
        value: Json::String(created_at.to_rfc3339()),
        source: created_source,
        rule: FieldRule::Earliest,
    });

    let names: BTreeSet<&AttributeName> = s.attributes.keys().chain(a.attributes.keys()).collect();
    let mut attributes = s.attributes.clone();
    for name in names {
        let survivor_value = s.attributes.get(name);
        let absorbed_value = a.attributes.get(name);
        let rule = rule_of(name).unwrap_or_else(|| {
            let value_type = survivor_value
                .or(absorbed_value)
                .map(AttributeValue::value_type);
            MergeRule::default_for(value_type.unwrap_or(AttributeType::String))
        });
        let (value, source) =
            merge_attribute(rule, survivor, absorbed, survivor_value, absorbed_value);
        decisions.push(FieldDecision {
            field: name.as_str().to_owned(),
            is_attribute: true,
            value: value.as_ref().map_or(Json::Null, AttributeValue::to_json),
            source,
            rule: FieldRule::Attribute(rule),
        });
        match value {
            Some(value) => attributes.insert(name.clone(), value),
            None => attributes.remove(name),
        };
    }

    fields.attributes = attributes;
    fields.last_seen_at = last_seen_at;
    let merged = Contact {
        field_sources: super::merged_sources(survivor, absorbed, &fields),
        verification: super::Verification::combine(
            survivor.verification.as_ref(),
            absorbed.verification.as_ref(),
        ),
        activity: survivor.activity.combine(&absorbed.activity),
        consents: super::combine_consents(&survivor.consents, &absorbed.consents),
        fields,
        created_at,
        updated_at: now.max(survivor.updated_at),
        revision: survivor.revision + 1,
        ..survivor.clone()
    };
    Ok(MergePlan { merged, decisions })
}

fn decide_external_id(
    survivor: &Contact,
    absorbed: &Contact,
    strategy: MergeStrategy,
) -> Result<FieldDecision, MergeConflict> {
    let s = survivor
        .fields
        .external_id
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let a = absorbed
        .fields
        .external_id
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let decision = |value: Option<String>, source, rule| FieldDecision {
        field: "externalId".to_owned(),
        is_attribute: false,
        value: value.map_or(Json::Null, Json::String),
        source,
        rule,
    };
    match (s, a) {
        (Some(s), Some(a)) if s != a => match strategy.external_id {
            None => Err(MergeConflict::ExternalIds {
                survivor: s,
                absorbed: a,
            }),
            Some(MergeSide::Survivor) => Ok(decision(
                Some(s),
                ValueSource::Survivor,
                FieldRule::Strategy,
            )),
            Some(MergeSide::Absorbed) => Ok(decision(
                Some(a),
                ValueSource::Absorbed,
                FieldRule::Strategy,
            )),
        },
        (s, a) => {
            let (value, source) = prefer_survivor(s, a);
            Ok(decision(
                value,
                source,
                FieldRule::Attribute(MergeRule::Survivor),
            ))
        }
    }
}

fn prefer_survivor<T>(survivor: Option<T>, absorbed: Option<T>) -> (Option<T>, ValueSource) {
    match (survivor, absorbed) {
        (Some(value), _) => (Some(value), ValueSource::Survivor),
        (None, Some(value)) => (Some(value), ValueSource::Absorbed),
        (None, None) => (None, ValueSource::Neither),
    }
}

fn later(
    survivor: Option<DateTime<Utc>>,
    absorbed: Option<DateTime<Utc>>,
) -> (Option<DateTime<Utc>>, ValueSource) {
    match (survivor, absorbed) {
        (Some(s), Some(a)) if a > s => (Some(a), ValueSource::Absorbed),
        (s, a) => prefer_survivor(s, a),
    }
}

fn is_empty(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::String(text) => text.trim().is_empty(),
        AttributeValue::StringList(items) => items.is_empty(),
        _ => false,
    }
}

fn merge_attribute(
    rule: MergeRule,
    survivor: &Contact,
    absorbed: &Contact,
    s: Option<&AttributeValue>,
    a: Option<&AttributeValue>,
) -> (Option<AttributeValue>, ValueSource) {
    let (s, a) = (s.cloned(), a.cloned());
    match rule {
        MergeRule::Survivor => prefer_survivor(s, a),
        MergeRule::NonEmpty => match (&s, &a) {
            (Some(sv), Some(av)) if is_empty(sv) && !is_empty(av) => (a, ValueSource::Absorbed),
            _ => prefer_survivor(s, a),
        },
        MergeRule::MostRecent => {
            if absorbed.updated_at > survivor.updated_at && a.is_some() {
                (a, ValueSource::Absorbed)
            } else {
                prefer_survivor(s, a)
            }
        }
        MergeRule::Oldest => {
            if absorbed.created_at < survivor.created_at && a.is_some() {
                (a, ValueSource::Absorbed)
            } else {
                prefer_survivor(s, a)
            }
        }
        MergeRule::Union => match (s, a) {
            (
                Some(AttributeValue::StringList(mut items)),
                Some(AttributeValue::StringList(more)),
            ) => {
                for item in more {
                    if !items.contains(&item) && items.len() < super::attribute::MAX_LIST_ITEMS {
                        items.push(item);
                    }
                }
                (Some(AttributeValue::StringList(items)), ValueSource::Both)
            }
            (s, a) => prefer_survivor(s, a),
        },
        MergeRule::Sum => match (s, a) {
            (Some(AttributeValue::Number(x)), Some(AttributeValue::Number(y))) => {
                (Some(AttributeValue::Number(x + y)), ValueSource::Both)
            }
            (s, a) => prefer_survivor(s, a),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::{Email, ExternalId, Text, WorkspaceId};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
    }

    fn name(raw: &str) -> AttributeName {
        AttributeName::parse(raw).unwrap()
    }

    fn contact(fields: ContactFields, created: u32, updated: u32) -> Contact {
        let mut contact = Contact::new(WorkspaceId::default(), fields, at(created));
        contact.updated_at = at(updated);
        contact
    }

    fn rules(raw: &AttributeName) -> Option<MergeRule> {
        match raw.as_str() {
            "visits" => Some(MergeRule::Sum),
            "plan" => Some(MergeRule::MostRecent),
            "source" => Some(MergeRule::Oldest),
            "nickname" => Some(MergeRule::NonEmpty),
            _ => None,
        }
    }

    fn decision<'a>(plan: &'a MergePlan, field: &str) -> &'a FieldDecision {
        plan.decisions.iter().find(|d| d.field == field).unwrap()
    }

    #[test]
    fn fixed_fields_keep_the_survivor_and_fill_gaps() {
        let survivor = contact(
            ContactFields {
                external_id: Some(ExternalId::parse("u1").unwrap()),
                name: Some(Text::parse("name", "Ada").unwrap()),
                last_seen_at: Some(at(3)),
                ..ContactFields::default()
            },
            5,
            5,
        );
        let absorbed = contact(
            ContactFields {
                name: Some(Text::parse("name", "A. L.").unwrap()),
                email: Some(Email::parse("ada@example.com").unwrap()),
                last_seen_at: Some(at(9)),
                ..ContactFields::default()
            },
            2,
            2,
        );
        let plan = plan_merge(
            &survivor,
            &absorbed,
            &rules,
            MergeStrategy::default(),
            at(10),
        )
        .unwrap();
        let merged = &plan.merged.fields;
        assert_eq!(merged.name.as_ref().unwrap().as_str(), "Ada");
        assert_eq!(merged.email.as_ref().unwrap().as_str(), "ada@example.com");
        assert_eq!(merged.external_id.as_ref().unwrap().as_str(), "u1");
        assert_eq!(merged.last_seen_at, Some(at(9)));
        assert_eq!(plan.merged.created_at, at(2));
        assert_eq!(plan.merged.revision, survivor.revision + 1);
        assert_eq!(decision(&plan, "name").source, ValueSource::Survivor);
        assert_eq!(decision(&plan, "email").source, ValueSource::Absorbed);
        assert_eq!(decision(&plan, "lastSeenAt").rule, FieldRule::Latest);
        assert_eq!(decision(&plan, "createdAt").source, ValueSource::Absorbed);
        assert_eq!(decision(&plan, "company").source, ValueSource::Neither);
    }

    #[test]
    fn attribute_rules_decide_each_attribute() {
        let attrs =
            |pairs: Vec<(&str, AttributeValue)>| -> BTreeMap<AttributeName, AttributeValue> {
                pairs.into_iter().map(|(n, v)| (name(n), v)).collect()
            };
        let list = |items: &[&str]| {
            AttributeValue::StringList(items.iter().map(|s| s.to_string()).collect())
        };
        let text = |t: &str| AttributeValue::String(t.to_owned());
        let survivor = contact(
            ContactFields {
                attributes: attrs(vec![
                    ("tags", list(&["a", "b"])),
                    ("visits", AttributeValue::Number(2.0)),
                    ("plan", text("free")),
                    ("source", text("ads")),
                    ("nickname", text("")),
                    ("color", text("red")),
                ]),
                ..ContactFields::default()
            },
            5,
            5,
        );
        let absorbed = contact(
            ContactFields {
                attributes: attrs(vec![
                    ("tags", list(&["b", "c"])),
                    ("visits", AttributeValue::Number(3.0)),
                    ("plan", text("pro")),
                    ("source", text("referral")),
                    ("nickname", text("Ace")),
                    ("color", text("blue")),
                    ("only_absorbed", AttributeValue::Bool(true)),
                ]),
                ..ContactFields::default()
            },
            1,
            8,
        );
        let plan = plan_merge(
            &survivor,
            &absorbed,
            &rules,
            MergeStrategy::default(),
            at(10),
        )
        .unwrap();
        let merged = &plan.merged.fields.attributes;
        assert_eq!(merged[&name("tags")], list(&["a", "b", "c"]));
        assert_eq!(merged[&name("visits")], AttributeValue::Number(5.0));
        assert_eq!(
            merged[&name("plan")],
            text("pro"),
            "absorbed was updated later"
        );
        assert_eq!(
            merged[&name("source")],
            text("referral"),
            "absorbed was created first"
        );
        assert_eq!(
            merged[&name("nickname")],
            text("Ace"),
            "survivor's was empty"
        );
        assert_eq!(
            merged[&name("color")],
            text("red"),
            "survivor wins by default"
        );
        assert_eq!(merged[&name("only_absorbed")], AttributeValue::Bool(true));
        assert_eq!(decision(&plan, "tags").source, ValueSource::Both);
        assert_eq!(
            decision(&plan, "tags").rule,
            FieldRule::Attribute(MergeRule::Union)
        );
        assert_eq!(
            decision(&plan, "visits").rule,
            FieldRule::Attribute(MergeRule::Sum)
        );
    }

    #[test]
    fn conflicting_external_ids_need_a_strategy() {
        let with_id = |id: &str, day| {
            contact(
                ContactFields {
                    external_id: Some(ExternalId::parse(id).unwrap()),
                    ..ContactFields::default()
                },
                day,
                day,
            )
        };
        let (survivor, absorbed) = (with_id("u1", 1), with_id("u2", 2));
        let refused = plan_merge(
            &survivor,
            &absorbed,
            &rules,
            MergeStrategy::default(),
            at(3),
        );
        assert!(matches!(refused, Err(MergeConflict::ExternalIds { .. })));
        let strategy = MergeStrategy {
            external_id: Some(MergeSide::Absorbed),
        };
        let plan = plan_merge(&survivor, &absorbed, &rules, strategy, at(3)).unwrap();
        assert_eq!(
            plan.merged.fields.external_id.as_ref().unwrap().as_str(),
            "u2"
        );
        assert_eq!(decision(&plan, "externalId").rule, FieldRule::Strategy);
    }

    #[test]
    fn rules_must_fit_types() {
        assert!(
            MergeRule::Union
                .check_fits(&name("tags"), AttributeType::StringList)
                .is_ok()
        );
        assert!(
            MergeRule::Union
                .check_fits(&name("plan"), AttributeType::String)
                .is_err()
        );
        assert!(
            MergeRule::Sum
                .check_fits(&name("visits"), AttributeType::Number)
                .is_ok()
        );
        assert!(
            MergeRule::Sum
                .check_fits(&name("plan"), AttributeType::String)
                .is_err()
        );
        assert_eq!(
            MergeRule::default_for(AttributeType::StringList),
            MergeRule::Union
        );
        for rule in MergeRule::ALL {
            assert_eq!(MergeRule::from_storage(rule.as_str()), Some(rule));
        }
    }
}
