//! `/api/keys`: create, list, rotate and revoke virtual keys (master key or console session only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::domain::{CreatedKey, KeyInfo, KeySettings};
use crate::error::ApiError;
use crate::error::parse_json;
use crate::state::AppState;

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        format!("No virtual key with id `{id}`."),
    )
    .with_code("key_not_found")
}

fn store_error(e: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", e)
}

/// `expires_at` may be Unix seconds or an RFC 3339 time; the key ring wants seconds.
fn settings_from(body: &[u8]) -> Result<KeySettings, ApiError> {
    let mut value: serde_json::Value = parse_json(body)?;
    if let Some(at) = value.get_mut("expires_at")
        && let Some(text) = at.as_str()
    {
        let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
            ApiError::invalid_request(format!(
                "`expires_at`: `{text}` is neither Unix seconds nor an RFC 3339 time: {e}"
            ))
            .with_param("expires_at")
        })?;
        let secs = time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *at = secs.into();
    }
    let text = serde_json::to_vec(&value).expect("JSON value serialises");
    parse_json(&text)
}

#[utoipa::path(post, path = "/api/keys", tag = "keys", request_body = KeySettings, responses((status = 201, description = "The key; `key` is its secret, shown only now", body = CreatedKey), (status = 400, body = crate::error::ErrorResponse)))]
pub async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    let settings = match settings_from(&body) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = state.governance.check_key_team(&settings).await {
        return ApiError::invalid_request(e)
            .with_param("team")
            .with_code("team_not_found")
            .into_response();
    }
    match state.governance.keys.create(settings).await {
        Ok(created) => {
            tracing::info!(key_id = %created.info.id, name = %created.info.settings.name, "virtual key created");
            (StatusCode::CREATED, Json(created)).into_response()
        }
        Err(e) if e.starts_with('`') => ApiError::invalid_request(e).into_response(),
        Err(e) => store_error(e).into_response(),
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct KeyList {
    object: &'static str,
    data: Vec<KeyInfo>,
}

#[utoipa::path(get, path = "/api/keys", tag = "keys", responses((status = 200, body = KeyList)))]
pub async fn list(State(state): State<AppState>) -> Json<KeyList> {
    Json(KeyList {
        object: "list",
        data: state.governance.keys.list(),
    })
}

#[utoipa::path(get, path = "/api/keys/{id}", tag = "keys", responses((status = 200, body = KeyInfo), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let keys = &state.governance.keys;
    match keys.get(&id) {
        Some(k) => Json(keys.info(&k)).into_response(),
        None => not_found(&id).into_response(),
    }
}

#[utoipa::path(post, path = "/api/keys/{id}/rotate", tag = "keys", responses((status = 200, description = "The same key with a new secret; the old one stops working", body = CreatedKey), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn rotate(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.governance.keys.rotate(&id).await {
        Ok(Some(created)) => {
            tracing::info!(key_id = %id, "virtual key rotated");
            Json(created).into_response()
        }
        Ok(None) => not_found(&id).into_response(),
        Err(e) => store_error(e).into_response(),
    }
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys", responses((status = 200, description = "Revoked"), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.governance.keys.revoke(&id).await {
        Ok(true) => {
            tracing::info!(key_id = %id, "virtual key revoked");
            Json(serde_json::json!({"id": id, "object": "api_key", "deleted": true}))
                .into_response()
        }
        Ok(false) => not_found(&id).into_response(),
        Err(e) => store_error(e).into_response(),
    }
}
