//! Segment text with the values of hidden fields masked, for callers who may see that a
//! segment tests a field but not the values it compares it with.

use crate::ast::{Condition, Expr, FieldRef, Literal, Op, Value};
use crate::checked::{BuiltinField, Field};

/// What a masked literal reads as.
pub const MASK: &str = "***";

impl Field {
    /// The field a reference names: a built-in unless written `attributes.name` or not a
    /// built-in name (the same rule the checker applies).
    pub fn of_ref(field: &FieldRef) -> Self {
        match BuiltinField::from_name(&field.name) {
            Some(builtin) if !field.explicit_attribute => Self::Builtin(builtin),
            _ => Self::Attribute(field.name.clone()),
        }
    }
}

/// `expr` with every literal compared with a field for which `hidden` holds replaced by
/// [`MASK`] (as text); spans, fields and operators stay, so the shape can still be read.
pub fn mask_hidden(expr: &Expr, hidden: &dyn Fn(&Field) -> bool) -> Expr {
    match expr {
        Expr::And(operands) => Expr::And(operands.iter().map(|o| mask_hidden(o, hidden)).collect()),
        Expr::Or(operands) => Expr::Or(operands.iter().map(|o| mask_hidden(o, hidden)).collect()),
        Expr::Not(operand, span) => Expr::Not(Box::new(mask_hidden(operand, hidden)), *span),
        // Event conditions compare with counts and windows, never with a field's values.
        Expr::InSegment(..) | Expr::Event(_) | Expr::Consent(_) => expr.clone(),
        Expr::Condition(condition) if hidden(&Field::of_ref(&condition.field)) => {
            Expr::Condition(Condition {
                op: masked_op(&condition.op),
                ..condition.clone()
            })
        }
        Expr::Condition(_) => expr.clone(),
    }
}

/// Whether `expr` compares a field for which `hidden` holds with a literal.
pub fn names_hidden_values(expr: &Expr, hidden: &dyn Fn(&Field) -> bool) -> bool {
    mask_hidden(expr, hidden) != *expr
}

fn masked_op(op: &Op) -> Op {
    let one = |literal: &Literal| Literal {
        value: Value::Str(MASK.to_owned()),
        span: literal.span,
    };
    let all = |literals: &[Literal]| literals.iter().map(one).collect();
    match op {
        Op::Compare(cmp, literal) => Op::Compare(*cmp, one(literal)),
        Op::In(literals) => Op::In(all(literals)),
        Op::NotIn(literals) => Op::NotIn(all(literals)),
        Op::Contains(literal) => Op::Contains(one(literal)),
        Op::StartsWith(literal) => Op::StartsWith(one(literal)),
        Op::EndsWith(literal) => Op::EndsWith(one(literal)),
        Op::Between(low, high) => Op::Between(one(low), one(high)),
        Op::Has(literal) => Op::Has(one(literal)),
        Op::HasAny(literals) => Op::HasAny(all(literals)),
        Op::HasAll(literals) => Op::HasAll(all(literals)),
        Op::Before(literal) => Op::Before(one(literal)),
        Op::After(literal) => Op::After(one(literal)),
        Op::Within(..) | Op::Exists | Op::NotExists => op.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn masked(source: &str, hidden: &[&str]) -> String {
        let expr = parse(source).unwrap();
        let hide = |field: &Field| match field {
            Field::Builtin(builtin) => hidden.contains(&builtin.name()),
            Field::Attribute(name) => hidden.contains(&name.as_str()),
            Field::EventCount(_) | Field::EventAt(..) | Field::Consent(_) => false,
        };
        mask_hidden(&expr, &hide).to_string()
    }

    #[test]
    fn only_literals_of_hidden_fields_are_masked() {
        assert_eq!(
            masked(
                r#"ssn = "111-22-3333" and plan in ["pro", "team"] or not email ends_with "@x.com""#,
                &["ssn", "email"]
            ),
            r#"ssn = "***" and plan in ["pro", "team"] or not email ends_with "***""#
        );
        assert_eq!(
            masked("ltv between 1 and 5 and ssn exists", &["ltv", "ssn"]),
            r#"ltv between "***" and "***" and ssn exists"#
        );
        let expr = parse(r#"attributes."email" = "a" and email = "b""#).unwrap();
        let builtin_email = |field: &Field| *field == Field::Builtin(BuiltinField::Email);
        assert_eq!(
            mask_hidden(&expr, &builtin_email).to_string(),
            r#"attributes."email" = "a" and email = "***""#,
            "an attribute named like a built-in is another field"
        );
        let unchanged = parse(r#"plan = "pro""#).unwrap();
        assert!(!names_hidden_values(&unchanged, &|_| false));
        assert!(names_hidden_values(&unchanged, &|_| true));
    }
}
