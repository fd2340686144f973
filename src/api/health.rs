use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

/// Status, version, uptime, providers, the store's health and every deployment's circuit; with a
/// master key set, callers without it (or a console session) get only the status and version.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = crate::reports::HealthReport)))]
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    if !state.auth.is_admin(&headers) {
        let report = state.health().await;
        return Json(json!({ "status": report.status, "version": report.version }));
    }
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
