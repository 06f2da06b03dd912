//! Opaque cursors: a list's prefix and the place of an item, base64url, so that a cursor of one
//! list is refused by another rather than misread.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::service::ServiceError;

/// An opaque cursor: `prefix` and `body`, base64url.
pub fn seal_cursor(prefix: &str, body: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{prefix}{body}"))
}

/// The body of a cursor sealed with `prefix`; INVALID_INPUT naming `what` it should have been.
pub fn open_cursor(cursor: &str, prefix: &str, what: &str) -> Result<String, ServiceError> {
    let invalid = || not_a_cursor(cursor, what);
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// INVALID_INPUT for `after`: `cursor` is not `what` this API returned.
pub fn not_a_cursor(cursor: &str, what: &str) -> ServiceError {
    ServiceError::invalid(
        "after",
        format!("`{cursor}` is not {what} returned by this API"),
    )
}
