//! Property: printing a tree and parsing the text gives the same tree back.

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use crate::ast::{
    CmpOp, Condition, Duration, Expr, FieldRef, Literal, Offset, Op, Unit, Value, is_bare_name,
};
use crate::parse;
use crate::span::Span;

fn literal(value: Value) -> Literal {
    Literal {
        value,
        span: Span::default(),
    }
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::Str),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
        (0i64..4_102_444_800, 0u32..1_000_000_000).prop_map(|(secs, nanos)| Value::Date(
            DateTime::<Utc>::from_timestamp(secs, nanos).unwrap()
        )),
        offset().prop_map(Value::Now),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    (
        any::<u32>(),
        prop_oneof![
            Just(Unit::Seconds),
            Just(Unit::Minutes),
            Just(Unit::Hours),
            Just(Unit::Days),
            Just(Unit::Weeks)
        ],
    )
        .prop_map(|(amount, unit)| Duration { amount, unit })
}

fn offset() -> impl Strategy<Value = Offset> {
    (any::<bool>(), proptest::option::of(duration())).prop_map(|(negative, duration)| Offset {
        negative: duration.is_some() && negative,
        duration,
    })
}

fn literals() -> impl Strategy<Value = Vec<Literal>> {
    proptest::collection::vec(value().prop_map(literal), 0..4)
}

fn field() -> impl Strategy<Value = FieldRef> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
            .prop_filter("not a keyword", |name| is_bare_name(name))
            .prop_map(|name| FieldRef {
                name,
                explicit_attribute: false,
                span: Span::default()
            }),
        any::<String>().prop_map(|name| FieldRef {
            name,
            explicit_attribute: true,
            span: Span::default()
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let cmp = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge)
    ];
    let one = || value().prop_map(literal);
    prop_oneof![
        (cmp, one()).prop_map(|(op, v)| Op::Compare(op, v)),
        literals().prop_map(Op::In),
        literals().prop_map(Op::NotIn),
        one().prop_map(Op::Contains),
        one().prop_map(Op::StartsWith),
        one().prop_map(Op::EndsWith),
        (one(), one()).prop_map(|(low, high)| Op::Between(low, high)),
        one().prop_map(Op::Has),
        literals().prop_map(Op::HasAny),
        literals().prop_map(Op::HasAll),
        duration().prop_map(|d| Op::Within(d, Span::default())),
        one().prop_map(Op::Before),
        one().prop_map(Op::After),
        Just(Op::Exists),
        Just(Op::NotExists),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => (field(), op()).prop_map(|(field, op)| Expr::Condition(Condition { field, op, span: Span::default() })),
        1 => any::<String>().prop_map(|slug| Expr::InSegment(slug, Span::default())),
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|operand| Expr::Not(Box::new(operand), Span::default())),
        ]
    })
}

/// Cases per property: `default`, or `QWRY_PROPTEST_CASES` in the long mode (RELIABILITY.md).
fn cases(default: u32) -> u32 {
    std::env::var("QWRY_PROPTEST_CASES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(default)
}

/// A record without any field.
struct NoFields;

impl crate::eval::Record for NoFields {
    fn value(&self, _field: &crate::Field) -> Option<crate::eval::FieldValue<'_>> {
        None
    }
}

/// A catalogue for checking generated trees: every attribute the generator names is declared
/// with a type picked by its name's length, so some checks pass and some report mismatches.
struct AnyCatalog;

impl crate::Catalog for AnyCatalog {
    fn attribute_type(&self, name: &str) -> Option<crate::FieldType> {
        use crate::FieldType;
        let types = [
            FieldType::String,
            FieldType::Number,
            FieldType::Bool,
            FieldType::Datetime,
            FieldType::StringList,
        ];
        (name.len() % 7 != 6).then(|| types[name.len() % types.len()])
    }

    fn attribute_names(&self) -> Vec<String> {
        vec!["plan".into(), "ltv".into()]
    }

    fn segment_exists(&self, slug: &str) -> bool {
        slug.len().is_multiple_of(2)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2_000)))]

    #[test]
    fn checking_printed_trees_never_panics_and_spans_stay_in_the_text(tree in expr()) {
        let text = tree.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        match crate::check(&parsed, &AnyCatalog) {
            Ok(checked) => {
                let context = crate::eval::EvalContext { now: Utc::now(), in_segment: &|_| false };
                let _ = crate::eval::matches(&checked, &NoFields, &context);
            }
            Err(diagnostics) => {
                for diagnostic in diagnostics {
                    prop_assert!(diagnostic.span.end <= text.len(), "{:?} in {}", diagnostic, text);
                    prop_assert!(diagnostic.span.start <= diagnostic.span.end);
                    let _ = diagnostic.render(&text);
                }
            }
        }
    }

    #[test]
    fn printing_then_parsing_gives_the_same_tree(tree in expr()) {
        let text = tree.to_string();
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        prop_assert_eq!(parsed.without_spans(), tree.without_spans(), "text: {}", text);
    }

    #[test]
    fn parsing_never_panics(text in "\\PC{0,80}") {
        let _ = parse(&text);
    }

    #[test]
    fn recovering_agrees_with_parse_and_its_spans_stay_in_the_text(
        text in "([a-z]{1,6}|and|or|not|in|within|exists|days|30|\"x\"|[=()\\[\\],<>!-]| ){0,24}"
    ) {
        let (expr, diagnostics) = crate::parse_recovering(&text);
        prop_assert!(diagnostics.len() <= crate::MAX_SYNTAX_DIAGNOSTICS);
        for diagnostic in &diagnostics {
            prop_assert!(diagnostic.span.start <= diagnostic.span.end && diagnostic.span.end <= text.len());
            let _ = diagnostic.render(&text);
        }
        match parse(&text) {
            Ok(parsed) => {
                prop_assert!(diagnostics.is_empty(), "{:?}", diagnostics);
                prop_assert_eq!(expr.map(|e| e.without_spans()), Some(parsed.without_spans()));
            }
            Err(first) => {
                prop_assert!(!diagnostics.is_empty());
                prop_assert_eq!(&diagnostics[0], &first, "the first problem is parse's");
                if let Some(partial) = expr {
                    let _ = crate::check(&partial, &AnyCatalog);
                }
            }
        }
    }

    #[test]
    fn diagnostics_render_for_any_input(text in "[a-z =\"()\\[\\],.<>!0-9-]{0,40}") {
        if let Err(diagnostic) = parse(&text) {
            prop_assert!(diagnostic.span.end <= text.len());
            let _ = diagnostic.render(&text);
        }
    }
}
