//! `POST /v1/chat/completions`: OpenAI's chat completions, relayed to any provider. The journey
//! itself is [`super::journey`]; this file is what is particular to chat.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Gateway;
use super::journey::{Attempt, Endpoint, Peek};
use super::record::Recording;
use super::relay::{self, Started};
use super::upstream::Failure;
use crate::error::{ApiError, parse_json};
use crate::governance::Admission;
use crate::providers::dialect::{self, ChatReply, ChatTarget, ChatTranslator};
use crate::providers::openai_compatible::usage_from_tail;
use crate::providers::openai_types::StreamOptions;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

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

/// The chat completions endpoint.
pub struct Chat;

impl Endpoint for Chat {
    const NAME: &'static str = "chat";
    type Peek = ChatPeek;
    type Started = Started<ChatTranslator>;

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
    ) -> Result<Started<ChatTranslator>, Failure> {
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
        let (candidate, prompt_bytes) = (a.candidate, a.body.len());
        match encoded.reply {
            ChatReply::Stream(translator) => {
                relay::start_stream(candidate, sent, translator, prompt_bytes).await
            }
            ChatReply::Passthrough => {
                relay::start_passthrough(candidate, sent, usage_from_tail, prompt_bytes).await
            }
            ChatReply::Translate(wire, ctx) => {
                let raw = relay::read_whole(candidate, sent).await?;
                let (json, usage) =
                    dialect::chat_reply(wire, &raw, &ctx).map_err(Failure::from_reply)?;
                Ok(Started::Complete(json, usage))
            }
        }
    }

    fn relay(
        &self,
        started: Started<ChatTranslator>,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &ChatPeek,
    ) -> Response {
        started.into_response(recording, slot, &candidate.model, peek.stream)
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
