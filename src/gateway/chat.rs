//! `POST /v1/chat/completions`: OpenAI's chat completions, relayed to any provider. The journey
//! itself is [`super::journey`]; this file is what is particular to chat.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::Gateway;
use super::cache::Caching;
use super::journey::{Attempt, Conversation, Endpoint};
use super::record::Recording;
use super::relay::{self, Started};
use super::upstream::Failure;
use super::whole;
use crate::error::ApiError;
use crate::governance::Admission;
use crate::providers::dialect::{self, ChatReply, ChatTranslator};
use crate::providers::openai_compatible::usage_from_tail;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// The chat completions endpoint.
pub struct Chat;

impl Endpoint for Chat {
    const NAME: &'static str = "chat";
    const CACHING: Caching = Caching::Chat;
    type Peek = Conversation;
    type Started = Started<ChatTranslator>;

    fn peek(&self, body: &[u8]) -> Result<Conversation, ApiError> {
        Conversation::peek(body)
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, Conversation>,
    ) -> Result<Started<ChatTranslator>, Failure> {
        let deployment = &a.candidate.deployment;
        let target = a.chat_target(a.peek.include_usage);
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
                let raw = whole::read_whole(sent).await?;
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
        peek: &Conversation,
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
