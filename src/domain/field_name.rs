//! The two spellings of a built-in field's name: the API's camelCase (`accountRef`), which a
//! client writes in values such as a field policy or an order, and the segment language's
//! snake_case (`account_ref`), which the domain keeps. Attribute names are neither: they stay
//! as declared.

/// The built-in fields a client can name in a value, by their segment names.
const BUILTIN_FIELDS: [&str; 14] = [
    "external_id",
    "email",
    "name",
    "phone",
    "company",
    "account_ref",
    "last_seen_at",
    "first_seen_at",
    "created_at",
    "updated_at",
    "conversation_count",
    "last_conversation_at",
    "conversations",
    "events",
];

/// The API's name of a built-in field named the segment way (`account_ref` → `accountRef`);
/// any other name (an attribute's) as it is.
pub fn api_field_name(name: &str) -> String {
    if !BUILTIN_FIELDS.contains(&name) {
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
    let mut snake = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    if BUILTIN_FIELDS.contains(&snake.as_str()) {
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
        for name in BUILTIN_FIELDS {
            assert_eq!(segment_field_name(&api_field_name(name)), name);
        }
    }
}
