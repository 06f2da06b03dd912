//! Any text through the parser and the checker: neither may panic, a diagnostic renders under
//! any text it points into, and a tree that parses prints to canonical text that parses back
//! to the same canonical text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qwry_segment::{Catalog, Field, FieldType, check, parse};

/// A workspace with an attribute of each type, one sensitive, one saved segment, and a field
/// the caller may not read.
struct Workspace;

impl Catalog for Workspace {
    fn attribute_type(&self, name: &str) -> Option<FieldType> {
        match name {
            "plan" | "ssn" => Some(FieldType::String),
            "ltv" => Some(FieldType::Number),
            "vip" => Some(FieldType::Bool),
            "trial_at" => Some(FieldType::Datetime),
            "tags" => Some(FieldType::StringList),
            _ => None,
        }
    }

    fn attribute_names(&self) -> Vec<String> {
        ["plan", "ssn", "ltv", "vip", "trial_at", "tags"]
            .map(str::to_owned)
            .to_vec()
    }

    fn segment_exists(&self, slug: &str) -> bool {
        slug == "pros"
    }

    fn field_approved(&self, field: &Field) -> bool {
        !matches!(field, Field::Builtin(builtin) if builtin.name() == "phone")
    }

    fn attribute_sensitive(&self, name: &str) -> bool {
        name == "ssn"
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Err(diagnostic) => {
            let _ = diagnostic.render(text);
        }
        Ok(expr) => {
            let printed = expr.to_string();
            let reparsed = parse(&printed).expect("the canonical text parses");
            assert_eq!(reparsed.to_string(), printed, "printing is stable");
            if let Err(diagnostics) = check(&expr, &Workspace) {
                for diagnostic in diagnostics {
                    let _ = diagnostic.render(text);
                }
            }
        }
    }
});
