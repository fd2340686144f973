//! `POST /v1/chat/completions`: OpenAI's chat completions, relayed to any provider. The journey
//! itself is [`crate::gateway::journey`]; this folder is what is particular to chat.

pub mod handler;
pub mod kept_reasoning;

use std::sync::Arc;

use axum::response::Response;

use self::kept_reasoning::Gatherer;
use crate::error::ApiError;
use crate::gateway::Gateway;
use crate::gateway::cache::Caching;
use crate::gateway::journey::{Attempt, Conversation, Endpoint};
use crate::gateway::record::Recording;
use crate::gateway::relay::{self, Started, StreamOut};
use crate::gateway::response_store::ResponseStore;
use crate::gateway::upstream::Failure;
use crate::gateway::whole;
use crate::governance::Admission;
use crate::governance::owner::Owner;
use crate::providers::dialect::{self, ChatReply, ChatTranslator};
use crate::providers::openai_compatible::usage_from_tail;
use crate::providers::spec::Wire;
use crate::providers::sse::SseEvent;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// The chat completions endpoint.
pub struct Chat {
    /// Where the reasoning state of translated replies is kept ([`kept_reasoning`]).
    pub reasoning: Arc<ResponseStore>,
    /// The caller, whose that state is.
    pub admission: Option<Arc<Admission>>,
}

/// The owner of a request let in without an admission (an open gateway).
static ANONYMOUS: std::sync::LazyLock<Owner> =
    std::sync::LazyLock::new(|| Owner::of(&crate::governance::Caller::Anonymous));

impl Chat {
    fn owner(&self) -> &Owner {
        self.admission.as_ref().map_or(&ANONYMOUS, |a| &a.owner)
    }
}

/// A chat stream as the client receives it, its reasoning state gathered on the way when the
/// provider's replies carry some.
pub struct ChatOut {
    chat: ChatTranslator,
    keeping: Option<(Gatherer, Arc<ResponseStore>, Owner)>,
}

impl StreamOut for ChatOut {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let start = out.len();
        StreamOut::event(&mut self.chat, event, out)?;
        if let Some((gatherer, ..)) = &mut self.keeping {
            gatherer.frames(&out[start..]);
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let start = out.len();
        StreamOut::finish(&mut self.chat, out)?;
        if let Some((mut gatherer, store, owner)) = self.keeping.take() {
            gatherer.frames(&out[start..]);
            gatherer.keep(&store, &owner);
        }
        Ok(())
    }

    fn usage(&self) -> Option<crate::providers::openai_types::Usage> {
        StreamOut::usage(&self.chat)
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        StreamOut::fail(&mut self.chat, error, out)
    }
}

/// Whether the provider checks the reasoning state a turn comes back with: a Gemini 3 call's
/// signature, or Claude's thinking (on when the request asks for reasoning). Only then is a reply's
/// state kept, and a turn that comes without it looked up (a Redis read when configured).
fn checks_reasoning(wire: Wire, model: &str, body: &[u8]) -> bool {
    match wire {
        Wire::Gemini => crate::providers::gemini::checks_signatures(model),
        Wire::Anthropic => memchr::memmem::find(body, b"\"reasoning_effort\"").is_some(),
        Wire::OpenAi(_) => false,
    }
}

impl Endpoint for Chat {
    const NAME: &'static str = "chat";
    const CACHING: Caching = Caching::Chat;
    type Peek = Conversation;
    type Started = Started<ChatOut>;

    fn peek(&self, body: &[u8]) -> Result<Conversation, ApiError> {
        Conversation::peek(body)
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, Conversation>,
    ) -> Result<Started<ChatOut>, Failure> {
        let deployment = &a.candidate.deployment;
        let wire = deployment.provider.wire;
        let target = a.chat_target(a.peek.include_usage);
        let checked = checks_reasoning(wire, &a.candidate.model, a.body);
        let body = match checked {
            true => kept_reasoning::restore(&self.reasoning, self.owner(), a.body).await,
            false => None,
        };
        let body = body.unwrap_or_else(|| a.body.clone());
        let encoded = dialect::encode_chat(wire, &target, body).map_err(Failure::fatal)?;
        let sent = gateway
            .send_once(deployment, &encoded.url, encoded.body, a.span)
            .await?;
        let (candidate, prompt_bytes) = (a.candidate, a.body.len());
        match encoded.reply {
            ChatReply::Stream(chat) => {
                let keeping = checked.then(|| {
                    (
                        Gatherer::default(),
                        self.reasoning.clone(),
                        self.owner().clone(),
                    )
                });
                let out = ChatOut { chat, keeping };
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            ChatReply::Passthrough => {
                relay::start_passthrough(candidate, sent, usage_from_tail, prompt_bytes).await
            }
            ChatReply::Translate(wire, ctx) => {
                let raw = whole::read_whole(sent).await?;
                let (json, usage) =
                    dialect::chat_reply(wire, &raw, &ctx).map_err(Failure::from_reply)?;
                if checked && kept_reasoning::may_carry(&json) {
                    kept_reasoning::keep_reply(&self.reasoning, self.owner(), &json);
                }
                Ok(Started::Complete(json, usage))
            }
        }
    }

    fn relay(
        &self,
        started: Started<ChatOut>,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &Conversation,
    ) -> Response {
        started.into_response(recording, slot, &candidate.model, peek.stream)
    }
}
