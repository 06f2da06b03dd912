//! GraphiQL served from the binary: the page and its assets (GraphiQL 3 and React 18, vendored
//! under `assets/graphiql/` from the npm registry) are embedded, so it works without internet
//! access. The page has a field for the API key, which its requests send as
//! `Authorization: Bearer`.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page (`GET /graphql` without a query, and `GET /graphiql/`).
const PAGE: &str = include_str!("../../assets/graphiql/index.html");

/// How long browsers may keep an asset without asking again (the binary's version changes
/// them only on upgrade).
const ASSET_CACHE_CONTROL: &str = "public, max-age=86400";

/// The files under `/graphiql/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "page.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/page.js"),
    ),
];

/// The GraphiQL page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// One of the page's assets, or 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response(),
    }
}
