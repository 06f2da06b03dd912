//! Every GraphQL example in README.md and docs/ validates against the schema, so the docs never
//! drift from the API: each operation of each ```graphql block is run through the schema's own
//! parser and validation (in introspection-only mode, so nothing resolves and nothing is
//! written); an error the request itself raises (syntax, an unknown field or argument, a wrong
//! type, an undeclared variable) fails the test. Placeholders such as `"01JD…"` are fine: they
//! are values, checked only by resolvers.

use std::path::{Path, PathBuf};

use qwry_contacts::app::App;
use qwry_contacts::config::{DatabaseUrl, Settings, StoreSettings};

use crate::helpers::test_settings;

/// The ```graphql blocks of `markdown`, with the line each starts on.
fn graphql_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        match &mut open {
            None if line.trim_start().starts_with("```graphql") => {
                open = Some((number + 1, String::new()));
            }
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(open.take());
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The top-level operations of `block` (several anonymous ones may stand one after the other
/// in an example), split where the braces close; comments and strings are skipped.
fn operations(block: &str) -> Vec<String> {
    let mut operations = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut chars = block.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '#' => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    operations.push(block[start..=at].trim().to_owned());
                    start = at + 1;
                }
            }
            _ => {}
        }
    }
    operations.retain(|operation| !operation.is_empty());
    operations
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn examples_are_split_into_their_operations() {
    let block = "query { a(text: \"}{\") { b } }  # a comment with a }\nmutation { c }\n";
    assert_eq!(
        operations(block),
        vec![
            "query { a(text: \"}{\") { b } }",
            "# a comment with a }\nmutation { c }"
        ]
    );
    let markdown = "text\n```graphql\nquery { a }\n```\n```js\nno\n```\n";
    assert_eq!(
        graphql_blocks(markdown),
        vec![(2, "query { a }\n".to_owned())]
    );
}

#[tokio::test]
async fn every_graphql_example_in_the_docs_validates_against_the_schema() {
    let settings = Settings {
        store: StoreSettings::new(DatabaseUrl::Memory),
        ..test_settings()
    };
    let app = App::build(&settings).await.unwrap();
    let schema = app.schema();
    // The check refuses what does not fit: an unknown field, a wrong argument type.
    for wrong in [
        "{ noSuchField }",
        "{ contacts(first: \"ten\") { totalCount } }",
    ] {
        let response = schema
            .execute(async_graphql::Request::new(wrong).only_introspection())
            .await;
        assert!(
            response.errors.iter().any(|error| error.path.is_empty()),
            "{wrong} passed: {response:?}"
        );
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in documents() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        for (line, block) in graphql_blocks(&markdown) {
            for operation in operations(&block) {
                checked += 1;
                let request = async_graphql::Request::new(operation.clone()).only_introspection();
                let response = schema.execute(request).await;
                let refused: Vec<String> = response
                    .errors
                    .iter()
                    .filter(|error| error.path.is_empty())
                    .map(|error| error.message.clone())
                    .collect();
                if !refused.is_empty() {
                    failures.push(format!(
                        "{}:{line}: {}\n  {operation}",
                        file.display(),
                        refused.join("; ")
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 25,
        "only {checked} operations found: is the block parser broken?"
    );
    assert!(
        failures.is_empty(),
        "GraphQL examples that no longer fit the schema:\n{}",
        failures.join("\n")
    );
}

/// Every guide under docs/ is served at `/docs/<name>` exactly as it is on disk, without a key,
/// and `/llms.txt` lists each one; a name that is not a guide is 404.
#[tokio::test]
async fn the_guides_are_served_and_indexed_at_llms_txt() {
    let app = crate::helpers::TestApp::spawn().await;
    let index = reqwest::get(app.url("/llms.txt")).await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let listed = index.text().await.unwrap();
    assert!(listed.starts_with("# qwry-contacts\n\n> "), "{listed}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut guides: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    guides.push((
        "conventions.md".to_owned(),
        root.join("docs/contract/CONVENTIONS.md"),
    ));
    assert!(guides.len() >= 10, "{guides:?}");
    for (name, path) in guides {
        assert!(
            listed.contains(&format!("(/docs/{name})")),
            "{name} is not in /llms.txt"
        );
        let served = reqwest::get(app.url(&format!("/docs/{name}")))
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "{name}");
        assert!(
            served.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/markdown")
        );
        assert_eq!(
            served.text().await.unwrap(),
            std::fs::read_to_string(&path).unwrap(),
            "{name} is served as it is on disk"
        );
    }
    for name in ["nope.md", "..%2FREADME.md", "CONVENTIONS.md"] {
        let missing = reqwest::get(app.url(&format!("/docs/{name}")))
            .await
            .unwrap();
        assert_eq!(missing.status(), 404, "{name}");
    }
}
