//! Sending one attempt upstream: authentication per wire format, the first-byte timeout, and
//! turning an upstream refusal into the client's error and a verdict for the router.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use bytes::Bytes;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::providers::dialect;
use crate::routing::Deployment;

use super::Gateway;
use super::http_client::{self, Response};
use super::quiet::Quiet;
use super::relay::Upstream;

const MAX_ERROR_BODY: usize = 64 * 1024;

/// An upstream's reply whose headers have come; its body is bounded by the provider's idle and
/// total timeouts, the total counted from when the request was sent.
pub struct Sent {
    pub response: Response,
    started: Instant,
    idle: Duration,
    total: Duration,
}

impl Sent {
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The body, and the timer that bounds its silences and its whole.
    pub fn into_body(self) -> (Upstream, Quiet) {
        let quiet = Quiet::with_total(self.idle, self.started, self.total);
        (Box::pin(http_client::body_stream(self.response)), quiet)
    }
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
pub struct ParsedUrls(Mutex<HashMap<String, Uri>>);

const MAX_PARSED_URLS: usize = 1024;

impl ParsedUrls {
    /// `None` when the URL is not an absolute `http` or `https` URL. A URL is read as the WHATWG
    /// URL standard reads it (as the configuration was checked), then taken as a URI.
    fn parsed(&self, url: &str) -> Option<Uri> {
        if let Some(parsed) = self.0.lock().expect("url cache").get(url) {
            return Some(parsed.clone());
        }
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())?;
        let parsed: Uri = parsed.as_str().parse().ok()?;
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
        let no_headers = HeaderMap::new();
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
        forwarded: HeaderMap,
        span: &tracing::Span,
    ) -> Result<Sent, Failure> {
        let provider = &deployment.provider;
        let timeouts = provider.timeouts;
        let Some(uri) = self.urls.parsed(url) else {
            return Err(Failure::fatal(ApiError::bad_gateway(format!(
                "{}: the upstream URL is not an http(s) URL",
                provider.display_name
            ))));
        };
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = deployment.api_key()
            && dialect::authorise(provider.wire, key.expose(), &mut headers).is_err()
        {
            return Err(Failure::fatal(ApiError::bad_gateway(format!(
                "{}: the API key cannot be sent in a header",
                provider.display_name
            ))));
        }
        crate::telemetry::inject(span, &mut headers);
        // The client's headers replace the gateway's of the same name.
        headers.extend(forwarded);
        let started = Instant::now();
        let sent = self.http.post(uri, headers, body);
        match tokio::time::timeout(timeouts.first_byte.min(timeouts.total), sent).await {
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
                let error = if http_client::is_timeout(&e) {
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
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", status);
                let sent = Sent {
                    response,
                    started,
                    idle: timeouts.idle,
                    total: timeouts.total,
                };
                if sent.status().is_success() {
                    return Ok(sent);
                }
                let retry_after = retry_after(sent.response.headers());
                let error = self.refusal(deployment, sent).await;
                let retryable = status == 429 || status == 408 || status >= 500;
                Err(Failure {
                    error,
                    retryable,
                    retry_after: retry_after.filter(|_| retryable),
                })
            }
        }
    }

    /// An upstream non-2xx answer as the client's error: 4xx keeps its status, 5xx becomes 502.
    async fn refusal(&self, deployment: &Deployment, sent: Sent) -> ApiError {
        let provider = &deployment.provider;
        let status = sent.status();
        let body = read_capped(sent, MAX_ERROR_BODY).await;
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

/// Reads at most `cap` bytes of a body, giving up at the reply's idle or total timeout.
pub async fn read_capped(sent: Sent, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let (mut stream, mut quiet) = sent.into_body();
    while let Some(Some(Ok(chunk))) = quiet.next(&mut stream).await {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

/// A transport error without the noise, and never with a key.
fn describe(e: &http_client::Error) -> String {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if http_client::is_timeout(e) {
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
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
