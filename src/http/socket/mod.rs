//! `/graphql/ws`: queries, mutations and subscriptions over WebSocket with the
//! graphql-transport-ws protocol, behind the same gate as HTTP.
//!
//! Who may use it: a client with an API key, sent in the `connection_init` payload as
//! `{"authorization": "Bearer <key>"}`; every operation then has the key's scopes and field
//! policy, as they stand at each message. What bounds it:
//! - before the key is checked: one frame of at most [`MAX_INIT_BYTES`] within [`INIT_TIMEOUT`]
//!   (4408 after the timeout, 4400 for a larger frame, 4401 for another message); a client
//!   address that sent too many unknown keys (HTTP and socket alike) is refused with 429
//!   before the upgrade; a bad or missing key closes with 4403 and counts as a failure;
//! - after: frames of at most [`crate::http::MAX_BODY_BYTES`], as many sockets per key as
//!   `WS_MAX_SOCKETS_PER_KEY` (4429 beyond), and each operation through [`GatedExecutor`];
//! - a change of the key reaches its sockets as soon as this instance loads it (at once for a
//!   change made here, within the catalogue's follow interval for one made elsewhere): a
//!   revoked key closes them with 4403, narrowed scopes or policies apply to the next message.

mod executor;
mod seats;

pub use seats::SocketSeats;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{WebSocket as GraphQLSocket, WebSocketProtocols as Protocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::Value;
use tokio::sync::watch;

use super::auth::{client_address, rate_limited};
use super::{MAX_BODY_BYTES, SharedState};
use crate::domain::Caller;
use crate::service::secret_hash;
use executor::GatedExecutor;

/// The subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client may take to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `connection_init` message accepted (it carries only the key).
pub const MAX_INIT_BYTES: usize = 16 * 1024;

/// Close codes of the protocol (and 4429 for a key over its socket cap).
const BAD_REQUEST: u16 = 4400;
const UNAUTHORIZED: u16 = 4401;
const FORBIDDEN: u16 = 4403;
const INIT_TIMED_OUT: u16 = 4408;
const TOO_MANY: u16 = 4429;

/// How many sockets each key may hold and how many subscriptions each socket.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// Open sockets per API key (`WS_MAX_SOCKETS_PER_KEY`).
    pub max_sockets_per_key: u32,
    /// Open subscriptions per socket (`WS_MAX_SUBSCRIPTIONS_PER_SOCKET`).
    pub max_subscriptions_per_socket: u32,
}

/// Upgrades to a WebSocket speaking graphql-transport-ws, unless the client's address is
/// refused for too many failed authentications.
pub async fn upgrade(
    State(state): State<SharedState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == PROTOCOL);
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            format!("ask for the `{PROTOCOL}` subprotocol (Sec-WebSocket-Protocol)"),
        )
            .into_response();
    }
    let address = client_address(
        &headers,
        peer.map(|Extension(ConnectInfo(peer))| peer.ip()),
        state.client_address_header.as_deref(),
    );
    if let Some((guard, address)) = state.address_guard.as_deref().zip(address)
        && let Some(wait) = guard.refused(address)
    {
        state.metrics.rate_limited("address");
        return rate_limited(wait, "this address sent too many unknown API keys");
    }
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve(state, socket, address))
}

type Sink = SplitSink<WebSocket, Message>;

async fn serve(state: SharedState, socket: WebSocket, address: Option<IpAddr>) {
    let (mut sink, mut incoming) = socket.split();
    let first = tokio::time::timeout(INIT_TIMEOUT, next_text(&mut incoming)).await;
    let init = match first {
        Err(_) => {
            return close(
                &mut sink,
                INIT_TIMED_OUT,
                "Connection initialisation timeout",
            )
            .await;
        }
        Ok(None) => return,
        Ok(Some(text)) => text,
    };
    if init.len() > MAX_INIT_BYTES {
        let reason = format!("connection_init is larger than {MAX_INIT_BYTES} bytes");
        return close(&mut sink, BAD_REQUEST, &reason).await;
    }
    let (caller, key_hash) = match authenticate(&state, &init) {
        Ok(authenticated) => authenticated,
        Err((code, reason)) => {
            if code == FORBIDDEN
                && let Some((guard, address)) = state.address_guard.as_deref().zip(address)
            {
                guard.failed(address);
            }
            return close(&mut sink, code, &reason).await;
        }
    };
    let max_sockets = state.socket_limits.max_sockets_per_key;
    let Some(_seat) = state.sockets.take(&caller.key_id, max_sockets) else {
        let reason =
            format!("this API key holds {max_sockets} sockets already (WS_MAX_SOCKETS_PER_KEY)");
        return close(&mut sink, TOO_MANY, &reason).await;
    };
    let (current, follows) = watch::channel(Arc::new(caller));
    let rest = stream::unfold(incoming, |mut incoming| async move {
        next_text(&mut incoming).await.map(|text| (text, incoming))
    });
    let messages = stream::once(async move { init }).chain(rest);
    let executor = GatedExecutor::new(Arc::clone(&state), follows);
    let mut protocol = GraphQLSocket::new(executor, Box::pin(messages), Protocols::GraphQLWS);
    let mut key_changes = state.services.keys.watch_changes();
    let mut following = true;
    loop {
        tokio::select! {
            message = protocol.next() => match message {
                Some(WsMessage::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => return close(&mut sink, code, &reason).await,
                None => return,
            },
            changed = key_changes.changed(), if following => {
                if changed.is_err() {
                    // The catalogue is gone: the service is stopping.
                    following = false;
                    continue;
                }
                let Some(now) = state.services.keys.caller_of(&key_hash) else {
                    return close(&mut sink, FORBIDDEN, "Forbidden: the API key was revoked").await;
                };
                let changed = **current.borrow() != now;
                if changed {
                    current.send_replace(Arc::new(now));
                }
            }
        }
    }
}

/// The caller the `connection_init` message authenticates with the hash of its key, or the
/// close code and reason.
fn authenticate(state: &SharedState, init: &str) -> Result<(Caller, String), (u16, String)> {
    let message: Value = serde_json::from_str(init)
        .map_err(|_| (UNAUTHORIZED, "send connection_init first".to_owned()))?;
    if message.get("type").and_then(Value::as_str) != Some("connection_init") {
        return Err((
            UNAUTHORIZED,
            "Unauthorized: send connection_init first".to_owned(),
        ));
    }
    let token = message
        .pointer("/payload/authorization")
        .or_else(|| message.pointer("/payload/Authorization"))
        .and_then(Value::as_str)
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| {
            (
                FORBIDDEN,
                "Forbidden: send {\"authorization\": \"Bearer <key>\"} as the connection_init payload"
                    .to_owned(),
            )
        })?;
    let caller = state
        .services
        .keys
        .authenticate(token)
        .map_err(|_| (FORBIDDEN, "Forbidden: the API key is not valid".to_owned()))?;
    Ok((caller, secret_hash(token)))
}

/// The next text (or binary) frame, `None` when the client is gone.
async fn next_text(incoming: &mut SplitStream<WebSocket>) -> Option<String> {
    while let Some(Ok(message)) = incoming.next().await {
        match message {
            Message::Text(text) => return Some(text.to_string()),
            Message::Binary(bytes) => return String::from_utf8(bytes.to_vec()).ok(),
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    None
}

async fn close(sink: &mut Sink, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}
