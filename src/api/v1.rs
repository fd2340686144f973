use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::error::ApiError;
use crate::state::AppState;

/// The body, or the reason it could not be read (413 when over the size limit) in OpenAI's shape.
fn body_or_error(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, Response> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let err = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "invalid_request_error", format!("The request body is larger than the limit of {limit} bytes."))
                .with_code("request_too_large")
        } else {
            ApiError::new(status, "invalid_request_error", format!("Cannot read the request body: {}", rejection.body_text()))
        };
        err.into_response()
    })
}

pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match body_or_error(body, state.config.server.max_body_bytes) {
        Ok(body) => state.gateway.chat(&headers, body).await,
        Err(response) => response,
    }
}

pub async fn embeddings(State(state): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    match body_or_error(body, state.config.server.max_body_bytes) {
        Ok(body) => state.gateway.embeddings(&headers, body).await,
        Err(response) => response,
    }
}
