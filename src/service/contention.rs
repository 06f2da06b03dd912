//! The one retry policy of optimistic writes (read, decide, write if nothing changed
//! meanwhile): how many attempts, and the wait between them. Writers that retry at once
//! collide again (over a network, where each attempt takes a round trip or more, a dozen
//! writers of one contact used up every attempt); a short, random, growing pause spreads them
//! out. Each use case writes its loop as
//!
//! ```ignore
//! let mut attempts = Attempts::new(WRITE_ATTEMPTS);
//! while attempts.next().await {
//!     // read, decide, write; `continue` when the write lost a race
//! }
//! Err(contention)
//! ```

use std::time::Duration;

/// How many times a use case's optimistic write is tried before it reports contention
/// (CONFLICT): with the pauses below, about 130 ms of waiting in all.
pub(super) const WRITE_ATTEMPTS: usize = 8;

/// The attempts of one optimistic write: [`Attempts::next`] waits before each but the first,
/// and says when they are used up.
pub(super) struct Attempts {
    made: usize,
    allowed: usize,
}

impl Attempts {
    /// At most `allowed` attempts.
    pub(super) fn new(allowed: usize) -> Self {
        Self { made: 0, allowed }
    }

    /// Waits before the next attempt (see [`pause_before`]); `false` once every attempt was
    /// made.
    pub(super) async fn next(&mut self) -> bool {
        if self.made == self.allowed {
            return false;
        }
        pause_before(self.made).await;
        self.made += 1;
        true
    }
}

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(64);

/// Waits before attempt number `attempt` (counted from 0; the first runs at once): a random
/// time up to 2^attempt ms, at most [`MAX_PAUSE`].
async fn pause_before(attempt: usize) {
    let mut random = [0u8; 8];
    // Without randomness, the longest pause: still a pause, merely not spread.
    let random = match getrandom::fill(&mut random) {
        Ok(()) => u64::from_le_bytes(random),
        Err(_) => u64::MAX,
    };
    let pause = pause_length(attempt, random);
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
}

/// The pause before attempt `attempt` for the random number `random`.
fn pause_length(attempt: usize, random: u64) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let ceiling = (1u64 << attempt.min(16)).min(MAX_PAUSE.as_millis() as u64) * 1_000;
    Duration::from_micros(random % (ceiling + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_attempt_runs_at_once_and_later_ones_wait_a_growing_bounded_time() {
        assert_eq!(pause_length(0, u64::MAX), Duration::ZERO);
        assert_eq!(pause_length(1, 2_000), Duration::from_millis(2));
        assert_eq!(pause_length(1, 2_001), Duration::ZERO, "wraps within 2 ms");
        assert_eq!(pause_length(3, 8_000), Duration::from_millis(8));
        for attempt in 1..40 {
            for random in [0, 1, 63_999, 64_000, u64::MAX / 3, u64::MAX] {
                assert!(pause_length(attempt, random) <= MAX_PAUSE);
            }
        }
    }
}
