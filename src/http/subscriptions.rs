//! `/graphql/ws`: subscriptions over WebSocket with the graphql-transport-ws protocol.
//!
//! The API key comes in the `connection_init` payload as `{"authorization": "Bearer <key>"}`.
//! A bad or missing key closes the socket with 4403, no `connection_init` within 10 s with
//! 4408, anything else before it with 4401; then async-graphql runs the protocol with the
//! caller in every operation's context, so scopes and field policies apply as on queries.

use std::time::Duration;

use async_graphql::http::{WebSocket as GraphQLSocket, WebSocketProtocols as Protocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::Value;

use super::SharedState;
use crate::domain::Caller;

/// The subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a client may take to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Close codes of the protocol.
const FORBIDDEN: u16 = 4403;
const INIT_TIMED_OUT: u16 = 4408;
const UNAUTHORIZED: u16 = 4401;

/// Upgrades to a WebSocket speaking graphql-transport-ws.
pub async fn upgrade(
    State(state): State<SharedState>,
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
    upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| serve(state, socket))
}

async fn serve(state: SharedState, socket: WebSocket) {
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
    let caller = match authenticate(&state, &init) {
        Ok(caller) => caller,
        Err((code, reason)) => return close(&mut sink, code, &reason).await,
    };
    let rest = stream::unfold(incoming, |mut incoming| async move {
        next_text(&mut incoming).await.map(|text| (text, incoming))
    });
    let messages = stream::once(async move { init }).chain(rest);
    let mut protocol = GraphQLSocket::new(
        state.schema.clone(),
        Box::pin(messages),
        Protocols::GraphQLWS,
    )
    .connection_data(crate::graphql::connection_data(caller));
    while let Some(message) = protocol.next().await {
        match message {
            WsMessage::Text(text) => {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            WsMessage::Close(code, reason) => return close(&mut sink, code, &reason).await,
        }
    }
}

/// The caller the `connection_init` message authenticates, or the close code and reason.
fn authenticate(state: &SharedState, init: &str) -> Result<Caller, (u16, String)> {
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
    state
        .services
        .keys
        .authenticate(token)
        .map_err(|_| (FORBIDDEN, "Forbidden: the API key is not valid".to_owned()))
}

/// The next text (or binary) frame, `None` when the client is gone.
async fn next_text(incoming: &mut futures_util::stream::SplitStream<WebSocket>) -> Option<String> {
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

async fn close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}
