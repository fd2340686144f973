use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::{ApiError, ErrorResponse};
use crate::state::AppState;

/// The body, or the reason it could not be read (413 when over the size limit) in OpenAI's shape.
fn body_or_error(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body, state.config.server.max_body_bytes) {
        Ok(body) => state.gateway.chat(&headers, body).await,
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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body, state.config.server.max_body_bytes) {
        Ok(body) => state.gateway.embeddings(&headers, body).await,
        Err(e) => e.into_response(),
    }
}
