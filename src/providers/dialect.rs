//! The one place that dispatches on an upstream's wire format ([`Wire`]): where a request goes, how
//! it is authenticated and encoded, how the reply, its stream and its errors are read. A new API
//! family is a variant of [`Wire`], its own folder, and one arm in each function here; the gateway
//! does not change.

use axum::http::header::{AUTHORIZATION, InvalidHeaderValue};
use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;

use super::openai_compatible::{self, Edits, PassthroughStream, usage_from_tail};
use super::openai_types::{ChatRequest, EmbeddingRequest, Usage};
use super::spec::Wire;
use super::translate::ReplyContext;
use super::{anthropic, gemini};
use crate::error::{ApiError, parse_json};

/// The upstream request for one attempt, and how its reply is to be read.
pub struct Encoded<R> {
    pub url: String,
    pub body: Bytes,
    pub reply: R,
}

/// Adds the upstream's authentication to a request's headers (marked sensitive, so that they are
/// never printed); an error when the key cannot be a header value.
pub fn authorise(wire: Wire, key: &str, headers: &mut HeaderMap) -> Result<(), InvalidHeaderValue> {
    let secret = |value: &str| {
        let mut value = HeaderValue::from_str(value)?;
        value.set_sensitive(true);
        Ok::<_, InvalidHeaderValue>(value)
    };
    match wire {
        Wire::OpenAi(_) => {
            headers.insert(AUTHORIZATION, secret(&format!("Bearer {key}"))?);
        }
        Wire::Gemini => {
            headers.insert("x-goog-api-key", secret(key)?);
        }
        Wire::Anthropic => {
            headers.insert("x-api-key", secret(key)?);
            headers.insert(
                "anthropic-version",
                HeaderValue::from_static(anthropic::API_VERSION),
            );
        }
    }
    Ok(())
}

/// The message inside an upstream's error body, if it has the upstream's error shape.
pub fn error_message(wire: Wire, body: &[u8]) -> Option<String> {
    match wire {
        Wire::OpenAi(_) => openai_compatible::error_message(body),
        Wire::Gemini => gemini::error_message(body),
        Wire::Anthropic => anthropic::error_message(body),
    }
}

/// A chat request as the client sent it, and where it is going.
#[derive(Clone, Copy)]
pub struct ChatTarget<'a> {
    pub base_url: &'a str,
    /// The upstream's model name.
    pub model: &'a str,
    /// The model name in the client's body.
    pub client_model: &'a str,
    pub stream: bool,
    /// The client asked for `stream_options.include_usage`.
    pub include_usage: bool,
    pub request_id: &'a str,
}

/// How a chat reply reaches the client.
pub enum ChatReply {
    /// Server-sent events, translated event by event.
    Stream(ChatTranslator),
    /// An OpenAI-dialect JSON reply, forwarded as it arrives.
    Passthrough,
    /// A JSON reply in another dialect, translated once it is whole.
    Translate(Wire, ReplyContext),
}

/// Encodes a chat request (OpenAI's chat completions, as the client sent it) for `wire`.
pub fn encode_chat(
    wire: Wire,
    target: &ChatTarget,
    body: Bytes,
) -> Result<Encoded<ChatReply>, ApiError> {
    let (model, stream) = (target.model, target.stream);
    if let Wire::OpenAi(quirks) = wire {
        let edits = Edits {
            model: (model != target.client_model).then_some(model),
            add_include_usage: stream && !target.include_usage,
            quirks,
        };
        let reply = if stream {
            ChatReply::Stream(ChatTranslator::OpenAi(PassthroughStream::new(
                target.include_usage,
            )))
        } else {
            ChatReply::Passthrough
        };
        return Ok(Encoded {
            url: openai_compatible::chat_url(target.base_url),
            body: openai_compatible::chat_body(body, &edits)?,
            reply,
        });
    }
    let mut request: ChatRequest = parse_json(&body)?;
    request.model = model.to_string();
    let ctx = ReplyContext {
        id: format!("chatcmpl-{}", target.request_id),
        created: crate::clock::now_s(),
        model: model.to_string(),
        include_usage: target.include_usage,
    };
    let (url, body, translator) = match wire {
        Wire::Gemini => (
            gemini::chat_url(target.base_url, model, stream),
            gemini::chat_request(&request)?,
            ChatTranslator::Gemini(gemini::ChatStream::new(ctx.clone())),
        ),
        Wire::Anthropic => (
            anthropic::chat_url(target.base_url),
            anthropic::chat_request(&request)?,
            ChatTranslator::Anthropic(anthropic::ChatStream::new(ctx.clone())),
        ),
        Wire::OpenAi(_) => unreachable!("handled above"),
    };
    let reply = if stream {
        ChatReply::Stream(translator)
    } else {
        ChatReply::Translate(wire, ctx)
    };
    Ok(Encoded {
        url,
        body: Bytes::from(body),
        reply,
    })
}

/// A whole non-stream chat reply in `wire`'s dialect as OpenAI's JSON, and its usage.
pub fn chat_reply(
    wire: Wire,
    raw: &[u8],
    ctx: &ReplyContext,
) -> Result<(Vec<u8>, Usage), ApiError> {
    match wire {
        Wire::Gemini => gemini::chat_response(raw, ctx),
        Wire::Anthropic => anthropic::chat_response(raw, ctx),
        Wire::OpenAi(_) => unreachable!("OpenAI-dialect replies pass through"),
    }
}

/// Turns upstream SSE payloads into OpenAI chunk frames.
pub enum ChatTranslator {
    OpenAi(PassthroughStream),
    Gemini(gemini::ChatStream),
    Anthropic(anthropic::ChatStream),
}

impl ChatTranslator {
    /// One event's payload: appends the client's frames to `out`.
    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            ChatTranslator::OpenAi(t) => t.event(data, out),
            ChatTranslator::Gemini(t) => t.event(data, out),
            ChatTranslator::Anthropic(t) => t.event(data, out),
        }
    }

    /// The upstream's stream ended: appends what closes the client's stream (before `[DONE]`).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            ChatTranslator::OpenAi(t) => t.finish(out),
            ChatTranslator::Gemini(t) => t.finish(out),
            ChatTranslator::Anthropic(t) => t.finish(out),
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        match self {
            ChatTranslator::OpenAi(t) => t.usage(),
            ChatTranslator::Gemini(t) => t.usage(),
            ChatTranslator::Anthropic(t) => t.usage(),
        }
    }
}

/// How a reply to an inbound API other than chat completions (Messages, Responses) reaches the
/// client.
pub enum InboundReply {
    /// From an upstream that speaks the client's API: the reply passes through untouched.
    Passthrough,
    /// From any other upstream: a chat reply, turned into the client's API.
    Chat(ChatReply),
}

/// Encodes a Messages request (Anthropic's, as the client sent it) for `wire`: the client's bytes
/// (only the model renamed) to Anthropic, the chat completions body `chat` builds to everyone else.
pub fn encode_messages(
    wire: Wire,
    target: &ChatTarget,
    body: Bytes,
    chat: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Encoded<InboundReply>, ApiError> {
    let passthrough = speaks_messages(wire).then(|| {
        let body = super::carried::for_anthropic(body)?;
        Ok((anthropic::chat_url(target.base_url), body))
    });
    encode_inbound(wire, target, passthrough, chat)
}

/// An inbound API's request: to an upstream that speaks that API, `passthrough` (its URL and the
/// client's bytes, cleaned) with only the model renamed; to everyone else, the chat completions
/// body `chat` builds.
fn encode_inbound(
    wire: Wire,
    target: &ChatTarget,
    passthrough: Option<Result<(String, Bytes), ApiError>>,
    chat: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Encoded<InboundReply>, ApiError> {
    if let Some(passthrough) = passthrough {
        let (url, body) = passthrough?;
        let renamed = (target.model != target.client_model).then_some(target.model);
        return Ok(Encoded {
            url,
            body: openai_compatible::with_model(body, renamed)?,
            reply: InboundReply::Passthrough,
        });
    }
    let chat_target = ChatTarget {
        include_usage: true,
        ..*target
    };
    let encoded = encode_chat(wire, &chat_target, Bytes::from(chat()?))?;
    Ok(Encoded {
        url: encoded.url,
        body: encoded.body,
        reply: InboundReply::Chat(encoded.reply),
    })
}

/// The upstream serves Anthropic's Messages API itself.
pub fn speaks_messages(wire: Wire) -> bool {
    matches!(wire, Wire::Anthropic)
}

/// Where an upstream that speaks the Messages API counts a request's tokens.
pub fn count_tokens_url(base_url: &str) -> String {
    format!("{}/count_tokens", anthropic::chat_url(base_url))
}

/// The upstream serves OpenAI's Responses API itself.
pub fn speaks_responses(wire: Wire) -> bool {
    matches!(wire, Wire::OpenAi(quirks) if quirks.speaks_responses)
}

/// Encodes a Responses request: the client's bytes (only the model renamed) to an upstream that
/// speaks the Responses API, the chat completions body `chat` builds to everyone else.
pub fn encode_responses(
    wire: Wire,
    target: &ChatTarget,
    body: Bytes,
    chat: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Encoded<InboundReply>, ApiError> {
    let passthrough = speaks_responses(wire).then(|| {
        let body = super::carried::for_openai(body)?;
        Ok((openai_compatible::responses_url(target.base_url), body))
    });
    encode_inbound(wire, target, passthrough, chat)
}

/// The upstream serves Gemini's own API (`generateContent` and its siblings).
pub fn speaks_gemini(wire: Wire) -> bool {
    matches!(wire, Wire::Gemini)
}

/// Encodes a request to one of Gemini's model methods (Gemini's API, as the client sent it): to
/// Gemini the client's bytes go through untouched to the deployment's model (the model is in the
/// URL, not the body); to everyone else, the chat completions body `chat` builds.
pub fn encode_gemini(
    wire: Wire,
    target: &ChatTarget,
    method: &str,
    sse: bool,
    body: Bytes,
    chat: impl FnOnce() -> Result<Vec<u8>, ApiError>,
) -> Result<Encoded<InboundReply>, ApiError> {
    if speaks_gemini(wire) {
        return Ok(Encoded {
            url: gemini::method_url(target.base_url, target.model, method, sse),
            body,
            reply: InboundReply::Passthrough,
        });
    }
    encode_inbound(wire, target, None, chat)
}

/// How an embeddings reply is read.
pub enum EmbeddingsReply {
    /// OpenAI's shape, forwarded as it is.
    OpenAi,
    /// Gemini's `batchEmbedContents`, translated; `estimate` is the prompt's tokens by the
    /// gateway's rule of thumb, for when Gemini reports none.
    Gemini { model: String, estimate: u64 },
}

/// An embeddings reply in OpenAI's shape and its prompt tokens (estimated when the provider
/// reports none).
pub struct Embedded {
    pub json: Vec<u8>,
    pub prompt_tokens: Option<u64>,
    pub estimated: bool,
}

/// Encodes an embeddings request (OpenAI's shape, as the client sent it) for `wire`.
pub fn encode_embeddings(
    wire: Wire,
    provider_name: &str,
    base_url: &str,
    model: &str,
    client_model: &str,
    body: Bytes,
) -> Result<Encoded<EmbeddingsReply>, ApiError> {
    match wire {
        Wire::OpenAi(_) => {
            let renamed = (model != client_model).then_some(model);
            Ok(Encoded {
                url: openai_compatible::embeddings_url(base_url),
                body: openai_compatible::with_model(body, renamed)?,
                reply: EmbeddingsReply::OpenAi,
            })
        }
        Wire::Gemini => {
            let request: EmbeddingRequest = parse_json(&body)?;
            let encoded = gemini::embeddings_request(&request, model)?;
            Ok(Encoded {
                url: gemini::embeddings_url(base_url, model),
                body: Bytes::from(encoded),
                reply: EmbeddingsReply::Gemini {
                    model: model.to_string(),
                    estimate: gemini::estimate_embedding_tokens(&request),
                },
            })
        }
        Wire::Anthropic => Err(ApiError::invalid_request(format!(
            "{provider_name} has no embeddings API"
        ))
        .with_param("model")),
    }
}

impl EmbeddingsReply {
    /// The whole upstream reply as OpenAI's embeddings JSON.
    pub fn decode(self, raw: Vec<u8>, provider_name: &str) -> Result<Embedded, ApiError> {
        match self {
            EmbeddingsReply::Gemini { model, estimate } => {
                match gemini::embeddings_response(&raw, &model)? {
                    // Gemini reports no token count: the reply carries the gateway's estimate.
                    (json, _, true) => Ok(Embedded {
                        json: with_estimated_usage(json, estimate),
                        prompt_tokens: Some(estimate),
                        estimated: true,
                    }),
                    (json, usage, false) => Ok(Embedded {
                        json,
                        prompt_tokens: Some(usage.prompt_tokens),
                        estimated: false,
                    }),
                }
            }
            EmbeddingsReply::OpenAi => {
                if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                    return Err(ApiError::bad_gateway(format!(
                        "{provider_name}: the upstream reply is not JSON"
                    )));
                }
                let prompt_tokens = usage_from_tail(&raw[raw.len().saturating_sub(4096)..])
                    .map(|u| u.prompt_tokens);
                Ok(Embedded {
                    json: raw,
                    prompt_tokens,
                    estimated: false,
                })
            }
        }
    }
}

fn with_estimated_usage(json: Vec<u8>, tokens: u64) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&json) {
        Ok(mut v) => {
            v["usage"] = serde_json::json!({"prompt_tokens": tokens, "total_tokens": tokens});
            serde_json::to_vec(&v).unwrap_or(json)
        }
        Err(_) => json,
    }
}
