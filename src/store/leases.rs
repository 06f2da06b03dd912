//! Leases (`lease:⟨name⟩`): one holder at a time for work that only one instance may do when
//! several share a store (recording the membership feed, sending webhooks).

use chrono::{DateTime, Utc};
use surrealdb::types::RecordId;

use super::{Store, StoreError};

const LEASE_TABLE: &str = "lease";

impl Store {
    /// Takes or renews the lease `name` for `holder` until `until` when nobody else holds it
    /// at `now`; returns whether `holder` holds it. Losing a race to another instance is
    /// holding nothing.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let outcome = self
            .db
            .query(
                "{ \
                   LET $lease = (SELECT holder, until FROM ONLY $id); \
                   IF $lease == NONE OR $lease.holder == $holder OR $lease.until < $now { \
                     UPSERT $id SET holder = $holder, until = $until RETURN NONE; \
                   }; \
                   RETURN (SELECT VALUE holder FROM ONLY $id) == $holder; \
                 }",
            )
            .bind(("id", RecordId::new(LEASE_TABLE, name.to_owned())))
            .bind(("holder", holder.to_owned()))
            .bind(("now", now))
            .bind(("until", until))
            .await
            .and_then(|mut response| response.take::<Option<bool>>(0));
        match outcome {
            Ok(held) => Ok(held.unwrap_or(false)),
            Err(error) => match StoreError::from_surreal(error) {
                StoreError::WriteConflict => Ok(false),
                other => Err(other),
            },
        }
    }
}

impl Store {
    /// Gives the lease `name` up if `holder` holds it, so another instance takes it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.db
            .query("DELETE $id WHERE holder = $holder RETURN NONE")
            .bind(("id", RecordId::new(LEASE_TABLE, name.to_owned())))
            .bind(("holder", holder.to_owned()))
            .await
            .and_then(|response| response.check())
            .map(|_| ())
            .map_err(StoreError::from_surreal)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use crate::config::{DatabaseUrl, StoreSettings};
    use crate::store::Store;

    #[tokio::test]
    async fn one_holder_at_a_time_until_the_lease_runs_out() {
        let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let ten = TimeDelta::seconds(10);
        assert!(store.hold_lease("feed", "a", now, now + ten).await.unwrap());
        assert!(!store.hold_lease("feed", "b", now, now + ten).await.unwrap());
        assert!(
            store
                .hold_lease("other", "b", now, now + ten)
                .await
                .unwrap()
        );
        // Renewed by its holder; taken by another once it ran out.
        assert!(
            store
                .hold_lease("feed", "a", now + ten / 2, now + ten * 2)
                .await
                .unwrap()
        );
        let later = now + ten * 2 + TimeDelta::seconds(1);
        assert!(
            store
                .hold_lease("feed", "b", later, later + ten)
                .await
                .unwrap()
        );
        assert!(
            !store
                .hold_lease("feed", "a", later, later + ten)
                .await
                .unwrap()
        );
    }
}
