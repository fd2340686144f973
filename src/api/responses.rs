//! OpenAI's Responses API on `/v1/responses` (what Codex speaks): create, and read or delete a
//! kept response. A virtual key sees only the responses it created; the master key sees all.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use serde_json::json;

use crate::gateway::responses::not_found;
use crate::governance::{Admission, Caller};
use crate::state::AppState;

/// The caller's virtual key, whose responses it may read; `None` for the master key (all).
fn key_of(caller: Option<Extension<Caller>>) -> Option<String> {
    match caller.map(|c| c.0) {
        Some(Caller::Key(key)) => Some(key.id.clone()),
        _ => None,
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match super::v1::body_or_error(body, state.config().server.max_body_bytes) {
        Ok(body) => {
            state
                .gateway()
                .responses(
                    state.responses.clone(),
                    key_of(caller),
                    &headers,
                    body,
                    admission.map(|a| a.0),
                )
                .await
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/responses/{id}`: a kept response, as the client received it.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let key = key_of(caller);
    match state.responses.get(&id).await {
        Some(stored) if stored.readable_by(key.as_deref()) => {
            Json(&stored.response).into_response()
        }
        _ => not_found(&id).into_response(),
    }
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let key = key_of(caller);
    match state.responses.get(&id).await {
        Some(stored) if stored.readable_by(key.as_deref()) => {
            state.responses.delete(&id).await;
            Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
        }
        _ => not_found(&id).into_response(),
    }
}
