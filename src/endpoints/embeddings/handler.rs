//! `POST /v1/embeddings`.

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
    let embeddings = |_: &Option<Arc<Admission>>| super::Embeddings;
    super::super::serve(&state, admission.map(|a| a.0), &headers, body, embeddings).await
}
