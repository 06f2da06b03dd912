//! Explanations: why one contact is in or out of a segment, part by part (in-memory back end).

use chrono::{DateTime, Utc};
use qwry_segment::ast::Expr;
use qwry_segment::eval::{EvalContext, FieldValue, Record, matches};
use qwry_segment::{Checked, check};
use serde_json::Value as Json;

use super::compiled::inline;
use super::visible_catalog::CallerCatalog;
use crate::index::ContactRecord;

/// What an explanation shows instead of a sensitive attribute's value.
pub const HIDDEN_VALUE: &str = "[sensitive]";

/// What a node of an explanation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainPart {
    /// All of its children.
    And,
    /// Any of its children.
    Or,
    /// Not its child.
    Not,
    /// One test of a field, an attribute, activity or events.
    Condition,
    /// `in segment "slug"`.
    Segment,
}

impl ExplainPart {
    /// The lower-case word, e.g. `condition`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::And => "and",
            Self::Or => "or",
            Self::Not => "not",
            Self::Condition => "condition",
            Self::Segment => "segment",
        }
    }
}

/// One node of an explanation, in depth-first order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainNode {
    /// Position in the list.
    pub id: usize,
    /// The parent's position; `None` for the root.
    pub parent: Option<usize>,
    /// What this part is.
    pub kind: ExplainPart,
    /// Canonical text of this part.
    pub text: String,
    /// Whether the contact satisfies this part.
    pub matched: bool,
    /// For conditions: the contact's value of the field (JSON `null` when missing).
    pub value: Option<Json>,
}

/// Whether `record` matches the resolved tree `segment` at `now`.
pub(crate) fn evaluate(segment: &Checked, record: &dyn Record, now: DateTime<Utc>) -> bool {
    let context = EvalContext {
        now,
        in_segment: &|_| false,
    };
    matches(segment, record, &context)
}

/// The JSON form of a field value, for explanations.
fn value_json(value: Option<FieldValue<'_>>) -> Json {
    match value {
        None => Json::Null,
        Some(FieldValue::Text(text)) => Json::String(text.to_owned()),
        Some(FieldValue::Number(number)) => {
            crate::domain::json_number(number).map_or(Json::Null, Json::Number)
        }
        Some(FieldValue::Bool(flag)) => Json::Bool(flag),
        Some(FieldValue::Time(at)) => Json::String(at.to_rfc3339()),
        Some(FieldValue::List(items)) => {
            Json::Array(items.iter().cloned().map(Json::String).collect())
        }
    }
}

pub(crate) fn explain_node(
    expr: &Expr,
    parent: Option<usize>,
    catalog: &CallerCatalog<'_>,
    record: &ContactRecord<'_>,
    now: DateTime<Utc>,
    nodes: &mut Vec<ExplainNode>,
) -> bool {
    let id = nodes.len();
    nodes.push(ExplainNode {
        id,
        parent,
        kind: ExplainPart::Condition,
        text: expr.to_string(),
        matched: false,
        value: None,
    });
    let (kind, matched, value) = match expr {
        Expr::And(operands) => {
            let results: Vec<bool> = operands
                .iter()
                .map(|o| explain_node(o, Some(id), catalog, record, now, nodes))
                .collect();
            (ExplainPart::And, results.iter().all(|r| *r), None)
        }
        Expr::Or(operands) => {
            let results: Vec<bool> = operands
                .iter()
                .map(|o| explain_node(o, Some(id), catalog, record, now, nodes))
                .collect();
            (ExplainPart::Or, results.iter().any(|r| *r), None)
        }
        Expr::Not(operand, _) => (
            ExplainPart::Not,
            !explain_node(operand, Some(id), catalog, record, now, nodes),
            None,
        ),
        Expr::InSegment(slug, _) => {
            let matched = catalog
                .segment(slug)
                .and_then(|compiled| compiled.outcome.as_ref().ok())
                .is_some_and(|expansion| evaluate(&expansion.tree, record, now));
            (ExplainPart::Segment, matched, None)
        }
        Expr::Condition(_) | Expr::Event(_) | Expr::Consent(_) => {
            let workspace = catalog.workspace();
            // A condition has no references: inlining only blinds sensitive literals.
            let checked = check(expr, catalog).ok().and_then(|checked| {
                inline(&checked, &mut |_| Err(()), workspace)
                    .ok()
                    .map(|expansion| expansion.tree)
            });
            let matched = checked.as_ref().is_some_and(|c| evaluate(c, record, now));
            let field = checked.as_ref().and_then(first_field);
            let value = field.map(|field| match record.value(&field) {
                Some(_) if workspace.is_sensitive(&field) => Json::String(HIDDEN_VALUE.to_owned()),
                value => value_json(value),
            });
            (
                ExplainPart::Condition,
                matched,
                Some(value.unwrap_or(Json::Null)),
            )
        }
    };
    let node = &mut nodes[id];
    node.kind = kind;
    node.matched = matched;
    node.value = value;
    matched
}

fn first_field(checked: &Checked) -> Option<qwry_segment::Field> {
    match checked {
        Checked::Test(field, _) => Some(field.clone()),
        Checked::Not(inner) => first_field(inner),
        Checked::And(operands) | Checked::Or(operands) => operands.first().and_then(first_field),
        Checked::InSegment(_) => None,
    }
}
