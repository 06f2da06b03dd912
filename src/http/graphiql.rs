//! GraphiQL served from the binary: the page and its assets (GraphiQL 3 and React 18, vendored
//! under `assets/graphiql/` from the npm registry) are embedded, so it works without internet
//! access. The page has a field for the API key, which its requests send as
//! `Authorization: Bearer`.

use axum::extract::Path;
use axum::response::Response;

use super::embedded::{self, Asset};

/// The page (`GET /graphql` without a query, and `GET /graphiql/`).
const PAGE: &str = include_str!("../../assets/graphiql/index.html");

const JS: &str = "text/javascript; charset=utf-8";

/// The files under `/graphiql/`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "page.js",
        content_type: JS,
        bytes: include_bytes!("../../assets/graphiql/page.js"),
    },
];

/// The GraphiQL page.
pub async fn page() -> Response {
    embedded::page(PAGE, embedded::GRAPHIQL_POLICY)
}

/// One of the page's assets, or 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    embedded::asset(ASSETS, &name)
}
