//! `POST /v1/chat/completions`: OpenAI's chat completions, relayed to any provider. The journey
//! itself is [`super::journey`]; this file is what is particular to chat.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Gateway;
use super::journey::{Attempt, Endpoint, Peek};
use super::record::Recording;
use super::relay::{PassthroughBody, SseRelay, Upstream};
use super::upstream::{Failure, Sent};
use crate::error::{ApiError, parse_json};
use crate::governance::Admission;
use crate::providers::dialect::{self, ChatReply, ChatTarget};
use crate::providers::openai_types::{StreamOptions, Usage};
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// Largest non-stream reply the gateway translates (Gemini, Anthropic); OpenAI-dialect replies are streamed through.
const MAX_TRANSLATED_REPLY: usize = 32 * 1024 * 1024;

/// The few fields the gateway reads from every chat request; the rest stays untouched.
#[derive(Deserialize)]
struct ChatFields<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    messages: Vec<IgnoredAny>,
}

pub struct ChatPeek {
    model: String,
    stream: bool,
    include_usage: bool,
    no_messages: bool,
}

impl Peek for ChatPeek {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        self.stream
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.no_messages {
            return Err(
                ApiError::invalid_request("`messages` must hold at least one message")
                    .with_param("messages"),
            );
        }
        Ok(())
    }
}

/// A reply that has started: the first bytes are in hand, the rest follows.
pub enum Started {
    Stream(Box<SseRelay>, Bytes),
    Passthrough(Box<PassthroughBody>, Bytes),
    Complete(Vec<u8>, Usage),
}

/// The chat completions endpoint.
pub struct Chat;

impl Endpoint for Chat {
    const NAME: &'static str = "chat";
    type Peek = ChatPeek;
    type Started = Started;

    fn peek(&self, body: &[u8]) -> Result<ChatPeek, ApiError> {
        let fields: ChatFields = parse_json(body)?;
        Ok(ChatPeek {
            model: fields.model.into_owned(),
            stream: fields.stream.unwrap_or(false),
            include_usage: fields.stream_options.is_some_and(|o| o.include_usage),
            no_messages: fields.messages.is_empty(),
        })
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, ChatPeek>,
    ) -> Result<Started, Failure> {
        let deployment = &a.candidate.deployment;
        let target = ChatTarget {
            base_url: &deployment.base_url,
            model: &a.candidate.model,
            client_model: &a.peek.model,
            stream: a.peek.stream,
            include_usage: a.peek.include_usage,
            request_id: a.request_id,
        };
        let encoded = dialect::encode_chat(deployment.provider.wire, &target, a.body.clone())
            .map_err(Failure::fatal)?;
        let sent = gateway
            .send_once(deployment, &encoded.url, encoded.body, a.span)
            .await?;
        Chat::start(a.candidate, sent, encoded.reply, a.body.len()).await
    }

    fn relay(
        &self,
        started: Started,
        mut recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &ChatPeek,
    ) -> Response {
        let (mut response, content_type) = match started {
            Started::Stream(mut relay, first) => {
                recording.first_token();
                relay.attach(recording, slot);
                (Response::new(relay.into_body(first)), "text/event-stream")
            }
            Started::Passthrough(mut relay, first) => {
                relay.attach(recording, slot);
                (Response::new(relay.into_body(first)), "application/json")
            }
            Started::Complete(json, usage) => {
                recording.succeed(Some(usage), || (0, 0), &candidate.model);
                (Response::new(Body::from(json)), "application/json")
            }
        };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if peek.stream {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        response
    }
}

impl Gateway {
    pub async fn chat(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Response {
        self.serve(&Chat, headers, body, admission).await
    }
}

impl Chat {
    /// Reads the reply's first bytes (the whole reply when it must be translated as a whole), so
    /// that a failure before anything reached the client can still fail over.
    async fn start(
        candidate: &Candidate,
        sent: Sent,
        reply: ChatReply,
        prompt_bytes: usize,
    ) -> Result<Started, Failure> {
        let upstream: Upstream = Box::pin(sent.response.bytes_stream());
        let provider = &candidate.deployment.provider;
        match reply {
            ChatReply::Stream(translator) => {
                let mut relay = SseRelay::new(
                    upstream,
                    translator,
                    provider.timeouts.idle,
                    candidate.model.clone(),
                    prompt_bytes,
                );
                match tokio::time::timeout(provider.timeouts.first_byte, relay.next()).await {
                    Ok(Ok(Some(first))) => Ok(Started::Stream(Box::new(relay), first)),
                    Ok(Ok(None)) => Err(Failure::from_reply(ApiError::bad_gateway(format!(
                        "{}: empty stream",
                        provider.display_name
                    )))),
                    Ok(Err(e)) => Err(Failure::from_reply(e)),
                    Err(_) => Err(Failure::from_reply(ApiError::gateway_timeout(format!(
                        "{}: no first token within {:?}",
                        provider.display_name, provider.timeouts.first_byte
                    )))),
                }
            }
            ChatReply::Passthrough => {
                let mut relay = PassthroughBody::new(
                    upstream,
                    provider.timeouts.idle,
                    candidate.model.clone(),
                    prompt_bytes,
                );
                match relay.next().await {
                    Ok(Some(first))
                        if first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') =>
                    {
                        Ok(Started::Passthrough(Box::new(relay), first))
                    }
                    Ok(_) => Err(Failure::from_reply(ApiError::bad_gateway(format!(
                        "{}: the upstream reply is not JSON",
                        provider.display_name
                    )))),
                    Err(e) => Err(Failure::from_reply(e)),
                }
            }
            ChatReply::Translate(wire, ctx) => {
                let raw = read_all(upstream, MAX_TRANSLATED_REPLY, provider.timeouts.idle)
                    .await
                    .map_err(Failure::from_reply)?;
                let (json, usage) =
                    dialect::chat_reply(wire, &raw, &ctx).map_err(Failure::from_reply)?;
                Ok(Started::Complete(json, usage))
            }
        }
    }
}

/// A whole (bounded) upstream body, for replies that must be translated as a whole.
async fn read_all(
    mut upstream: super::relay::Upstream,
    cap: usize,
    idle: Duration,
) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(idle, upstream.next()).await {
            Ok(Some(Ok(chunk))) => {
                if body.len() + chunk.len() > cap {
                    return Err(ApiError::bad_gateway(format!(
                        "the upstream reply is larger than {} MiB",
                        cap >> 20
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_gateway(format!(
                    "the upstream reply broke off: {}",
                    super::relay::root_cause(&e)
                )));
            }
            Ok(None) => return Ok(body),
            Err(_) => {
                return Err(ApiError::gateway_timeout(format!(
                    "the upstream sent nothing for {idle:?}"
                )));
            }
        }
    }
}
