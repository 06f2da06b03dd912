//! Identity token ids already used (`token_use:[workspace, jti]`), kept until the token
//! expires: a second `identify` with the same `jti` is a replay.

use chrono::{DateTime, Utc};
use surrealdb::types::SurrealValue;

use super::records::compound_key;
use super::{Store, StoreError};
use crate::domain::WorkspaceId;

const TOKEN_USE_TABLE: &str = "token_use";

#[derive(Debug, SurrealValue)]
struct TokenUseRecord {
    workspace: String,
    expires_at: DateTime<Utc>,
}

impl Store {
    /// Records the use of token id `jti` until `expires_at`; `false` when it was used already
    /// (and has not expired).
    pub async fn claim_token_id(
        &self,
        workspace: &WorkspaceId,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = compound_key(TOKEN_USE_TABLE, workspace, jti.to_owned());
        let record = TokenUseRecord {
            workspace: workspace.as_str().to_owned(),
            expires_at,
        };
        // An expired use no longer blocks the id (the token itself is refused by then).
        let mut response = self
            .db
            .query(
                "BEGIN; \
                 DELETE $key WHERE expires_at < time::now(); \
                 CREATE $key CONTENT $record RETURN NONE; \
                 COMMIT;",
            )
            .bind(("key", key))
            .bind(("record", record))
            .await
            .map_err(StoreError::from_surreal)?;
        let errors: Vec<surrealdb::Error> = response.take_errors().into_values().collect();
        if errors.is_empty() {
            return Ok(true);
        }
        if errors.iter().any(surrealdb::Error::is_already_exists) {
            return Ok(false);
        }
        let cause = super::cause_of(&errors);
        Err(StoreError::classify(cause))
    }

    /// Forgets token uses that expired before now; returns how many.
    pub async fn purge_expired_token_uses(&self) -> Result<usize, StoreError> {
        let mut response = self
            .db
            .query("DELETE token_use WHERE expires_at < time::now() RETURN BEFORE")
            .await
            .map_err(StoreError::from_surreal)?;
        let deleted: Vec<surrealdb::types::Value> =
            response.take(0).map_err(StoreError::from_surreal)?;
        Ok(deleted.len())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::config::{DatabaseUrl, StoreSettings};

    /// SurrealDB reports the second CREATE of a key as its "already exists" kind, which is
    /// what tells a replayed token id from a failure.
    #[tokio::test]
    async fn a_token_id_is_claimed_once() {
        let store = Store::connect(&StoreSettings::new(DatabaseUrl::Memory))
            .await
            .unwrap();
        let workspace = WorkspaceId::from_trusted(WorkspaceId::DEFAULT.to_owned());
        let expires = Utc::now() + TimeDelta::minutes(5);
        assert!(
            store
                .claim_token_id(&workspace, "jti-1", expires)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_token_id(&workspace, "jti-1", expires)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_token_id(&workspace, "jti-2", expires)
                .await
                .unwrap()
        );
    }
}
