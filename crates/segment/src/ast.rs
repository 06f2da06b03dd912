//! The syntax tree of a segment, as written. `Display` prints the canonical text, which parses
//! back to the same tree.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::span::Span;

/// Words with a meaning in the language; a field with such a name is written `attributes."name"`.
pub const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "segment",
    "contains",
    "starts_with",
    "ends_with",
    "between",
    "has",
    "any",
    "all",
    "within",
    "before",
    "after",
    "exists",
    "true",
    "false",
    "now",
    "attributes",
];

/// Whether `word` is a keyword (keywords are case-insensitive).
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|keyword| keyword.eq_ignore_ascii_case(word))
}

/// A segment expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of the operands (at least two).
    And(Vec<Expr>),
    /// Any of the operands (at least two).
    Or(Vec<Expr>),
    /// The operand does not hold. The span covers the `not` keyword.
    Not(Box<Expr>, Span),
    /// A test on one field.
    Condition(Condition),
    /// Membership of a saved segment, by slug.
    InSegment(String, Span),
    /// A test on the contact's events of one name.
    Event(EventCondition),
    /// `consent "purpose"`: the contact's consent to the purpose is granted.
    Consent(ConsentCondition),
}

/// `consent "marketing_email"`: holds while the contact's latest statement on the purpose
/// grants it (never asked and withdrawn both fail it).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentCondition {
    /// The purpose's name.
    pub purpose: String,
    /// Where the name is written.
    pub purpose_span: Span,
    /// The whole condition.
    pub span: Span,
}

/// `event "name" exists`, `event "name" count >= 2 within 30d`, `event "name" within 7d`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCondition {
    /// The event name.
    pub name: String,
    /// Where the name is written.
    pub name_span: Span,
    /// The test.
    pub test: EventTest,
    /// The whole condition.
    pub span: Span,
}

/// What an event condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum EventTest {
    /// It happened at least once.
    Exists,
    /// It never happened.
    NotExists,
    /// How many times it happened (in the window, when given) compares with `count`.
    Count {
        /// The comparison.
        op: CmpOp,
        /// The number compared with.
        count: u32,
        /// Where the number is written.
        count_span: Span,
        /// Only occurrences in the last this long count.
        within: Option<(Duration, Span)>,
    },
    /// It happened at least once in the last this long.
    Within(Duration, Span),
}

/// `field operator [value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The field tested.
    pub field: FieldRef,
    /// The test.
    pub op: Op,
    /// The whole condition.
    pub span: Span,
}

/// A field as written.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldRef {
    /// The name.
    pub name: String,
    /// `attributes.name` or `attributes."name"`: a custom attribute even if a built-in has the name.
    pub explicit_attribute: bool,
    /// Where the field is written.
    pub span: Span,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The test a condition applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `= != < <= > >=` a value.
    Compare(CmpOp, Literal),
    /// `in [..]`
    In(Vec<Literal>),
    /// `not in [..]`
    NotIn(Vec<Literal>),
    /// `contains "text"` (case-insensitive)
    Contains(Literal),
    /// `starts_with "text"` (case-insensitive)
    StartsWith(Literal),
    /// `ends_with "text"` (case-insensitive)
    EndsWith(Literal),
    /// `between A and B` (inclusive)
    Between(Literal, Literal),
    /// `has "item"` (string lists)
    Has(Literal),
    /// `has any [..]`
    HasAny(Vec<Literal>),
    /// `has all [..]`
    HasAll(Vec<Literal>),
    /// `within 30d`: between that long ago and now.
    Within(Duration, Span),
    /// `before X`
    Before(Literal),
    /// `after X`
    After(Literal),
    /// `exists`
    Exists,
    /// `not exists`
    NotExists,
}

impl Op {
    /// The operator's name as written, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Compare(op, _) => op.as_str(),
            Self::In(_) => "in",
            Self::NotIn(_) => "not in",
            Self::Contains(_) => "contains",
            Self::StartsWith(_) => "starts_with",
            Self::EndsWith(_) => "ends_with",
            Self::Between(..) => "between",
            Self::Has(_) => "has",
            Self::HasAny(_) => "has any",
            Self::HasAll(_) => "has all",
            Self::Within(..) => "within",
            Self::Before(_) => "before",
            Self::After(_) => "after",
            Self::Exists => "exists",
            Self::NotExists => "not exists",
        }
    }
}

/// A literal value and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    /// The value.
    pub value: Value,
    /// Where.
    pub span: Span,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `"text"`
    Str(String),
    /// `12`, `-3.5`
    Number(f64),
    /// `true`, `false`
    Bool(bool),
    /// A bare ISO-8601 date or date-time, in UTC.
    Date(DateTime<Utc>),
    /// `now`, `now - 30d`, `now + 1w`.
    Now(Offset),
}

/// A signed duration relative to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    /// `-` (in the past) or `+`.
    pub negative: bool,
    /// How far; `None` for plain `now`.
    pub duration: Option<Duration>,
}

/// Time units of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `s`
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d`
    Days,
    /// `w`
    Weeks,
}

impl Unit {
    /// From the unit letter.
    pub fn from_letter(letter: char) -> Option<Self> {
        Some(match letter {
            's' => Self::Seconds,
            'm' => Self::Minutes,
            'h' => Self::Hours,
            'd' => Self::Days,
            'w' => Self::Weeks,
            _ => return None,
        })
    }

    /// The unit letter.
    pub fn letter(self) -> char {
        match self {
            Self::Seconds => 's',
            Self::Minutes => 'm',
            Self::Hours => 'h',
            Self::Days => 'd',
            Self::Weeks => 'w',
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3_600,
            Self::Days => 86_400,
            Self::Weeks => 604_800,
        }
    }
}

/// An amount of a time unit, such as `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    /// How many units.
    pub amount: u32,
    /// Which unit.
    pub unit: Unit,
}

impl Duration {
    /// As a chrono duration.
    pub fn to_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(i64::from(self.amount) * self.unit.seconds())
    }
}

impl Expr {
    /// The source range the expression covers.
    pub fn span(&self) -> Span {
        match self {
            Self::And(operands) | Self::Or(operands) => operands
                .iter()
                .map(Expr::span)
                .reduce(Span::to)
                .unwrap_or_default(),
            Self::Not(operand, keyword) => keyword.to(operand.span()),
            Self::Condition(condition) => condition.span,
            Self::InSegment(_, span) => *span,
            Self::Event(event) => event.span,
            Self::Consent(consent) => consent.span,
        }
    }

    /// The same tree with every span zeroed, for comparing trees parsed from different texts.
    pub fn without_spans(&self) -> Expr {
        let zero = Span::default();
        let literal = |l: &Literal| Literal {
            value: l.value.clone(),
            span: zero,
        };
        let literals = |ls: &[Literal]| ls.iter().map(literal).collect::<Vec<_>>();
        match self {
            Self::And(operands) => Self::And(operands.iter().map(Expr::without_spans).collect()),
            Self::Or(operands) => Self::Or(operands.iter().map(Expr::without_spans).collect()),
            Self::Not(operand, _) => Self::Not(Box::new(operand.without_spans()), zero),
            Self::InSegment(slug, _) => Self::InSegment(slug.clone(), zero),
            Self::Consent(consent) => Self::Consent(ConsentCondition {
                purpose: consent.purpose.clone(),
                purpose_span: zero,
                span: zero,
            }),
            Self::Event(event) => Self::Event(EventCondition {
                name: event.name.clone(),
                name_span: zero,
                test: match &event.test {
                    EventTest::Exists => EventTest::Exists,
                    EventTest::NotExists => EventTest::NotExists,
                    EventTest::Count {
                        op, count, within, ..
                    } => EventTest::Count {
                        op: *op,
                        count: *count,
                        count_span: zero,
                        within: within.map(|(duration, _)| (duration, zero)),
                    },
                    EventTest::Within(duration, _) => EventTest::Within(*duration, zero),
                },
                span: zero,
            }),
            Self::Condition(condition) => Self::Condition(Condition {
                field: FieldRef {
                    span: zero,
                    ..condition.field.clone()
                },
                op: match &condition.op {
                    Op::Compare(op, value) => Op::Compare(*op, literal(value)),
                    Op::In(values) => Op::In(literals(values)),
                    Op::NotIn(values) => Op::NotIn(literals(values)),
                    Op::Contains(value) => Op::Contains(literal(value)),
                    Op::StartsWith(value) => Op::StartsWith(literal(value)),
                    Op::EndsWith(value) => Op::EndsWith(literal(value)),
                    Op::Between(low, high) => Op::Between(literal(low), literal(high)),
                    Op::Has(value) => Op::Has(literal(value)),
                    Op::HasAny(values) => Op::HasAny(literals(values)),
                    Op::HasAll(values) => Op::HasAll(literals(values)),
                    Op::Within(duration, _) => Op::Within(*duration, zero),
                    Op::Before(value) => Op::Before(literal(value)),
                    Op::After(value) => Op::After(literal(value)),
                    Op::Exists => Op::Exists,
                    Op::NotExists => Op::NotExists,
                },
                span: zero,
            }),
        }
    }
}

/// Whether `name` can be written bare (an identifier that is not a keyword).
pub fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name)
}

fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for ch in text.chars() {
        match ch {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            other => write!(f, "{other}")?,
        }
    }
    f.write_str("\"")
}

fn write_list(f: &mut fmt::Formatter<'_>, values: &[Literal]) -> fmt::Result {
    f.write_str("[")?;
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{value}")?;
    }
    f.write_str("]")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(operands) => write_joined(f, operands, " and ", |e| {
                matches!(e, Self::And(_) | Self::Or(_))
            }),
            Self::Or(operands) => write_joined(f, operands, " or ", |e| matches!(e, Self::Or(_))),
            Self::Not(operand, _) => {
                let grouped = matches!(**operand, Self::And(_) | Self::Or(_));
                if grouped {
                    write!(f, "not ({operand})")
                } else {
                    write!(f, "not {operand}")
                }
            }
            Self::Condition(condition) => write!(f, "{condition}"),
            Self::InSegment(slug, _) => {
                f.write_str("in segment ")?;
                write_quoted(f, slug)
            }
            Self::Event(event) => write!(f, "{event}"),
            Self::Consent(consent) => write!(f, "{consent}"),
        }
    }
}

impl fmt::Display for ConsentCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("consent ")?;
        write_quoted(f, &self.purpose)
    }
}

impl fmt::Display for EventCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("event ")?;
        write_quoted(f, &self.name)?;
        match &self.test {
            EventTest::Exists => f.write_str(" exists"),
            EventTest::NotExists => f.write_str(" not exists"),
            EventTest::Count {
                op, count, within, ..
            } => {
                write!(f, " count {} {count}", op.as_str())?;
                match within {
                    Some((duration, _)) => write!(f, " within {duration}"),
                    None => Ok(()),
                }
            }
            EventTest::Within(duration, _) => write!(f, " within {duration}"),
        }
    }
}

/// Joins operands, parenthesising those for which `needs_parens` holds.
fn write_joined(
    f: &mut fmt::Formatter<'_>,
    operands: &[Expr],
    separator: &str,
    needs_parens: impl Fn(&Expr) -> bool,
) -> fmt::Result {
    for (index, operand) in operands.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        if needs_parens(operand) {
            write!(f, "({operand})")?
        } else {
            write!(f, "{operand}")?
        }
    }
    Ok(())
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit_attribute {
            f.write_str("attributes.")?;
            write_quoted(f, &self.name)
        } else {
            f.write_str(&self.name)
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.field)?;
        match &self.op {
            Op::Compare(op, value) => write!(f, "{} {value}", op.as_str()),
            Op::In(values) => {
                f.write_str("in ")?;
                write_list(f, values)
            }
            Op::NotIn(values) => {
                f.write_str("not in ")?;
                write_list(f, values)
            }
            Op::Contains(value) => write!(f, "contains {value}"),
            Op::StartsWith(value) => write!(f, "starts_with {value}"),
            Op::EndsWith(value) => write!(f, "ends_with {value}"),
            Op::Between(low, high) => write!(f, "between {low} and {high}"),
            Op::Has(value) => write!(f, "has {value}"),
            Op::HasAny(values) => {
                f.write_str("has any ")?;
                write_list(f, values)
            }
            Op::HasAll(values) => {
                f.write_str("has all ")?;
                write_list(f, values)
            }
            Op::Within(duration, _) => write!(f, "within {duration}"),
            Op::Before(value) => write!(f, "before {value}"),
            Op::After(value) => write!(f, "after {value}"),
            Op::Exists => f.write_str("exists"),
            Op::NotExists => f.write_str("not exists"),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(text) => write_quoted(f, text),
            Self::Number(number) => write!(f, "{number}"),
            Self::Bool(flag) => write!(f, "{flag}"),
            Self::Date(at) => f.write_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Self::Now(offset) => write!(f, "{offset}"),
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.duration {
            None => f.write_str("now"),
            Some(duration) => write!(
                f,
                "now {} {duration}",
                if self.negative { '-' } else { '+' }
            ),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.letter())
    }
}
