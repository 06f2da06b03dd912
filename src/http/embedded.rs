//! Files compiled into the binary (the console's and GraphiQL's pages and assets), served
//! without touching the disk, so both work air-gapped.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file: its name under the route, content type and bytes.
pub struct Asset {
    /// The file name, as requested.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub bytes: &'static [u8],
}

/// How long browsers may keep an asset without asking again (the binary's version changes
/// them only on upgrade).
const ASSET_CACHE_CONTROL: &str = "public, max-age=86400";

/// What the console's page may load and do: its own script and stylesheet, requests to its
/// own origin, and nothing else; no page may frame it (clickjacking).
pub const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'none'; \
    base-uri 'none'; frame-ancestors 'none'";

/// GraphiQL's: the same, with the inline styles its page and its editor use.
pub const GRAPHIQL_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// An HTML page under the content security `policy`, revalidated on every load so an upgrade
/// shows at once.
pub fn page(html: &'static str, policy: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, policy),
        ],
        html,
    )
        .into_response()
}

/// The asset of `assets` named `name`, or 404.
pub fn asset(assets: &[Asset], name: &str) -> Response {
    match assets.iter().find(|asset| asset.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, ASSET_CACHE_CONTROL),
            ],
            asset.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
