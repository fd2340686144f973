//! `POST /v1/embeddings`.

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
                .serve(&super::Embeddings, &headers, body, admission.map(|a| a.0))
                .await
        }
        Err(e) => e.into_response(),
    }
}
