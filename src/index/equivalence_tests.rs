//! Property: the index back end and the in-memory evaluator select exactly the same contacts, for
//! generated contacts (missing values, lists, dates around `now`, odd attribute names, two
//! workspaces, event rollups, consents) and generated segments covering every operator, event
//! and consent conditions and nesting.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use qwry_segment::ast::{
    CmpOp, Condition, ConsentCondition, Duration, EventCondition, EventTest, Expr, FieldRef,
    Literal, Offset, Op, Unit, Value,
};
use qwry_segment::eval::{EvalContext, matches};
use qwry_segment::{Catalog, FieldType, Span, check};

use super::{CommitPayload, ContactRecord, IndexChange, PROJECTION_VERSION, SegmentIndex};
use crate::domain::{
    ActivitySummary, AttributeName, AttributeValue, ConsentOrigin, ConsentStatement, Consents,
    Contact, ContactFields, Email, EventRollup, Provenance, PurposeName, Text, WorkspaceId,
    state_consents,
};

const ATTRIBUTES: &[(&str, FieldType)] = &[
    ("plan", FieldType::String),
    ("odd name.v2", FieldType::String),
    ("ltv", FieldType::Number),
    ("vip", FieldType::Bool),
    ("trial_ends", FieldType::Datetime),
    ("tags", FieldType::StringList),
];
const TEXTS: &[&str] = &[
    "pro",
    "Pro",
    "free",
    "",
    "ada@acme.io",
    "Åsa Öberg",
    "bob@example.com",
    "x",
];
const NEEDLES: &[&str] = &[
    "pro",
    "PRO",
    "",
    "@",
    "acme",
    "åsa",
    "com",
    "x",
    "example.com",
    "ö",
];
const NUMBERS: &[f64] = &[-1.5, 0.0, 3.0, 3.5, 100.0, 1e9];
const ITEMS: &[&str] = &["vip", "beta", "eu", "VIP"];

struct TestCatalog;

impl Catalog for TestCatalog {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        ATTRIBUTES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
    fn attribute_names(&self) -> Vec<String> {
        ATTRIBUTES.iter().map(|(n, _)| n.to_string()).collect()
    }
    fn segment_exists(&self, _slug: &str) -> bool {
        false
    }
    fn purpose_exists(&self, name: &str) -> bool {
        PURPOSES.contains(&name)
    }
}

/// Consent purposes: contacts state the first two (or not), none states the third.
const PURPOSES: &[&str] = &["marketing_email", "sms", "never_asked"];

/// Each contact granted, withdrew or never stated each of the first two purposes.
fn consents() -> impl Strategy<Value = Consents> {
    let stated = || proptest::option::of(any::<bool>());
    (stated(), stated()).prop_map(|(email, sms)| {
        let statements: Vec<ConsentStatement> = [(PURPOSES[0], email), (PURPOSES[1], sms)]
            .into_iter()
            .filter_map(|(purpose, granted)| {
                Some(ConsentStatement {
                    purpose: PurposeName::parse("purpose", purpose).unwrap(),
                    granted: granted?,
                })
            })
            .collect();
        let origin = ConsentOrigin {
            at: now(),
            source: None,
            provenance: Provenance::Api,
            recorded_by: "test".to_owned(),
        };
        let mut consents = Consents::new();
        state_consents(&mut consents, &statements, &origin, 1);
        consents
    })
}

fn consent_condition() -> impl Strategy<Value = Expr> {
    proptest::sample::select(PURPOSES).prop_map(|purpose| {
        Expr::Consent(ConsentCondition {
            purpose: purpose.to_owned(),
            purpose_span: Span::default(),
            span: Span::default(),
        })
    })
}

fn now() -> DateTime<Utc> {
    "2026-11-25T12:00:00.123456789Z".parse().unwrap()
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let offsets = prop_oneof![
        Just(0i64),
        Just(1),
        Just(-1),
        Just(3_600),
        Just(-86_400),
        Just(-29 * 86_400),
        Just(-31 * 86_400),
        Just(-400 * 86_400),
        Just(7 * 86_400)
    ];
    (offsets, prop_oneof![Just(0i64), Just(1), Just(-1)])
        .prop_map(|(secs, nanos)| now() + TimeDelta::seconds(secs) + TimeDelta::nanoseconds(nanos))
}

fn attribute_value(field_type: FieldType) -> BoxedStrategy<AttributeValue> {
    match field_type {
        FieldType::String => proptest::sample::select(TEXTS)
            .prop_map(|t| AttributeValue::String(t.to_owned()))
            .boxed(),
        FieldType::Number => proptest::sample::select(NUMBERS)
            .prop_map(AttributeValue::Number)
            .boxed(),
        FieldType::Bool => any::<bool>().prop_map(AttributeValue::Bool).boxed(),
        FieldType::Datetime => instant().prop_map(AttributeValue::Datetime).boxed(),
        FieldType::StringList => proptest::sample::subsequence(ITEMS, 0..=3)
            .prop_map(|items| {
                AttributeValue::StringList(items.into_iter().map(str::to_owned).collect())
            })
            .boxed(),
    }
}

fn contact() -> impl Strategy<Value = Contact> {
    let attributes = ATTRIBUTES
        .iter()
        .map(|(name, field_type)| {
            proptest::option::of(attribute_value(*field_type)).prop_map(move |v| (*name, v))
        })
        .collect::<Vec<_>>();
    let emails = proptest::option::of(proptest::sample::select(
        &["ada@acme.io", "bob@example.com", "pro@x.org"][..],
    ));
    let names = proptest::option::of(proptest::sample::select(
        &["Ada", "Åsa Öberg", "PRO Shop"][..],
    ));
    (
        attributes,
        emails,
        names,
        proptest::option::of(instant()),
        instant(),
        any::<bool>(),
        (
            0u64..4,
            proptest::option::of(instant()),
            proptest::option::of(instant()),
            events(),
        ),
        consents(),
    )
        .prop_map(
            |(
                attributes,
                email,
                name,
                last_seen_at,
                created_at,
                other_workspace,
                activity,
                consents,
            )| {
                let attributes: BTreeMap<AttributeName, AttributeValue> = attributes
                    .into_iter()
                    .filter_map(|(name, value)| Some((AttributeName::parse(name).unwrap(), value?)))
                    .collect();
                let fields = ContactFields {
                    email: email.map(|e| Email::parse(e).unwrap()),
                    name: name.map(|n| Text::parse("name", n).unwrap()),
                    attributes,
                    last_seen_at,
                    ..ContactFields::default()
                };
                let workspace =
                    WorkspaceId::parse(if other_workspace { "other" } else { "main" }).unwrap();
                let mut contact = Contact::new(workspace, fields, created_at);
                let (conversation_count, last_conversation_at, first_seen_at, events) = activity;
                contact.activity = ActivitySummary {
                    conversation_count,
                    last_conversation_at,
                    first_seen_at,
                    events,
                };
                contact.consents = consents;
                contact
            },
        )
}

fn comparison() -> impl Strategy<Value = CmpOp> + Clone {
    proptest::sample::select(
        &[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ][..],
    )
}

/// Event names contacts have (a third one no contact has).
const EVENT_NAMES: &[&str] = &["purchase", "page.view", "never"];

/// Each of the first two event names, happening 0 to 25 times (more than the 20 latest kept),
/// at instants around `now`.
fn events() -> impl Strategy<Value = BTreeMap<String, EventRollup>> {
    let times = || proptest::option::of(proptest::collection::vec(instant(), 1..26));
    (times(), times()).prop_map(|(purchases, views)| {
        [("purchase", purchases), ("page.view", views)]
            .into_iter()
            .filter_map(|(name, times)| Some((name.to_owned(), EventRollup::of(times?))))
            .collect()
    })
}

fn event_condition() -> impl Strategy<Value = Expr> {
    let cmp = comparison();
    let days = || {
        (1u32..40).prop_map(|amount| {
            (
                Duration {
                    amount,
                    unit: Unit::Days,
                },
                Span::default(),
            )
        })
    };
    let test = prop_oneof![
        Just(EventTest::Exists),
        Just(EventTest::NotExists),
        days().prop_map(|(duration, span)| EventTest::Within(duration, span)),
        (cmp, 1u32..23, proptest::option::of(days())).prop_map(|(op, count, within)| {
            // Windowed counts go up to 20 (`> 19` asks for 20).
            let count = if within.is_some() {
                count.min(19)
            } else {
                count
            };
            EventTest::Count {
                op,
                count,
                count_span: Span::default(),
                within,
            }
        }),
    ];
    (proptest::sample::select(EVENT_NAMES), test).prop_map(|(name, test)| {
        Expr::Event(EventCondition {
            name: name.to_owned(),
            name_span: Span::default(),
            test,
            span: Span::default(),
        })
    })
}

fn literal(value: Value) -> Literal {
    Literal {
        value,
        span: Span::default(),
    }
}

fn text_literal() -> impl Strategy<Value = Literal> {
    proptest::sample::select(TEXTS).prop_map(|t| literal(Value::Str(t.to_owned())))
}

fn time_literal() -> impl Strategy<Value = Literal> {
    let relative = (
        any::<bool>(),
        0u32..40,
        proptest::sample::select(&[Unit::Hours, Unit::Days][..]),
    )
        .prop_map(|(negative, amount, unit)| {
            literal(Value::Now(Offset {
                negative,
                duration: Some(Duration { amount, unit }),
            }))
        });
    prop_oneof![
        instant().prop_map(|at| literal(Value::Date(at))),
        relative,
        Just(literal(Value::Now(Offset::default())))
    ]
}

fn condition() -> impl Strategy<Value = Expr> {
    let fields: Vec<(String, FieldType, bool)> = ATTRIBUTES
        .iter()
        .map(|(n, t)| (n.to_string(), *t, n.contains(' ')))
        .chain([
            ("email".into(), FieldType::String, false),
            ("name".into(), FieldType::String, false),
        ])
        .chain([
            ("last_seen_at".into(), FieldType::Datetime, false),
            ("created_at".into(), FieldType::Datetime, false),
            ("first_seen_at".into(), FieldType::Datetime, false),
            ("last_conversation_at".into(), FieldType::Datetime, false),
            ("conversation_count".into(), FieldType::Number, false),
        ])
        .collect();
    proptest::sample::select(fields).prop_flat_map(|(name, field_type, explicit)| {
        let field = FieldRef {
            name,
            explicit_attribute: explicit,
            span: Span::default(),
        };
        let cmp = comparison();
        let texts = || proptest::collection::vec(text_literal(), 1..3);
        let needle =
            proptest::sample::select(NEEDLES).prop_map(|t| literal(Value::Str(t.to_owned())));
        let op: BoxedStrategy<Op> = match field_type {
            FieldType::String => prop_oneof![
                text_literal().prop_map(|v| Op::Compare(CmpOp::Eq, v)),
                text_literal().prop_map(|v| Op::Compare(CmpOp::Ne, v)),
                texts().prop_map(Op::In),
                texts().prop_map(Op::NotIn),
                needle.clone().prop_map(Op::Contains),
                needle.clone().prop_map(Op::StartsWith),
                needle.prop_map(Op::EndsWith),
                Just(Op::Exists),
                Just(Op::NotExists),
            ]
            .boxed(),
            FieldType::Number => {
                let number =
                    proptest::sample::select(NUMBERS).prop_map(|n| literal(Value::Number(n)));
                prop_oneof![
                    (cmp, number.clone()).prop_map(|(op, v)| Op::Compare(op, v)),
                    (number.clone(), number.clone()).prop_map(|(a, b)| Op::Between(a, b)),
                    proptest::collection::vec(number, 1..3).prop_map(Op::In),
                    Just(Op::Exists),
                ]
                .boxed()
            }
            FieldType::Bool => prop_oneof![
                any::<bool>().prop_map(|b| Op::Compare(CmpOp::Eq, literal(Value::Bool(b)))),
                any::<bool>().prop_map(|b| Op::Compare(CmpOp::Ne, literal(Value::Bool(b)))),
                Just(Op::NotExists),
            ]
            .boxed(),
            FieldType::Datetime => prop_oneof![
                (cmp, time_literal()).prop_map(|(op, v)| Op::Compare(op, v)),
                (time_literal(), time_literal()).prop_map(|(a, b)| Op::Between(a, b)),
                time_literal().prop_map(Op::Before),
                time_literal().prop_map(Op::After),
                (1u32..40).prop_map(|amount| Op::Within(
                    Duration {
                        amount,
                        unit: Unit::Days
                    },
                    Span::default()
                )),
                Just(Op::Exists),
            ]
            .boxed(),
            FieldType::StringList => {
                let item =
                    proptest::sample::select(ITEMS).prop_map(|t| literal(Value::Str(t.to_owned())));
                prop_oneof![
                    item.clone().prop_map(Op::Has),
                    proptest::collection::vec(item.clone(), 1..3).prop_map(Op::HasAny),
                    proptest::collection::vec(item, 1..3).prop_map(Op::HasAll),
                    Just(Op::NotExists),
                ]
                .boxed()
            }
        };
        op.prop_map(move |op| {
            Expr::Condition(Condition {
                field: field.clone(),
                op,
                span: Span::default(),
            })
        })
    })
}

fn segment() -> impl Strategy<Value = Expr> {
    prop_oneof![3 => condition(), 1 => event_condition(), 1 => consent_condition()].prop_recursive(
        4,
        24,
        3,
        |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e), Span::default())),
            ]
        },
    )
}

fn index_of(contacts: &[Contact]) -> SegmentIndex {
    let index = SegmentIndex::open_in_ram().unwrap();
    let changes: Vec<IndexChange> = contacts.iter().cloned().map(IndexChange::upsert).collect();
    let payload = CommitPayload {
        projection: PROJECTION_VERSION,
        built: true,
        last_change: None,
        watermark: None,
        committed_at: now(),
    };
    index.apply(&changes, &payload).unwrap();
    index
}

/// Cases per property: `default`, or `QWRY_PROPTEST_CASES` in the long mode (RELIABILITY.md).
fn cases(default: u32) -> u32 {
    std::env::var("QWRY_PROPTEST_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(96)))]

    #[test]
    fn index_and_evaluator_select_the_same_contacts(
        contacts in proptest::collection::vec(contact(), 1..40),
        segments in proptest::collection::vec(segment(), 1..6),
    ) {
        let index = index_of(&contacts);
        let workspace = WorkspaceId::parse("main").unwrap();
        let by_id: HashMap<_, _> = contacts.iter().map(|c| (c.id, c)).collect();
        for expr in segments {
            let checked = check(&expr, &TestCatalog).map_err(|d| TestCaseError::fail(format!("{expr}: {}", d[0].message)))?;
            let context = EvalContext { now: now(), in_segment: &|_| false };
            let mut expected: Vec<_> = contacts
                .iter()
                .filter(|c| c.workspace == workspace && matches(&checked, &ContactRecord(c), &context))
                .map(|c| c.id)
                .collect();
            expected.sort();
            let members = index.members(&workspace, &checked, now(), None, 100).unwrap();
            prop_assert_eq!(members.total as usize, expected.len(), "segment: {}", expr);
            prop_assert_eq!(&members.ids, &expected, "segment: {}", expr);
            prop_assert!(members.ids.iter().all(|id| by_id[id].workspace == workspace));
        }
    }
}

#[test]
fn updates_replace_documents_and_removals_delete_them() {
    let workspace = WorkspaceId::parse("main").unwrap();
    let mut contact = Contact::new(workspace.clone(), ContactFields::default(), now());
    let index = index_of(std::slice::from_ref(&contact));
    let payload = CommitPayload {
        projection: PROJECTION_VERSION,
        built: true,
        last_change: None,
        watermark: None,
        committed_at: now(),
    };
    let vip = check(&qwry_segment::parse("vip = true").unwrap(), &TestCatalog).unwrap();
    assert_eq!(index.count(&workspace, &vip, now()).unwrap(), 0);
    contact.fields.attributes.insert(
        AttributeName::parse("vip").unwrap(),
        AttributeValue::Bool(true),
    );
    index
        .apply(&[IndexChange::upsert(contact.clone())], &payload)
        .unwrap();
    index
        .apply(&[IndexChange::upsert(contact.clone())], &payload)
        .unwrap();
    assert_eq!(
        index.count(&workspace, &vip, now()).unwrap(),
        1,
        "re-applying is idempotent"
    );
    index
        .apply(
            &[IndexChange::Remove(workspace.clone(), contact.id)],
            &payload,
        )
        .unwrap();
    assert_eq!(index.count(&workspace, &vip, now()).unwrap(), 0);
    assert_eq!(index.payload().unwrap(), Some(payload));
}

#[test]
fn pages_follow_ids_after_the_cursor() {
    let workspace = WorkspaceId::parse("main").unwrap();
    let contacts: Vec<Contact> = (0..25)
        .map(|_| Contact::new(workspace.clone(), ContactFields::default(), now()))
        .collect();
    let index = index_of(&contacts);
    let everyone = check(
        &qwry_segment::parse("created_at exists").unwrap(),
        &TestCatalog,
    )
    .unwrap();
    let mut ids: Vec<_> = contacts.iter().map(|c| c.id).collect();
    ids.sort();
    let first = index
        .members(&workspace, &everyone, now(), None, 10)
        .unwrap();
    assert_eq!((first.total, first.has_more), (25, true));
    assert_eq!(first.ids, ids[..10]);
    let last = index
        .members(&workspace, &everyone, now(), Some(&ids[19]), 10)
        .unwrap();
    assert_eq!((last.ids.as_slice(), last.has_more), (&ids[20..], false));
}

/// Dense segments page by walking each index segment in id order, sparse ones by their members;
/// both must give every member once, in id order, across several index segments with deletes.
#[test]
fn dense_and_sparse_segments_page_completely_in_id_order() {
    let workspace = WorkspaceId::parse("main").unwrap();
    let index = SegmentIndex::open_in_ram().unwrap();
    let payload = CommitPayload {
        projection: PROJECTION_VERSION,
        built: true,
        last_change: None,
        watermark: None,
        committed_at: now(),
    };
    let mut contacts: Vec<Contact> = Vec::new();
    for batch in 0..3 {
        let mut created: Vec<Contact> = (0..1_000)
            .map(|n| {
                let mut fields = ContactFields::default();
                if (batch * 1_000 + n) % 97 == 0 {
                    fields.name = Some(crate::domain::Text::parse("name", "rare").unwrap());
                }
                Contact::new(workspace.clone(), fields, now())
            })
            .collect();
        let changes: Vec<IndexChange> = created.iter().cloned().map(IndexChange::upsert).collect();
        index.apply(&changes, &payload).unwrap();
        contacts.append(&mut created);
    }
    // Re-index a tenth of them (a delete and an add each) and remove a few.
    let changes: Vec<IndexChange> = contacts
        .iter()
        .step_by(10)
        .cloned()
        .map(IndexChange::upsert)
        .chain(
            contacts
                .iter()
                .skip(5)
                .step_by(50)
                .map(|c| IndexChange::Remove(workspace.clone(), c.id)),
        )
        .collect();
    index.apply(&changes, &payload).unwrap();
    let removed: std::collections::HashSet<_> =
        contacts.iter().skip(5).step_by(50).map(|c| c.id).collect();
    let everyone: fn(&Contact) -> bool = |_| true;
    let named: fn(&Contact) -> bool = |c| c.fields.name.is_some();
    for (text, wanted) in [("created_at exists", everyone), ("name exists", named)] {
        let segment = check(&qwry_segment::parse(text).unwrap(), &TestCatalog).unwrap();
        let mut expected: Vec<_> = contacts
            .iter()
            .filter(|c| !removed.contains(&c.id) && wanted(c))
            .map(|c| c.id)
            .collect();
        expected.sort();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = index
                .members(&workspace, &segment, now(), after.as_ref(), 37)
                .unwrap();
            assert_eq!(page.total as usize, expected.len(), "{text}");
            seen.extend(page.ids.iter().copied());
            if !page.has_more {
                break;
            }
            after = page.ids.last().copied();
        }
        assert_eq!(seen, expected, "{text}");
    }
}
