//! Diagnostics: a code, a span, a message a marketer can act on, and a caret renderer.

use std::fmt;

use crate::span::Span;

/// What kind of problem a diagnostic reports; stable, published as the error `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The text does not follow the grammar.
    Syntax,
    /// The text is longer than allowed.
    TooLong,
    /// Parentheses or `not`s nest deeper than allowed.
    TooDeep,
    /// A literal cannot be read (number, date, duration).
    BadLiteral,
    /// The field is neither built in nor a declared attribute.
    UnknownField,
    /// The operator or value does not fit the field's type.
    TypeMismatch,
    /// `in segment` names a segment that does not exist.
    UnknownSegment,
    /// `in segment` references form a cycle or nest too deep.
    SegmentCycle,
    /// The field is not one the caller may read.
    FieldNotApproved,
    /// `consent` names a purpose the workspace did not declare.
    UnknownPurpose,
}

impl ErrorCode {
    /// The wire spelling, e.g. `UNKNOWN_FIELD`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Syntax => "SYNTAX",
            Self::TooLong => "TOO_LONG",
            Self::TooDeep => "TOO_DEEP",
            Self::BadLiteral => "BAD_LITERAL",
            Self::UnknownField => "UNKNOWN_FIELD",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::UnknownSegment => "UNKNOWN_SEGMENT",
            Self::SegmentCycle => "SEGMENT_CYCLE",
            Self::FieldNotApproved => "FIELD_NOT_APPROVED",
            Self::UnknownPurpose => "UNKNOWN_PURPOSE",
        }
    }
}

/// One problem in a segment's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    /// What kind of problem.
    pub code: ErrorCode,
    /// Where, in bytes of the source.
    pub span: Span,
    /// What is wrong, naming the offending text in backticks.
    pub message: String,
    /// How to fix it, when there is something specific to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(code: ErrorCode, span: Span, message: String) -> Self {
        Self {
            code,
            span,
            message,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders message, the source line and carets under the span, e.g.
    ///
    /// ```text
    /// error: unknown attribute `plna`
    ///   |
    /// 1 | plna = "pro"
    ///   | ^^^^
    ///   = hint: did you mean `plan`?
    /// ```
    pub fn render(&self, source: &str) -> String {
        Rendered {
            diagnostic: self,
            source,
        }
        .to_string()
    }
}

struct Rendered<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a str,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Span { start, end } = self.diagnostic.span;
        let start = floor_char_boundary(self.source, start.min(self.source.len()));
        let end = floor_char_boundary(self.source, end.clamp(start, self.source.len()));
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let line_number = self.source[..start].matches('\n').count() + 1;
        let gutter = " ".repeat(line_number.to_string().len());
        let line = &self.source[line_start..line_end];
        let indent = self.source[line_start..start].chars().count();
        let width = self.source[start..end.min(line_end)].chars().count().max(1);
        writeln!(f, "error: {}", self.diagnostic.message)?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{line_number} | {line}")?;
        write!(f, "{gutter} | {}{}", " ".repeat(indent), "^".repeat(width))?;
        if let Some(hint) = &self.diagnostic.hint {
            write!(f, "\n{gutter} = hint: {hint}")?;
        }
        Ok(())
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_carets_under_the_span() {
        let diagnostic = Diagnostic::new(
            ErrorCode::UnknownField,
            Span::new(9, 13),
            "unknown attribute `plna`".into(),
        )
        .with_hint("did you mean `plan`?");
        assert_eq!(
            diagnostic.render("vip and\n plna = \"pro\""),
            "error: unknown attribute `plna`\n  |\n2 |  plna = \"pro\"\n  |  ^^^^\n  = hint: did you mean `plan`?"
        );
    }

    #[test]
    fn renders_one_caret_at_the_end_of_input() {
        let diagnostic = Diagnostic::new(
            ErrorCode::Syntax,
            Span::new(6, 6),
            "expected a value".into(),
        );
        assert_eq!(
            diagnostic.render("plan ="),
            "error: expected a value\n  |\n1 | plan =\n  |       ^"
        );
    }
}
