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

/// An HTML page, revalidated on every load so an upgrade shows at once.
pub fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
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
