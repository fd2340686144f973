//! Sending one attempt upstream: authentication per wire format, the first-byte timeout, and
//! turning an upstream refusal into the client's error and a verdict for the router.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::providers::dialect;
use crate::routing::Deployment;

use super::Gateway;

const MAX_ERROR_BODY: usize = 64 * 1024;

pub struct Sent {
    pub response: reqwest::Response,
}

/// A failed attempt: the client's error if nothing else works, and what the router should know.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    /// Connect errors, timeouts, 429, 5xx, broken or unusable replies: another attempt may work.
    pub retryable: bool,
    /// The upstream's `Retry-After`: the deployment is skipped for that long.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn fatal(error: ApiError) -> Failure {
        Failure {
            error,
            retryable: false,
            retry_after: None,
        }
    }

    /// Errors raised while reading or translating a reply: transport trouble (502, 504) is worth
    /// another attempt, a refusal is not.
    pub fn from_reply(error: ApiError) -> Failure {
        let retryable = matches!(error.status.as_u16(), 429 | 500..=599);
        Failure {
            error,
            retryable,
            retry_after: None,
        }
    }
}

/// Upstream URLs, parsed once each: parsing one (and checking its host name) was a tenth of the
/// gateway's work per request. Bounded: past [`MAX_PARSED_URLS`] the cache starts over.
#[derive(Default)]
pub struct ParsedUrls(Mutex<HashMap<String, reqwest::Url>>);

const MAX_PARSED_URLS: usize = 1024;

impl ParsedUrls {
    /// `None` when the URL does not parse: the client then reports the error as it would.
    fn parsed(&self, url: &str) -> Option<reqwest::Url> {
        if let Some(parsed) = self.0.lock().expect("url cache").get(url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        let mut cache = self.0.lock().expect("url cache");
        if cache.len() >= MAX_PARSED_URLS {
            cache.clear();
        }
        cache.insert(url.to_string(), parsed.clone());
        Some(parsed)
    }
}

impl Gateway {
    /// One attempt against one deployment, up to the upstream's response headers.
    pub async fn send_once(
        &self,
        deployment: &Deployment,
        url: &str,
        body: Bytes,
        span: &tracing::Span,
    ) -> Result<Sent, Failure> {
        let no_headers = reqwest::header::HeaderMap::new();
        self.send_with(deployment, url, body, no_headers, span)
            .await
    }

    /// [`Gateway::send_once`] with headers of the client's passed on (they replace the gateway's
    /// own of the same name, such as `anthropic-version`).
    pub async fn send_with(
        &self,
        deployment: &Deployment,
        url: &str,
        body: Bytes,
        forwarded: reqwest::header::HeaderMap,
        span: &tracing::Span,
    ) -> Result<Sent, Failure> {
        let provider = &deployment.provider;
        let timeouts = provider.timeouts;
        let mut trace_headers = reqwest::header::HeaderMap::new();
        crate::telemetry::inject(span, &mut trace_headers);
        let builder = match self.urls.parsed(url) {
            Some(parsed) => self.http.post(parsed),
            None => self.http.post(url),
        };
        let request = self
            .authorised(deployment, builder)
            .header("content-type", "application/json")
            .headers(trace_headers)
            .headers(forwarded)
            .timeout(timeouts.total)
            .body(body);
        match tokio::time::timeout(timeouts.first_byte, request.send()).await {
            Err(_) => {
                let msg = format!(
                    "{}: no response within {:?}",
                    provider.display_name, timeouts.first_byte
                );
                Err(Failure {
                    error: ApiError::gateway_timeout(msg),
                    retryable: true,
                    retry_after: None,
                })
            }
            Ok(Err(e)) => {
                let msg = scrub(
                    &format!("{}: {}", provider.display_name, describe(&e)),
                    deployment,
                );
                let error = if e.is_timeout() {
                    ApiError::gateway_timeout(msg)
                } else {
                    ApiError::bad_gateway(msg)
                };
                Err(Failure {
                    error,
                    retryable: true,
                    retry_after: None,
                })
            }
            Ok(Ok(response)) if response.status().is_success() => {
                span.record("http.response.status_code", response.status().as_u16());
                Ok(Sent { response })
            }
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", status);
                let retry_after = retry_after(response.headers());
                let error = self.refusal(deployment, response).await;
                let retryable = status == 429 || status == 408 || status >= 500;
                Err(Failure {
                    error,
                    retryable,
                    retry_after: retry_after.filter(|_| retryable),
                })
            }
        }
    }

    fn authorised(
        &self,
        deployment: &Deployment,
        request: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        let Some(key) = deployment.api_key() else {
            return request;
        };
        dialect::authorise(deployment.provider.wire, key.expose(), request)
    }

    /// An upstream non-2xx answer as the client's error: 4xx keeps its status, 5xx becomes 502.
    async fn refusal(&self, deployment: &Deployment, response: reqwest::Response) -> ApiError {
        let provider = &deployment.provider;
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = read_capped(response, MAX_ERROR_BODY, provider.timeouts.idle).await;
        let message = dialect::error_message(provider.wire, &body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                text.chars().take(500).collect()
            }
        });
        let message = scrub(&message, deployment);
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

/// `Retry-After` in seconds (or `retry-after-ms`), as OpenAI, Anthropic and others send it.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    get("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .or_else(|| get("retry-after").map(Duration::from_secs_f64))
        .filter(|d| *d <= Duration::from_secs(3600))
}

/// Removes every API key of the deployment and its provider (whole, in part, or percent-encoded)
/// from a message the client or the logs will see.
pub fn scrub(message: &str, deployment: &Deployment) -> String {
    crate::config::secret::mask_secrets(
        message,
        deployment
            .provider
            .keys()
            .iter()
            .chain(deployment.api_key())
            .map(|k| k.expose()),
    )
}
