//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use crate::error::ErrorResponse;
use crate::governance::Admission;
use crate::state::AppState;

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
    let reasoning = state.reasoning.clone();
    let chat = |admission: &Option<Arc<Admission>>| super::Chat {
        reasoning,
        admission: admission.clone(),
    };
    super::super::serve(&state, admission.map(|a| a.0), &headers, body, chat).await
}
