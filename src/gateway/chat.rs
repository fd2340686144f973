//! `POST /v1/chat/completions`: the whole journey of one chat request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::failover::Failover;
use super::record::{Recording, estimate_tokens};
use super::relay::{PassthroughBody, SseRelay, Translator, Upstream};
use super::upstream::{Failure, Sent};
use super::{Gateway, reply_headers};
use crate::error::ApiError;
use crate::governance::Admission;
use crate::providers::openai_compatible::{self, Edits, PassthroughStream};
use crate::providers::openai_types::{ChatRequest, StreamOptions, Usage};
use crate::providers::spec::Wire;
use crate::providers::translate::ReplyContext;
use crate::providers::{anthropic, gemini};
use crate::routing::Candidate;

/// Largest non-stream reply the gateway translates (Gemini, Anthropic); OpenAI-dialect replies are streamed through.
const MAX_TRANSLATED_REPLY: usize = 32 * 1024 * 1024;

/// The few fields the gateway reads from every chat request; the rest stays untouched.
#[derive(Deserialize)]
struct ChatPeek<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    messages: Vec<IgnoredAny>,
}

/// Parses JSON into `T`, naming the offending field in the error.
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let param = if inner.is_syntax() || inner.is_eof() {
            None
        } else if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            Some(if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            })
        } else if path != "." {
            Some(path)
        } else {
            None
        };
        let text = match (&param, inner.is_syntax() || inner.is_eof()) {
            (_, true) => format!("The request body is not valid JSON: {message}"),
            (Some(p), false) => format!("Invalid request: `{p}`: {message}"),
            (None, false) => format!("Invalid request: {message}"),
        };
        let err = ApiError::invalid_request(text);
        match param {
            Some(p) => err.with_param(p),
            None => err,
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid_request(format!("The request body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// A reply that has started: the first bytes are in hand, the rest follows.
enum Started {
    Stream(Box<SseRelay>, Bytes),
    Passthrough(Box<PassthroughBody>, Bytes),
    Complete(Vec<u8>, Usage),
}

impl Gateway {
    pub async fn chat(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Response {
        let request_id = self.request_id(headers);
        let started = Instant::now();
        let peek: ChatPeek = match parse_json(&body) {
            Ok(peek) => peek,
            Err(e) => return error_reply(e, &request_id, None, 0, started.elapsed()),
        };
        let stream = peek.stream.unwrap_or(false);
        let mut recording = Recording::start(
            self.stats.clone(),
            self.catalogue.clone(),
            &request_id,
            stream,
        );
        if let Err(e) = self.record_model(&mut recording, &peek.model) {
            recording.fail(&e);
            return error_reply(e, &request_id, None, 0, started.elapsed());
        }
        recording.span = crate::telemetry::request_span("chat", &peek.model, headers);
        if let Err(e) = recording.admit(admission) {
            recording.fail(&e);
            return error_reply(e, &request_id, None, 0, started.elapsed());
        }
        if peek.messages.is_empty() {
            let e = ApiError::invalid_request("`messages` must hold at least one message")
                .with_param("messages");
            recording.fail(&e);
            return error_reply(e, &request_id, None, 0, started.elapsed());
        }
        let plan = match self.plan(&peek.model) {
            Ok(plan) => plan,
            Err(e) => {
                recording.fail(&e);
                return error_reply(e, &request_id, None, 0, started.elapsed());
            }
        };
        let include_usage = peek
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let client_model = peek.model.to_string();
        drop(peek);
        let prompt_bytes = body.len();
        // Time spent waiting for upstreams, to tell the gateway's own time apart.
        let mut upstream_time = Duration::ZERO;

        let mut failover =
            Failover::new(&plan, &self.routing.config, estimate_tokens(prompt_bytes));
        let mut outcome = None;
        while let Some((candidate, slot)) = failover.next().await {
            let waiting = Instant::now();
            let deployment = &candidate.deployment;
            let span = crate::telemetry::attempt_span(
                &recording.span,
                "chat",
                &candidate.model,
                &deployment.provider.name,
                &deployment.id,
            );
            let result = match encode(
                candidate,
                body.clone(),
                stream,
                include_usage,
                &client_model,
                &request_id,
            ) {
                Ok(encoded) => match self
                    .send_once(deployment, &encoded.url, encoded.body, &span)
                    .await
                {
                    Ok(sent) => {
                        self.start_reply(candidate, sent, encoded.reply, prompt_bytes)
                            .await
                    }
                    Err(failure) => Err(failure),
                },
                Err(e) => Err(Failure::fatal(e)),
            };
            upstream_time += waiting.elapsed();
            match result {
                Ok(started_reply) => {
                    failover.succeeded(candidate);
                    outcome = Some((started_reply, candidate, slot));
                    break;
                }
                Err(failure) => failover.failed(candidate, failure),
            }
        }
        let attempts = failover.attempts;
        let outcome = outcome.ok_or_else(|| failover.exhausted());

        match outcome {
            Ok((started_reply, candidate, slot)) => {
                let deployment = &candidate.deployment;
                recording.unlisted = !self.is_listed(&client_model, true);
                let r = &mut recording.record;
                r.provider = deployment.provider.name.clone();
                r.deployment = deployment.id.clone();
                r.attempts = attempts;
                let upstream_model = candidate.model.clone();
                let overhead = started.elapsed().saturating_sub(upstream_time);
                crate::stats::metrics::observe_overhead(overhead.as_secs_f64());
                let (mut response, content_type) = match started_reply {
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
                        recording.succeed(Some(usage), || (0, 0), &upstream_model);
                        (Response::new(Body::from(json)), "application/json")
                    }
                };
                let h = response.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                if stream {
                    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
                }
                reply_headers(h, &request_id, Some(deployment), attempts, overhead);
                response
            }
            Err(exhausted) => {
                if let Some(d) = &exhausted.deployment {
                    recording.record.provider = d.provider.name.clone();
                    recording.record.deployment = d.id.clone();
                }
                recording.record.attempts = exhausted.attempts;
                recording.fail(&exhausted.error);
                let overhead = started.elapsed().saturating_sub(upstream_time);
                error_reply(
                    exhausted.error,
                    &request_id,
                    exhausted.deployment.as_deref(),
                    exhausted.attempts,
                    overhead,
                )
            }
        }
    }

    /// Reads the reply's first bytes (the whole reply when it must be translated as a whole), so
    /// that a failure before anything reached the client can still fail over.
    async fn start_reply(
        &self,
        candidate: &Candidate,
        sent: Sent,
        reply: Reply,
        prompt_bytes: usize,
    ) -> Result<Started, Failure> {
        let upstream: Upstream = Box::pin(sent.response.bytes_stream());
        let provider = &candidate.deployment.provider;
        match reply {
            Reply::Stream(translator) => {
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
            Reply::Passthrough => {
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
            Reply::Translate(ctx) => {
                let raw = read_all(upstream, MAX_TRANSLATED_REPLY, provider.timeouts.idle)
                    .await
                    .map_err(Failure::from_reply)?;
                let translated = match provider.wire {
                    Wire::Gemini => gemini::chat_response(&raw, &ctx),
                    Wire::Anthropic => anthropic::chat_response(&raw, &ctx),
                    Wire::OpenAi(_) => unreachable!("OpenAI-dialect replies pass through"),
                };
                let (json, usage) = translated.map_err(Failure::from_reply)?;
                Ok(Started::Complete(json, usage))
            }
        }
    }
}

struct Encoded {
    url: String,
    body: Bytes,
    reply: Reply,
}

enum Reply {
    Stream(Translator),
    Passthrough,
    Translate(ReplyContext),
}

/// The upstream request for the candidate's wire format, and how its reply will be handled.
fn encode(
    candidate: &Candidate,
    body: Bytes,
    stream: bool,
    include_usage: bool,
    client_model: &str,
    request_id: &str,
) -> Result<Encoded, ApiError> {
    let provider = &candidate.deployment.provider;
    let base_url = &candidate.deployment.base_url;
    let model = &candidate.model;
    match provider.wire {
        Wire::OpenAi(quirks) => {
            let edits = Edits {
                model: (model != client_model).then_some(model.as_str()),
                add_include_usage: stream && !include_usage,
                quirks,
            };
            let reply = if stream {
                Reply::Stream(Translator::OpenAi(PassthroughStream::new(include_usage)))
            } else {
                Reply::Passthrough
            };
            let body = openai_compatible::chat_body(body, &edits)?;
            Ok(Encoded {
                url: openai_compatible::chat_url(base_url),
                body,
                reply,
            })
        }
        Wire::Gemini | Wire::Anthropic => {
            let mut request: ChatRequest = parse_json(&body)?;
            request.model = model.clone();
            let ctx = ReplyContext {
                id: format!("chatcmpl-{request_id}"),
                created: crate::stats::now_ms() / 1000,
                model: model.clone(),
                include_usage,
            };
            let (url, body, reply) = if matches!(provider.wire, Wire::Gemini) {
                let reply = if stream {
                    Reply::Stream(Translator::Gemini(gemini::ChatStream::new(ctx)))
                } else {
                    Reply::Translate(ctx)
                };
                (
                    gemini::chat_url(base_url, model, stream),
                    gemini::chat_request(&request)?,
                    reply,
                )
            } else {
                let reply = if stream {
                    Reply::Stream(Translator::Anthropic(anthropic::ChatStream::new(ctx)))
                } else {
                    Reply::Translate(ctx)
                };
                (
                    anthropic::chat_url(base_url),
                    anthropic::chat_request(&request)?,
                    reply,
                )
            };
            Ok(Encoded {
                url,
                body: Bytes::from(body),
                reply,
            })
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

pub fn error_reply(
    e: ApiError,
    request_id: &str,
    deployment: Option<&crate::routing::Deployment>,
    attempts: u32,
    overhead: Duration,
) -> Response {
    let mut response = e.into_response();
    reply_headers(
        response.headers_mut(),
        request_id,
        deployment,
        attempts,
        overhead,
    );
    response
}
