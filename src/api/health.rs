use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

/// Status, version, uptime, providers, and the store's health.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = crate::shared::HealthReport)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let mut report = serde_json::to_value(state.health().await).unwrap_or_default();
    let deployments = state.gateway().routing.reports(std::time::Instant::now());
    report["deployments"] = serde_json::to_value(deployments).unwrap_or_default();
    Json(report)
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "Up")))]
pub async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Configuration loaded and the store usable; 503 with the reason otherwise.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "Ready"), (status = 503, description = "Not ready, with the reason")))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.stats.store().health().await;
    if store.reachable {
        (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": store.backend })),
        )
    } else {
        let reason = format!("{} store: {}", store.backend, store.detail);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        )
    }
}
