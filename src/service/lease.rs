//! Work that one instance at a time does when several share a store: this instance's hold on
//! a lease in the store, renewed while it runs.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{info, warn};

use crate::store::Store;

/// How long a lease lasts without renewal: an instance that stops renewing (killed, or cut off
/// from the store) hands the work over after at most this long.
pub const LEASE_TERM: TimeDelta = TimeDelta::seconds(10);

/// This instance's hold on the lease `name`.
pub struct Lease {
    store: Store,
    name: &'static str,
    holder: String,
    held_until: Mutex<Option<DateTime<Utc>>>,
}

impl Lease {
    /// A lease named `name` that this instance (`holder`, unique per process) competes for.
    pub fn new(store: Store, name: &'static str, holder: String) -> Self {
        Self {
            store,
            name,
            holder,
            held_until: Mutex::new(None),
        }
    }

    /// Whether this instance holds the lease now; takes it when free and renews it when half
    /// of its term has passed.
    pub async fn held(&self) -> bool {
        let now = Utc::now();
        let until = self.held_until.lock().ok().and_then(|until| *until);
        if until.is_some_and(|until| until - LEASE_TERM / 2 > now) {
            return true;
        }
        let held = match self
            .store
            .hold_lease(self.name, &self.holder, now, now + LEASE_TERM)
            .await
        {
            Ok(held) => held,
            Err(error) => {
                warn!(%error, lease = self.name, "renewing a lease failed; not holding it");
                false
            }
        };
        if held && until.is_none() {
            info!(lease = self.name, "this instance holds the lease");
        }
        if let Ok(mut slot) = self.held_until.lock() {
            *slot = held.then_some(now + LEASE_TERM);
        }
        held
    }

    /// Gives the lease up (at a graceful stop), so another instance takes over at once
    /// instead of after [`LEASE_TERM`].
    pub async fn release(&self) {
        let held = self
            .held_until
            .lock()
            .ok()
            .and_then(|mut until| until.take());
        if held.is_some()
            && let Err(error) = self.store.release_lease(self.name, &self.holder).await
        {
            warn!(%error, lease = self.name, "giving up a lease failed; it runs out by itself");
        }
    }
}
