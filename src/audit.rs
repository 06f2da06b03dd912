//! Who is acting: the API key (or command) on whose behalf the current task writes, so that
//! every stored write can record it without each use case passing it along.
//!
//! The HTTP layer runs each authenticated request inside [`acting_as`]; commands run their work
//! inside it too. The store stamps the actor on every contact it writes ([`current_actor`]).

use std::future::Future;

tokio::task_local! {
    static ACTOR: String;
}

/// Who acts when nothing said so (background work, tests that call services directly).
pub const SYSTEM_ACTOR: &str = "system";

/// Runs `work` with `actor` as the one acting.
pub async fn acting_as<F: Future>(actor: &str, work: F) -> F::Output {
    ACTOR.scope(actor.to_owned(), work).await
}

/// The actor of the current task, or [`SYSTEM_ACTOR`].
pub fn current_actor() -> String {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| SYSTEM_ACTOR.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_actor_is_seen_inside_its_scope_only() {
        assert_eq!(current_actor(), SYSTEM_ACTOR);
        let inside = acting_as("key_1", async { current_actor() }).await;
        assert_eq!(inside, "key_1");
        assert_eq!(current_actor(), SYSTEM_ACTOR);
    }
}
