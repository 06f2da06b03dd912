//! A hand-written recursive-descent parser: precise spans, messages in the marketer's terms and an
//! explicit depth limit are easier to get right by hand than through a parser generator for a
//! grammar this small.
//!
//! ```text
//! segment   = or EOF
//! or        = and ("or" and)*
//! and       = unary ("and" unary)*
//! unary     = "not" unary | primary
//! primary   = "(" or ")" | "in" "segment" STRING | event | consent | condition
//! event     = "event" STRING ("exists" | "not" "exists" | "within" DURATION
//!           | "count" ("=" | "!=" | "<" | "<=" | ">" | ">=") NUMBER ("within" DURATION)?)
//! consent   = "consent" STRING
//! condition = field test
//! field     = NAME | "attributes" "." (NAME | STRING)
//! test      = ("=" | "!=" | "<" | "<=" | ">" | ">=") value
//!           | "in" list | "not" "in" list | "not" "exists" | "exists"
//!           | ("contains" | "starts_with" | "ends_with" | "has" | "before" | "after") value
//!           | "has" ("any" | "all") list | "between" value "and" value | "within" DURATION
//! list      = "[" (value ("," value)*)? "]"
//! value     = STRING | NUMBER | "-" NUMBER | "true" | "false" | DATE | "now" (("+" | "-") DURATION)?
//! ```
//! Keywords are case-insensitive; `and` binds tighter than `or`.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ast::{
    CmpOp, Condition, ConsentCondition, Duration, EventCondition, EventTest, Expr, FieldRef,
    Literal, Offset, Op, Unit, Value, is_keyword,
};
use crate::error::{Diagnostic, ErrorCode};
use crate::lexer::{Spanned, Token, tokenize};
use crate::span::Span;

/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 32;
/// Most values in one list.
pub const MAX_LIST_LEN: usize = 1_000;

/// Most syntax problems one text reports (the rest are left for after the first are fixed).
pub const MAX_SYNTAX_DIAGNOSTICS: usize = 20;

/// Parses segment text into its syntax tree.
pub fn parse(source: &str) -> Result<Expr, Diagnostic> {
    let mut parser = Parser::new(source, false)?;
    let expr = parser.segment()?;
    parser.end()?;
    Ok(expr)
}

/// Parses segment text, going on past syntax errors: every syntax problem (up to
/// [`MAX_SYNTAX_DIAGNOSTICS`]) and the tree of the conditions that did parse, which a check can
/// then look at for more problems (an unknown field beside a malformed duration). With no
/// problem, the tree is [`parse`]'s.
pub fn parse_recovering(source: &str) -> (Option<Expr>, Vec<Diagnostic>) {
    let mut parser = match Parser::new(source, true) {
        Ok(parser) => parser,
        Err(diagnostic) => return (None, vec![diagnostic]),
    };
    let mut parts = Vec::new();
    loop {
        match parser.segment() {
            Ok(expr) => parts.push(expr),
            Err(diagnostic) => parser.note(diagnostic),
        }
        match parser.end() {
            Ok(()) => break,
            Err(diagnostic) => {
                // Not again for a token an operand's problem already points at.
                let said = parser
                    .diagnostics
                    .last()
                    .is_some_and(|last| last.span.start == diagnostic.span.start);
                if !said {
                    parser.note(diagnostic);
                }
                // Past the stray token and whatever follows it up to the next `and` or `or`.
                parser.advance();
                while !matches!(parser.peek(), Token::Eof)
                    && !parser.at_keyword("and")
                    && !parser.at_keyword("or")
                {
                    parser.advance();
                }
                if parser.peek() == &Token::Eof
                    || parser.diagnostics.len() >= MAX_SYNTAX_DIAGNOSTICS
                {
                    break;
                }
                parser.advance();
            }
        }
    }
    parts.retain(|part| !matches!(part, Expr::And(operands) if operands.is_empty()));
    let expr = match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Expr::And(parts)),
    };
    (expr, parser.diagnostics)
}

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    depth: usize,
    /// The text, for suggestions quoting it.
    source: String,
    /// Whether a malformed operand is noted and skipped instead of ending the parse.
    recovering: bool,
    /// The problems noted while recovering.
    diagnostics: Vec<Diagnostic>,
}

impl Parser {
    fn new(source: &str, recovering: bool) -> Result<Self, Diagnostic> {
        Ok(Self {
            tokens: tokenize(source)?,
            pos: 0,
            depth: 0,
            source: source.to_owned(),
            recovering,
            diagnostics: Vec::new(),
        })
    }

    /// The whole text's expression (not yet its end).
    fn segment(&mut self) -> Result<Expr, Diagnostic> {
        if self.peek() == &Token::Eof {
            return Err(Diagnostic::new(
                ErrorCode::Syntax,
                self.span(),
                "the segment is empty; write a condition such as `plan = \"pro\"`".to_owned(),
            ));
        }
        self.or()
    }

    /// The end of the text.
    fn end(&self) -> Result<(), Diagnostic> {
        if self.peek() == &Token::Eof {
            return Ok(());
        }
        let found = self.peek().describe();
        Err(self
            .error(format!("expected `and`, `or` or the end, found {found}"))
            .with_hint("join conditions with `and` or `or`"))
    }

    /// Notes a problem met while recovering (the first [`MAX_SYNTAX_DIAGNOSTICS`]).
    fn note(&mut self, diagnostic: Diagnostic) {
        if self.diagnostics.len() < MAX_SYNTAX_DIAGNOSTICS {
            self.diagnostics.push(diagnostic);
        }
    }

    /// One operand of `and`: when recovering, a malformed one is noted and skipped up to the
    /// next `and`, `or` or closing parenthesis of its level (`None`).
    fn operand(&mut self) -> Result<Option<Expr>, Diagnostic> {
        let start = self.pos;
        match self.unary() {
            Ok(expr) => Ok(Some(expr)),
            Err(diagnostic) if self.recovering && diagnostic.code == ErrorCode::Syntax => {
                // Back to the token the problem is at: a misplaced `and` is read again as one.
                if let Some(at) = (start..self.pos)
                    .find(|&index| self.tokens[index].span.start >= diagnostic.span.start)
                {
                    self.pos = at;
                }
                self.note(diagnostic);
                let mut open = 0usize;
                loop {
                    match self.peek() {
                        Token::Eof => break,
                        Token::LParen => open += 1,
                        Token::RParen if open == 0 => break,
                        Token::RParen => open -= 1,
                        Token::Word(word)
                            if open == 0
                                && (word.eq_ignore_ascii_case("and")
                                    || word.eq_ignore_ascii_case("or")) =>
                        {
                            break;
                        }
                        _ => {}
                    }
                    self.advance();
                }
                Ok(None)
            }
            Err(diagnostic) => Err(diagnostic),
        }
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.pos].token
    }

    fn peek_second(&self) -> &Token {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].token
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    fn advance(&mut self) -> Spanned {
        let spanned = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        spanned
    }

    fn error(&self, message: String) -> Diagnostic {
        Diagnostic::new(ErrorCode::Syntax, self.span(), message)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn second_is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek_second(), Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> Option<Span> {
        self.at_keyword(keyword).then(|| self.advance().span)
    }

    fn expect_keyword(&mut self, keyword: &str, context: &str) -> Result<Span, Diagnostic> {
        self.eat_keyword(keyword).ok_or_else(|| {
            self.error(format!(
                "expected `{keyword}` {context}, found {}",
                self.peek().describe()
            ))
        })
    }

    fn expect(&mut self, token: Token, context: &str) -> Result<Span, Diagnostic> {
        if self.peek() == &token {
            return Ok(self.advance().span);
        }
        Err(self.error(format!(
            "expected {} {context}, found {}",
            token.describe(),
            self.peek().describe()
        )))
    }

    /// The index of the `)` that closes the `(` at the current token, if any.
    fn closing_paren(&self) -> Option<usize> {
        let mut open = 0usize;
        for (index, spanned) in self.tokens.iter().enumerate().skip(self.pos) {
            match spanned.token {
                Token::LParen => open += 1,
                Token::RParen => {
                    open -= 1;
                    if open == 0 {
                        return Some(index);
                    }
                }
                Token::Eof => return None,
                _ => {}
            }
        }
        None
    }

    fn enter(&mut self) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                ErrorCode::TooDeep,
                self.span(),
                format!("the segment nests deeper than {MAX_DEPTH} levels; simplify it"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, Diagnostic> {
        let mut operands = vec![self.and()?];
        while self.eat_keyword("or").is_some() {
            operands.push(self.and()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::Or(operands)
        })
    }

    /// Operands joined by `and`. While recovering, malformed operands are left out; when none
    /// is left, an empty `And` stands for them (their problems are noted already; the tree is
    /// only checked, never run).
    fn and(&mut self) -> Result<Expr, Diagnostic> {
        let mut operands: Vec<Expr> = self.operand()?.into_iter().collect();
        while self.eat_keyword("and").is_some() {
            operands.extend(self.operand()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::And(operands)
        })
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        if let Some(keyword) = self.eat_keyword("not") {
            self.enter()?;
            let operand = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(operand), keyword));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Diagnostic> {
        if self.peek() == &Token::LParen {
            self.advance();
            self.enter()?;
            let inner = self.or()?;
            self.depth -= 1;
            self.expect(Token::RParen, "to close the group")?;
            return Ok(inner);
        }
        if self.at_keyword("in") && self.second_is_keyword("segment") {
            let start = self.advance().span;
            self.advance();
            let spanned = self.advance();
            let Token::Str(slug) = spanned.token else {
                let message = format!(
                    "expected the segment's slug in quotes, found {}",
                    spanned.token.describe()
                );
                return Err(Diagnostic::new(ErrorCode::Syntax, spanned.span, message)
                    .with_hint("write `in segment \"active-trials\"`"));
            };
            return Ok(Expr::InSegment(slug, start.to(spanned.span)));
        }
        if self.at_keyword("event") && matches!(self.peek_second(), Token::Str(_)) {
            return self.event();
        }
        if self.at_keyword("consent") && matches!(self.peek_second(), Token::Str(_)) {
            let start = self.advance().span;
            let purpose = self.advance();
            let Token::Str(name) = purpose.token else {
                return Err(self.error("expected the purpose's name in quotes".to_owned()));
            };
            return Ok(Expr::Consent(ConsentCondition {
                purpose: name,
                purpose_span: purpose.span,
                span: start.to(purpose.span),
            }));
        }
        self.condition()
    }

    /// `event "name"` and its test (the word `event` before a quoted name; a field named
    /// `event` stays a field).
    fn event(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.advance().span;
        let name = self.advance();
        let Token::Str(name_text) = name.token else {
            return Err(self.error("expected the event name in quotes".to_owned()));
        };
        let test = if self.eat_keyword("exists").is_some() {
            EventTest::Exists
        } else if self.at_keyword("not") && self.second_is_keyword("exists") {
            self.advance();
            self.advance();
            EventTest::NotExists
        } else if self.eat_keyword("within").is_some() {
            let (duration, span) = self.duration("within")?;
            EventTest::Within(duration, span)
        } else if self.eat_keyword("count").is_some() {
            let spanned = self.advance();
            let op = match comparison(&spanned.token) {
                Some(op) => op,
                None => {
                    let message = format!(
                        "expected a comparison (`>=`, `>`, `=`, `!=`, `<`, `<=`) after `count`, found {}",
                        spanned.token.describe()
                    );
                    return Err(Diagnostic::new(ErrorCode::Syntax, spanned.span, message));
                }
            };
            let number = self.advance();
            let count = match number.token {
                Token::Number(value)
                    if value >= 0.0 && value.fract() == 0.0 && value <= f64::from(u32::MAX) =>
                {
                    value as u32
                }
                other => {
                    let message = format!(
                        "expected a whole number after `count {}`, found {}",
                        op.as_str(),
                        other.describe()
                    );
                    return Err(Diagnostic::new(ErrorCode::Syntax, number.span, message));
                }
            };
            let within = if self.eat_keyword("within").is_some() {
                Some(self.duration("within")?)
            } else {
                None
            };
            EventTest::Count {
                op,
                count,
                count_span: number.span,
                within,
            }
        } else {
            let found = self.peek().clone();
            let mut diagnostic = self.error(format!(
                "expected `exists`, `not exists`, `count` or `within` after `event \"{name_text}\"`, found {}",
                found.describe()
            ));
            let suggestion = match &found {
                Token::Word(word) => ["exists", "count", "within"]
                    .into_iter()
                    .map(|candidate| {
                        (
                            strsim::damerau_levenshtein(&word.to_lowercase(), candidate),
                            candidate,
                        )
                    })
                    .filter(|(distance, _)| *distance <= 2)
                    .min(),
                _ => None,
            };
            diagnostic = match suggestion {
                Some((_, candidate)) => {
                    diagnostic.with_hint(format!("did you mean `{candidate}`?"))
                }
                None => diagnostic.with_hint(
                    "e.g. `event \"purchase\" exists`, `event \"purchase\" count >= 2 within 30d`",
                ),
            };
            return Err(diagnostic);
        };
        let end = self.tokens[self.pos.saturating_sub(1)].span;
        Ok(Expr::Event(EventCondition {
            name: name_text,
            name_span: name.span,
            test,
            span: start.to(end),
        }))
    }

    /// A duration after `keyword`, with its span.
    fn duration(&mut self, keyword: &str) -> Result<(Duration, Span), Diagnostic> {
        let spanned = self.advance();
        if let (Token::Number(amount), Token::Word(unit)) = (&spanned.token, self.peek())
            && let Some(letter) = unit_letter(unit)
            && amount.fract() == 0.0
            && *amount >= 0.0
        {
            let written = format!("{amount}{letter}");
            let span = spanned.span.to(self.span());
            return Err(Diagnostic::new(
                ErrorCode::Syntax,
                span,
                format!("write the duration as one word: did you mean `{written}`?"),
            )
            .with_hint("durations are a number and a unit letter: s, m (minutes), h, d or w"));
        }
        let Some(duration) = as_duration(&spanned.token) else {
            let message = format!(
                "expected a duration such as `30d` after `{keyword}`, found {}",
                spanned.token.describe()
            );
            return Err(Diagnostic::new(ErrorCode::Syntax, spanned.span, message)
                .with_hint("durations use s, m (minutes), h, d or w, e.g. `within 30d`"));
        };
        Ok((duration, spanned.span))
    }

    fn field(&mut self) -> Result<FieldRef, Diagnostic> {
        let spanned = self.advance();
        let Token::Word(word) = spanned.token else {
            let message = format!("expected a field name, found {}", spanned.token.describe());
            return Err(Diagnostic::new(ErrorCode::Syntax, spanned.span, message)
                .with_hint("a condition starts with a field, e.g. `plan = \"pro\"`"));
        };
        if word.eq_ignore_ascii_case("attributes") {
            self.expect(Token::Dot, "after `attributes`")?;
            let name = self.advance();
            let name_text = match name.token {
                Token::Word(text) | Token::Str(text) => text,
                other => {
                    let message = format!(
                        "expected an attribute name after `attributes.`, found {}",
                        other.describe()
                    );
                    return Err(Diagnostic::new(ErrorCode::Syntax, name.span, message));
                }
            };
            return Ok(FieldRef {
                name: name_text,
                explicit_attribute: true,
                span: spanned.span.to(name.span),
            });
        }
        if is_keyword(&word) {
            let message = format!("expected a field name, found the keyword `{word}`");
            return Err(
                Diagnostic::new(ErrorCode::Syntax, spanned.span, message).with_hint(format!(
                    "for an attribute named `{word}` write `attributes.\"{word}\"`"
                )),
            );
        }
        Ok(FieldRef {
            name: word,
            explicit_attribute: false,
            span: spanned.span,
        })
    }

    fn condition(&mut self) -> Result<Expr, Diagnostic> {
        let field = self.field()?;
        let op = self.test(&field)?;
        let end = self.tokens[self.pos.saturating_sub(1)].span;
        let span = field.span.to(end);
        Ok(Expr::Condition(Condition { field, op, span }))
    }

    fn test(&mut self, field: &FieldRef) -> Result<Op, Diagnostic> {
        let compare = comparison(self.peek());
        if let Some(op) = compare {
            self.advance();
            return Ok(Op::Compare(op, self.value()?));
        }
        let Token::Word(word) = self.peek().clone() else {
            return Err(self.missing_operator(field));
        };
        let keyword = word.to_ascii_lowercase();
        let op = match keyword.as_str() {
            "in" => {
                self.advance();
                Op::In(self.list()?)
            }
            "not" if self.second_is_keyword("in") => {
                self.advance();
                self.advance();
                Op::NotIn(self.list()?)
            }
            "not" if self.second_is_keyword("exists") => {
                self.advance();
                self.advance();
                Op::NotExists
            }
            "exists" => {
                self.advance();
                Op::Exists
            }
            "contains" | "starts_with" | "ends_with" | "before" | "after" => {
                self.advance();
                let value = self.value()?;
                match keyword.as_str() {
                    "contains" => Op::Contains(value),
                    "starts_with" => Op::StartsWith(value),
                    "ends_with" => Op::EndsWith(value),
                    "before" => Op::Before(value),
                    _ => Op::After(value),
                }
            }
            "has" => {
                self.advance();
                if self.eat_keyword("any").is_some() {
                    Op::HasAny(self.list()?)
                } else if self.eat_keyword("all").is_some() {
                    Op::HasAll(self.list()?)
                } else {
                    Op::Has(self.value()?)
                }
            }
            "between" => {
                self.advance();
                let low = self.value()?;
                self.expect_keyword("and", "between the two bounds of `between`")?;
                let high = self.value()?;
                Op::Between(low, high)
            }
            "within" => {
                self.advance();
                let (duration, span) = self.duration("within")?;
                Op::Within(duration, span)
            }
            _ => return Err(self.missing_operator(field)),
        };
        Ok(op)
    }

    fn missing_operator(&self, field: &FieldRef) -> Diagnostic {
        self.error(format!("expected an operator after `{}`, found {}", field.name, self.peek().describe()))
            .with_hint("operators: = != < <= > >= in, not in, contains, starts_with, ends_with, between, has, has any, has all, within, before, after, exists, not exists")
    }

    fn list(&mut self) -> Result<Vec<Literal>, Diagnostic> {
        if self.peek() == &Token::LParen
            && let Some(close) = self.closing_paren()
        {
            let (open, close) = (self.span(), self.tokens[close].span);
            let inner = &self.source[open.end..close.start];
            let written = format!("[{}]", inner.trim());
            return Err(Diagnostic::new(
                ErrorCode::Syntax,
                open.to(close),
                format!("a list is written in square brackets: did you mean `{written}`?"),
            ));
        }
        self.expect(Token::LBracket, "to start a list")?;
        let mut values = Vec::new();
        if self.peek() != &Token::RBracket {
            loop {
                if values.len() == MAX_LIST_LEN {
                    return Err(self.error(format!("a list holds at most {MAX_LIST_LEN} values")));
                }
                values.push(self.value()?);
                if self.peek() != &Token::Comma {
                    break;
                }
                self.advance();
            }
        }
        self.expect(Token::RBracket, "to close the list")?;
        Ok(values)
    }

    fn value(&mut self) -> Result<Literal, Diagnostic> {
        let spanned = self.advance();
        let span = spanned.span;
        let value = match spanned.token {
            Token::Str(text) => Value::Str(text),
            Token::Number(number) => Value::Number(number),
            Token::Minus => match self.peek() {
                Token::Number(number) => {
                    let number = -*number;
                    let end = self.advance().span;
                    return Ok(Literal {
                        value: Value::Number(number),
                        span: span.to(end),
                    });
                }
                other => {
                    return Err(self.error(format!(
                        "expected a number after `-`, found {}",
                        other.describe()
                    )));
                }
            },
            Token::Date(text) => Value::Date(parse_date(&text).ok_or_else(|| {
                Diagnostic::new(
                    ErrorCode::BadLiteral,
                    span,
                    format!("`{text}` is not a valid date"),
                )
                .with_hint("write dates as `2026-01-31` or `2026-01-31T09:30:00Z`")
            })?),
            Token::Word(word) if word.eq_ignore_ascii_case("true") => Value::Bool(true),
            Token::Word(word) if word.eq_ignore_ascii_case("false") => Value::Bool(false),
            Token::Word(word) if word.eq_ignore_ascii_case("now") => {
                return self.now_offset(span);
            }
            other => {
                let message = format!("expected a value, found {}", other.describe());
                return Err(Diagnostic::new(ErrorCode::Syntax, span, message)
                    .with_hint("values are \"text\", numbers, true, false, dates such as 2026-01-31, or now - 30d"));
            }
        };
        Ok(Literal { value, span })
    }

    fn now_offset(&mut self, now_span: Span) -> Result<Literal, Diagnostic> {
        let negative = match self.peek() {
            Token::Minus => true,
            Token::Plus => false,
            _ => {
                return Ok(Literal {
                    value: Value::Now(Offset::default()),
                    span: now_span,
                });
            }
        };
        self.advance();
        let spanned = self.advance();
        let Some(duration) = as_duration(&spanned.token) else {
            let sign = if negative { '-' } else { '+' };
            let message = format!(
                "expected a duration such as `30d` after `now {sign}`, found {}",
                spanned.token.describe()
            );
            return Err(Diagnostic::new(ErrorCode::Syntax, spanned.span, message));
        };
        let offset = Offset {
            negative,
            duration: Some(duration),
        };
        Ok(Literal {
            value: Value::Now(offset),
            span: now_span.to(spanned.span),
        })
    }
}

/// The comparison a token spells, if it is one.
fn comparison(token: &Token) -> Option<CmpOp> {
    Some(match token {
        Token::Eq => CmpOp::Eq,
        Token::Ne => CmpOp::Ne,
        Token::Lt => CmpOp::Lt,
        Token::Le => CmpOp::Le,
        Token::Gt => CmpOp::Gt,
        Token::Ge => CmpOp::Ge,
        _ => return None,
    })
}

/// The unit letter of a unit written out (`days`, `Hours`, `min`), if it is one.
fn unit_letter(word: &str) -> Option<char> {
    Some(match word.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 's',
        "m" | "min" | "mins" | "minute" | "minutes" => 'm',
        "h" | "hr" | "hrs" | "hour" | "hours" => 'h',
        "d" | "day" | "days" => 'd',
        "w" | "wk" | "week" | "weeks" => 'w',
        _ => return None,
    })
}

fn as_duration(token: &Token) -> Option<Duration> {
    match token {
        Token::Duration(amount, letter) => Some(Duration {
            amount: *amount,
            unit: Unit::from_letter(*letter)?,
        }),
        _ => None,
    }
}

/// Reads `2026-01-31` (midnight UTC) or an RFC 3339 date-time.
pub fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|date| date.and_time(chrono::NaiveTime::MIN).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(source: &str) -> String {
        parse(source)
            .unwrap_or_else(|e| panic!("{}", e.render(source)))
            .to_string()
    }

    fn failure(source: &str) -> String {
        parse(source).unwrap_err().render(source)
    }

    #[test]
    fn the_design_example_parses_and_prints_canonically() {
        let source = r#"plan = "pro" and ltv >= 100 and (country in ["DE", "FR"] or tags has "vip")
  and last_seen_at within 30d and not email ends_with "@example.com" and company exists
  and in segment "active-trials""#;
        assert_eq!(
            canonical(source),
            r#"plan = "pro" and ltv >= 100 and (country in ["DE", "FR"] or tags has "vip") and last_seen_at within 30d and not email ends_with "@example.com" and company exists and in segment "active-trials""#
        );
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let expr = parse("a = 1 or b = 2 and c = 3").unwrap();
        let Expr::Or(operands) = expr else {
            panic!("expected or")
        };
        assert!(matches!(operands[1], Expr::And(_)));
        assert_eq!(
            canonical("(a = 1 or b = 2) and c = 3"),
            "(a = 1 or b = 2) and c = 3"
        );
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            canonical("a = 1 AND NOT b Exists Or c IN [1]"),
            "a = 1 and not b exists or c in [1]"
        );
    }

    #[test]
    fn every_operator_prints_back() {
        for source in [
            "a != \"x\"",
            "a < 1",
            "a <= -1.5",
            "a > 2",
            "a >= 3",
            "a not in [\"x\", \"y\"]",
            "a in []",
            "a contains \"x\"",
            "a starts_with \"x\"",
            "a ends_with \"x\"",
            "a between 1 and 5",
            "tags has \"x\"",
            "tags has any [\"x\"]",
            "tags has all [\"x\", \"y\"]",
            "seen within 12h",
            "seen before 2026-01-31T00:00:00Z",
            "seen after now - 2w",
            "seen < now + 3d",
            "seen > now",
            "a = true",
            "a not exists",
            "attributes.\"odd name\" = 1",
            "not not a exists",
            "not (a exists or b exists)",
        ] {
            assert_eq!(canonical(source), source);
        }
    }

    fn recovered(source: &str) -> (Option<String>, Vec<String>) {
        let (expr, diagnostics) = parse_recovering(source);
        (
            expr.map(|expr| expr.to_string()),
            diagnostics.iter().map(|d| d.render(source)).collect(),
        )
    }

    #[test]
    fn recovery_reports_every_syntax_problem_and_keeps_the_rest() {
        let source =
            r#"plna = "pro" and contry in ("DE","FR") and last_seen_at within 30 days and ltv >"#;
        let (expr, diagnostics) = parse_recovering(source);
        let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(diagnostics.len(), 3, "{messages:?}");
        assert!(
            messages[0].contains(r#"did you mean `["DE","FR"]`?"#),
            "{messages:?}"
        );
        assert_eq!(
            &source[diagnostics[0].span.start..diagnostics[0].span.end],
            r#"("DE","FR")"#
        );
        assert!(messages[1].contains("did you mean `30d`?"), "{messages:?}");
        assert_eq!(
            &source[diagnostics[1].span.start..diagnostics[1].span.end],
            "30 days"
        );
        assert!(messages[2].contains("expected a value"), "{messages:?}");
        assert_eq!(expr.unwrap().to_string(), r#"plna = "pro""#);
        // A text without problems parses as `parse` parses it.
        let good = r#"a = 1 and (b exists or not c in [1, 2])"#;
        assert_eq!(recovered(good), (Some(canonical(good)), Vec::new()));
        // Problems inside a group, and stray words, are each reported.
        let (expr, diagnostics) = recovered("(a = and b = 2) c d or e exists");
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert_eq!(expr.as_deref(), Some("b = 2 and e exists"));
        assert_eq!(recovered(")))").1.len(), 1);
        assert_eq!(recovered("").1.len(), 1);
    }

    #[test]
    fn consent_conditions_print_back() {
        for source in [
            r#"consent "marketing_email""#,
            r#"not consent "sms" and plan = "pro""#,
            r#"consent "marketing_email" or consent "sms""#,
        ] {
            assert_eq!(canonical(source), source);
        }
        assert_eq!(canonical(r#"CONSENT "sms""#), r#"consent "sms""#);
        // A field named `consent` stays a field.
        assert_eq!(canonical(r#"consent = "yes""#), r#"consent = "yes""#);
    }

    #[test]
    fn event_conditions_print_back() {
        for source in [
            r#"event "purchase" exists"#,
            r#"event "purchase" not exists"#,
            r#"event "cart.checkout" within 7d"#,
            r#"event "purchase" count >= 2"#,
            r#"event "purchase" count != 3 within 30d and plan = "pro""#,
            r#"not event "purchase" count < 2 within 12h"#,
        ] {
            assert_eq!(canonical(source), source);
        }
        assert_eq!(
            canonical(r#"EVENT "purchase" COUNT >= 2 WITHIN 30d"#),
            r#"event "purchase" count >= 2 within 30d"#
        );
    }

    #[test]
    fn bare_dates_are_midnight_utc() {
        assert_eq!(
            canonical("seen before 2026-01-31"),
            "seen before 2026-01-31T00:00:00Z"
        );
        assert_eq!(
            canonical("seen before 2026-01-31T10:00:00+02:00"),
            "seen before 2026-01-31T08:00:00Z"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_culprit() {
        assert_eq!(
            failure("plan = "),
            "error: expected a value, found the end of the segment\n  |\n1 | plan = \n  |        ^\n  = hint: values are \"text\", numbers, true, false, dates such as 2026-01-31, or now - 30d"
        );
        assert_eq!(
            failure("plan \"pro\""),
            "error: expected an operator after `plan`, found string \"pro\"\n  |\n1 | plan \"pro\"\n  |      ^^^^^\n  = hint: operators: = != < <= > >= in, not in, contains, starts_with, ends_with, between, has, has any, has all, within, before, after, exists, not exists"
        );
        assert_eq!(
            failure("(a = 1"),
            "error: expected `)` to close the group, found the end of the segment\n  |\n1 | (a = 1\n  |       ^"
        );
        assert_eq!(
            failure("a = 1 b = 2"),
            "error: expected `and`, `or` or the end, found `b`\n  |\n1 | a = 1 b = 2\n  |       ^\n  = hint: join conditions with `and` or `or`"
        );
        assert!(
            failure("segment = 1")
                .contains("for an attribute named `segment` write `attributes.\"segment\"`")
        );
        assert!(
            failure("a between 1 or 2")
                .contains("expected `and` between the two bounds of `between`")
        );
        assert!(
            failure("seen within 30").contains("expected a duration such as `30d` after `within`")
        );
        assert!(failure("seen before 2026-13-01").contains("`2026-13-01` is not a valid date"));
        assert!(failure("").contains("the segment is empty"));
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!(
            "{}a exists{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let error = parse(&deep).unwrap_err();
        assert_eq!(error.code, ErrorCode::TooDeep);
        let nots = format!("{}a exists", "not ".repeat(1_000));
        assert_eq!(parse(&nots).unwrap_err().code, ErrorCode::TooDeep);
        let fine = format!("{}a exists{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }
}
