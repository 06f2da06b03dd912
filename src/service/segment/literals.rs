//! The values behind a segment's literals: which text or string-list field a name means for
//! value suggestions, and the case hint (a literal that matches nothing but differs only in
//! case from values contacts hold).

use qwry_segment::ast::{CmpOp, Expr, FieldRef, Literal, Op, Value};
use qwry_segment::{Catalog, Field, FieldType, Span};

use super::visible_catalog::CallerCatalog;
use crate::domain::WorkspaceId;
use crate::index::{IndexError, SegmentIndex, SpreadKind, ValueKind, field_path};
use crate::service::error::ServiceError;

/// Most literals of one text looked at for the case hint.
const MAX_HINTED_LITERALS: usize = 10;

/// Where the values of a field are in the index.
#[derive(Debug, Clone)]
pub struct ValueSource {
    /// The field's path in the index.
    pub path: String,
    /// Text, or string-list items.
    pub kind: ValueKind,
}

/// A hint about a literal: it matches nothing, but these values differing only in case do.
#[derive(Debug, Clone, PartialEq)]
pub struct LiteralHint {
    /// What to say, with the fix as `did you mean …?`.
    pub message: String,
    /// The literal, in the text.
    pub span: Span,
}

/// The field `reference` names and its type, when `catalog`'s caller may read it and it is
/// not sensitive (only keyed hashes of those are indexed).
fn readable_field(
    catalog: &CallerCatalog<'_>,
    reference: &FieldRef,
) -> Result<(Field, FieldType), ServiceError> {
    let name = &reference.name;
    let field = Field::of_ref(reference);
    let field_type = match &field {
        Field::Builtin(builtin) => Some(builtin.field_type()),
        Field::Attribute(attribute) => catalog.attribute_type(attribute),
        _ => None,
    };
    let Some(field_type) = field_type else {
        return Err(ServiceError::invalid(
            "field",
            format!("`{name}` is neither a built-in field nor a declared attribute"),
        ));
    };
    if catalog.hides(&field) {
        return Err(ServiceError::Forbidden(format!(
            "`{name}` is not a field this API key may read"
        )));
    }
    if catalog.workspace().is_sensitive(&field) {
        return Err(ServiceError::invalid(
            "field",
            format!("`{name}` is sensitive: its values are not listed"),
        ));
    }
    Ok((field, field_type))
}

/// Where the values of the field named `name` (segment spelling) are, as `catalog`'s caller
/// may see them: a text built-in or a text or string-list attribute the caller may read, not
/// sensitive.
pub fn value_source(catalog: &CallerCatalog<'_>, name: &str) -> Result<ValueSource, ServiceError> {
    value_source_of(catalog, &named(name))
}

/// A field named as a request names it: a built-in when one has the name, else an attribute.
fn named(name: &str) -> FieldRef {
    FieldRef {
        name: name.to_owned(),
        explicit_attribute: false,
        span: Span::default(),
    }
}

/// [`value_source`] of a field as a segment wrote it (`attributes.email` is the attribute).
fn value_source_of(
    catalog: &CallerCatalog<'_>,
    reference: &FieldRef,
) -> Result<ValueSource, ServiceError> {
    let name = &reference.name;
    let (field, field_type) = readable_field(catalog, reference)?;
    let kind = match field_type {
        FieldType::String => ValueKind::Text,
        FieldType::StringList => ValueKind::ListItem,
        other => {
            return Err(ServiceError::invalid(
                "field",
                format!(
                    "`{name}` is {}; values are listed for text and lists of strings",
                    other.described()
                ),
            ));
        }
    };
    Ok(ValueSource {
        path: field_path(&field),
        kind,
    })
}

/// How to spread members over the field named `name`: by its values (text, lists of strings)
/// or in bars (numbers, datetimes); booleans are refused (a count answers them).
pub fn spread_source(
    catalog: &CallerCatalog<'_>,
    name: &str,
) -> Result<(String, SpreadKind), ServiceError> {
    let (field, field_type) = readable_field(catalog, &named(name))?;
    let kind = match field_type {
        FieldType::String => SpreadKind::Values(ValueKind::Text),
        FieldType::StringList => SpreadKind::Values(ValueKind::ListItem),
        FieldType::Number => SpreadKind::Number,
        FieldType::Datetime => SpreadKind::Time,
        FieldType::Bool => {
            return Err(ServiceError::invalid(
                "field",
                format!("`{name}` is a boolean; count `{name} = true` instead"),
            ));
        }
    };
    Ok((field_path(&field), kind))
}

/// The text literals of `expr` compared for equality (`=`, `in`, `has`, `has any`, `has all`),
/// with the field each is compared with.
fn equality_literals(expr: &Expr, found: &mut Vec<(FieldRef, Literal)>) {
    match expr {
        Expr::And(operands) | Expr::Or(operands) => operands
            .iter()
            .for_each(|operand| equality_literals(operand, found)),
        Expr::Not(operand, _) => equality_literals(operand, found),
        Expr::Condition(condition) => {
            let literals: Vec<&Literal> = match &condition.op {
                Op::Compare(CmpOp::Eq, literal) | Op::Has(literal) => vec![literal],
                Op::In(literals) | Op::HasAny(literals) | Op::HasAll(literals) => {
                    literals.iter().collect()
                }
                _ => Vec::new(),
            };
            found.extend(
                literals
                    .into_iter()
                    .filter(|literal| matches!(literal.value, Value::Str(_)))
                    .map(|literal| (condition.field.clone(), literal.clone())),
            );
        }
        Expr::InSegment(..) | Expr::Event(_) | Expr::Consent(_) => {}
    }
}

/// The case hints of `expr`: each equality literal (up to [`MAX_HINTED_LITERALS`]) that no
/// contact of `workspace` holds while values equal to it ignoring case are held.
pub fn case_hints(
    expr: &Expr,
    catalog: &CallerCatalog<'_>,
    index: &SegmentIndex,
    workspace: &WorkspaceId,
) -> Result<Vec<LiteralHint>, IndexError> {
    let mut literals = Vec::new();
    equality_literals(expr, &mut literals);
    let mut hints = Vec::new();
    for (field, literal) in literals.into_iter().take(MAX_HINTED_LITERALS) {
        let (Ok(source), Value::Str(value)) = (value_source_of(catalog, &field), &literal.value)
        else {
            continue;
        };
        if index.value_count(workspace, &source.path, source.kind, value)? > 0 {
            continue;
        }
        let variants = index.case_variants(workspace, &source.path, source.kind, value)?;
        let Some((best, count)) = variants.first() else {
            continue;
        };
        let quoted = serde_json::to_string(best).unwrap_or_else(|_| format!("\"{best}\""));
        let held = if *count == 1 { "contact" } else { "contacts" };
        hints.push(LiteralHint {
            message: format!(
                "no contact's `{}` is \"{value}\" (values match exactly, case included): did you mean `{quoted}`? ({count} {held})",
                field.name
            ),
            span: literal.span,
        });
    }
    Ok(hints)
}
