//! Any text through the parser and the checker: neither may panic, a diagnostic renders under
//! any text it points into, and a tree that parses prints to canonical text that parses back
//! to the same canonical text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qwry_segment::{check, parse};

#[path = "../../tests/support/workspace.rs"]
mod workspace;

use workspace::Workspace;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Recovery notes what `parse` reports first, and its spans point into the text.
    let (partial, diagnostics) = qwry_segment::parse_recovering(text);
    for diagnostic in &diagnostics {
        let _ = diagnostic.render(text);
    }
    if let Some(partial) = partial {
        let _ = check(&partial, &Workspace);
    }
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
