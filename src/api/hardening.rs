//! Limits on what a request may carry, and who may call `/v1` from a browser.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::ServerConfig;
use crate::error::ApiError;

/// Most headers a request may carry (431 past it).
pub const MAX_HEADERS: usize = 100;

/// Refuses, before anything else looks at a request: a path with an empty, `.` or `..` segment
/// (400), a method other than GET or HEAD on the console's pages and static files (405), and too
/// many or too large headers (431), all in OpenAI's error shape.
pub fn screen(request: &Request, limit: usize) -> Option<Response> {
    if is_unnormalised(request.uri().path()) {
        return Some(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!(
                    "The path `{}` has an empty, `.` or `..` segment or a backslash; send it in its plain form.",
                    request.uri().path().escape_default()
                ),
            )
            .with_code("invalid_path")
            .into_response(),
        );
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) && !is_dynamic(request.uri().path())
    {
        return Some(method_not_allowed(request.method()));
    }
    let count = request.headers().len();
    if count > MAX_HEADERS {
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "invalid_request_error",
                format!("The request has {count} headers, over the limit of {MAX_HEADERS}."),
            )
            .with_code("headers_too_large")
            .into_response(),
        );
    }
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > limit {
        return Some(
            ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "invalid_request_error",
                format!("The request headers are {size} bytes, over the limit of {limit} bytes."),
            )
            .with_code("headers_too_large")
            .into_response(),
        );
    }
    None
}

/// A path another reader (the console's router, a proxy) may resolve to something else than it
/// reads here: `//`, a `.` or `..` segment (percent-encoded or not), or a backslash, which URL
/// parsers take for `/`. Access decisions are made on the path as it is, so such paths are refused.
fn is_unnormalised(path: &str) -> bool {
    let Some(body) = path.strip_prefix('/') else {
        return false;
    };
    if path.contains("//") || path.contains('\\') {
        return true;
    }
    let encoded = path.contains('%');
    if encoded && path.to_ascii_lowercase().contains("%5c") {
        return true;
    }
    body.split('/').any(|segment| {
        let decoded = if encoded && segment.contains('%') {
            std::borrow::Cow::Owned(segment.to_ascii_lowercase().replace("%2e", "."))
        } else {
            std::borrow::Cow::Borrowed(segment)
        };
        decoded == "." || decoded == ".."
    })
}

/// Paths answered by handlers rather than by the console's pages and static files.
fn is_dynamic(path: &str) -> bool {
    path.starts_with("/v1/")
        || path.starts_with("/v1beta/")
        || path.starts_with("/api/")
        || path.starts_with("/console/fn/")
        || path.starts_with("/health")
        || matches!(path, "/login" | "/logout" | "/metrics" | "/openapi.json")
}

/// The console's pages and static files answer GET and HEAD only.
fn method_not_allowed(method: &Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        format!("{method} is not allowed here; use GET or HEAD."),
    )
    .with_code("method_not_allowed")
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Error replies of the API routes in OpenAI's shape, whoever produced them (axum's extractors
/// and method routing answer in plain text or with an empty body).
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        format!("{}.", status.canonical_reason().unwrap_or("Error"))
    } else {
        text
    };
    let (kind, code) = match status.as_u16() {
        404 => ("invalid_request_error", "not_found"),
        405 => ("invalid_request_error", "method_not_allowed"),
        408 => ("invalid_request_error", "request_timeout"),
        413 => ("invalid_request_error", "request_too_large"),
        415 => ("invalid_request_error", "unsupported_media_type"),
        400..=499 => ("invalid_request_error", "invalid_request"),
        _ => ("server_error", "internal_error"),
    };
    let mut out = ApiError::new(status, kind, message)
        .with_code(code)
        .into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}

/// Any `/v1/…` or `/api/…` path the gateway does not serve.
pub async fn unknown_route(request: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "Unknown route: {} {}. See /openapi.json for the routes this gateway serves.",
            request.method(),
            request.uri().path().escape_default()
        ),
    )
    .with_code("unknown_route")
    .into_response()
}

/// CORS for `/v1` from the configured origins; `None` when there are none (same-origin only).
pub fn cors(config: &ServerConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins = if config.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            config
                .cors_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let exposed = [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-llm-bridge-provider",
        "x-llm-bridge-deployment",
        "x-llm-bridge-attempts",
        "x-llm-bridge-overhead-ms",
    ]
    .map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST])
            // SDKs send their own headers (`x-stainless-*`, `openai-*`); credentials travel in them.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(exposed)
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::is_unnormalised;

    #[test]
    fn paths_are_refused_unless_in_their_plain_form() {
        for path in [
            "/./keys",
            "/foo/../keys",
            "/x/%2e%2E/keys",
            "//keys",
            "/keys//",
            "/a\\keys",
            "/a%5Ckeys",
            "/keys/.",
            "/%2e",
        ] {
            assert!(is_unnormalised(path), "{path}");
        }
        for path in [
            "/",
            "/keys",
            "/keys/",
            "/v1/models/gpt-4o-mini",
            "/pkg/llm-bridge.js",
            "/v1/models/a.b",
            "/...",
            "*",
        ] {
            assert!(!is_unnormalised(path), "{path}");
        }
    }
}
