use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::{ApiError, ErrorResponse};
use crate::gateway::HEADER_REQUEST_ID;
use crate::governance::{Admission, Caller};
use crate::shared::RequestRecord;
use crate::state::AppState;

/// Admits a `/v1` request (key expiry and budget, rate limits) and adds the `x-ratelimit-*` headers.
pub async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    let governance = &state.governance;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
    let ip = governance.client_ip(peer, request.headers());
    match governance.admit(&caller, ip).await {
        Ok(admission) => {
            let admission = Arc::new(admission);
            request.extensions_mut().insert(admission.clone());
            let mut response = next.run(request).await;
            admission.write_headers(response.headers_mut());
            response
        }
        Err(rejection) => {
            // Refused requests show in the stats and the request log like any other.
            let request_id = state.gateway().request_id(request.headers());
            state.stats.record(RequestRecord {
                time_ms: crate::clock::now_ms(),
                request_id: request_id.clone(),
                client_key: rejection.key_id.clone(),
                status: rejection.error.status.as_u16(),
                error_class: Some(rejection.error.class().to_string()),
                ..Default::default()
            });
            let mut response = rejection.into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(HEADER_REQUEST_ID, v);
            }
            response
        }
    }
}

/// The body, or the reason it could not be read (413 when over the size limit) in OpenAI's shape.
pub(super) fn body_or_error(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if timed_out(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "The request body did not arrive in time.",
            )
            .with_code("request_timeout")
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request_error",
                format!("The request body is larger than the limit of {limit} bytes."),
            )
            .with_code("request_too_large")
        } else {
            ApiError::new(
                status,
                "invalid_request_error",
                format!("Cannot read the request body: {}", rejection.body_text()),
            )
        }
    })
}

/// Whether reading the body stopped at the body timeout (`server.client_body_timeout`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "chat",
    request_body = crate::providers::openai_types::ChatRequest,
    responses(
        (status = 200, description = "A completion, or with `stream: true` server-sent `chat.completion.chunk` events ending with `data: [DONE]`", body = crate::providers::openai_types::ChatCompletion, content_type = "application/json"),
        (status = 400, description = "Invalid request", body = ErrorResponse),
        (status = 404, description = "Unknown model", body = ErrorResponse),
        (status = 413, description = "Body over the limit", body = ErrorResponse),
        (status = 502, description = "Upstream failure", body = ErrorResponse),
        (status = 504, description = "Upstream timeout", body = ErrorResponse),
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body, state.config().server.max_body_bytes) {
        Ok(body) => {
            state
                .gateway()
                .chat(
                    state.reasoning.clone(),
                    &headers,
                    body,
                    admission.map(|a| a.0),
                )
                .await
        }
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "embeddings",
    request_body = crate::providers::openai_types::EmbeddingRequest,
    responses(
        (status = 200, body = crate::providers::openai_types::EmbeddingResponse),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body, state.config().server.max_body_bytes) {
        Ok(body) => {
            state
                .gateway()
                .embeddings(&headers, body, admission.map(|a| a.0))
                .await
        }
        Err(e) => e.into_response(),
    }
}
