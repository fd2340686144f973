//! Sending a request upstream: authentication per wire format, the first-byte timeout, one retry
//! on a 5xx or a failed connection, and turning an upstream refusal into the client's error.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::api::error::ApiError;
use crate::providers::spec::Wire;
use crate::providers::{Provider, anthropic, gemini, openai_compatible};

use super::Gateway;

const MAX_ATTEMPTS: u32 = 2;
const MAX_ERROR_BODY: usize = 64 * 1024;

pub struct Sent {
    pub response: reqwest::Response,
    pub attempts: u32,
    /// Time spent waiting for the upstream (all attempts), to tell the gateway's own time apart.
    pub upstream_wait: Duration,
}

impl Gateway {
    pub async fn send(
        &self,
        provider: &Provider,
        url: &str,
        body: Bytes,
    ) -> Result<Sent, (ApiError, u32)> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self
                .authorised(provider, self.http.post(url))
                .header("content-type", "application/json")
                .body(body.clone());
            let outcome = tokio::time::timeout(self.timeouts.first_byte, request.send()).await;
            let retry = attempt < MAX_ATTEMPTS;
            match outcome {
                Err(_) => {
                    let msg = format!(
                        "{}: no response within {:?}",
                        provider.display_name, self.timeouts.first_byte
                    );
                    return Err((ApiError::gateway_timeout(msg), attempt));
                }
                Ok(Err(e)) if retry && (e.is_connect() || e.is_request()) => continue,
                Ok(Err(e)) => {
                    let msg = scrub(
                        &format!("{}: {}", provider.display_name, describe(&e)),
                        provider,
                    );
                    let err = if e.is_timeout() {
                        ApiError::gateway_timeout(msg)
                    } else {
                        ApiError::bad_gateway(msg)
                    };
                    return Err((err, attempt));
                }
                Ok(Ok(response)) if response.status().is_success() => {
                    return Ok(Sent {
                        response,
                        attempts: attempt,
                        upstream_wait: started.elapsed(),
                    });
                }
                Ok(Ok(response)) if retry && response.status().is_server_error() => {
                    tracing::debug!(provider = %provider.name, status = %response.status(), "upstream 5xx, retrying once");
                    continue;
                }
                Ok(Ok(response)) => return Err((self.refusal(provider, response).await, attempt)),
            }
        }
    }

    fn authorised(
        &self,
        provider: &Provider,
        request: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        let Some(key) = provider.api_key() else {
            return request;
        };
        match provider.wire {
            Wire::OpenAi(_) => request.bearer_auth(key.expose()),
            Wire::Gemini => request.header("x-goog-api-key", key.expose()),
            Wire::Anthropic => request
                .header("x-api-key", key.expose())
                .header("anthropic-version", anthropic::API_VERSION),
        }
    }

    /// An upstream non-2xx answer as the client's error: 4xx keeps its status, 5xx becomes 502.
    async fn refusal(&self, provider: &Provider, response: reqwest::Response) -> ApiError {
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = read_capped(response, MAX_ERROR_BODY, self.timeouts.idle).await;
        let message = match provider.wire {
            Wire::OpenAi(_) => openai_compatible::error_message(&body),
            Wire::Gemini => gemini::error_message(&body),
            Wire::Anthropic => anthropic::error_message(&body),
        }
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text.chars().take(500).collect()
            }
        });
        let message = scrub(&message, provider);
        if status.is_client_error() {
            ApiError::upstream_rejected(&provider.display_name, status, &message)
        } else {
            ApiError::bad_gateway(format!(
                "{}: upstream returned {}: {message}",
                provider.display_name,
                status.as_u16()
            ))
        }
    }
}

/// Reads at most `cap` bytes of a body, giving up after `idle` of silence.
pub async fn read_capped(response: reqwest::Response, cap: usize, idle: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(idle, stream.next()).await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

/// A transport error without the noise, and never with a key.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Removes every API key of the provider from a message the client or the logs will see.
pub fn scrub(message: &str, provider: &Provider) -> String {
    let mut out = message.to_string();
    for key in provider.keys() {
        if key.expose().len() >= 4 {
            out = out.replace(key.expose(), crate::config::MASK);
        }
    }
    out
}
