//! Rate limiting (GCRA, by `governor`): a key over its rate is answered 429 with
//! `Retry-After`; so is a client address that failed authentication too often, before its key
//! is even looked at. Every key has a limiter of its own, at the key's own rate or the server's
//! default, and each answer says where the key stands (`RateLimit-Policy` and `RateLimit`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::KeyRate;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// `span` in whole seconds, rounded up (what `Retry-After` and `RateLimit` say).
pub fn whole_seconds(span: Duration) -> u64 {
    span.as_secs() + u64::from(span.subsec_nanos() > 0)
}

/// Keys whose limiters are kept at most; past it, they start over.
const MAX_TRACKED_KEYS: usize = 100_000;

/// Where a key stands after a request: its rate, the requests it may still make at once, and
/// how long until it may make a whole burst again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    /// The rate in force.
    pub rate: KeyRate,
    /// Requests it may make at once now.
    pub remaining: u32,
    /// Until its whole burst is available again.
    pub full_in: Duration,
}

/// What the limiter says of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No limit applies to the key.
    Unlimited,
    /// Admitted.
    Admitted(RateState),
    /// Over the rate: the next request is admitted after the wait.
    Refused(RateState, Duration),
}

/// Requests per second and burst, per API key.
pub struct KeyRateLimit {
    default: Option<KeyRate>,
    limiters: Mutex<HashMap<String, (KeyRate, Arc<Limiter>)>>,
    clock: DefaultClock,
}

impl KeyRateLimit {
    /// Limits keys without a rate of their own to `default` (`None`: those are unlimited).
    pub fn new(default: Option<KeyRate>) -> Self {
        Self {
            default,
            limiters: Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one request of `key`, whose own rate is `own`.
    pub fn admit(&self, key: &str, own: Option<KeyRate>) -> Admission {
        let Some(rate) = own.or(self.default) else {
            return Admission::Unlimited;
        };
        let Some(limiter) = self.limiter(key, rate) else {
            return Admission::Unlimited;
        };
        let refill = Duration::from_secs(1) / rate.per_second;
        let full_in = |remaining: u32| refill * rate.burst.saturating_sub(remaining);
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Admission::Admitted(RateState {
                    rate,
                    remaining,
                    full_in: full_in(remaining),
                })
            }
            Err(not_until) => Admission::Refused(
                RateState {
                    rate,
                    remaining: 0,
                    full_in: full_in(0),
                },
                not_until.wait_time_from(self.clock.now()),
            ),
        }
    }

    /// The limiter of `key` at `rate` (a new one when its rate changed).
    fn limiter(&self, key: &str, rate: KeyRate) -> Option<Arc<Limiter>> {
        let mut limiters = self
            .limiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((kept, limiter)) = limiters.get(key)
            && *kept == rate
        {
            return Some(Arc::clone(limiter));
        }
        if limiters.len() >= MAX_TRACKED_KEYS {
            // Keys are few (each is a stored API key); this bounds memory all the same.
            limiters.clear();
        }
        let quota = Quota::per_second(NonZeroU32::new(rate.per_second)?)
            .allow_burst(NonZeroU32::new(rate.burst.max(rate.per_second))?);
        let limiter =
            Arc::new(RateLimiter::direct(quota).with_middleware::<StateInformationMiddleware>());
        limiters.insert(key.to_owned(), (rate, Arc::clone(&limiter)));
        Some(limiter)
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
        let limit = KeyRateLimit::new(Some(KeyRate {
            per_second: 1,
            burst: 2,
        }));
        let Admission::Admitted(first) = limit.admit("a", None) else {
            panic!("the first request is admitted");
        };
        assert_eq!(first.remaining, 1);
        assert_eq!(first.full_in, Duration::from_secs(1));
        assert!(matches!(limit.admit("a", None), Admission::Admitted(_)));
        let Admission::Refused(state, wait) = limit.admit("a", None) else {
            panic!("the third request is refused");
        };
        assert_eq!(state.remaining, 0);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            matches!(limit.admit("b", None), Admission::Admitted(_)),
            "keys are limited separately"
        );
        let own = KeyRate {
            per_second: 100,
            burst: 100,
        };
        let Admission::Admitted(raised) = limit.admit("a", Some(own)) else {
            panic!("a key given a rate of its own starts afresh at it");
        };
        assert_eq!((raised.rate, raised.remaining), (own, 99));
        assert_eq!(
            KeyRateLimit::new(None).admit("c", None),
            Admission::Unlimited
        );
    }
}
