//! Gemini's API at the gateway's root: `/v1beta/models/{model}:{method}` and the same under `/v1`,
//! the model list, the caller's key from `x-goog-api-key` or `?key=`, and every error of these
//! routes in Google's shape.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::count_tokens::CountTokens;
use super::embed::Embed;
use super::endpoint::Generate;
use super::stream::Framing;
use super::{Method, error_json, split_call};
use crate::endpoints::serve;
use crate::error::ApiError;
use crate::governance::{Admission, Caller};
use crate::state::AppState;

/// The header Google's clients send their key in.
pub const KEY_HEADER: &str = "x-goog-api-key";

/// Whether a path is one of Gemini's routes: `/v1beta/…`, or a model method under `/v1/models/`.
pub fn is_gemini_path(path: &str) -> bool {
    path.starts_with("/v1beta/")
        || path
            .strip_prefix("/v1/models/")
            .is_some_and(|rest| rest.contains(':'))
}

/// `POST /v1beta/models/{model}:{method}` (and under `/v1/models/`).
pub async fn call(
    State(state): State<AppState>,
    admission: Option<Extension<Arc<Admission>>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some((model, method)) = split_call(&segment) else {
        return not_found(&segment);
    };
    let Some(method) = Method::parse(method) else {
        return not_found(&segment);
    };
    let model = model.to_string();
    let admission = admission.map(|a| a.0);
    match method {
        Method::Generate | Method::StreamGenerate => {
            let framing = (method == Method::StreamGenerate).then(|| {
                if alt_is_sse(query.as_deref()) {
                    Framing::Sse
                } else {
                    Framing::Array
                }
            });
            let generate = |_: &Option<Arc<Admission>>| Generate { model, framing };
            serve(&state, admission, &headers, body, generate).await
        }
        Method::CountTokens => {
            let count = |_: &Option<Arc<Admission>>| CountTokens { model };
            serve(&state, admission, &headers, body, count).await
        }
        Method::Embed | Method::BatchEmbed => {
            let batch = method == Method::BatchEmbed;
            let embed = |_: &Option<Arc<Admission>>| Embed { model, batch };
            serve(&state, admission, &headers, body, embed).await
        }
    }
}

/// `GET /v1beta/models`.
pub async fn list(State(state): State<AppState>, caller: Option<Extension<Caller>>) -> Response {
    super::models::list(&state, caller.as_ref().map(|c| &c.0))
}

/// `GET /v1beta/models/{model}`.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    if id.contains(':') {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "Gemini's model methods take POST.",
        )
        .into_response();
    }
    super::models::get_one(&state, caller.as_ref().map(|c| &c.0), &id)
}

fn not_found(segment: &str) -> Response {
    let segment: String = segment.chars().take(200).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!(
            "`models/{}` names no method of Gemini's API the gateway serves (generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents).",
            segment.escape_default()
        ),
    )
    .into_response()
}

fn alt_is_sse(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.eq_ignore_ascii_case("alt=sse"))
}

/// Google's clients may send their key as `?key=`: it moves to `x-goog-api-key` (unless that is
/// set) and leaves the URL, so that no log or trace ever holds it.
pub fn key_from_query(request: &mut Request) {
    let Some(query) = request.uri().query() else {
        return;
    };
    if !query.split('&').any(|pair| pair.starts_with("key=")) {
        return;
    }
    let mut key = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("key=") {
            Some(value) => {
                key.get_or_insert(value);
                false
            }
            None => true,
        })
        .collect();
    let key = key.map(|k| {
        percent_encoding::percent_decode_str(k)
            .decode_utf8_lossy()
            .into_owned()
    });
    let path = request.uri().path();
    let path_and_query = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    if let Some(Ok(mut value)) = key.map(|k| HeaderValue::from_str(&k))
        && !request.headers().contains_key(KEY_HEADER)
    {
        value.set_sensitive(true);
        request.headers_mut().insert(KEY_HEADER, value);
    }
}

/// On Gemini's routes: errors (from any layer: authentication, limits, the gateway, an upstream)
/// in Google's shape, `{"error":{"code","message","status"}}`, headers kept.
pub async fn google_shape(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = crate::providers::openai_compatible::error_message(&bytes).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error_json(status, &message)))
}
