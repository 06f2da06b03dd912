//! One signed POST to an endpoint (Standard Webhooks headers), and what came of it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::domain::{MAX_RETRY_AFTER, parse_webhook_url};
use crate::service::outbound::{self, describe};

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
        let client = outbound::client(allow_private, ATTEMPT_TIMEOUT)?;
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

/// Longest `Retry-After` text read; longer values are ignored.
const MAX_RETRY_AFTER_CHARS: usize = 64;

/// `Retry-After` as whole seconds or an HTTP date, clamped to 0..=[`MAX_RETRY_AFTER`]: a
/// receiver cannot push a wait out of range (chrono's `TimeDelta::seconds` panics there), nor
/// ask for more than the cap; garbage is ignored.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<TimeDelta> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_RETRY_AFTER_CHARS {
        return None;
    }
    let wait = if value.bytes().all(|byte| byte.is_ascii_digit()) {
        let cap = MAX_RETRY_AFTER.num_seconds();
        let seconds = value.parse::<i64>().map_or(cap, |seconds| seconds.min(cap));
        TimeDelta::try_seconds(seconds)?
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        at.with_timezone(&Utc).signed_duration_since(now)
    };
    Some(wait.clamp(TimeDelta::zero(), MAX_RETRY_AFTER))
}

fn shorten(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
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

    #[test]
    fn hostile_retry_after_values_stay_in_bounds() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_default();
        for huge in [
            "99999999999999999",
            "99999999999999999999999999999999",
            "9223372036854775807",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        for past in ["0", "Thu, 01 Jan 1970 00:00:00 GMT"] {
            assert_eq!(
                parse_retry_after(past, now),
                Some(TimeDelta::zero()),
                "{past}"
            );
        }
        for garbage in [
            "-5",
            "1.5",
            "",
            " ",
            "+10",
            "0x10",
            "Thu, 99 Foo 2026",
            "\u{0}",
        ] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
        assert_eq!(parse_retry_after(&"9".repeat(10_000), now), None);
    }
}
