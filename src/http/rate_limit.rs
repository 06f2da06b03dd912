//! Rate limiting (GCRA, by `governor`): a key over its rate is answered 429 with
//! `Retry-After`; so is a client address that failed authentication too often, before its key
//! is even looked at.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests per second and burst, per API key.
pub struct KeyRateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl KeyRateLimit {
    /// A limit of `per_second` requests per key with bursts of up to `burst`; `None` when
    /// `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Admits one request of `key`, or says how long to wait before the next would be admitted.
    pub fn admit(&self, key: &str) -> Result<(), Duration> {
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Addresses tracked at most; beyond it, those no longer refused are forgotten.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Failed authentications per client address: an address over its rate is refused until it
/// would be admitted again, whatever key it sends.
pub struct AddressGuard {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    refused_until: Mutex<HashMap<IpAddr, Instant>>,
}

impl AddressGuard {
    /// A guard admitting `per_second` failures per address with bursts of `burst`; `None`
    /// when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(rate);
        Some(Self {
            failures: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
            refused_until: Mutex::default(),
        })
    }

    /// How long `address` is still refused, if it is.
    pub fn refused(&self, address: IpAddr) -> Option<Duration> {
        let refused = self.lock();
        let until = refused.get(&address)?;
        until.checked_duration_since(Instant::now())
    }

    /// Records a failed authentication from `address`; over the limit, the address is refused
    /// until the limiter would admit it again.
    pub fn failed(&self, address: IpAddr) {
        let Err(not_until) = self.failures.check_key(&address) else {
            return;
        };
        let wait = not_until.wait_time_from(self.clock.now());
        let mut refused = self.lock();
        if refused.len() >= MAX_TRACKED_ADDRESSES {
            let now = Instant::now();
            refused.retain(|_, until| *until > now);
            self.failures.retain_recent();
        }
        refused.insert(address, Instant::now() + wait);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.refused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_failing_too_often_is_refused_for_a_while() {
        let guard = AddressGuard::new(1, 3).unwrap();
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(guard.refused(address), None);
            guard.failed(address);
        }
        assert_eq!(
            guard.refused(address),
            None,
            "the burst is not exceeded yet"
        );
        guard.failed(address);
        let wait = guard.refused(address).expect("refused after the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(
            guard.refused(other),
            None,
            "addresses are limited separately"
        );
        assert!(AddressGuard::new(0, 3).is_none());
    }

    #[test]
    fn a_key_over_its_burst_waits_and_others_do_not() {
        let limit = KeyRateLimit::new(1, 2).unwrap();
        assert!(limit.admit("a").is_ok());
        assert!(limit.admit("a").is_ok());
        let wait = limit.admit("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limit.admit("b").is_ok(), "keys are limited separately");
        assert!(KeyRateLimit::new(0, 10).is_none());
    }
}
