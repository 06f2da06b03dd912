//! The in-memory back end: decides whether one contact matches a checked segment.

use std::ops::Bound;

use chrono::{DateTime, Utc};

use crate::checked::{Checked, Field, Test, TimePoint};

/// One field's value as the evaluator sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Text.
    Text(&'a str),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
    /// A list of strings.
    List(&'a [String]),
}

/// A contact, as far as segments are concerned.
pub trait Record {
    /// The value of `field`, or `None` when the contact has none.
    fn value(&self, field: &Field) -> Option<FieldValue<'_>>;
}

/// What evaluation needs besides the record.
pub struct EvalContext<'a> {
    /// The moment `now` stands for.
    pub now: DateTime<Utc>,
    /// Whether the record is a member of a saved segment, by slug.
    pub in_segment: &'a dyn Fn(&str) -> bool,
}

/// Whether `record` matches `segment`.
pub fn matches(segment: &Checked, record: &dyn Record, context: &EvalContext<'_>) -> bool {
    match segment {
        Checked::And(operands) => operands
            .iter()
            .all(|operand| matches(operand, record, context)),
        Checked::Or(operands) => operands
            .iter()
            .any(|operand| matches(operand, record, context)),
        Checked::Not(operand) => !matches(operand, record, context),
        Checked::InSegment(slug) => (context.in_segment)(slug),
        Checked::Test(field, test) => match record.value(field) {
            Some(value) => passes(test, value, context.now),
            None => false,
        },
    }
}

/// Whether a present value passes a test (a value of another type never does).
pub fn passes(test: &Test, value: FieldValue<'_>, now: DateTime<Utc>) -> bool {
    match (test, value) {
        (Test::Exists, _) => true,
        (Test::TextIn(options), FieldValue::Text(text)) => {
            options.iter().any(|option| option == text)
        }
        (Test::TextContains(needle), FieldValue::Text(text)) => {
            text.to_lowercase().contains(needle.as_str())
        }
        (Test::TextStartsWith(prefix), FieldValue::Text(text)) => {
            text.to_lowercase().starts_with(prefix.as_str())
        }
        (Test::TextEndsWith(suffix), FieldValue::Text(text)) => {
            text.to_lowercase().ends_with(suffix.as_str())
        }
        (Test::NumberIn(options), FieldValue::Number(number)) => options.contains(&number),
        (Test::NumberRange(low, high), FieldValue::Number(number)) => within(number, *low, *high),
        (Test::BoolIs(expected), FieldValue::Bool(flag)) => *expected == flag,
        (Test::TimeRange(low, high), FieldValue::Time(at)) => {
            let resolve = |bound: &Bound<TimePoint>| bound.map(|point| point.resolve(now));
            within(at, resolve(low), resolve(high))
        }
        (Test::ListHasAny(wanted), FieldValue::List(items)) => {
            wanted.iter().any(|w| items.contains(w))
        }
        (Test::ListHasAll(wanted), FieldValue::List(items)) => {
            wanted.iter().all(|w| items.contains(w))
        }
        _ => false,
    }
}

/// The earliest instant after `now` at which `record`'s answer to `segment` may change by the
/// passing of time alone: when a datetime compared with `now` (`within 30d`, `> now - 7d`)
/// crosses its moving bound. `None` when no part of the answer depends on the clock.
/// Evaluating at the returned instant gives the answer from then on.
pub fn next_change(
    segment: &Checked,
    record: &dyn Record,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match segment {
        Checked::And(operands) | Checked::Or(operands) => operands
            .iter()
            .filter_map(|operand| next_change(operand, record, now))
            .min(),
        Checked::Not(operand) => next_change(operand, record, now),
        Checked::InSegment(_) => None,
        Checked::Test(field, Test::TimeRange(low, high)) => {
            let Some(FieldValue::Time(at)) = record.value(field) else {
                return None;
            };
            [flip_of_low(*low, at), flip_of_high(*high, at)]
                .into_iter()
                .flatten()
                .filter(|flip| *flip > now)
                .min()
        }
        Checked::Test(..) => None,
    }
}

/// When `at >= now + offset` (or `>`) stops holding: `now` passes `at - offset`.
fn flip_of_low(bound: Bound<TimePoint>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match bound {
        Bound::Included(TimePoint::Now(offset)) => Some(at - shift(offset) + NANOSECOND),
        Bound::Excluded(TimePoint::Now(offset)) => Some(at - shift(offset)),
        _ => None,
    }
}

/// When `at <= now + offset` (or `<`) starts holding: `now` reaches `at - offset`.
fn flip_of_high(bound: Bound<TimePoint>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match bound {
        Bound::Included(TimePoint::Now(offset)) => Some(at - shift(offset)),
        Bound::Excluded(TimePoint::Now(offset)) => Some(at - shift(offset) + NANOSECOND),
        _ => None,
    }
}

const NANOSECOND: chrono::TimeDelta = chrono::TimeDelta::nanoseconds(1);

/// The signed distance of `now + offset` from `now`.
fn shift(offset: crate::ast::Offset) -> chrono::TimeDelta {
    let Some(duration) = offset.duration else {
        return chrono::TimeDelta::zero();
    };
    if offset.negative {
        -duration.to_chrono()
    } else {
        duration.to_chrono()
    }
}

fn within<T: PartialOrd>(value: T, low: Bound<T>, high: Bound<T>) -> bool {
    let above = match low {
        Bound::Included(low) => value >= low,
        Bound::Excluded(low) => value > low,
        Bound::Unbounded => true,
    };
    let below = match high {
        Bound::Included(high) => value <= high,
        Bound::Excluded(high) => value < high,
        Bound::Unbounded => true,
    };
    above && below
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::catalog::Catalog;
    use crate::check::check;
    use crate::checked::{BuiltinField, FieldType};
    use crate::parse;

    struct Contact {
        values: HashMap<Field, Owned>,
    }

    enum Owned {
        Text(String),
        Number(f64),
        Bool(bool),
        Time(DateTime<Utc>),
        List(Vec<String>),
    }

    impl Record for Contact {
        fn value(&self, field: &Field) -> Option<FieldValue<'_>> {
            Some(match self.values.get(field)? {
                Owned::Text(text) => FieldValue::Text(text),
                Owned::Number(number) => FieldValue::Number(*number),
                Owned::Bool(flag) => FieldValue::Bool(*flag),
                Owned::Time(at) => FieldValue::Time(*at),
                Owned::List(items) => FieldValue::List(items),
            })
        }
    }

    struct Attributes;

    impl Catalog for Attributes {
        fn attribute_type(&self, name: &str) -> Option<FieldType> {
            Some(match name {
                "plan" => FieldType::String,
                "ltv" => FieldType::Number,
                "vip" => FieldType::Bool,
                "tags" => FieldType::StringList,
                _ => return None,
            })
        }
        fn attribute_names(&self) -> Vec<String> {
            vec![]
        }
        fn segment_exists(&self, slug: &str) -> bool {
            slug == "big"
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn ada() -> Contact {
        let attribute = |name: &str| Field::Attribute(name.to_owned());
        Contact {
            values: HashMap::from([
                (
                    Field::Builtin(BuiltinField::Email),
                    Owned::Text("ada@acme.io".into()),
                ),
                (
                    Field::Builtin(BuiltinField::LastSeenAt),
                    Owned::Time(now() - chrono::TimeDelta::days(3)),
                ),
                (attribute("plan"), Owned::Text("pro".into())),
                (attribute("ltv"), Owned::Number(120.0)),
                (attribute("vip"), Owned::Bool(true)),
                (
                    attribute("tags"),
                    Owned::List(vec!["beta".into(), "eu".into()]),
                ),
            ]),
        }
    }

    fn holds(source: &str) -> bool {
        let segment = check(&parse(source).unwrap(), &Attributes).unwrap();
        let context = EvalContext {
            now: now(),
            in_segment: &|slug| slug == "big",
        };
        matches(&segment, &ada(), &context)
    }

    #[test]
    fn evaluates_each_operator() {
        for (source, expected) in [
            ("plan = \"pro\"", true),
            ("plan = \"PRO\"", false),
            ("plan in [\"free\", \"pro\"]", true),
            ("email ends_with \"@ACME.io\"", true),
            ("email starts_with \"bob\"", false),
            ("email contains \"@acme\"", true),
            ("ltv >= 120 and ltv < 121", true),
            ("ltv between 0 and 119.5", false),
            ("vip = true", true),
            ("tags has \"eu\"", true),
            ("tags has all [\"eu\", \"us\"]", false),
            ("tags has any [\"us\", \"beta\"]", true),
            ("last_seen_at within 7d", true),
            ("last_seen_at within 2d", false),
            (
                "last_seen_at after now - 4d and last_seen_at before now",
                true,
            ),
            ("in segment \"big\" and not plan exists", false),
        ] {
            assert_eq!(holds(source), expected, "{source}");
        }
    }

    #[test]
    fn missing_values_fail_tests_and_pass_their_negations() {
        assert!(!holds("company = \"Acme\""));
        assert!(holds("company != \"Acme\""));
        assert!(holds("company not in [\"Acme\"]"));
        assert!(holds("not company contains \"a\""));
        assert!(holds("company not exists"));
        assert!(!holds("company exists"));
    }

    /// At the instant `next_change` names the answer differs from the one a nanosecond
    /// before, and until then it does not change.
    #[test]
    fn next_change_is_the_exact_moment_the_answer_flips() {
        let seen = now() - chrono::TimeDelta::days(3);
        let at = |source: &str| {
            let segment = check(&parse(source).unwrap(), &Attributes).unwrap();
            next_change(&segment, &ada(), now())
        };
        let answer = |source: &str, moment: DateTime<Utc>| {
            let segment = check(&parse(source).unwrap(), &Attributes).unwrap();
            let context = EvalContext {
                now: moment,
                in_segment: &|_| false,
            };
            matches(&segment, &ada(), &context)
        };
        for (source, expected) in [
            (
                "last_seen_at within 7d",
                Some(seen + chrono::TimeDelta::days(7)),
            ),
            (
                "last_seen_at > now - 5d",
                Some(seen + chrono::TimeDelta::days(5)),
            ),
            (
                "last_seen_at < now - 4d and plan = \"pro\"",
                Some(seen + chrono::TimeDelta::days(4)),
            ),
            ("not last_seen_at within 90s or ltv > 1000", None),
            ("last_seen_at within 2d", None),
            ("plan = \"pro\"", None),
        ] {
            let flip = at(source);
            if let Some(expected) = expected {
                let flip = flip.unwrap_or_else(|| panic!("{source}: no change"));
                assert!(
                    (flip - expected).abs() <= chrono::TimeDelta::nanoseconds(1),
                    "{source}: {flip} vs {expected}"
                );
                let before = answer(source, flip - chrono::TimeDelta::nanoseconds(1));
                assert_ne!(before, answer(source, flip), "{source}");
                assert_eq!(answer(source, now()), before, "{source}");
            } else {
                assert_eq!(flip, None, "{source}");
            }
        }
    }
}
