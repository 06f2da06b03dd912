//! The structured form of the segment language for visual builders: `SegmentExprInput` converts to
//! the same syntax tree the text parses to, and every tree converts back to that input's JSON.

use async_graphql::{Enum, InputObject, InputType, OneofObject};
use chrono::{DateTime, Utc};
use qwry_segment::Span;
use qwry_segment::ast::{
    CmpOp, Condition, ConsentCondition, Duration, EventCondition, EventTest, Expr, FieldRef,
    Literal, Offset, Op, Unit, Value,
};
use serde_json::{Value as Json, json};

use crate::service::ServiceError;

/// Deepest structured input accepted (as for text).
const MAX_INPUT_DEPTH: usize = qwry_segment::MAX_DEPTH;

/// A segment expression: exactly one of the fields.
#[derive(OneofObject, Debug, Clone)]
pub enum SegmentExprInput {
    /// All of these hold.
    And(Vec<SegmentExprInput>),
    /// Any of these holds.
    Or(Vec<SegmentExprInput>),
    /// This does not hold.
    Not(Box<SegmentExprInput>),
    /// A test on one field.
    Condition(ConditionInput),
    /// Membership of the saved segment with this slug.
    InSegment(String),
    /// A test on the contact's events of one name.
    Event(EventConditionInput),
    /// `consent "purpose"`: the contact's consent to the purpose is granted.
    Consent(ConsentConditionInput),
}

/// `consent "marketing_email"` as a builder sends it.
#[derive(InputObject, Debug, Clone)]
pub struct ConsentConditionInput {
    /// A purpose the workspace declared with `defineConsentPurpose`.
    pub purpose: String,
}

/// What an event condition tests.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum EventTestKind {
    /// `event "name" exists`: it happened at least once.
    Exists,
    /// `event "name" not exists`: it never happened.
    NotExists,
    /// `event "name" count <operator> <count> [within <within>]`.
    Count,
    /// `event "name" within <within>`: at least once in that window.
    Within,
}

/// `event "purchase" count >= 2 within 30d` as a builder sends it.
#[derive(InputObject, Debug, Clone)]
pub struct EventConditionInput {
    /// The event name, as recorded (`purchase`).
    pub name: String,
    /// What to test.
    pub test: EventTestKind,
    /// For `COUNT`: `EQ`, `NE`, `LT`, `LE`, `GT` or `GE`.
    pub operator: Option<SegmentOperator>,
    /// For `COUNT`: the number compared with.
    pub count: Option<u32>,
    /// For `WITHIN`, and optionally `COUNT`: the window, e.g. `30d`.
    pub within: Option<String>,
}

impl EventConditionInput {
    fn to_event(&self) -> Result<EventCondition, ServiceError> {
        let window = self.within.as_deref().map(duration).transpose()?;
        let zero = Span::default();
        let test = match self.test {
            EventTestKind::Exists => EventTest::Exists,
            EventTestKind::NotExists => EventTest::NotExists,
            EventTestKind::Within => EventTest::Within(
                window.ok_or_else(|| invalid("`WITHIN` needs `within`, e.g. `30d`"))?,
                zero,
            ),
            EventTestKind::Count => {
                let op = self
                    .operator
                    .and_then(SegmentOperator::comparison)
                    .ok_or_else(|| {
                        invalid("`COUNT` needs an `operator` of EQ, NE, LT, LE, GT or GE")
                    })?;
                EventTest::Count {
                    op,
                    count: self.count.ok_or_else(|| invalid("`COUNT` needs `count`"))?,
                    count_span: zero,
                    within: window.map(|window| (window, zero)),
                }
            }
        };
        Ok(EventCondition {
            name: self.name.clone(),
            name_span: zero,
            test,
            span: zero,
        })
    }
}

/// An operator's GraphQL spelling (`EQ`, `NOT_IN`, ...), as the expression JSON writes it.
fn operator_name(operator: SegmentOperator) -> String {
    operator.to_value().to_string()
}

fn event_json(event: &EventCondition) -> Json {
    match &event.test {
        EventTest::Exists => json!({ "name": event.name, "test": "EXISTS" }),
        EventTest::NotExists => json!({ "name": event.name, "test": "NOT_EXISTS" }),
        EventTest::Within(window, _) => {
            json!({ "name": event.name, "test": "WITHIN", "within": window.to_string() })
        }
        EventTest::Count {
            op, count, within, ..
        } => {
            let mut object = json!({ "name": event.name, "test": "COUNT", "operator": operator_name(SegmentOperator::from(*op)), "count": count });
            if let Some((window, _)) = within {
                object["within"] = Json::String(window.to_string());
            }
            object
        }
    }
}

/// Operators of conditions.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum SegmentOperator {
    /// `=` (`value`)
    Eq,
    /// `!=` (`value`)
    Ne,
    /// `<` (`value`)
    Lt,
    /// `<=` (`value`)
    Le,
    /// `>` (`value`)
    Gt,
    /// `>=` (`value`)
    Ge,
    /// `in [..]` (`values`)
    In,
    /// `not in [..]` (`values`)
    NotIn,
    /// `contains` (`value`)
    Contains,
    /// `starts_with` (`value`)
    StartsWith,
    /// `ends_with` (`value`)
    EndsWith,
    /// `between value and to`
    Between,
    /// `has` (`value`)
    Has,
    /// `has any [..]` (`values`)
    HasAny,
    /// `has all [..]` (`values`)
    HasAll,
    /// `within 30d` (`within`)
    Within,
    /// `before` (`value`)
    Before,
    /// `after` (`value`)
    After,
    /// `exists`
    Exists,
    /// `not exists`
    NotExists,
}

impl SegmentOperator {
    /// The comparison this operator is, if it is one (`EQ` ... `GE`).
    fn comparison(self) -> Option<CmpOp> {
        Some(match self {
            Self::Eq => CmpOp::Eq,
            Self::Ne => CmpOp::Ne,
            Self::Lt => CmpOp::Lt,
            Self::Le => CmpOp::Le,
            Self::Gt => CmpOp::Gt,
            Self::Ge => CmpOp::Ge,
            _ => return None,
        })
    }
}

impl From<CmpOp> for SegmentOperator {
    fn from(op: CmpOp) -> Self {
        match op {
            CmpOp::Eq => Self::Eq,
            CmpOp::Ne => Self::Ne,
            CmpOp::Lt => Self::Lt,
            CmpOp::Le => Self::Le,
            CmpOp::Gt => Self::Gt,
            CmpOp::Ge => Self::Ge,
        }
    }
}

/// `field op value`.
#[derive(InputObject, Debug, Clone)]
pub struct ConditionInput {
    /// A built-in field or a custom attribute.
    pub field: String,
    /// Treat `field` as a custom attribute even if a built-in has the name.
    #[graphql(default)]
    pub attribute: bool,
    /// The operator.
    pub operator: Option<SegmentOperator>,
    /// The operator.
    #[graphql(
        deprecation = "Use `operator`, as event conditions name it; `op` goes in the next release."
    )]
    pub op: Option<SegmentOperator>,
    /// The value of single-value operators; the lower bound of BETWEEN.
    pub value: Option<SegmentValueInput>,
    /// The upper bound of BETWEEN.
    pub to: Option<SegmentValueInput>,
    /// The values of IN, NOT_IN, HAS_ANY and HAS_ALL.
    pub values: Option<Vec<SegmentValueInput>>,
    /// The window of WITHIN, such as `30d` (units s, m, h, d, w).
    pub within: Option<String>,
    /// The window of WITHIN.
    #[graphql(
        deprecation = "Use `within`, as event conditions name it; `duration` goes in the next release."
    )]
    pub duration: Option<String>,
}

/// A literal value: exactly one of the fields.
#[derive(OneofObject, Debug, Clone)]
pub enum SegmentValueInput {
    /// Text.
    String(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Date(DateTime<Utc>),
    /// `now`, optionally shifted.
    Now(NowInput),
}

/// `now`, `now - 30d` or `now + 7d`.
#[derive(InputObject, Debug, Clone, Default)]
pub struct NowInput {
    /// How far back, such as `30d`.
    pub minus: Option<String>,
    /// How far ahead, such as `7d`.
    pub plus: Option<String>,
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::invalid("where", message)
}

impl SegmentExprInput {
    /// The syntax tree this input stands for.
    pub fn to_expr(&self) -> Result<Expr, ServiceError> {
        self.to_expr_at(0)
    }

    fn to_expr_at(&self, depth: usize) -> Result<Expr, ServiceError> {
        if depth > MAX_INPUT_DEPTH {
            return Err(invalid(format!(
                "the segment nests deeper than {MAX_INPUT_DEPTH} levels; simplify it"
            )));
        }
        let all = |operands: &[SegmentExprInput], name: &str| -> Result<Vec<Expr>, ServiceError> {
            if operands.len() < 2 {
                return Err(invalid(format!("`{name}` needs at least two operands")));
            }
            operands.iter().map(|o| o.to_expr_at(depth + 1)).collect()
        };
        Ok(match self {
            Self::And(operands) => Expr::And(all(operands, "and")?),
            Self::Or(operands) => Expr::Or(all(operands, "or")?),
            Self::Not(operand) => {
                Expr::Not(Box::new(operand.to_expr_at(depth + 1)?), Span::default())
            }
            Self::InSegment(slug) => Expr::InSegment(slug.clone(), Span::default()),
            Self::Condition(condition) => Expr::Condition(condition.to_condition()?),
            Self::Event(event) => Expr::Event(event.to_event()?),
            Self::Consent(consent) => Expr::Consent(ConsentCondition {
                purpose: consent.purpose.clone(),
                purpose_span: Span::default(),
                span: Span::default(),
            }),
        })
    }
}

impl ConditionInput {
    /// The operator: `operator`, or the deprecated `op` (not both).
    fn operator(&self) -> Result<SegmentOperator, ServiceError> {
        match (self.operator, self.op) {
            (Some(operator), None) | (None, Some(operator)) => Ok(operator),
            (None, None) => Err(invalid(format!(
                "the condition on `{}` needs an `operator`",
                self.field
            ))),
            (Some(_), Some(_)) => Err(invalid(format!(
                "the condition on `{}` gives `operator` and `op`; give `operator` alone",
                self.field
            ))),
        }
    }

    /// The window of WITHIN: `within`, or the deprecated `duration` (not both).
    fn window(&self) -> Result<Option<&str>, ServiceError> {
        match (self.within.as_deref(), self.duration.as_deref()) {
            (Some(_), Some(_)) => Err(invalid(format!(
                "the condition on `{}` gives `within` and `duration`; give `within` alone",
                self.field
            ))),
            (within, duration) => Ok(within.or(duration)),
        }
    }

    fn to_condition(&self) -> Result<Condition, ServiceError> {
        use SegmentOperator as O;
        let operator = self.operator()?;
        let one = || -> Result<Literal, ServiceError> {
            self.value
                .as_ref()
                .map(literal)
                .transpose()?
                .ok_or_else(|| invalid(format!("`{operator:?}` on `{}` needs `value`", self.field)))
        };
        let many = || -> Result<Vec<Literal>, ServiceError> {
            let values = self.values.as_ref().ok_or_else(|| {
                invalid(format!("`{operator:?}` on `{}` needs `values`", self.field))
            })?;
            values.iter().map(literal).collect()
        };
        let op = match operator {
            O::Eq | O::Ne | O::Lt | O::Le | O::Gt | O::Ge => match operator.comparison() {
                Some(comparison) => Op::Compare(comparison, one()?),
                None => return Err(invalid(format!("`{operator:?}` is not a comparison"))),
            },
            O::In => Op::In(many()?),
            O::NotIn => Op::NotIn(many()?),
            O::Contains => Op::Contains(one()?),
            O::StartsWith => Op::StartsWith(one()?),
            O::EndsWith => Op::EndsWith(one()?),
            O::Between => {
                let high = self
                    .to
                    .as_ref()
                    .map(literal)
                    .transpose()?
                    .ok_or_else(|| invalid("`Between` needs `to`"))?;
                Op::Between(one()?, high)
            }
            O::Has => Op::Has(one()?),
            O::HasAny => Op::HasAny(many()?),
            O::HasAll => Op::HasAll(many()?),
            O::Within => {
                let raw = self
                    .window()?
                    .ok_or_else(|| invalid("`Within` needs `within`, such as `30d`"))?;
                Op::Within(duration(raw)?, Span::default())
            }
            O::Before => Op::Before(one()?),
            O::After => Op::After(one()?),
            O::Exists => Op::Exists,
            O::NotExists => Op::NotExists,
        };
        let field = FieldRef {
            name: self.field.clone(),
            explicit_attribute: self.attribute,
            span: Span::default(),
        };
        Ok(Condition {
            field,
            op,
            span: Span::default(),
        })
    }
}

fn duration(raw: &str) -> Result<Duration, ServiceError> {
    let bad = || {
        invalid(format!(
            "`{raw}` is not a duration; write a whole number and s, m, h, d or w, e.g. `30d`"
        ))
    };
    let raw = raw.trim();
    let unit = raw
        .chars()
        .last()
        .and_then(Unit::from_letter)
        .ok_or_else(bad)?;
    let amount = raw[..raw.len() - 1].parse::<u32>().map_err(|_| bad())?;
    Ok(Duration { amount, unit })
}

fn literal(input: &SegmentValueInput) -> Result<Literal, ServiceError> {
    let value = match input {
        SegmentValueInput::String(text) => Value::Str(text.clone()),
        SegmentValueInput::Number(number) if number.is_finite() => Value::Number(*number),
        SegmentValueInput::Number(_) => return Err(invalid("numbers must be finite")),
        SegmentValueInput::Bool(flag) => Value::Bool(*flag),
        SegmentValueInput::Date(at) => Value::Date(*at),
        SegmentValueInput::Now(now) => Value::Now(match (&now.minus, &now.plus) {
            (None, None) => Offset::default(),
            (Some(minus), None) => Offset {
                negative: true,
                duration: Some(duration(minus)?),
            },
            (None, Some(plus)) => Offset {
                negative: false,
                duration: Some(duration(plus)?),
            },
            (Some(_), Some(_)) => return Err(invalid("`now` takes `minus` or `plus`, not both")),
        }),
    };
    Ok(Literal {
        value,
        span: Span::default(),
    })
}

/// The JSON of the `SegmentExprInput` that stands for `expr` (send it back as `where`).
pub fn expr_json(expr: &Expr) -> Json {
    match expr {
        Expr::And(operands) => json!({ "and": operands.iter().map(expr_json).collect::<Vec<_>>() }),
        Expr::Or(operands) => json!({ "or": operands.iter().map(expr_json).collect::<Vec<_>>() }),
        Expr::Not(operand, _) => json!({ "not": expr_json(operand) }),
        Expr::InSegment(slug, _) => json!({ "inSegment": slug }),
        Expr::Condition(condition) => json!({ "condition": condition_json(condition) }),
        Expr::Event(event) => json!({ "event": event_json(event) }),
        Expr::Consent(consent) => json!({ "consent": { "purpose": consent.purpose } }),
    }
}

fn condition_json(condition: &Condition) -> Json {
    let mut object = serde_json::Map::new();
    object.insert("field".into(), Json::String(condition.field.name.clone()));
    if condition.field.explicit_attribute {
        object.insert("attribute".into(), Json::Bool(true));
    }
    use SegmentOperator as O;
    let list = |values: &[Literal]| Json::Array(values.iter().map(literal_json).collect());
    let (operator, value, to, values, within) = match &condition.op {
        Op::Compare(op, value) => (O::from(*op), Some(literal_json(value)), None, None, None),
        Op::In(values) => (O::In, None, None, Some(list(values)), None),
        Op::NotIn(values) => (O::NotIn, None, None, Some(list(values)), None),
        Op::Contains(value) => (O::Contains, Some(literal_json(value)), None, None, None),
        Op::StartsWith(value) => (O::StartsWith, Some(literal_json(value)), None, None, None),
        Op::EndsWith(value) => (O::EndsWith, Some(literal_json(value)), None, None, None),
        Op::Between(low, high) => (
            O::Between,
            Some(literal_json(low)),
            Some(literal_json(high)),
            None,
            None,
        ),
        Op::Has(value) => (O::Has, Some(literal_json(value)), None, None, None),
        Op::HasAny(values) => (O::HasAny, None, None, Some(list(values)), None),
        Op::HasAll(values) => (O::HasAll, None, None, Some(list(values)), None),
        Op::Within(duration, _) => (
            O::Within,
            None,
            None,
            None,
            Some(Json::String(duration.to_string())),
        ),
        Op::Before(value) => (O::Before, Some(literal_json(value)), None, None, None),
        Op::After(value) => (O::After, Some(literal_json(value)), None, None, None),
        Op::Exists => (O::Exists, None, None, None, None),
        Op::NotExists => (O::NotExists, None, None, None, None),
    };
    object.insert("operator".into(), Json::String(operator_name(operator)));
    for (key, entry) in [
        ("value", value),
        ("to", to),
        ("values", values),
        ("within", within),
    ] {
        if let Some(entry) = entry {
            object.insert(key.into(), entry);
        }
    }
    Json::Object(object)
}

/// Integral numbers print without a fraction (`100`, not `100.0`).
fn number_json(number: f64) -> Json {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: integers up to here are exact in f64
    if number.fract() == 0.0 && number.abs() <= EXACT {
        json!(number as i64)
    } else {
        json!(number)
    }
}

fn literal_json(literal: &Literal) -> Json {
    match &literal.value {
        Value::Str(text) => json!({ "string": text }),
        Value::Number(number) => json!({ "number": number_json(*number) }),
        Value::Bool(flag) => json!({ "bool": flag }),
        Value::Date(at) => json!({ "date": at.to_rfc3339() }),
        Value::Now(Offset { duration: None, .. }) => json!({ "now": {} }),
        Value::Now(Offset {
            negative: true,
            duration: Some(d),
        }) => json!({ "now": { "minus": d.to_string() } }),
        Value::Now(Offset {
            negative: false,
            duration: Some(d),
        }) => json!({ "now": { "plus": d.to_string() } }),
    }
}
