//! Snapshots of what the segment language tells a marketer: for each kind of mistake, the
//! code, the span and the message rendered under the text. A change to any wording or span
//! shows as a snapshot diff to review (`cargo insta review`, or `INSTA_UPDATE=always` and git).

use qwry_segment::{Diagnostic, check, parse};

#[path = "support/workspace.rs"]
mod workspace;

use workspace::Workspace;

/// The diagnostics of `text`: from the parser, else from the checker.
fn diagnostics(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Err(diagnostic) => vec![diagnostic],
        Ok(expr) => check(&expr, &Workspace).err().unwrap_or_default(),
    }
}

/// Each diagnostic as a client sees it: code, span, and the rendered message.
fn report(text: &str) -> String {
    let found = diagnostics(text);
    assert!(!found.is_empty(), "`{text}` has no diagnostic");
    found
        .iter()
        .map(|d| {
            format!(
                "{} {}..{}\n{}",
                d.code.as_str(),
                d.span.start,
                d.span.end,
                d.render(text)
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[test]
fn every_kind_of_mistake_reads_as_recorded() {
    let cases = [
        ("syntax_unclosed_string", "plan = \"pro"),
        ("syntax_missing_value", "plan ="),
        ("syntax_dangling_and", "plan = \"pro\" and"),
        ("syntax_unbalanced_parenthesis", "(plan = \"pro\""),
        ("unknown_field_with_suggestion", "plna = \"pro\""),
        ("unknown_field_without_suggestion", "zzz exists"),
        ("type_mismatch_number_as_text", "ltv = \"a lot\""),
        ("type_mismatch_text_ordered", "plan > 3"),
        ("type_mismatch_has_on_text", "plan has \"x\""),
        ("bad_literal_date", "trial_at > \"2026-13-45\""),
        ("bad_literal_duration", "trial_at within 30x"),
        ("unknown_segment", "in segment \"prso\""),
        ("field_not_approved", "phone exists"),
        ("sensitive_attribute_ordered", "ssn starts_with \"078\""),
        (
            "too_deep",
            &format!("{}plan = \"pro\"{}", "(".repeat(40), ")".repeat(40)),
        ),
        ("two_mistakes_at_once", "plna = \"pro\" and ltv = \"a lot\""),
        (
            "multi_line_text",
            "plan = \"pro\"\n  and ltv >= 100\n  and tgas has \"vip\"",
        ),
    ];
    for (name, text) in cases {
        insta::assert_snapshot!(name, report(text), text);
    }
}

#[test]
fn text_too_long_is_refused_before_it_is_read() {
    let text = format!("plan = \"{}\"", "x".repeat(qwry_segment::MAX_SOURCE_BYTES));
    let found = diagnostics(&text);
    assert_eq!(found.len(), 1);
    insta::assert_snapshot!(
        "too_long",
        format!("{} {}", found[0].code.as_str(), found[0].message)
    );
}
