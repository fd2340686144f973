//! `POST /v1/embeddings`: OpenAI-dialect providers pass through; Gemini is translated.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::chat::{error_reply, parse_json};
use super::record::{Recording, estimate_tokens};
use super::upstream::read_capped;
use super::{Gateway, reply_headers};
use crate::api::error::ApiError;
use crate::providers::gemini;
use crate::providers::openai_compatible::{self, usage_from_tail};
use crate::providers::openai_types::{EmbeddingRequest, Usage};
use crate::providers::spec::Wire;

const MAX_EMBEDDINGS_REPLY: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
struct EmbeddingPeek {
    model: String,
    #[allow(dead_code)]
    input: IgnoredAny,
}

impl Gateway {
    pub async fn embeddings(&self, headers: &HeaderMap, body: Bytes) -> Response {
        let request_id = self.request_id(headers);
        let started = Instant::now();
        let peek: EmbeddingPeek = match parse_json(&body) {
            Ok(p) => p,
            Err(e) => return error_reply(e, &request_id, None, 0, started.elapsed()),
        };
        let mut recording = Recording::start(
            self.stats.clone(),
            self.catalogue.clone(),
            &request_id,
            false,
        );
        recording.record.model = peek.model.clone();
        let route = match self.resolve(&peek.model) {
            Ok(r) => r,
            Err(e) => {
                recording.fail(&e);
                return error_reply(e, &request_id, None, 0, started.elapsed());
            }
        };
        let provider = route.provider.clone();
        recording.record.provider = provider.name.clone();
        recording.record.deployment = provider.name.clone();
        let prompt_bytes = body.len();
        let fail = |recording: Recording, e: ApiError, attempts: u32| {
            recording.fail(&e);
            error_reply(
                e,
                &request_id,
                Some(&provider.name),
                attempts,
                started.elapsed(),
            )
        };
        let mut gemini_request = None;
        let (url, upstream_body) = match provider.wire {
            Wire::OpenAi(_) => {
                let renamed = (peek.model != route.model).then_some(route.model.as_str());
                match openai_compatible::embeddings_body(body, renamed) {
                    Ok(b) => (openai_compatible::embeddings_url(&provider.base_url), b),
                    Err(e) => return fail(recording, e, 0),
                }
            }
            Wire::Gemini => {
                let request: EmbeddingRequest = match parse_json(&body) {
                    Ok(r) => r,
                    Err(e) => return fail(recording, e, 0),
                };
                let encoded = gemini::embeddings_request(&request, &route.model);
                gemini_request = Some(request);
                match encoded {
                    Ok(b) => (
                        gemini::embeddings_url(&provider.base_url, &route.model),
                        Bytes::from(b),
                    ),
                    Err(e) => return fail(recording, e, 0),
                }
            }
            Wire::Anthropic => {
                let e = ApiError::invalid_request(format!(
                    "{} has no embeddings API",
                    provider.display_name
                ))
                .with_param("model");
                return fail(recording, e, 0);
            }
        };
        let before_send = started.elapsed();
        let sent = match self.send(&provider, &url, upstream_body).await {
            Ok(s) => s,
            Err((e, attempts)) => return fail(recording, e, attempts),
        };
        let attempts = sent.attempts;
        recording.record.attempts = attempts;
        let raw = read_capped(sent.response, MAX_EMBEDDINGS_REPLY, self.timeouts.idle).await;
        let got_reply = Instant::now();
        let (json, usage, estimated): (Vec<u8>, Option<u64>, bool) = match provider.wire {
            Wire::Gemini => match gemini::embeddings_response(&raw, &route.model) {
                // Gemini reports no token count: the reply carries the gateway's estimate.
                Ok((json, _, true)) => {
                    let tokens = gemini_request
                        .as_ref()
                        .map_or(0, gemini::estimate_embedding_tokens);
                    (with_estimated_usage(json, tokens), Some(tokens), true)
                }
                Ok((json, usage, false)) => (json, Some(usage.prompt_tokens), false),
                Err(e) => return fail(recording, e, attempts),
            },
            _ => {
                if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                    let e = ApiError::bad_gateway(format!(
                        "{}: the upstream reply is not JSON",
                        provider.display_name
                    ));
                    return fail(recording, e, attempts);
                }
                let usage = usage_from_tail(&raw[raw.len().saturating_sub(4096)..])
                    .map(|u| u.prompt_tokens);
                (raw, usage, false)
            }
        };
        let usage_estimate = usage.filter(|_| estimated);
        let usage = usage.filter(|_| !estimated).map(|p| Usage::new(p, 0, 0, 0));
        let estimate = usage_estimate.unwrap_or_else(|| estimate_tokens(prompt_bytes));
        recording.succeed(usage, || (estimate, 0), &route.model);
        let mut response = Response::new(Body::from(json));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        reply_headers(
            h,
            &request_id,
            Some(&provider.name),
            attempts,
            before_send + got_reply.elapsed(),
        );
        response
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
