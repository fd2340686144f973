//! `POST /v1/messages`: Anthropic's Messages API (what Claude Code speaks), relayed to any
//! provider. To Anthropic the client's bytes and headers (`anthropic-version`, `anthropic-beta`)
//! pass through; to the others the request goes as chat completions and the reply comes back as a
//! message or as Messages events. The journey itself is [`crate::gateway::journey`].

use axum::http::{HeaderMap, HeaderName};
use axum::response::Response;

use crate::endpoints::messages::passthrough::{self, PassthroughStream};
use crate::endpoints::messages::{self as anthropic_api, reply, stream::MessagesStream};
use crate::error::ApiError;
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Conversation, Endpoint};
use crate::gateway::record::Recording;
use crate::gateway::relay::{self, ChatTo, Started, StreamOut};
use crate::gateway::upstream::Failure;
use crate::gateway::whole;
use crate::providers::dialect::{self, ChatReply, InboundReply};
use crate::providers::openai_types::Usage;
use crate::providers::sse::SseEvent;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// The client's headers that go to an Anthropic upstream as they are.
const FORWARDED: [HeaderName; 2] = [
    HeaderName::from_static("anthropic-version"),
    HeaderName::from_static("anthropic-beta"),
];

/// A Messages stream, from Anthropic as it is or from a chat translator's chunks.
pub enum MessagesOut {
    Passthrough(PassthroughStream),
    FromChat(Box<ChatTo<MessagesStream>>),
}

impl StreamOut for MessagesOut {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            MessagesOut::Passthrough(p) => p.event(event, out),
            MessagesOut::FromChat(c) => c.event(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            MessagesOut::FromChat(c) => c.finish(out),
            MessagesOut::Passthrough(p) => p.finish(),
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            MessagesOut::Passthrough(p) => p.usage(),
            MessagesOut::FromChat(c) => c.usage(),
        }
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        if !matches!(self, MessagesOut::Passthrough(p) if p.errored()) {
            anthropic_api::error_event(error, out);
        }
    }
}

/// The Messages endpoint, with the client's headers an Anthropic upstream gets.
pub struct Messages {
    forwarded: HeaderMap,
}

impl Messages {
    pub fn new(headers: &HeaderMap) -> Messages {
        let mut forwarded = HeaderMap::new();
        for name in FORWARDED {
            for value in headers.get_all(&name) {
                forwarded.append(name.clone(), value.clone());
            }
        }
        Messages { forwarded }
    }
}

impl Endpoint for Messages {
    const NAME: &'static str = "messages";
    type Peek = Conversation;
    type Started = Started<MessagesOut>;

    fn peek(&self, body: &[u8]) -> Result<Conversation, ApiError> {
        Conversation::peek(body)
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, Conversation>,
    ) -> Result<Started<MessagesOut>, Failure> {
        let deployment = &a.candidate.deployment;
        let target = a.chat_target(true);
        let chat = || super::request::chat_body(&crate::error::parse_json(a.body)?, target.stream);
        let encoded =
            dialect::encode_messages(deployment.provider.wire, &target, a.body.clone(), chat)
                .map_err(Failure::fatal)?;
        let forwarded = match encoded.reply {
            InboundReply::Passthrough => self.forwarded.clone(),
            InboundReply::Chat(_) => HeaderMap::new(),
        };
        let sent = gateway
            .send_with(deployment, &encoded.url, encoded.body, forwarded, a.span)
            .await?;
        let (candidate, prompt_bytes) = (a.candidate, a.body.len());
        let id = format!("msg_{}", a.request_id);
        match encoded.reply {
            InboundReply::Passthrough if a.peek.stream => {
                let out = MessagesOut::Passthrough(PassthroughStream::default());
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            InboundReply::Passthrough => {
                relay::start_passthrough(
                    candidate,
                    sent,
                    passthrough::usage_of_message,
                    prompt_bytes,
                )
                .await
            }
            InboundReply::Chat(ChatReply::Stream(chat)) => {
                let messages = MessagesStream::new(id, candidate.model.clone());
                let out = MessagesOut::FromChat(Box::new(ChatTo::new(chat, messages)));
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            InboundReply::Chat(whole) => {
                let chat = whole::read_whole_chat(sent, whole).await?;
                let (json, usage) =
                    reply::message(&chat, &id, &candidate.model).map_err(Failure::from_reply)?;
                Ok(Started::Complete(json, usage.unwrap_or_default()))
            }
        }
    }

    fn relay(
        &self,
        started: Started<MessagesOut>,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &Conversation,
    ) -> Response {
        started.into_response(recording, slot, &candidate.model, peek.stream)
    }
}
