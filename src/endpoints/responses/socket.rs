//! The Responses API over one long-lived WebSocket (`GET /v1/responses` with `Upgrade:
//! websocket`, what Codex and the OpenAI SDKs' `responses.connect()` open): the client sends
//! `response.create` events (the POST body's fields, without `stream`), and each response's
//! events come back as the SSE stream's, one JSON text frame each. Responses run one after another;
//! `previous_response_id` continues from the socket's last response even when it was not stored.
//!
//! The caller is authenticated on the upgrade; every `response.create` is admitted (limits,
//! budgets), routed, recorded and failed over as a POST is. A request's error is an `error` event
//! and the socket stays open; frames are bounded by the body limit; the socket closes when idle,
//! at the end of its lifetime, and when the gateway shuts down.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::endpoint::{Responses, SocketMemory};
use crate::domain::RequestRecord;
use crate::error::ApiError;
use crate::gateway::HEADER_REQUEST_ID;
use crate::governance::Caller;
use crate::governance::owner::Owner;
use crate::providers::sse::SseDecoder;
use crate::state::AppState;

/// `GET /v1/responses`: the WebSocket upgrade (the caller was authenticated at the front door).
pub async fn upgrade(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => ws,
        Err(_) => {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "Create a response with POST /v1/responses, or open a WebSocket here (GET with `Upgrade: websocket`).",
            )
            .with_code("method_not_allowed")
            .into_response();
        }
    };
    let caller = parts
        .extensions
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
    let ip = state.governance.client_ip(peer, &parts.headers);
    let mut headers = parts.headers;
    // Each response gets a request id of its own.
    headers.remove(HEADER_REQUEST_ID);
    let limit = state.config().server.max_body_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            Session {
                state,
                caller,
                ip,
                headers,
                memory: Arc::new(SocketMemory::default()),
            }
            .run(socket)
        })
}

/// One socket: who opened it and what it remembers.
struct Session {
    state: AppState,
    caller: Caller,
    ip: IpAddr,
    headers: HeaderMap,
    memory: Arc<SocketMemory>,
}

/// Why the socket closes.
enum End {
    /// The client closed it, or went away.
    Client,
    Close(u16, &'static str),
}

impl Session {
    async fn run(self, mut socket: WebSocket) {
        let (idle, lifetime) = {
            let server = &self.state.config().server;
            (server.websocket_idle_timeout, server.websocket_max_lifetime)
        };
        let ends = Instant::now() + lifetime;
        let mut stopping = self.state.stopping.subscribe();
        let end = loop {
            if *stopping.borrow() {
                break End::Close(close_code::AWAY, "the gateway is shutting down");
            }
            let left = ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break End::Close(close_code::AWAY, "the socket reached its lifetime");
            }
            let message = tokio::select! {
                message = tokio::time::timeout(idle.min(left), socket.recv()) => message,
                _ = stopping.changed() => continue,
            };
            let message = match message {
                Err(_) if idle < left => break End::Close(close_code::NORMAL, "idle"),
                Err(_) => continue,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => break End::Client,
                Ok(Some(Ok(message))) => message,
            };
            let served = match message {
                Message::Text(text) => self.create(&mut socket, text.as_str()).await,
                Message::Binary(_) => {
                    let error =
                        ApiError::invalid_request("Send `response.create` events as text frames.");
                    send(&mut socket, error_event(&error)).await
                }
                Message::Ping(_) | Message::Pong(_) => Ok(()),
                Message::Close(_) => break End::Client,
            };
            if served.is_err() {
                break End::Client;
            }
        };
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
    }

    /// One `response.create`: its events on the socket; an error event for a request the gateway
    /// or the upstream refused. `Err` only when the client went away.
    async fn create(&self, socket: &mut WebSocket, text: &str) -> Result<(), axum::Error> {
        let request = match create_request(text) {
            Ok(request) => request,
            Err(error) => return send(socket, error_event(&error)).await,
        };
        if request.get("generate") == Some(&Value::Bool(false)) {
            return match self.prepare(request) {
                Ok(events) => {
                    for event in events {
                        send(socket, Utf8Bytes::from(event.to_string())).await?;
                    }
                    Ok(())
                }
                Err(error) => send(socket, error_event(&error)).await,
            };
        }
        let mut request = request;
        request.remove("generate");
        let body = Bytes::from(serde_json::to_vec(&request).expect("a JSON map serialises"));
        let state = &self.state;
        let admission = match state.governance.admit(&self.caller, self.ip).await {
            Ok(admission) => Arc::new(admission),
            Err(rejection) => {
                let request_id = state.gateway().request_id(&self.headers);
                state.stats.record(RequestRecord {
                    time_ms: crate::clock::now_ms(),
                    request_id,
                    client_key: rejection.key_id.clone(),
                    status: rejection.error.status.as_u16(),
                    error_class: Some(rejection.error.class().to_string()),
                    api: "responses".into(),
                    transport: "websocket".into(),
                    ..Default::default()
                });
                return send(socket, error_event(&rejection.error)).await;
            }
        };
        let endpoint = Responses::new(state.responses.clone(), Owner::of(&self.caller))
            .on_socket(self.memory.clone());
        let gateway = state.gateway();
        let response = gateway
            .serve(&endpoint, &self.headers, body, Some(admission))
            .await;
        let status = response.status();
        let mut body = response.into_body().into_data_stream();
        if !status.is_success() {
            let mut bytes = Vec::new();
            while let Some(Ok(chunk)) = body.next().await {
                if bytes.len() + chunk.len() > 64 * 1024 {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            let error = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|mut v| v.get_mut("error").map(Value::take))
                .filter(Value::is_object)
                .unwrap_or_else(|| {
                    let message = String::from_utf8_lossy(&bytes).trim().to_string();
                    json!({"type": kind_of(status), "code": null, "message": message, "param": null})
                });
            let event = json!({"type": "error", "status": status.as_u16(), "error": error});
            return send(socket, Utf8Bytes::from(event.to_string())).await;
        }
        let mut decoder = SseDecoder::default();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                // The relay ends a broken stream with its error event: nothing more to read.
                break;
            };
            decoder.push(&chunk);
            while let Ok(Some(event)) = decoder.next_event() {
                if event.data == b"[DONE]" {
                    continue;
                }
                match std::str::from_utf8(&event.data) {
                    Ok(text) => send(socket, Utf8Bytes::from(text)).await?,
                    Err(_) => continue,
                }
            }
        }
        Ok(())
    }
}

impl Session {
    /// `generate: false` (Codex's warm-up): a response with no output, made without an upstream
    /// call, that the next `response.create` continues (its input is remembered).
    fn prepare(&self, mut request: Map<String, Value>) -> Result<[Value; 2], ApiError> {
        request.remove("generate");
        let mut items = match request.get("previous_response_id").and_then(Value::as_str) {
            Some(id) => match self.memory.recall(id) {
                Some(stored) => stored.items,
                None => {
                    return Err(super::endpoint::not_found(id).with_param("previous_response_id"));
                }
            },
            None => Vec::new(),
        };
        items.extend(super::request::input_items(&mut request)?);
        // Bounded as a stored conversation is: warm-ups chained by `previous_response_id` must
        // not grow the socket's memory past one entry's cap.
        let mut size = Vec::new();
        crate::gateway::response_store::write_items(&mut size, &items);
        let limit = self.state.responses.max_entry_bytes();
        if size.len() > limit {
            return Err(ApiError::invalid_request(format!(
                "The conversation is larger than the {limit} bytes a response may keep."
            ))
            .with_param("input"));
        }
        let Some(model) = request.get("model").and_then(Value::as_str) else {
            return Err(ApiError::invalid_request("`model` must be a string").with_param("model"));
        };
        let id = super::new_id("resp_");
        let started = super::skeleton(&request, &id, model, crate::clock::now_s());
        let mut response = started.clone();
        response["status"] = json!("completed");
        response["output"] = json!([]);
        response["usage"] = json!({"input_tokens": 0, "output_tokens": 0, "total_tokens": 0});
        let owner = Owner::of(&self.caller).id().to_string();
        let stored = crate::gateway::response_store::StoredResponse {
            owner,
            response: response.clone(),
            items,
        };
        self.memory.remember(&id, stored);
        Ok([
            json!({"type": "response.created", "sequence_number": 0, "response": started}),
            json!({"type": "response.completed", "sequence_number": 1, "response": response}),
        ])
    }
}

/// A `response.create` event as the POST body: its fields (flat, or under `response`), streamed.
fn create_request(text: &str) -> Result<Map<String, Value>, ApiError> {
    let mut event: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_request(format!("The event is not a JSON object: {e}")))?;
    match event.remove("type") {
        Some(Value::String(kind)) if kind == "response.create" => {}
        Some(Value::String(kind)) => {
            let shown: String = kind.chars().take(64).collect();
            return Err(ApiError::invalid_request(format!(
                "Unsupported event type `{}`: send `response.create`.",
                shown.escape_default()
            ))
            .with_param("type"));
        }
        _ => {
            return Err(
                ApiError::invalid_request("The event needs `type`: `response.create`.")
                    .with_param("type"),
            );
        }
    }
    if let Some(Value::Object(response)) = event.remove("response") {
        for (key, value) in response {
            event.entry(key).or_insert(value);
        }
    }
    event.insert("stream".into(), Value::Bool(true));
    event.remove("stream_options");
    event.remove("background");
    Ok(event)
}

fn kind_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "invalid_request_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

/// A request's error as the socket's `error` event.
fn error_event(error: &ApiError) -> Utf8Bytes {
    let event = json!({
        "type": "error",
        "status": error.status.as_u16(),
        "error": {
            "type": error.kind,
            "code": error.code,
            "message": error.message,
            "param": error.param,
        },
    });
    Utf8Bytes::from(event.to_string())
}

async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), axum::Error> {
    socket.send(Message::Text(text)).await
}
