//! `POST /v1/responses`: OpenAI's Responses API (what Codex speaks), relayed to any provider. To an
//! upstream that speaks it (OpenAI) the client's bytes pass through; to the others the
//! conversation goes as chat completions and the reply comes back as a response object or as
//! Responses events. With `store` (the default) the gateway keeps the response and its
//! conversation, whichever provider answered, so `previous_response_id` continues it on any
//! provider. The journey itself is
//! [`crate::gateway::journey`].

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::endpoints::responses::passthrough::{self, PassthroughStream};
use crate::endpoints::responses::stream::{self as responses_stream, ResponsesStream};
use crate::endpoints::responses::{new_id, request, skeleton};
use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint, Peek};
use crate::gateway::record::Recording;
use crate::gateway::relay::{self, ChatTo, Started, StreamOut};
use crate::gateway::response_store::{ResponseStore, StoredResponse, stored_json, write_items};
use crate::gateway::upstream::Failure;
use crate::gateway::whole;
use crate::governance::owner::Owner;
use crate::providers::dialect::{self, ChatReply, InboundReply};
use crate::providers::openai_types::Usage;
use crate::providers::sse::SseEvent;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// Names the tool types a translated request went without.
pub const HEADER_DROPPED_TOOLS: HeaderName = HeaderName::from_static("x-llm-bridge-dropped-tools");

/// A Responses request, peeked: the body is read whole once, as the translation needs all of it.
pub struct ResponsesPeek {
    model: String,
    stream: bool,
    store: bool,
    previous: Option<String>,
    request: Map<String, Value>,
    input: Vec<Value>,
}

impl Peek for ResponsesPeek {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        self.stream
    }
}

/// The conversation before this request, from `previous_response_id`.
enum History {
    None,
    Found(StoredResponse),
    /// Not kept here, or another caller's (which is the same to this caller).
    Missing(String),
}

/// What is kept once the response is whole.
struct Keep {
    /// The store, when the client asked for the response to be stored.
    store: Option<Arc<ResponseStore>>,
    /// The WebSocket the response came on: it remembers its last response.
    socket: Option<Arc<SocketMemory>>,
    owner: String,
    /// The conversation up to this response's output, written as JSON array members (a fraction
    /// of what it takes as values, for as long as the reply lasts).
    items: Vec<u8>,
}

impl Keep {
    fn keep(self, response: &Value, output: &[Value]) {
        let Some(id) = response["id"].as_str() else {
            return;
        };
        let json = stored_json(&self.owner, response, &self.items, output);
        if let Some(socket) = &self.socket
            && let Ok(stored) = serde_json::from_slice::<StoredResponse>(&json)
        {
            socket.remember(id, stored);
        }
        if let Some(store) = &self.store {
            store.put_json(id, json);
        }
    }
}

/// A Responses WebSocket's last response: `previous_response_id` continues from it even when
/// it was not stored (`store: false`). One conversation, bounded as a stored one is.
#[derive(Default)]
pub struct SocketMemory {
    last: std::sync::Mutex<Option<(String, StoredResponse)>>,
}

impl SocketMemory {
    pub(super) fn remember(&self, id: &str, stored: StoredResponse) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((id.to_string(), stored));
    }

    pub(super) fn recall(&self, id: &str) -> Option<StoredResponse> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(last, _)| last == id)
            .map(|(_, stored)| stored.clone())
    }
}

/// A Responses stream, from an upstream that speaks it or from a chat translator's chunks.
pub enum ResponsesOut {
    Passthrough(Box<AsSent>),
    FromChat(Box<ChatToResponses>),
}

/// An upstream's Responses stream, forwarded as it is.
pub struct AsSent {
    stream: PassthroughStream,
    /// Events forwarded so far (the next `sequence_number`).
    events: u64,
    keep: Option<Keep>,
}

/// A chat translator's chunks, turned into Responses events, and kept once whole.
pub struct ChatToResponses {
    stream: ChatTo<ResponsesStream>,
    keep: Option<Keep>,
}

impl StreamOut for ResponsesOut {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            ResponsesOut::Passthrough(p) => {
                p.events += 1;
                if let Some(response) = p.stream.event(event, out)?
                    && let Some(keep) = p.keep.take()
                {
                    let output = response["output"].as_array().map_or(&[][..], Vec::as_slice);
                    keep.keep(&response, output);
                }
                Ok(())
            }
            ResponsesOut::FromChat(c) => c.stream.event(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        if let ResponsesOut::FromChat(c) = self {
            c.stream.finish(out)?;
            if let Some(keep) = c.keep.take() {
                let responses = &c.stream.inbound;
                keep.keep(responses.response(), responses.output());
            }
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            ResponsesOut::Passthrough(p) => p.stream.usage(),
            ResponsesOut::FromChat(c) => c.stream.usage(),
        }
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        match self {
            ResponsesOut::Passthrough(p) => {
                let data = serde_json::json!({
                    "type": "error",
                    "code": error.code.as_deref().unwrap_or("server_error"),
                    "message": error.message,
                    "param": null,
                    "sequence_number": p.events,
                });
                out.extend_from_slice(b"event: error\ndata: ");
                serde_json::to_writer(&mut *out, &data).expect("a JSON value serialises");
                out.extend_from_slice(b"\n\n");
            }
            ResponsesOut::FromChat(c) => c.stream.inbound.fail(error, out),
        }
    }
}

/// The Responses endpoint, with the store it keeps responses in and the caller it keeps them for.
pub struct Responses {
    store: Arc<ResponseStore>,
    owner: Owner,
    history: OnceCell<History>,
    /// Set for a `response.create` on a WebSocket.
    socket: Option<Arc<SocketMemory>>,
}

impl Responses {
    pub fn new(store: Arc<ResponseStore>, owner: Owner) -> Responses {
        Responses {
            store,
            owner,
            history: OnceCell::new(),
            socket: None,
        }
    }

    /// A response created on a WebSocket, which remembers its last response.
    pub fn on_socket(mut self, memory: Arc<SocketMemory>) -> Responses {
        self.socket = Some(memory);
        self
    }

    async fn history(&self, peek: &ResponsesPeek) -> &History {
        self.history
            .get_or_init(|| async {
                let Some(id) = &peek.previous else {
                    return History::None;
                };
                if let Some(stored) = self.socket.as_ref().and_then(|s| s.recall(id)) {
                    return History::Found(stored);
                }
                match self.store.get(id, &self.owner).await {
                    Some(stored) => History::Found(stored),
                    None => History::Missing(id.clone()),
                }
            })
            .await
    }

    fn keep(&self, peek: &ResponsesPeek, history: &History) -> Option<Keep> {
        if !peek.store && self.socket.is_none() {
            return None;
        }
        let mut items = Vec::new();
        if let History::Found(stored) = history {
            write_items(&mut items, &stored.items);
        }
        write_items(&mut items, &peek.input);
        if items.len() > self.store.max_entry_bytes() {
            tracing::warn!(
                bytes = items.len(),
                limit = self.store.max_entry_bytes(),
                "a conversation is larger than responses.max_entry_bytes: not stored"
            );
            return None;
        }
        Some(Keep {
            store: peek.store.then(|| self.store.clone()),
            socket: self.socket.clone(),
            owner: self.owner.id().to_string(),
            items,
        })
    }
}

/// OpenAI's answer for an unknown response id.
pub fn not_found(id: &str) -> ApiError {
    let shown: String = id.chars().take(80).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("Response with id '{shown}' not found."),
    )
}

/// The client's body with the stored conversation in front of its input, for an upstream that
/// speaks the Responses API but does not know the gateway's ids.
fn with_history(peek: &ResponsesPeek, stored: &StoredResponse) -> Bytes {
    let mut request = peek.request.clone();
    request.remove("previous_response_id");
    let mut input = stored.items.clone();
    input.extend_from_slice(&peek.input);
    request.insert("input".into(), Value::Array(input));
    Bytes::from(serde_json::to_vec(&request).expect("a JSON map serialises"))
}

impl Endpoint for Responses {
    const NAME: &'static str = "responses";
    /// Replies are kept by `store` and chained by `previous_response_id`: a replayed response id
    /// would stand for another conversation's turn.
    const CACHING: crate::gateway::cache::Caching = crate::gateway::cache::Caching::Off;
    type Peek = ResponsesPeek;
    type Started = Started<ResponsesOut>;

    fn transport(&self) -> &'static str {
        if self.socket.is_some() {
            "websocket"
        } else {
            ""
        }
    }

    fn peek(&self, body: &[u8]) -> Result<ResponsesPeek, ApiError> {
        let mut request: Map<String, Value> = parse_json(body)?;
        let model = match request.get("model") {
            Some(Value::String(model)) => model.clone(),
            _ => {
                return Err(
                    ApiError::invalid_request("`model` must be a string").with_param("model")
                );
            }
        };
        let previous = match request.get("previous_response_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => {
                return Err(
                    ApiError::invalid_request("`previous_response_id` must be a string")
                        .with_param("previous_response_id"),
                );
            }
        };
        Ok(ResponsesPeek {
            model,
            stream: request
                .get("stream")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            store: request
                .get("store")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            previous,
            input: request::input_items(&mut request)?,
            request,
        })
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, ResponsesPeek>,
    ) -> Result<Started<ResponsesOut>, Failure> {
        let peek = a.peek;
        let history = self.history(peek).await;
        let deployment = &a.candidate.deployment;
        let wire = deployment.provider.wire;
        let passthrough = dialect::speaks_responses(wire);
        let (items, body): (&[Value], Bytes) = match history {
            History::Found(stored) if passthrough => (&[], with_history(peek, stored)),
            History::Found(stored) => (&stored.items, a.body.clone()),
            // An id this gateway does not hold goes to an upstream with its own store only for
            // the administrator: for anyone else it may be another caller's conversation there.
            History::Missing(_) if passthrough && self.owner.sees_all() => (&[], a.body.clone()),
            History::Missing(id) => {
                return Err(Failure::fatal(
                    not_found(id).with_param("previous_response_id"),
                ));
            }
            History::None => (&[], a.body.clone()),
        };
        let target = a.chat_target(true);
        let encoded = dialect::encode_responses(wire, &target, body, || {
            request::chat_body(&peek.request, items, &peek.input, peek.stream)
        })
        .map_err(Failure::fatal)?;
        let sent = gateway
            .send_once(deployment, &encoded.url, encoded.body, a.span)
            .await?;
        let (candidate, prompt_bytes) = (a.candidate, a.body.len());
        let start = || {
            let id = new_id("resp_");
            skeleton(&peek.request, &id, &candidate.model, crate::clock::now_s())
        };
        match encoded.reply {
            InboundReply::Passthrough if peek.stream => {
                let keep = self.keep(peek, history);
                let out = ResponsesOut::Passthrough(Box::new(AsSent {
                    stream: PassthroughStream::new(keep.is_some()),
                    events: 0,
                    keep,
                }));
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            // Kept: the gateway reads the reply whole to keep it.
            InboundReply::Passthrough if peek.store => {
                let raw = whole::read_whole(sent).await?;
                let usage = passthrough::usage_of_response(&raw);
                if let (Some(keep), Ok(response)) = (
                    self.keep(peek, history),
                    serde_json::from_slice::<Value>(&raw),
                ) {
                    let output = response["output"].as_array().map_or(&[][..], Vec::as_slice);
                    keep.keep(&response, output);
                }
                Ok(Started::Complete(raw, usage.unwrap_or_default()))
            }
            InboundReply::Passthrough => {
                relay::start_passthrough(
                    candidate,
                    sent,
                    passthrough::usage_of_response,
                    prompt_bytes,
                )
                .await
            }
            InboundReply::Chat(ChatReply::Stream(chat)) => {
                let out = ResponsesOut::FromChat(Box::new(ChatToResponses {
                    stream: ChatTo::new(chat, ResponsesStream::new(start())),
                    keep: self.keep(peek, history),
                }));
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            InboundReply::Chat(whole) => {
                let chat = whole::read_whole_chat(sent, whole).await?;
                let (response, usage) =
                    responses_stream::whole(&chat, start()).map_err(Failure::from_reply)?;
                if let Some(keep) = self.keep(peek, history) {
                    keep.keep(response.response(), response.output());
                }
                let json =
                    serde_json::to_vec(response.response()).expect("a JSON value serialises");
                Ok(Started::Complete(json, usage.unwrap_or_default()))
            }
        }
    }

    fn relay(
        &self,
        started: Started<ResponsesOut>,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &ResponsesPeek,
    ) -> Response {
        let mut response = started.into_response(recording, slot, &candidate.model, peek.stream);
        if !dialect::speaks_responses(candidate.deployment.provider.wire)
            && let Ok(tools) = request::dropped_tools(&peek.request)
            && !tools.is_empty()
            && let Ok(value) = HeaderValue::from_str(&tools.join(", "))
        {
            response.headers_mut().insert(HEADER_DROPPED_TOOLS, value);
        }
        response
    }
}
