//! Turns segment text into tokens, each with its byte span.

use crate::error::{Diagnostic, ErrorCode};
use crate::span::Span;

/// Longest segment text accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 16 * 1024;

/// A lexical token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare word: keyword or field name (keywords are matched case-insensitively by the parser).
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    /// A number literal.
    Number(f64),
    /// A duration such as `30d`: amount and unit (`s`, `m`, `h`, `d`, `w`).
    Duration(u32, char),
    /// An ISO-8601 date or date-time written bare, e.g. `2026-01-31` or `2026-01-31T10:00:00Z`.
    Date(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
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
    /// `-`
    Minus,
    /// `+`
    Plus,
    /// End of input.
    Eof,
}

impl Token {
    /// How the token is named in "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Word(word) => format!("`{word}`"),
            Self::Str(text) => format!("string \"{}\"", text.escape_debug()),
            Self::Number(number) => format!("number `{number}`"),
            Self::Duration(amount, unit) => format!("duration `{amount}{unit}`"),
            Self::Date(text) => format!("date `{text}`"),
            Self::LParen => "`(`".into(),
            Self::RParen => "`)`".into(),
            Self::LBracket => "`[`".into(),
            Self::RBracket => "`]`".into(),
            Self::Comma => "`,`".into(),
            Self::Dot => "`.`".into(),
            Self::Eq => "`=`".into(),
            Self::Ne => "`!=`".into(),
            Self::Lt => "`<`".into(),
            Self::Le => "`<=`".into(),
            Self::Gt => "`>`".into(),
            Self::Ge => "`>=`".into(),
            Self::Minus => "`-`".into(),
            Self::Plus => "`+`".into(),
            Self::Eof => "the end of the segment".into(),
        }
    }
}

/// A token and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// Its bytes in the source.
    pub span: Span,
}

/// Splits `source` into tokens, ending with [`Token::Eof`].
pub fn tokenize(source: &str) -> Result<Vec<Spanned>, Diagnostic> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(Diagnostic::new(
            ErrorCode::TooLong,
            Span::new(MAX_SOURCE_BYTES, source.len()),
            format!(
                "the segment is {} bytes long; at most {MAX_SOURCE_BYTES} are allowed",
                source.len()
            ),
        ));
    }
    let mut lexer = Lexer {
        source,
        bytes: source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'a> {
    source: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Spanned>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), Diagnostic> {
        while let Some(&byte) = self.bytes.get(self.pos) {
            let start = self.pos;
            let token = match byte {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.pos += 1;
                    continue;
                }
                b'(' => self.single(Token::LParen),
                b')' => self.single(Token::RParen),
                b'[' => self.single(Token::LBracket),
                b']' => self.single(Token::RBracket),
                b',' => self.single(Token::Comma),
                b'.' => self.single(Token::Dot),
                b'-' => self.single(Token::Minus),
                b'+' => self.single(Token::Plus),
                b'=' => {
                    // Accept `==` as a courtesy spelling of `=`.
                    self.pos += if self.peek_at(1) == Some(b'=') { 2 } else { 1 };
                    Token::Eq
                }
                b'!' if self.peek_at(1) == Some(b'=') => {
                    self.pos += 2;
                    Token::Ne
                }
                b'<' => self.with_optional_eq(Token::Lt, Token::Le),
                b'>' => self.with_optional_eq(Token::Gt, Token::Ge),
                b'"' | b'\'' => self.string(byte)?,
                b'0'..=b'9' => self.number_like()?,
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.word(),
                _ => {
                    let ch = self.source[start..].chars().next().unwrap_or('?');
                    let error = Diagnostic::new(
                        ErrorCode::Syntax,
                        Span::new(start, start + ch.len_utf8()),
                        format!("unexpected character `{}`", ch.escape_debug()),
                    );
                    return Err(match unexpected_character_hint(ch) {
                        Some(hint) => error.with_hint(hint),
                        None => error,
                    });
                }
            };
            self.tokens.push(Spanned {
                token,
                span: Span::new(start, self.pos),
            });
        }
        let end = self.source.len();
        self.tokens.push(Spanned {
            token: Token::Eof,
            span: Span::new(end, end),
        });
        Ok(())
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn single(&mut self, token: Token) -> Token {
        self.pos += 1;
        token
    }

    fn with_optional_eq(&mut self, bare: Token, with_eq: Token) -> Token {
        if self.peek_at(1) == Some(b'=') {
            self.pos += 2;
            with_eq
        } else {
            self.pos += 1;
            bare
        }
    }

    fn word(&mut self) -> Token {
        let start = self.pos;
        while self
            .peek_at(0)
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        Token::Word(self.source[start..self.pos].to_owned())
    }

    fn string(&mut self, quote: u8) -> Result<Token, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(ch) = self.source[self.pos..].chars().next() else {
                return Err(Diagnostic::new(
                    ErrorCode::Syntax,
                    Span::new(start, self.pos),
                    "this string is never closed; add the closing quote".to_owned(),
                ));
            };
            self.pos += ch.len_utf8();
            match ch {
                '\\' => {
                    let escape_start = self.pos - 1;
                    let Some(escaped) = self.source[self.pos..].chars().next() else {
                        continue;
                    };
                    self.pos += escaped.len_utf8();
                    text.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        '\\' | '"' | '\'' => escaped,
                        other => {
                            return Err(Diagnostic::new(
                                ErrorCode::Syntax,
                                Span::new(escape_start, self.pos),
                                format!("unknown escape `\\{other}`; use `\\\\`, `\\\"`, `\\'`, `\\n` or `\\t`"),
                            ));
                        }
                    });
                }
                _ if ch as u32 == u32::from(quote) => return Ok(Token::Str(text)),
                _ => text.push(ch),
            }
        }
    }

    /// A number, a duration (`30d`) or a bare date (`2026-01-31`, optionally with a time).
    fn number_like(&mut self) -> Result<Token, Diagnostic> {
        let start = self.pos;
        let digits = self.bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let looks_like_date = digits == 4
            && self.bytes.get(start + 4) == Some(&b'-')
            && self.bytes.get(start + 5).is_some_and(u8::is_ascii_digit);
        if looks_like_date {
            let len = self.bytes[start..]
                .iter()
                .take_while(|b| {
                    b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b'Z')
                })
                .count();
            self.pos = start + len;
            return Ok(Token::Date(self.source[start..self.pos].to_owned()));
        }
        self.pos = start + digits;
        if let Some(unit @ (b's' | b'm' | b'h' | b'd' | b'w')) = self.peek_at(0)
            && !self
                .peek_at(1)
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
            let amount = self.source[start..start + digits]
                .parse::<u32>()
                .map_err(|_| {
                    Diagnostic::new(
                        ErrorCode::BadLiteral,
                        Span::new(start, self.pos),
                        "this duration is too long".to_owned(),
                    )
                })?;
            return Ok(Token::Duration(amount, unit as char));
        }
        if self.peek_at(0) == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            while self.peek_at(0).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek_at(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some(b'+' | b'-')));
            if self.peek_at(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1 + sign;
                while self.peek_at(0).is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        if self
            .peek_at(0)
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        {
            let end = self.pos
                + self.bytes[self.pos..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric())
                    .count();
            return Err(Diagnostic::new(
                ErrorCode::BadLiteral,
                Span::new(start, end),
                format!(
                    "`{}` is neither a number nor a duration; durations use m, h, d or w, e.g. `30d`",
                    &self.source[start..end]
                ),
            ));
        }
        let text = &self.source[start..self.pos];
        let number = text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| {
                Diagnostic::new(
                    ErrorCode::BadLiteral,
                    Span::new(start, self.pos),
                    format!("`{text}` is not a finite number"),
                )
            })?;
        Ok(Token::Number(number))
    }
}

/// What a character the language does not use was probably meant as.
fn unexpected_character_hint(ch: char) -> Option<&'static str> {
    Some(match ch {
        '&' => "write `and` to require both conditions",
        '|' => "write `or` to accept either condition",
        '!' => "write `not` before a condition, or `!=` to compare",
        '@' | '.' | '+' => "text goes in quotes, e.g. email = \"ann@example.com\"",
        '/' => "write a date with dashes, e.g. 2026-01-31, or put text in quotes",
        ':' => "compare with `=`, e.g. plan = \"pro\"",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Token> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|spanned| spanned.token)
            .collect()
    }

    #[test]
    fn lexes_every_kind_of_token() {
        assert_eq!(
            tokens(
                r#"plan = "pro" and ltv >= 1.5e2 or x != 'a\'b' (y <= -3) [1, 2] . 30d 2026-01-31"#
            ),
            vec![
                Token::Word("plan".into()),
                Token::Eq,
                Token::Str("pro".into()),
                Token::Word("and".into()),
                Token::Word("ltv".into()),
                Token::Ge,
                Token::Number(150.0),
                Token::Word("or".into()),
                Token::Word("x".into()),
                Token::Ne,
                Token::Str("a'b".into()),
                Token::LParen,
                Token::Word("y".into()),
                Token::Le,
                Token::Minus,
                Token::Number(3.0),
                Token::RParen,
                Token::LBracket,
                Token::Number(1.0),
                Token::Comma,
                Token::Number(2.0),
                Token::RBracket,
                Token::Dot,
                Token::Duration(30, 'd'),
                Token::Date("2026-01-31".into()),
                Token::Eof,
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let spanned = tokenize("ltv >= 10").unwrap();
        let spans: Vec<(usize, usize)> =
            spanned.iter().map(|t| (t.span.start, t.span.end)).collect();
        assert_eq!(spans, vec![(0, 3), (4, 6), (7, 9), (9, 9)]);
    }

    #[test]
    fn overlong_text_is_refused() {
        let long = "a".repeat(MAX_SOURCE_BYTES + 1);
        let error = tokenize(&long).unwrap_err();
        assert_eq!(error.code, ErrorCode::TooLong);
        assert_eq!(
            error.message,
            "the segment is 16385 bytes long; at most 16384 are allowed"
        );
    }

    #[test]
    fn date_times_are_one_token() {
        assert_eq!(
            tokens("2026-01-31T10:00:00+01:00"),
            vec![Token::Date("2026-01-31T10:00:00+01:00".into()), Token::Eof]
        );
    }

    #[test]
    fn stray_characters_get_a_hint() {
        for (source, hint) in [
            ("plan = \"pro\" & ltv > 1", "write `and`"),
            ("plan = \"pro\" | ltv > 1", "write `or`"),
            ("email = ann@example.com", "text goes in quotes"),
            ("signed_up_at > 2026/01/31", "a date with dashes"),
        ] {
            let error = tokenize(source).unwrap_err();
            let given = error.hint.as_deref().unwrap_or_default();
            assert!(given.contains(hint), "{source}: {given}");
        }
        assert_eq!(tokenize("plan # x").unwrap_err().hint, None);
    }

    #[test]
    fn lexical_errors_point_at_the_culprit() {
        let error = tokenize("plan = \"pro").unwrap_err();
        assert_eq!((error.span.start, error.span.end), (7, 11));
        assert_eq!(
            error.message,
            "this string is never closed; add the closing quote"
        );
        let error = tokenize("plan # x").unwrap_err();
        assert_eq!(error.message, "unexpected character `#`");
        assert_eq!((error.span.start, error.span.end), (5, 6));
        let error = tokenize("seen within 30x").unwrap_err();
        assert_eq!(
            error.message,
            "`30x` is neither a number nor a duration; durations use m, h, d or w, e.g. `30d`"
        );
    }
}
