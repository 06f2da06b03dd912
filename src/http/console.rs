//! The console for marketers at `/`: one page and its script and styles (`assets/console/`,
//! plain JavaScript checked in as written: no build step), embedded in the binary. It signs
//! in with an API key kept in the tab's session storage and speaks the public GraphQL API and
//! the bulk import, so it can do exactly what the key's scopes allow.

use axum::extract::Path;
use axum::response::Response;

use super::embedded::{self, Asset};

/// The page.
const PAGE: &str = include_str!("../../assets/console/index.html");

/// The files under `/console/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/console/console.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/console/console.css"),
    },
    Asset {
        name: FAVICON,
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/console/favicon.svg"),
    },
];

/// The icon's file name under `/console/`.
const FAVICON: &str = "favicon.svg";

/// The console's page (`GET /`).
pub async fn page() -> Response {
    embedded::page(PAGE, embedded::CONSOLE_POLICY)
}

/// The icon at `/favicon.ico`, where browsers look for it unasked (an SVG: every current
/// browser draws one, whatever the name says).
pub async fn favicon() -> Response {
    embedded::asset(ASSETS, FAVICON)
}

/// One of the console's assets, or 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    embedded::asset(ASSETS, &name)
}
