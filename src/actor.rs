//! Who is acting: the API key (or command) on whose behalf the current task writes, so that
//! every stored write can record it without each use case passing it along.
//!
//! The HTTP layer runs each authenticated request inside [`acting_as`]; commands run their work
//! inside it too. The store stamps the actor on every contact it writes ([`current_actor`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};

tokio::task_local! {
    static ACTOR: String;
}

/// Who acts when nothing said so (background work, tests that call services directly).
pub const SYSTEM_ACTOR: &str = "system";

/// Runs `work` with `actor` as the one acting.
pub async fn acting_as<F: Future>(actor: &str, work: F) -> F::Output {
    ACTOR.scope(actor.to_owned(), work).await
}

/// `stream` with `actor` as the one acting whenever it is polled: the responses of an operation
/// started over a socket, whose resolvers run as the stream is polled.
pub fn acting_as_stream<S: Stream + Unpin>(actor: String, stream: S) -> ActingStream<S> {
    ActingStream { actor, stream }
}

/// See [`acting_as_stream`].
pub struct ActingStream<S> {
    actor: String,
    stream: S,
}

impl<S: Stream + Unpin> Stream for ActingStream<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        ACTOR.sync_scope(this.actor.clone(), || this.stream.poll_next_unpin(cx))
    }
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

    #[tokio::test]
    async fn a_stream_acts_as_its_actor_whenever_it_is_polled() {
        let seen = futures_util::stream::repeat_with(current_actor).take(2);
        let seen: Vec<String> = acting_as_stream("key_2".to_owned(), seen).collect().await;
        assert_eq!(seen, ["key_2", "key_2"]);
        assert_eq!(current_actor(), SYSTEM_ACTOR);
    }
}
