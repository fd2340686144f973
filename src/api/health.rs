use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

/// Status, version, uptime, providers, and the store's health.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.health().await)
}

/// The process is up.
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Configuration loaded and the store usable; 503 with the reason otherwise.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.stats.store().health().await;
    if store.reachable {
        (StatusCode::OK, Json(json!({ "status": "ready", "store": store.backend })))
    } else {
        let reason = format!("{} store: {}", store.backend, store.detail);
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "reason": reason })))
    }
}
