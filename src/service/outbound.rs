//! The one way the service makes HTTP requests of its own (webhook deliveries, JWKS fetches):
//! no redirects followed, no proxy, bounded time, names resolved to globally reachable
//! addresses only (checked at every connection, so a name that points at, or rebinds to, a
//! private address is never connected to), and response bodies read up to a cap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::is_global;

/// Why a response body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the cap.
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed while reading.
    #[error("reading the response failed: {0}")]
    Read(#[from] reqwest::Error),
}

/// A client for outbound requests that follows no redirects, uses no proxy, gives up after
/// `timeout` (connecting within half of it) and, unless `allow_private`, connects only to
/// globally reachable addresses.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout / 2)
        .no_proxy();
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GlobalOnly));
    }
    builder.build().map_err(|error| error.to_string())
}

/// The body of `response`, refused past `max` bytes without reading further (a declared
/// length over the cap is refused before anything is read).
pub async fn read_capped(response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(BodyError::TooLarge(max));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's error with its causes, which name what failed (resolution, refusal, timeout).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves names to their globally reachable addresses only.
struct GlobalOnly;

impl Resolve for GlobalOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let global: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| is_global(address.ip()))
                .collect();
            if global.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = format!(
                    "`{host}` resolves to no publicly reachable address; private targets are refused"
                )
                .into();
                return Err(refused);
            }
            let addresses: Addrs = Box::new(global.into_iter());
            Ok(addresses)
        })
    }
}
