//! Each operation a socket starts (query, mutation or subscription) passes what a request over
//! HTTP passes: the key's rate limit (shared with HTTP), the request gate (persisted queries,
//! shape limits; the schema's complexity limit), and the socket's cap on open subscriptions.
//! It then runs as the key stands (a subscription follows the key as it changes), with its
//! writes recorded as made by the key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Pos, Request, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use super::super::SharedState;
use super::super::errors::finish_response;
use super::super::rate_limit::{Admission, whole_seconds};
use crate::actor::acting_as_stream;
use crate::domain::Caller;
use crate::graphql::error::api_error;
use crate::service::ServiceError;

/// Runs a socket's operations through the gate; one per socket.
#[derive(Clone)]
pub struct GatedExecutor {
    state: SharedState,
    caller: watch::Receiver<Arc<Caller>>,
    subscriptions: Arc<OpenSubscriptions>,
}

impl GatedExecutor {
    /// The executor of a socket whose key's caller `caller` follows.
    pub fn new(state: SharedState, caller: watch::Receiver<Arc<Caller>>) -> Self {
        Self {
            state,
            caller,
            subscriptions: Arc::default(),
        }
    }

    /// The operation's responses, or one refusal.
    async fn admit(
        self,
        request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let caller = Arc::clone(&self.caller.borrow());
        if let Admission::Refused(_, wait) =
            self.state.rate_limit.admit(&caller.key_id, caller.rate)
        {
            self.state.metrics.rate_limited("key");
            let seconds = whole_seconds(wait).max(1);
            return refusal(ServiceError::RateLimited(format!(
                "this API key is over its rate limit; retry in {seconds} s"
            )));
        }
        let prepared = match self.state.gate.prepare(request).await {
            Ok(prepared) => prepared,
            Err(error) => {
                let mut response = Response::from_errors(vec![error]);
                finish_response(&mut response, &self.state.metrics);
                return stream::once(async move { response }).boxed();
            }
        };
        let subscription = prepared.kind == OperationType::Subscription;
        let ticket = if subscription {
            let max = self.state.socket_limits.max_subscriptions_per_socket;
            match self.subscriptions.open(max) {
                Some(ticket) => Some(ticket),
                None => {
                    return refusal(ServiceError::RateLimited(format!(
                        "this socket already holds {max} subscriptions (WS_MAX_SUBSCRIPTIONS_PER_SOCKET); complete one first"
                    )));
                }
            }
        } else {
            None
        };
        let request =
            crate::graphql::for_socket_operation(prepared.request, &self.caller, subscription);
        let responses = self
            .state
            .schema
            .execute_stream_with_session_data(request, session.unwrap_or_default());
        let metrics = Arc::clone(&self.state.metrics);
        acting_as_stream(caller.key_id.clone(), responses)
            .map(move |mut response| {
                // The ticket lives as long as the subscription's stream.
                let _open = &ticket;
                finish_response(&mut response, &metrics);
                response
            })
            .boxed()
    }
}

impl Executor for GatedExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.execute_stream(request, None)
            .next()
            .await
            .unwrap_or_default()
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let executor = self.clone();
        stream::once(executor.admit(request, session_data))
            .flatten()
            .boxed()
    }
}

/// One response refusing the operation with `error`'s code.
fn refusal(error: ServiceError) -> BoxStream<'static, Response> {
    let error = api_error(error).into_server_error(Pos::default());
    stream::once(async move { Response::from_errors(vec![error]) }).boxed()
}

/// The subscriptions a socket holds open.
#[derive(Default)]
struct OpenSubscriptions(AtomicU32);

/// One open subscription; dropping it (the subscription completed or was stopped) frees its
/// place.
struct Ticket(Arc<OpenSubscriptions>);

impl OpenSubscriptions {
    /// A place for one more subscription, unless `max` are open.
    fn open(self: &Arc<Self>, max: u32) -> Option<Ticket> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| Ticket(Arc::clone(self)))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_holds_at_most_its_subscriptions() {
        let open = Arc::new(OpenSubscriptions::default());
        let first = open.open(2).expect("first");
        let _second = open.open(2).expect("second");
        assert!(open.open(2).is_none());
        drop(first);
        assert!(
            open.open(2).is_some(),
            "a completed subscription frees its place"
        );
    }
}
