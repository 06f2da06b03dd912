//! The two spellings of a built-in field's name: the API's camelCase (`accountRef`), which a
//! client writes in values such as a field policy or an order, and the segment language's
//! snake_case (`account_ref`), which the domain keeps. Attribute names are neither: they stay
//! as declared.

use qwry_segment::{BuiltinField, snake_case};

/// The names a field policy gives a contact's activity, besides the segment fields.
const ACTIVITY_NAMES: [&str; 2] = ["conversations", "events"];

/// Whether `name` is a built-in field's segment name (or a policy's activity name).
fn is_builtin(name: &str) -> bool {
    BuiltinField::from_name(name).is_some() || ACTIVITY_NAMES.contains(&name)
}

/// The API's name of a built-in field named the segment way (`account_ref` → `accountRef`);
/// any other name (an attribute's) as it is.
pub fn api_field_name(name: &str) -> String {
    if !is_builtin(name) {
        return name.to_owned();
    }
    let mut camel = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    camel
}

/// The segment name of a built-in field a client named either way (`accountRef` or
/// `account_ref` → `account_ref`); any other name (an attribute's) as it is.
pub fn segment_field_name(name: &str) -> String {
    let snake = snake_case(name);
    if is_builtin(&snake) {
        snake
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_convert_both_ways_and_attribute_names_stay() {
        assert_eq!(api_field_name("account_ref"), "accountRef");
        assert_eq!(api_field_name("last_conversation_at"), "lastConversationAt");
        assert_eq!(api_field_name("email"), "email");
        assert_eq!(api_field_name("plan_tier"), "plan_tier");
        assert_eq!(segment_field_name("accountRef"), "account_ref");
        assert_eq!(segment_field_name("account_ref"), "account_ref");
        assert_eq!(segment_field_name("lastSeenAt"), "last_seen_at");
        assert_eq!(segment_field_name("planTier"), "planTier");
        assert_eq!(segment_field_name("ltv"), "ltv");
        let names = BuiltinField::ALL.map(BuiltinField::name);
        for name in names.iter().chain(&ACTIVITY_NAMES) {
            assert_eq!(segment_field_name(&api_field_name(name)), *name);
        }
    }
}
