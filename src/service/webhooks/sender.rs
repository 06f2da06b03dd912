//! One signed POST to an endpoint (Standard Webhooks headers), and what came of it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::domain::{is_public, parse_webhook_url};

/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest error text kept in the delivery log.
const MAX_ERROR_CHARS: usize = 300;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The endpoint answered 2xx.
    Delivered {
        /// Its status.
        status: u16,
    },
    /// It did not: retry later (or give up once the schedule is done).
    Failed {
        /// Its status, when it answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// How long it asked to be left alone (`Retry-After`).
        retry_after: Option<TimeDelta>,
    },
    /// It answered 410 Gone: the endpoint is disabled.
    Gone,
}

/// Signs and POSTs deliveries; refuses private targets unless allowed.
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A sender that follows no redirects, times out after 10 s, and (unless
    /// `allow_private`) connects only to public addresses, checked when names resolve.
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT / 2)
            .no_proxy();
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().map_err(|error| error.to_string())?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Whether private and loopback targets are allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// POSTs `body` as message `id` to `url`, signed with `secret` (`whsec_…`) at `now`.
    pub async fn send(
        &self,
        url: &str,
        id: &str,
        body: &str,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Attempt {
        let failed = |error: String| Attempt::Failed {
            status: None,
            error: shorten(&error),
            retry_after: None,
        };
        if let Err(error) = parse_webhook_url(url, self.allow_private) {
            return failed(error.to_string());
        }
        let signer = match standardwebhooks::Webhook::new(secret) {
            Ok(signer) => signer,
            Err(error) => return failed(format!("the signing secret is unusable: {error}")),
        };
        let timestamp = now.timestamp();
        let signature = match signer.sign(id, timestamp, body.as_bytes()) {
            Ok(signature) => signature,
            Err(error) => return failed(format!("signing failed: {error}")),
        };
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static("qwry-contacts-webhooks/1"),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_ID, id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(body.to_owned())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return failed(describe(&error)),
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered {
                status: status.as_u16(),
            };
        }
        if status == reqwest::StatusCode::GONE {
            return Attempt::Gone;
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now));
        let error = if status.is_redirection() {
            format!("the endpoint answered {status}; redirects are not followed")
        } else {
            format!("the endpoint answered {status}")
        };
        Attempt::Failed {
            status: Some(status.as_u16()),
            error,
            retry_after,
        }
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<TimeDelta> {
    if let Ok(seconds) = value.trim().parse::<i64>() {
        return Some(TimeDelta::seconds(seconds.max(0)));
    }
    DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|at| (at.with_timezone(&Utc) - now).max(TimeDelta::zero()))
}

/// reqwest's error with its causes, which name what failed (resolution, refusal, timeout).
fn describe(error: &reqwest::Error) -> String {
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

fn shorten(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// Resolves names to their public addresses only, so a name pointing at a private or
/// loopback address (or rebinding to one) is never connected to.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| is_public(address.ip()))
                .collect();
            if public.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("`{host}` resolves to no public address; private targets are refused")
                        .into();
                return Err(refused);
            }
            let addresses: Addrs = Box::new(public.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|at| at.with_timezone(&Utc))
            .ok();
        let now = now.unwrap_or_default();
        assert_eq!(parse_retry_after("120", now), Some(TimeDelta::seconds(120)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now),
            Some(TimeDelta::seconds(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
