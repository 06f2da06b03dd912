//! How many sockets each API key holds open, so that one key cannot hold an unbounded number
//! (`WS_MAX_SOCKETS_PER_KEY`). A seat is given back when its socket ends, however it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open sockets per API key id.
#[derive(Default)]
pub struct SocketSeats {
    open: Mutex<HashMap<String, u32>>,
}

/// One socket's seat; dropping it frees the seat.
pub struct Seat {
    seats: Arc<SocketSeats>,
    key_id: String,
}

impl SocketSeats {
    /// A seat for a socket of `key_id`, unless the key already holds `max` sockets.
    pub fn take(self: &Arc<Self>, key_id: &str, max: u32) -> Option<Seat> {
        let mut open = self.lock();
        let held = open.entry(key_id.to_owned()).or_default();
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(Seat {
            seats: Arc::clone(self),
            key_id: key_id.to_owned(),
        })
    }

    /// Sockets `key_id` holds open now.
    pub fn held_by(&self, key_id: &str) -> u32 {
        self.lock().get(key_id).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.seats.lock();
        if let Some(held) = open.get_mut(&self.key_id) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_seats_and_gets_them_back() {
        let seats = Arc::new(SocketSeats::default());
        let first = seats.take("k", 2).expect("first");
        let second = seats.take("k", 2).expect("second");
        assert!(seats.take("k", 2).is_none(), "over the cap");
        assert!(seats.take("other", 2).is_some(), "keys count apart");
        drop(first);
        assert_eq!(seats.held_by("k"), 1);
        let third = seats.take("k", 2).expect("a seat came back");
        drop((second, third));
        assert_eq!(seats.held_by("k"), 0);
    }
}
