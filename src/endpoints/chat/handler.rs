//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ErrorResponse;
use crate::governance::Admission;
use crate::state::AppState;

use super::super::body_or_error;

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
            let admission = admission.map(|a| a.0);
            let chat = super::Chat {
                reasoning: state.reasoning.clone(),
                admission: admission.clone(),
            };
            state
                .gateway()
                .serve(&chat, &headers, body, admission)
                .await
        }
        Err(e) => e.into_response(),
    }
}
