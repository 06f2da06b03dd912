//! Type checking against the attribute catalogue: syntax tree in, checked tree out.
//!
//! The checked tree resolves every field to a built-in or a declared attribute, converts every
//! literal to the field's type, and rewrites sugar (`!=`, `not in`, `not exists`, `before`,
//! `after`, `within`) into a few primitive tests, so both back ends implement only those.

use std::ops::Bound;

use crate::ast::{
    CmpOp, Condition, ConsentCondition, Duration, EventCondition, EventTest, Expr, FieldRef,
    Literal, Offset, Op, Value,
};
use crate::catalog::Catalog;
use crate::checked::{
    BuiltinField, Checked, Field, FieldType, MAX_EVENT_WINDOW_COUNT, Test, TimePoint, is_event_name,
};
use crate::error::{Diagnostic, ErrorCode};
use crate::parser::parse_date;
use crate::span::Span;

/// Checks `expr` against `catalog`, reporting every problem found (not just the first).
pub fn check(expr: &Expr, catalog: &dyn Catalog) -> Result<Checked, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let checked = check_expr(expr, catalog, &mut diagnostics);
    match checked {
        Some(checked) if diagnostics.is_empty() => Ok(checked),
        _ => Err(diagnostics),
    }
}

fn check_expr(
    expr: &Expr,
    catalog: &dyn Catalog,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Checked> {
    let all = |operands: &[Expr], diagnostics: &mut Vec<Diagnostic>| {
        let checked: Vec<Option<Checked>> = operands
            .iter()
            .map(|operand| check_expr(operand, catalog, diagnostics))
            .collect();
        checked.into_iter().collect::<Option<Vec<_>>>()
    };
    match expr {
        Expr::And(operands) => all(operands, diagnostics).map(Checked::And),
        Expr::Or(operands) => all(operands, diagnostics).map(Checked::Or),
        Expr::Not(operand, _) => {
            check_expr(operand, catalog, diagnostics).map(|c| Checked::Not(Box::new(c)))
        }
        Expr::InSegment(slug, span) => {
            if catalog.segment_exists(slug) {
                Some(Checked::InSegment(slug.clone()))
            } else {
                diagnostics.push(Diagnostic::new(
                    ErrorCode::UnknownSegment,
                    *span,
                    format!("there is no saved segment `{slug}`"),
                ));
                None
            }
        }
        Expr::Consent(consent) => match check_consent(consent, catalog) {
            Ok(checked) => Some(checked),
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                None
            }
        },
        Expr::Event(event) => match check_event(event, catalog) {
            Ok(checked) => Some(checked),
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                None
            }
        },
        Expr::Condition(condition) => match check_condition(condition, catalog) {
            Ok(checked) => Some(checked),
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                None
            }
        },
    }
}

/// `consent "purpose"`: the contact's consent to a declared purpose is granted.
fn check_consent(consent: &ConsentCondition, catalog: &dyn Catalog) -> Result<Checked, Diagnostic> {
    let purpose = &consent.purpose;
    if !catalog.purpose_exists(purpose) {
        let known = catalog.purpose_names();
        let closest = known
            .iter()
            .map(|candidate| (strsim::damerau_levenshtein(purpose, candidate), candidate))
            .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
            .min();
        let message = match closest {
            Some((_, candidate)) => {
                format!("unknown consent purpose `{purpose}`, did you mean `{candidate}`?")
            }
            None => format!("unknown consent purpose `{purpose}`"),
        };
        return Err(
            Diagnostic::new(ErrorCode::UnknownPurpose, consent.purpose_span, message).with_hint(
                "declare the purpose with `defineConsentPurpose`, or check its spelling",
            ),
        );
    }
    let field = Field::Consent(purpose.clone());
    if !catalog.field_approved(&field) {
        return Err(Diagnostic::new(
            ErrorCode::FieldNotApproved,
            consent.span,
            "`consents` is not an approved field for this API key".to_owned(),
        )
        .with_hint("segments may only test fields the key may read; ask an admin to approve it"));
    }
    Ok(Checked::Test(field, Test::BoolIs(true)))
}

/// An event condition as tests on the contact's event rollup: "at least `n` times (in the
/// window)" is "the event's count is at least `n`", or with a window "its `n`-th latest
/// occurrence is in the window"; every comparison is built from those.
fn check_event(event: &EventCondition, catalog: &dyn Catalog) -> Result<Checked, Diagnostic> {
    let name = &event.name;
    if !is_event_name(name) {
        return Err(Diagnostic::new(
            ErrorCode::BadLiteral,
            event.name_span,
            format!("`{name}` is not an event name"),
        )
        .with_hint("event names are 1 to 64 of a-z, 0-9, `_`, `.`, `:`, `-`, starting with a letter, as recorded"));
    }
    if !catalog.field_approved(&Field::EventCount(name.clone())) {
        return Err(Diagnostic::new(
            ErrorCode::FieldNotApproved,
            event.span,
            "`events` is not an approved field for this API key".to_owned(),
        )
        .with_hint("segments may only test fields the key may read; ask an admin to approve it"));
    }
    let at_least = |n: u32, window: Option<Duration>| match window {
        None => Checked::Test(
            Field::EventCount(name.clone()),
            Test::NumberRange(Bound::Included(f64::from(n)), Bound::Unbounded),
        ),
        Some(window) => Checked::Test(
            Field::EventAt(name.clone(), n),
            Test::TimeRange(
                Bound::Included(TimePoint::Now(Offset {
                    negative: true,
                    duration: Some(window),
                })),
                Bound::Unbounded,
            ),
        ),
    };
    let not = |checked: Checked| Checked::Not(Box::new(checked));
    let (op, count, count_span, window) = match &event.test {
        EventTest::Exists => return Ok(at_least(1, None)),
        EventTest::NotExists => return Ok(not(at_least(1, None))),
        EventTest::Within(duration, _) => return Ok(at_least(1, Some(*duration))),
        EventTest::Count {
            op,
            count,
            count_span,
            within,
        } => (
            *op,
            *count,
            *count_span,
            within.map(|(duration, _)| duration),
        ),
    };
    let trivial = |always: bool| {
        Diagnostic::new(
            ErrorCode::TypeMismatch,
            count_span,
            format!(
                "`count {} {count}` {} holds",
                op.as_str(),
                if always { "always" } else { "never" }
            ),
        )
        .with_hint("a count is 0 or more; write `exists` or `not exists` for \"at least once\" or \"never\"")
    };
    let limit = if window.is_some() {
        MAX_EVENT_WINDOW_COUNT
    } else {
        u32::MAX - 1
    };
    // The largest `n` an "at least n" below asks for.
    let highest = match op {
        CmpOp::Gt | CmpOp::Le | CmpOp::Eq | CmpOp::Ne => count.saturating_add(1),
        CmpOp::Ge | CmpOp::Lt => count,
    };
    if highest > limit {
        return Err(Diagnostic::new(
            ErrorCode::TypeMismatch,
            count_span,
            format!("a count within a window goes up to {MAX_EVENT_WINDOW_COUNT}"),
        )
        .with_hint("the latest 20 occurrences of each event are kept per contact; drop `within` to count them all"));
    }
    let exactly = |n: u32| {
        if n == 0 {
            not(at_least(1, window))
        } else {
            Checked::And(vec![at_least(n, window), not(at_least(n + 1, window))])
        }
    };
    Ok(match op {
        CmpOp::Ge if count == 0 => return Err(trivial(true)),
        CmpOp::Ge => at_least(count, window),
        CmpOp::Gt => at_least(count + 1, window),
        CmpOp::Lt if count == 0 => return Err(trivial(false)),
        CmpOp::Lt => not(at_least(count, window)),
        CmpOp::Le => not(at_least(count + 1, window)),
        CmpOp::Eq => exactly(count),
        CmpOp::Ne => not(exactly(count)),
    })
}

fn resolve_field(
    field: &FieldRef,
    catalog: &dyn Catalog,
) -> Result<(Field, FieldType), Diagnostic> {
    if !field.explicit_attribute
        && let Some(builtin) = BuiltinField::from_name(&field.name)
    {
        return Ok((Field::Builtin(builtin), builtin.field_type()));
    }
    if let Some(field_type) = catalog.attribute_type(&field.name) {
        return Ok((Field::Attribute(field.name.clone()), field_type));
    }
    let mut known: Vec<String> = catalog.attribute_names();
    if !field.explicit_attribute {
        known.extend(BuiltinField::ALL.iter().map(|f| f.name().to_owned()));
    }
    // `lastSeenAt` (as GraphQL spells it) is `last_seen_at` here.
    let snake = snake_case(&field.name);
    let suggestion = known
        .iter()
        .map(|candidate| {
            let distance = if *candidate == snake {
                0
            } else {
                strsim::damerau_levenshtein(&field.name, candidate)
            };
            (distance, candidate)
        })
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min();
    let message = match suggestion {
        Some((_, candidate)) => format!(
            "unknown attribute `{}`, did you mean `{candidate}`?",
            field.name
        ),
        None => format!("unknown attribute `{}`", field.name),
    };
    let hint = match suggestion {
        Some((_, candidate)) if BuiltinField::from_name(candidate).is_some() => {
            format!("`{candidate}` is a built-in field; segments write field names in snake_case")
        }
        _ => "declare the attribute with `defineAttribute`, or check its spelling".to_owned(),
    };
    Err(Diagnostic::new(ErrorCode::UnknownField, field.span, message).with_hint(hint))
}

/// `name` in snake_case, as segments and field policies spell built-in fields: the API's
/// `lastSeenAt` becomes `last_seen_at`.
pub fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for ch in name.chars() {
        if ch.is_uppercase() {
            if !snake.is_empty() {
                snake.push('_');
            }
            snake.extend(ch.to_lowercase());
        } else {
            snake.push(ch);
        }
    }
    snake
}

fn check_condition(condition: &Condition, catalog: &dyn Catalog) -> Result<Checked, Diagnostic> {
    let (field, field_type) = resolve_field(&condition.field, catalog)?;
    let name = condition.field.name.as_str();
    if let Field::Attribute(attribute) = &field
        && catalog.attribute_sensitive(attribute)
        && !catalog.reads_sensitive()
    {
        return Err(Diagnostic::new(
            ErrorCode::FieldNotApproved,
            condition.field.span,
            format!("`{name}` is sensitive; testing it needs the `pii:read` scope"),
        )
        .with_hint("a count or a member list over a sensitive attribute would reveal its values; use a key with `pii:read`"));
    }
    if !catalog.field_approved(&field) {
        return Err(Diagnostic::new(
            ErrorCode::FieldNotApproved,
            condition.field.span,
            format!("`{name}` is not an approved field for this API key"),
        )
        .with_hint("segments may only test fields the key may read; ask an admin to approve it"));
    }
    if let Field::Attribute(attribute) = &field
        && catalog.attribute_sensitive(attribute)
        && !matches!(
            condition.op,
            Op::Exists
                | Op::NotExists
                | Op::Compare(CmpOp::Eq | CmpOp::Ne, _)
                | Op::In(_)
                | Op::NotIn(_)
        )
    {
        return Err(Diagnostic::new(
            ErrorCode::TypeMismatch,
            condition.span,
            format!("`{name}` is sensitive; only =, !=, in, not in and exists work on it"),
        )
        .with_hint("sensitive values are indexed only as keyed hashes, so they can be matched exactly, never by range or substring"));
    }
    let typed = Typed {
        name,
        field_type,
        op: &condition.op,
        span: condition.span,
    };
    let test = |test: Test| Checked::Test(field.clone(), test);
    let negated = |checked: Checked| Checked::Not(Box::new(checked));
    use FieldType as T;
    let checked = match (&condition.op, field_type) {
        (Op::Exists, _) => test(Test::Exists),
        (Op::NotExists, _) => negated(test(Test::Exists)),
        (Op::Compare(CmpOp::Eq, value), _) => typed.equality(value).map(test)?,
        (Op::Compare(CmpOp::Ne, value), _) => negated(typed.equality(value).map(test)?),
        (Op::Compare(op, value), T::Number) => {
            let number = typed.number(value)?;
            test(Test::NumberRange(lower(*op, number), upper(*op, number)))
        }
        (Op::Compare(op, value), T::Datetime) => {
            let at = typed.time(value)?;
            test(Test::TimeRange(lower(*op, at), upper(*op, at)))
        }
        (Op::Between(low, high), T::Number) => test(Test::NumberRange(
            Bound::Included(typed.number(low)?),
            Bound::Included(typed.number(high)?),
        )),
        (Op::Between(low, high), T::Datetime) => test(Test::TimeRange(
            Bound::Included(typed.time(low)?),
            Bound::Included(typed.time(high)?),
        )),
        (Op::Before(value), T::Datetime) => test(Test::TimeRange(
            Bound::Unbounded,
            Bound::Excluded(typed.time(value)?),
        )),
        (Op::After(value), T::Datetime) => test(Test::TimeRange(
            Bound::Excluded(typed.time(value)?),
            Bound::Unbounded,
        )),
        (Op::Within(duration, _), T::Datetime) => {
            let since = TimePoint::Now(Offset {
                negative: true,
                duration: Some(*duration),
            });
            let now = TimePoint::Now(Offset::default());
            test(Test::TimeRange(
                Bound::Included(since),
                Bound::Included(now),
            ))
        }
        (Op::In(values), _) => typed.membership(values).map(test)?,
        (Op::NotIn(values), _) => negated(typed.membership(values).map(test)?),
        (Op::Contains(value), T::String) => {
            test(Test::TextContains(typed.text(value)?.to_lowercase()))
        }
        (Op::StartsWith(value), T::String) => {
            test(Test::TextStartsWith(typed.text(value)?.to_lowercase()))
        }
        (Op::EndsWith(value), T::String) => {
            test(Test::TextEndsWith(typed.text(value)?.to_lowercase()))
        }
        (Op::Has(value), T::StringList) => test(Test::ListHasAny(vec![typed.text(value)?])),
        (Op::HasAny(values), T::StringList) => test(Test::ListHasAny(typed.texts(values)?)),
        (Op::HasAll(values), T::StringList) => test(Test::ListHasAll(typed.texts(values)?)),
        _ => return Err(typed.operator_mismatch()),
    };
    Ok(checked)
}

fn lower<T>(op: CmpOp, value: T) -> Bound<T> {
    match op {
        CmpOp::Gt => Bound::Excluded(value),
        CmpOp::Ge => Bound::Included(value),
        _ => Bound::Unbounded,
    }
}

fn upper<T>(op: CmpOp, value: T) -> Bound<T> {
    match op {
        CmpOp::Lt => Bound::Excluded(value),
        CmpOp::Le => Bound::Included(value),
        _ => Bound::Unbounded,
    }
}

/// A condition under checking: converts literals to the field's type.
struct Typed<'a> {
    name: &'a str,
    field_type: FieldType,
    op: &'a Op,
    span: Span,
}

impl Typed<'_> {
    fn operator_mismatch(&self) -> Diagnostic {
        let hint = match (self.field_type, self.op) {
            (FieldType::StringList, Op::Compare(CmpOp::Eq, value) | Op::Contains(value)) => {
                format!("to test a list write `{} has {value}`", self.name)
            }
            (FieldType::StringList, Op::In(_)) => {
                format!("to test a list write `{} has any [..]`", self.name)
            }
            _ => format!(
                "operators for {}: {}",
                self.field_type.described(),
                self.field_type.operators()
            ),
        };
        let works_on = match self.op {
            Op::Contains(_) | Op::StartsWith(_) | Op::EndsWith(_) => "works on text",
            Op::Has(_) | Op::HasAny(_) | Op::HasAll(_) => "works on lists of strings",
            Op::Within(..) | Op::Before(_) | Op::After(_) => "works on datetimes",
            Op::Compare(CmpOp::Eq | CmpOp::Ne, _) => {
                "works on text, numbers, booleans and datetimes"
            }
            Op::Between(..) | Op::Compare(..) => "works on numbers and datetimes",
            _ => "does not work on it",
        };
        Diagnostic::new(
            ErrorCode::TypeMismatch,
            self.span,
            format!(
                "`{}` is {}; `{}` {works_on}",
                self.name,
                self.field_type.described(),
                self.op.name()
            ),
        )
        .with_hint(hint)
    }

    fn value_mismatch(&self, literal: &Literal) -> Diagnostic {
        let hint = match (&literal.value, self.field_type) {
            (Value::Number(n), FieldType::String | FieldType::StringList) => {
                format!("write it in quotes: \"{n}\"")
            }
            (_, FieldType::Datetime) => "write a date such as 2026-01-31, or now - 30d".to_owned(),
            (_, FieldType::Bool) => "write true or false".to_owned(),
            _ => format!(
                "compare `{}` with {}",
                self.name,
                self.field_type.described()
            ),
        };
        Diagnostic::new(
            ErrorCode::TypeMismatch,
            literal.span,
            format!(
                "`{}` is {}, but `{}` is {}",
                self.name,
                self.field_type.described(),
                literal.value,
                describe_value(&literal.value)
            ),
        )
        .with_hint(hint)
    }

    fn text(&self, literal: &Literal) -> Result<String, Diagnostic> {
        match &literal.value {
            Value::Str(text) => Ok(text.clone()),
            _ => Err(self.value_mismatch(literal)),
        }
    }

    fn texts(&self, literals: &[Literal]) -> Result<Vec<String>, Diagnostic> {
        self.non_empty(literals)?;
        literals.iter().map(|literal| self.text(literal)).collect()
    }

    fn number(&self, literal: &Literal) -> Result<f64, Diagnostic> {
        match literal.value {
            Value::Number(number) => Ok(number),
            _ => Err(self.value_mismatch(literal)),
        }
    }

    fn time(&self, literal: &Literal) -> Result<TimePoint, Diagnostic> {
        match &literal.value {
            Value::Date(at) => Ok(TimePoint::At(*at)),
            Value::Now(offset) => Ok(TimePoint::Now(*offset)),
            Value::Str(text) => parse_date(text).map(TimePoint::At).ok_or_else(|| {
                Diagnostic::new(
                    ErrorCode::BadLiteral,
                    literal.span,
                    format!("`{text}` is not a valid date"),
                )
                .with_hint("write dates as 2026-01-31 or 2026-01-31T09:30:00Z")
            }),
            _ => Err(self.value_mismatch(literal)),
        }
    }

    fn non_empty(&self, literals: &[Literal]) -> Result<(), Diagnostic> {
        if literals.is_empty() {
            return Err(Diagnostic::new(
                ErrorCode::BadLiteral,
                self.span,
                format!(
                    "the list after `{}` is empty; give at least one value",
                    self.op.name()
                ),
            ));
        }
        Ok(())
    }

    /// `field = value` for the field's type.
    fn equality(&self, literal: &Literal) -> Result<Test, Diagnostic> {
        match self.field_type {
            FieldType::String => Ok(Test::TextIn(vec![self.text(literal)?])),
            FieldType::Number => Ok(Test::NumberIn(vec![self.number(literal)?])),
            FieldType::Bool => match literal.value {
                Value::Bool(flag) => Ok(Test::BoolIs(flag)),
                _ => Err(self.value_mismatch(literal)),
            },
            FieldType::Datetime => {
                let at = self.time(literal)?;
                Ok(Test::TimeRange(Bound::Included(at), Bound::Included(at)))
            }
            FieldType::StringList => Err(self.operator_mismatch()),
        }
    }

    /// `field in [..]` for the field's type.
    fn membership(&self, literals: &[Literal]) -> Result<Test, Diagnostic> {
        self.non_empty(literals)?;
        match self.field_type {
            FieldType::String => Ok(Test::TextIn(self.texts(literals)?)),
            FieldType::Number => Ok(Test::NumberIn(
                literals
                    .iter()
                    .map(|l| self.number(l))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(self.operator_mismatch()),
        }
    }
}

fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::Str(_) => "text",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Date(_) | Value::Now(_) => "a datetime",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::parse;

    pub(crate) struct TestCatalog(HashMap<&'static str, FieldType>);

    impl Catalog for TestCatalog {
        fn attribute_type(&self, name: &str) -> Option<FieldType> {
            self.0.get(name).copied()
        }
        fn attribute_names(&self) -> Vec<String> {
            self.0.keys().map(|k| k.to_string()).collect()
        }
        fn segment_exists(&self, slug: &str) -> bool {
            slug == "active-trials"
        }
        fn purpose_exists(&self, name: &str) -> bool {
            name == "marketing_email"
        }
        fn purpose_names(&self) -> Vec<String> {
            vec!["marketing_email".to_owned()]
        }
    }

    fn catalog() -> TestCatalog {
        TestCatalog(HashMap::from([
            ("plan", FieldType::String),
            ("ltv", FieldType::Number),
            ("vip", FieldType::Bool),
            ("trial_ends", FieldType::Datetime),
            ("tags", FieldType::StringList),
            ("odd name", FieldType::String),
        ]))
    }

    #[test]
    fn consent_conditions_test_a_declared_purpose() {
        let granted = Checked::Test(Field::Consent("marketing_email".into()), Test::BoolIs(true));
        assert_eq!(checked(r#"consent "marketing_email""#), granted);
        assert_eq!(
            checked(r#"not consent "marketing_email""#),
            Checked::Not(Box::new(granted))
        );
        let unknown = check(&parse(r#"consent "marketing_emial""#).unwrap(), &catalog())
            .unwrap_err()
            .remove(0);
        assert_eq!(unknown.code, ErrorCode::UnknownPurpose);
        assert_eq!(unknown.span, Span::new(8, 25));
        assert!(unknown.message.contains("did you mean `marketing_email`?"));
    }

    #[test]
    fn event_conditions_become_tests_on_the_event_rollup() {
        let count = |n: f64| {
            Checked::Test(
                Field::EventCount("purchase".into()),
                Test::NumberRange(Bound::Included(n), Bound::Unbounded),
            )
        };
        let within = |n: u32| {
            Checked::Test(
                Field::EventAt("purchase".into(), n),
                Test::TimeRange(
                    Bound::Included(TimePoint::Now(Offset {
                        negative: true,
                        duration: Some(Duration {
                            amount: 30,
                            unit: crate::ast::Unit::Days,
                        }),
                    })),
                    Bound::Unbounded,
                ),
            )
        };
        let not = |c: Checked| Checked::Not(Box::new(c));
        assert_eq!(checked(r#"event "purchase" exists"#), count(1.0));
        assert_eq!(checked(r#"event "purchase" not exists"#), not(count(1.0)));
        assert_eq!(checked(r#"event "purchase" count >= 2"#), count(2.0));
        assert_eq!(checked(r#"event "purchase" count > 2"#), count(3.0));
        assert_eq!(checked(r#"event "purchase" count < 2"#), not(count(2.0)));
        assert_eq!(
            checked(r#"event "purchase" count >= 2 within 30d"#),
            within(2)
        );
        assert_eq!(
            checked(r#"event "purchase" count = 1 within 30d"#),
            Checked::And(vec![within(1), not(within(2))])
        );
        assert_eq!(
            checked(r#"event "purchase" count = 0 within 30d"#),
            not(within(1))
        );
        // A field named `event` is still a field.
        assert!(diagnostics("event = 1")[0].contains("unknown attribute `event`"));
    }

    #[test]
    fn bad_event_conditions_point_at_their_part() {
        assert!(diagnostics(r#"event "Purchase" exists"#)[0].contains("is not an event name"));
        assert!(diagnostics(r#"event "1st" exists"#)[0].contains("is not an event name"));
        assert!(diagnostics(r#"event "purchase" count >= 0"#)[0].contains("always holds"));
        assert!(diagnostics(r#"event "purchase" count < 0"#)[0].contains("never holds"));
        assert!(
            diagnostics(r#"event "purchase" count >= 21 within 30d"#)[0].contains("goes up to 20")
        );
        let misspelt = crate::parse(r#"event "purchase" cont >= 2"#).unwrap_err();
        assert_eq!(misspelt.hint.as_deref(), Some("did you mean `count`?"));
        let no_number = crate::parse(r#"event "purchase" count >= x"#).unwrap_err();
        assert!(no_number.message.contains("whole number"), "{no_number:?}");
    }

    fn checked(source: &str) -> Checked {
        check(&parse(source).unwrap(), &catalog())
            .unwrap_or_else(|d| panic!("{}", d[0].render(source)))
    }

    fn diagnostics(source: &str) -> Vec<String> {
        check(&parse(source).unwrap(), &catalog())
            .unwrap_err()
            .iter()
            .map(|d| d.render(source))
            .collect()
    }

    #[test]
    fn sugar_becomes_primitive_tests() {
        let plan = || Field::Attribute("plan".into());
        assert_eq!(
            checked("plan != \"pro\""),
            Checked::Not(Box::new(Checked::Test(
                plan(),
                Test::TextIn(vec!["pro".into()])
            )))
        );
        assert_eq!(
            checked("plan not exists"),
            Checked::Not(Box::new(Checked::Test(plan(), Test::Exists)))
        );
        assert_eq!(
            checked("ltv between 1 and 2"),
            Checked::Test(
                Field::Attribute("ltv".into()),
                Test::NumberRange(Bound::Included(1.0), Bound::Included(2.0))
            )
        );
        assert_eq!(
            checked("email contains \"ACME\""),
            Checked::Test(
                Field::Builtin(BuiltinField::Email),
                Test::TextContains("acme".into())
            )
        );
        assert_eq!(
            checked("trial_ends before \"2026-01-01\""),
            Checked::Test(
                Field::Attribute("trial_ends".into()),
                Test::TimeRange(
                    Bound::Unbounded,
                    Bound::Excluded(TimePoint::At(parse_date("2026-01-01").unwrap()))
                )
            )
        );
        assert_eq!(
            checked("attributes.\"odd name\" exists"),
            Checked::Test(Field::Attribute("odd name".into()), Test::Exists)
        );
        assert_eq!(
            checked("in segment \"active-trials\"").references(),
            vec!["active-trials"]
        );
    }

    #[test]
    fn unknown_fields_suggest_the_closest_name() {
        assert_eq!(
            diagnostics("plna = \"pro\""),
            vec![
                "error: unknown attribute `plna`, did you mean `plan`?\n  |\n1 | plna = \"pro\"\n  | ^^^^\n  = hint: declare the attribute with `defineAttribute`, or check its spelling"
            ]
        );
        assert!(diagnostics("emial exists")[0].contains("did you mean `email`?"));
    }

    #[test]
    fn api_names_map_to_snake_case() {
        assert_eq!(snake_case("lastSeenAt"), "last_seen_at");
        assert_eq!(snake_case("accountRef"), "account_ref");
        assert_eq!(snake_case("email"), "email");
    }

    #[test]
    fn graphql_spelling_of_a_built_in_field_points_at_it() {
        let error = &diagnostics("lastSeenAt within 30d")[0];
        assert!(
            error.contains("unknown attribute `lastSeenAt`, did you mean `last_seen_at`?"),
            "{error}"
        );
        assert!(
            error.contains(
                "hint: `last_seen_at` is a built-in field; segments write field names in snake_case"
            ),
            "{error}"
        );
        assert!(!error.contains("defineAttribute"), "{error}");
        assert!(diagnostics("plna = \"pro\"")[0].contains("defineAttribute"));
    }

    #[test]
    fn operators_must_fit_the_type() {
        assert_eq!(
            diagnostics("ltv contains \"1\""),
            vec![
                "error: `ltv` is a number; `contains` works on text\n  |\n1 | ltv contains \"1\"\n  | ^^^^^^^^^^^^^^^^\n  = hint: operators for a number: =, !=, <, <=, >, >=, between, in, not in, exists"
            ]
        );
        let list_equals = &diagnostics("tags = \"vip\"")[0];
        assert!(
            list_equals.contains(
                "`tags` is a list of strings; `=` works on text, numbers, booleans and datetimes"
            ),
            "{list_equals}"
        );
        assert!(list_equals.contains("hint: to test a list write `tags has \"vip\"`"));
        assert!(
            diagnostics("plan within 3d")[0]
                .contains("`plan` is text; `within` works on datetimes")
        );
        assert!(
            diagnostics("vip > 1")[0]
                .contains("`vip` is a boolean; `>` works on numbers and datetimes")
        );
    }

    #[test]
    fn literals_must_fit_the_type() {
        assert_eq!(
            diagnostics("plan = 3"),
            vec![
                "error: `plan` is text, but `3` is a number\n  |\n1 | plan = 3\n  |        ^\n  = hint: write it in quotes: \"3\""
            ]
        );
        assert!(
            diagnostics("ltv >= \"a lot\"")[0]
                .contains("`ltv` is a number, but `\"a lot\"` is text")
        );
        assert!(diagnostics("trial_ends after \"soon\"")[0].contains("`soon` is not a valid date"));
        assert!(diagnostics("tags has any []")[0].contains("the list after `has any` is empty"));
    }

    /// A catalogue as a key with a field policy sees it: `ltv` hidden, `plan` sensitive, and
    /// sensitive values readable or not.
    struct RestrictedCatalog {
        inner: TestCatalog,
        reads_sensitive: bool,
    }

    impl Catalog for RestrictedCatalog {
        fn attribute_type(&self, name: &str) -> Option<FieldType> {
            self.inner.attribute_type(name)
        }
        fn attribute_names(&self) -> Vec<String> {
            self.inner.attribute_names()
        }
        fn segment_exists(&self, slug: &str) -> bool {
            self.inner.segment_exists(slug)
        }
        fn field_approved(&self, field: &Field) -> bool {
            field != &Field::Attribute("ltv".into())
                && field != &Field::Builtin(BuiltinField::Email)
        }
        fn attribute_sensitive(&self, name: &str) -> bool {
            name == "plan"
        }
        fn reads_sensitive(&self) -> bool {
            self.reads_sensitive
        }
    }

    fn restricted(source: &str) -> Result<Checked, Vec<Diagnostic>> {
        let catalog = RestrictedCatalog {
            inner: catalog(),
            reads_sensitive: true,
        };
        check(&parse(source).unwrap(), &catalog)
    }

    #[test]
    fn fields_the_caller_may_not_read_are_refused_at_their_span() {
        let source = "vip = true and ltv > 100";
        let problems = restricted(source).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ErrorCode::FieldNotApproved);
        assert_eq!(
            problems[0].render(source),
            "error: `ltv` is not an approved field for this API key\n  |\n1 | vip = true and ltv > 100\n  |                ^^^\n  = hint: segments may only test fields the key may read; ask an admin to approve it"
        );
        assert_eq!(
            restricted("email exists").unwrap_err()[0].code,
            ErrorCode::FieldNotApproved
        );
    }

    #[test]
    fn sensitive_attributes_allow_only_exact_tests() {
        for allowed in [
            "plan = \"pro\"",
            "plan != \"pro\"",
            "plan in [\"a\", \"b\"]",
            "plan not in [\"a\"]",
            "plan exists",
            "plan not exists",
        ] {
            assert!(restricted(allowed).is_ok(), "{allowed} refused");
        }
        let problems = restricted("plan contains \"p\"").unwrap_err();
        assert_eq!(problems[0].code, ErrorCode::TypeMismatch);
        assert!(problems[0].message.contains("`plan` is sensitive"));
        assert!(restricted("plan starts_with \"p\"").is_err());
    }

    #[test]
    fn every_problem_is_reported_and_unknown_segments_too() {
        let all = diagnostics("plna = 1 and ltv contains \"x\" and in segment \"nope\"");
        assert_eq!(all.len(), 3);
        assert!(all[2].contains("there is no saved segment `nope`"));
    }

    #[test]
    fn sensitive_attributes_cannot_be_tested_without_reading_them() {
        let catalog = RestrictedCatalog {
            inner: catalog(),
            reads_sensitive: false,
        };
        for source in [
            "plan = \"pro\"",
            "plan exists",
            "vip = true or plan not in [\"a\"]",
        ] {
            let problems = check(&parse(source).unwrap(), &catalog).unwrap_err();
            assert_eq!(problems[0].code, ErrorCode::FieldNotApproved, "{source}");
            assert!(
                problems[0].message.contains("needs the `pii:read` scope"),
                "{}",
                problems[0].message
            );
        }
        assert!(check(&parse("vip = true").unwrap(), &catalog).is_ok());
    }
}
