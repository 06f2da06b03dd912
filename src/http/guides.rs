//! The guides under `docs/`, compiled into the binary: `GET /llms.txt` indexes them (the
//! llms.txt convention, for the chatbots and agents that read this service's docs) and
//! `GET /docs/{name}` serves each as Markdown. Open to anyone, like the console's page: they
//! describe the service and hold no data.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::embedded::{self, Asset};

const MARKDOWN: &str = "text/markdown; charset=utf-8";

/// One guide: its file name under `/docs/`, title, what it covers, and its text.
struct Guide {
    name: &'static str,
    title: &'static str,
    summary: &'static str,
    text: &'static str,
}

/// Every guide, in reading order.
const GUIDES: [Guide; 11] = [
    Guide {
        name: "concepts.md",
        title: "Concepts",
        summary: "contacts, fields and attributes, error codes, conversations and events, frontend reads",
        text: include_str!("../../docs/concepts.md"),
    },
    Guide {
        name: "segments.md",
        title: "The segment language",
        summary: "grammar, fields, operators, the structured input, explanations, speed",
        text: include_str!("../../docs/segments.md"),
    },
    Guide {
        name: "identity.md",
        title: "Identity",
        summary: "anonymous visitors, verified identify (user hash or signed token), merges and unmerges",
        text: include_str!("../../docs/identity.md"),
    },
    Guide {
        name: "access.md",
        title: "Access",
        summary: "API keys, scopes, field policies, sensitive values, rate and size limits",
        text: include_str!("../../docs/access.md"),
    },
    Guide {
        name: "live.md",
        title: "The live side",
        summary: "the membership feed, subscriptions at /graphql/ws, Standard Webhooks",
        text: include_str!("../../docs/live.md"),
    },
    Guide {
        name: "import-export.md",
        title: "Import and export",
        summary: "bulk sync over HTTP and the CLI",
        text: include_str!("../../docs/import-export.md"),
    },
    Guide {
        name: "operations.md",
        title: "Operations",
        summary: "configuration, commands",
        text: include_str!("../../docs/operations.md"),
    },
    Guide {
        name: "SCALING.md",
        title: "Scaling",
        summary: "memory per contact, 1M to 10M measured, several instances, TiKV, past one index copy",
        text: include_str!("../../docs/SCALING.md"),
    },
    Guide {
        name: "conventions.md",
        title: "API conventions",
        summary: "naming, connections, mutations, inputs, ids, errors, limits of the GraphQL API",
        text: include_str!("../../docs/contract/CONVENTIONS.md"),
    },
    Guide {
        name: "console.md",
        title: "The console and GraphiQL",
        summary: "what a marketer sees at /, GraphiQL for developers",
        text: include_str!("../../docs/console.md"),
    },
    Guide {
        name: "layout.md",
        title: "Layout",
        summary: "where the code lives",
        text: include_str!("../../docs/layout.md"),
    },
];

/// `GET /llms.txt`: the index of the guides.
pub async fn index() -> Response {
    let mut text = String::from(
        "# qwry-contacts\n\n> The contacts service for conversational products: contacts with typed \
         attributes, identity linking, segments in a typed language, live membership, over one \
         GraphQL API at /graphql (its schema: introspection).\n\n## Docs\n\n",
    );
    for guide in &GUIDES {
        text.push_str(&format!(
            "- [{}](/docs/{}): {}\n",
            guide.title, guide.name, guide.summary
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// `GET /docs/{name}`: one guide, or 404.
pub async fn guide(Path(name): Path<String>) -> Response {
    let assets = GUIDES.map(|guide| Asset {
        name: guide.name,
        content_type: MARKDOWN,
        bytes: guide.text.as_bytes(),
    });
    embedded::asset(&assets, &name)
}
