//! `POST /v1/embeddings`: OpenAI-dialect providers pass through; Gemini is translated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::chat::{error_reply, parse_json};
use super::failover::Failover;
use super::record::{Recording, estimate_tokens};
use super::upstream::{Failure, read_capped};
use super::{Gateway, reply_headers};
use crate::error::ApiError;
use crate::governance::Admission;
use crate::providers::gemini;
use crate::providers::openai_compatible::{self, usage_from_tail};
use crate::providers::openai_types::{EmbeddingRequest, Usage};
use crate::providers::spec::Wire;
use crate::routing::Candidate;

const MAX_EMBEDDINGS_REPLY: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
struct EmbeddingPeek {
    model: String,
    #[allow(dead_code)]
    input: IgnoredAny,
}

/// A translated embeddings reply and its prompt tokens (estimated when the provider reports none).
struct Embedded {
    json: Vec<u8>,
    prompt_tokens: Option<u64>,
    estimated: bool,
}

impl Gateway {
    pub async fn embeddings(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Response {
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
        if let Err(e) = self.record_model(&mut recording, &peek.model) {
            recording.fail(&e);
            return error_reply(e, &request_id, None, 0, started.elapsed());
        }
        recording.span = crate::telemetry::request_span("embeddings", &peek.model, headers);
        if let Err(e) = recording.admit(admission) {
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
        let prompt_bytes = body.len();
        let mut upstream_time = Duration::ZERO;
        let mut failover =
            Failover::new(&plan, &self.routing.config, estimate_tokens(prompt_bytes));
        let mut outcome = None;
        while let Some((candidate, _slot)) = failover.next().await {
            let waiting = Instant::now();
            let deployment = &candidate.deployment;
            let span = crate::telemetry::attempt_span(
                &recording.span,
                "embeddings",
                &candidate.model,
                &deployment.provider.name,
                &deployment.id,
            );
            let result = self
                .embed_once(candidate, &peek.model, body.clone(), &span)
                .await;
            upstream_time += waiting.elapsed();
            match result {
                Ok(embedded) => {
                    failover.succeeded(candidate);
                    outcome = Some((embedded, candidate));
                    break;
                }
                Err(failure) => failover.failed(candidate, failure),
            }
        }
        let attempts = failover.attempts;
        let outcome = outcome.ok_or_else(|| failover.exhausted());
        match outcome {
            Ok((embedded, candidate)) => {
                let deployment = &candidate.deployment;
                recording.unlisted = !self.is_listed(&peek.model, true);
                recording.record.provider = deployment.provider.name.clone();
                recording.record.deployment = deployment.id.clone();
                recording.record.attempts = attempts;
                let model = candidate.model.clone();
                let Embedded {
                    json,
                    prompt_tokens,
                    estimated,
                } = embedded;
                let usage = prompt_tokens
                    .filter(|_| !estimated)
                    .map(|p| Usage::new(p, 0, 0, 0));
                let estimate = prompt_tokens
                    .filter(|_| estimated)
                    .unwrap_or_else(|| estimate_tokens(prompt_bytes));
                recording.succeed(usage, || (estimate, 0), &model);
                let mut response = Response::new(Body::from(json));
                let h = response.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                let overhead = started.elapsed().saturating_sub(upstream_time);
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

    async fn embed_once(
        &self,
        candidate: &Candidate,
        client_model: &str,
        body: Bytes,
        span: &tracing::Span,
    ) -> Result<Embedded, Failure> {
        let deployment = &candidate.deployment;
        let provider = &deployment.provider;
        let model = &candidate.model;
        let mut gemini_request = None;
        let (url, upstream_body) = match provider.wire {
            Wire::OpenAi(_) => {
                let renamed = (model != client_model).then_some(model.as_str());
                let body =
                    openai_compatible::embeddings_body(body, renamed).map_err(Failure::fatal)?;
                (
                    openai_compatible::embeddings_url(&deployment.base_url),
                    body,
                )
            }
            Wire::Gemini => {
                let request: EmbeddingRequest = parse_json(&body).map_err(Failure::fatal)?;
                let encoded =
                    gemini::embeddings_request(&request, model).map_err(Failure::fatal)?;
                gemini_request = Some(request);
                (
                    gemini::embeddings_url(&deployment.base_url, model),
                    Bytes::from(encoded),
                )
            }
            Wire::Anthropic => {
                let e = ApiError::invalid_request(format!(
                    "{} has no embeddings API",
                    provider.display_name
                ))
                .with_param("model");
                return Err(Failure::fatal(e));
            }
        };
        let sent = self
            .send_once(deployment, &url, upstream_body, span)
            .await?;
        let raw = read_capped(sent.response, MAX_EMBEDDINGS_REPLY, provider.timeouts.idle).await;
        match provider.wire {
            Wire::Gemini => {
                match gemini::embeddings_response(&raw, model).map_err(Failure::from_reply)? {
                    // Gemini reports no token count: the reply carries the gateway's estimate.
                    (json, _, true) => {
                        let tokens = gemini_request
                            .as_ref()
                            .map_or(0, gemini::estimate_embedding_tokens);
                        Ok(Embedded {
                            json: with_estimated_usage(json, tokens),
                            prompt_tokens: Some(tokens),
                            estimated: true,
                        })
                    }
                    (json, usage, false) => Ok(Embedded {
                        json,
                        prompt_tokens: Some(usage.prompt_tokens),
                        estimated: false,
                    }),
                }
            }
            _ => {
                if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                    let e = ApiError::bad_gateway(format!(
                        "{}: the upstream reply is not JSON",
                        provider.display_name
                    ));
                    return Err(Failure::from_reply(e));
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
