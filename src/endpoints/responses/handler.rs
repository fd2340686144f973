//! OpenAI's Responses API on `/v1/responses` (what Codex speaks): create, and read or delete a
//! kept response. Every caller sees only the responses it created ([`Owner`]); the master key sees
//! all. An expired virtual key reads and deletes nothing.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use serde_json::json;

use crate::endpoints::responses::endpoint::not_found;
use crate::error::ApiError;
use crate::governance::owner::Owner;
use crate::governance::{Admission, Caller};
use crate::state::AppState;

/// Whose responses the caller may read, or why it may read none (an expired key).
fn owner_of(caller: Option<Extension<Caller>>) -> Result<Owner, ApiError> {
    let caller = caller.map_or(Caller::Anonymous, |c| c.0);
    if let Caller::Key(key) = &caller
        && key.is_expired(crate::clock::now_s())
    {
        return Err(crate::governance::expired(key));
    }
    Ok(Owner::of(&caller))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let owner = Owner::of(&caller.map_or(Caller::Anonymous, |c| c.0));
    let store = state.responses.clone();
    let responses = |_: &Option<Arc<Admission>>| super::endpoint::Responses::new(store, owner);
    crate::endpoints::serve(&state, admission.map(|a| a.0), &headers, body, responses).await
}

/// `GET /v1/responses/{id}`: a kept response, as the client received it.
pub async fn get_one(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let owner = match owner_of(caller) {
        Ok(owner) => owner,
        Err(e) => return e.into_response(),
    };
    match state.responses.get(&id, &owner).await {
        Some(stored) => Json(&stored.response).into_response(),
        None => not_found(&id).into_response(),
    }
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    let owner = match owner_of(caller) {
        Ok(owner) => owner,
        Err(e) => return e.into_response(),
    };
    if state.responses.delete(&id, &owner).await {
        Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
    } else {
        not_found(&id).into_response()
    }
}
