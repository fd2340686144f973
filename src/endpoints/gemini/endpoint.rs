//! `generateContent` and `streamGenerateContent`: Gemini's API relayed to any provider. To Gemini
//! the client's bytes pass through to the deployment's model; to the others the request goes as
//! chat completions and the reply comes back as Gemini's. The journey itself is
//! [`crate::gateway::journey`].

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::stream::{Framing, GeminiOut, GeminiStream, PassthroughStream};
use crate::error::{ApiError, parse_json};
use crate::gateway::Gateway;
use crate::gateway::journey::{Attempt, Endpoint, Peek};
use crate::gateway::record::Recording;
use crate::gateway::relay::{self, ChatTo, Started};
use crate::gateway::upstream::Failure;
use crate::gateway::whole;
use crate::providers::dialect::{self, ChatReply, InboundReply};
use crate::providers::gemini;
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// A generation request, peeked: the model and the mode come from the URL.
pub struct GenerationPeek {
    model: String,
    framing: Option<Framing>,
}

impl GenerationPeek {
    /// A request with a whole reply (counts, embeddings) for `model`.
    pub fn whole(model: &str) -> GenerationPeek {
        GenerationPeek {
            model: model.to_string(),
            framing: None,
        }
    }
}

impl Peek for GenerationPeek {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        self.framing.is_some()
    }

    fn include_usage(&self) -> bool {
        true
    }

    fn cache_mode(&self) -> &'static str {
        match self.framing {
            None => "",
            Some(Framing::Sse) => "sse",
            Some(Framing::Array) => "array",
        }
    }
}

/// The fields the gateway checks before a request goes anywhere.
#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    contents: Option<Vec<IgnoredAny>>,
}

/// `generateContent` (no framing) or `streamGenerateContent` (framed) for the model in the URL.
pub struct Generate {
    pub model: String,
    pub framing: Option<Framing>,
}

impl Endpoint for Generate {
    const NAME: &'static str = "gemini";
    type Peek = GenerationPeek;
    type Started = Started<GeminiOut>;

    fn peek(&self, body: &[u8]) -> Result<GenerationPeek, ApiError> {
        let fields: Fields = parse_json(body)?;
        if fields.contents.is_none_or(|c| c.is_empty()) {
            return Err(
                ApiError::invalid_request("`contents` must hold at least one content")
                    .with_param("contents"),
            );
        }
        Ok(GenerationPeek {
            model: self.model.clone(),
            framing: self.framing,
        })
    }

    async fn attempt(
        &self,
        gateway: &Gateway,
        a: Attempt<'_, GenerationPeek>,
    ) -> Result<Started<GeminiOut>, Failure> {
        let deployment = &a.candidate.deployment;
        let target = a.chat_target(true);
        let stream = self.framing.is_some();
        let method = if stream {
            super::Method::StreamGenerate
        } else {
            super::Method::Generate
        };
        let chat = || super::request::chat_body(&parse_json(a.body)?, target.model, stream);
        // A Gemini stream is asked for as server-sent events, whatever the client's framing.
        let encoded = dialect::encode_gemini(
            deployment.provider.wire,
            &target,
            method.name(),
            stream,
            a.body.clone(),
            chat,
        )
        .map_err(Failure::fatal)?;
        let sent = gateway
            .send_with(
                deployment,
                &encoded.url,
                encoded.body,
                HeaderMap::new(),
                a.span,
            )
            .await?;
        let (candidate, prompt_bytes) = (a.candidate, a.body.len());
        let id = a.request_id.to_string();
        match encoded.reply {
            InboundReply::Passthrough if let Some(framing) = self.framing => {
                let out = GeminiOut::Passthrough(PassthroughStream::new(framing));
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            InboundReply::Passthrough => {
                relay::start_passthrough(candidate, sent, gemini::usage_of, prompt_bytes).await
            }
            InboundReply::Chat(ChatReply::Stream(chat)) => {
                let framing = self.framing.unwrap_or(Framing::Sse);
                let gemini = GeminiStream::new(id, candidate.model.clone(), framing);
                let out = GeminiOut::FromChat(Box::new(ChatTo::new(chat, gemini)));
                relay::start_stream(candidate, sent, out, prompt_bytes).await
            }
            InboundReply::Chat(whole) => {
                let chat = whole::read_whole_chat(sent, whole).await?;
                let (json, usage) = super::reply::generate_content(&chat, &id, &candidate.model)
                    .map_err(Failure::from_reply)?;
                Ok(Started::Complete(json, usage.unwrap_or_default()))
            }
        }
    }

    fn relay(
        &self,
        started: Started<GeminiOut>,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &GenerationPeek,
    ) -> Response {
        let mut response = started.into_response(recording, slot, &candidate.model, peek.stream());
        if peek.framing == Some(Framing::Array) {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        response
    }
}
