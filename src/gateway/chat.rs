//! `POST /v1/chat/completions`: the whole journey of one chat request.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::record::Recording;
use super::relay::{PassthroughBody, SseRelay, Translator};
use super::route::Route;
use super::{Gateway, reply_headers};
use crate::api::error::ApiError;
use crate::providers::openai_compatible::{self, Edits, PassthroughStream};
use crate::providers::openai_types::{ChatRequest, StreamOptions};
use crate::providers::spec::Wire;
use crate::providers::translate::ReplyContext;
use crate::providers::{anthropic, gemini};

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

impl Gateway {
    pub async fn chat(&self, headers: &HeaderMap, body: Bytes) -> Response {
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
        recording.record.model = peek.model.to_string();
        if peek.messages.is_empty() {
            let e = ApiError::invalid_request("`messages` must hold at least one message")
                .with_param("messages");
            recording.fail(&e);
            return error_reply(e, &request_id, None, 0, started.elapsed());
        }
        let route = match self.resolve(&peek.model) {
            Ok(route) => route,
            Err(e) => {
                recording.fail(&e);
                return error_reply(e, &request_id, None, 0, started.elapsed());
            }
        };
        recording.record.provider = route.provider.name.clone();
        recording.record.deployment = route.provider.name.clone();
        let include_usage = peek
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let model_changed = peek.model != route.model;
        drop(peek);

        let provider_name = route.provider.name.clone();
        let fail = |recording: Recording, e: ApiError, attempts: u32| {
            recording.fail(&e);
            error_reply(
                e,
                &request_id,
                Some(&provider_name),
                attempts,
                started.elapsed(),
            )
        };

        let encoded = match encode(
            &route,
            body,
            stream,
            include_usage,
            model_changed,
            &request_id,
        ) {
            Ok(encoded) => encoded,
            Err(e) => return fail(recording, e, 0),
        };
        let prompt_bytes = encoded.body.len();
        let before_send = started.elapsed();
        let sent = match self.send(&route.provider, &encoded.url, encoded.body).await {
            Ok(sent) => sent,
            Err((e, attempts)) => {
                recording.record.attempts = attempts;
                return fail(recording, e, attempts);
            }
        };
        recording.record.attempts = sent.attempts;
        let attempts = sent.attempts;
        let upstream: super::relay::Upstream = Box::pin(sent.response.bytes_stream());
        // The gateway's own time: before sending, plus after the upstream's first bytes arrived.
        let overhead = |upstream_done: Instant| before_send + upstream_done.elapsed();

        match encoded.reply {
            Reply::Stream(translator) => {
                let mut relay = SseRelay::new(
                    upstream,
                    translator,
                    self.timeouts.idle,
                    recording,
                    route.model.clone(),
                    prompt_bytes,
                );
                let first = relay.next().await;
                let first_wait = Instant::now();
                match first {
                    Ok(Some(first)) => {
                        let mut response = Response::new(relay.into_body(first));
                        let h = response.headers_mut();
                        h.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        );
                        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
                        reply_headers(
                            h,
                            &request_id,
                            Some(&provider_name),
                            attempts,
                            overhead(first_wait).min(started.elapsed()),
                        );
                        response
                    }
                    Ok(None) => unreachable!("a relay yields at least [DONE] before ending"),
                    Err(e) => {
                        relay.abandon(&e);
                        error_reply(
                            e,
                            &request_id,
                            Some(&provider_name),
                            attempts,
                            started.elapsed(),
                        )
                    }
                }
            }
            Reply::Passthrough => {
                let mut relay = PassthroughBody::new(
                    upstream,
                    self.timeouts.idle,
                    recording,
                    route.model.clone(),
                    prompt_bytes,
                );
                let first = relay.next().await;
                let first_wait = Instant::now();
                let first = match first {
                    Ok(Some(first))
                        if first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') =>
                    {
                        first
                    }
                    Ok(_) => {
                        let e = ApiError::bad_gateway(format!(
                            "{}: the upstream reply is not JSON",
                            route.provider.display_name
                        ));
                        relay.abandon(&e);
                        return error_reply(
                            e,
                            &request_id,
                            Some(&provider_name),
                            attempts,
                            started.elapsed(),
                        );
                    }
                    Err(e) => {
                        relay.abandon(&e);
                        return error_reply(
                            e,
                            &request_id,
                            Some(&provider_name),
                            attempts,
                            started.elapsed(),
                        );
                    }
                };
                let mut response = Response::new(relay.into_body(first));
                let h = response.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                reply_headers(
                    h,
                    &request_id,
                    Some(&provider_name),
                    attempts,
                    overhead(first_wait).min(started.elapsed()),
                );
                response
            }
            Reply::Translate(ctx) => {
                let raw = read_all(upstream, MAX_TRANSLATED_REPLY, self.timeouts.idle).await;
                let upstream_wait = Instant::now();
                let translated = raw.and_then(|raw| match route.provider.wire {
                    Wire::Gemini => gemini::chat_response(&raw, &ctx),
                    Wire::Anthropic => anthropic::chat_response(&raw, &ctx),
                    Wire::OpenAi(_) => unreachable!("OpenAI-dialect replies pass through"),
                });
                match translated {
                    Ok((json, usage)) => {
                        recording.succeed(Some(usage), || (0, 0), &route.model);
                        let mut response = Response::new(Body::from(json));
                        let h = response.headers_mut();
                        h.insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        );
                        reply_headers(
                            h,
                            &request_id,
                            Some(&provider_name),
                            attempts,
                            overhead(upstream_wait).min(started.elapsed()),
                        );
                        response
                    }
                    Err(e) => fail(recording, e, attempts),
                }
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

/// The upstream request for the route's wire format, and how its reply will be handled.
fn encode(
    route: &Route,
    body: Bytes,
    stream: bool,
    include_usage: bool,
    model_changed: bool,
    request_id: &str,
) -> Result<Encoded, ApiError> {
    let provider = &route.provider;
    match provider.wire {
        Wire::OpenAi(quirks) => {
            let edits = Edits {
                model: model_changed.then_some(route.model.as_str()),
                add_include_usage: stream && !include_usage,
                quirks,
            };
            let reply = if stream {
                Reply::Stream(Translator::OpenAi(PassthroughStream::new(include_usage)))
            } else {
                Reply::Passthrough
            };
            Ok(Encoded {
                url: openai_compatible::chat_url(&provider.base_url),
                body: openai_compatible::chat_body(body, &edits)?,
                reply,
            })
        }
        Wire::Gemini | Wire::Anthropic => {
            let mut request: ChatRequest = parse_json(&body)?;
            request.model = route.model.clone();
            let ctx = ReplyContext {
                id: format!("chatcmpl-{request_id}"),
                created: crate::stats::now_ms() / 1000,
                model: route.model.clone(),
                include_usage,
            };
            let (url, body) = if matches!(provider.wire, Wire::Gemini) {
                (
                    gemini::chat_url(&provider.base_url, &route.model, stream),
                    gemini::chat_request(&request)?,
                )
            } else {
                (
                    anthropic::chat_url(&provider.base_url),
                    anthropic::chat_request(&request)?,
                )
            };
            let reply = match (stream, provider.wire) {
                (true, Wire::Gemini) => {
                    Reply::Stream(Translator::Gemini(gemini::ChatStream::new(ctx)))
                }
                (true, _) => Reply::Stream(Translator::Anthropic(anthropic::ChatStream::new(ctx))),
                (false, _) => Reply::Translate(ctx),
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
    provider: Option<&str>,
    attempts: u32,
    overhead: Duration,
) -> Response {
    let mut response = e.into_response();
    reply_headers(
        response.headers_mut(),
        request_id,
        provider,
        attempts,
        overhead,
    );
    response
}
