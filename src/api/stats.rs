use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::{RecentFilter, Window};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WindowQuery {
    window: Option<String>,
}

fn window(q: &WindowQuery) -> Result<Window, ApiError> {
    let raw = q.window.as_deref().unwrap_or("1h");
    Window::parse(raw).ok_or_else(|| {
        ApiError::invalid_request(format!("window `{raw}` is not one of 1h, 24h, 7d"))
            .with_param("window")
    })
}

fn store_error(e: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        format!("the stats store is unavailable: {e}"),
    )
}

fn reply<T: serde::Serialize>(r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/api/stats/overview", tag = "stats", params(WindowQuery), responses((status = 200, body = crate::reports::Overview), (status = 400, body = crate::error::ErrorResponse)))]
pub async fn overview(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    reply(async { state.stats.overview(window(&q)?).await.map_err(store_error) }.await)
}

#[utoipa::path(get, path = "/api/stats/timeseries", tag = "stats", params(WindowQuery), responses((status = 200, body = Vec<crate::reports::SeriesPoint>)))]
pub async fn timeseries(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    reply(
        async {
            state
                .stats
                .timeseries(window(&q)?)
                .await
                .map_err(store_error)
        }
        .await,
    )
}

#[utoipa::path(get, path = "/api/stats/providers", tag = "stats", params(WindowQuery), responses((status = 200, body = Vec<crate::reports::UsageRow>)))]
pub async fn providers(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    breakdown(&state, &q, "provider").await
}

#[utoipa::path(get, path = "/api/stats/keys", tag = "stats", params(WindowQuery), responses((status = 200, description = "Usage per virtual key id", body = Vec<crate::reports::UsageRow>)))]
pub async fn keys(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    breakdown(&state, &q, "key").await
}

#[utoipa::path(get, path = "/api/stats/teams", tag = "stats", params(WindowQuery), responses((status = 200, description = "Usage per team (JWT callers)", body = Vec<crate::reports::UsageRow>)))]
pub async fn teams(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    breakdown(&state, &q, "team").await
}

#[utoipa::path(get, path = "/api/stats/users", tag = "stats", params(WindowQuery), responses((status = 200, description = "Usage per user (JWT callers)", body = Vec<crate::reports::UsageRow>)))]
pub async fn users(State(state): State<AppState>, Query(q): Query<WindowQuery>) -> Response {
    breakdown(&state, &q, "user").await
}

async fn breakdown(state: &AppState, q: &WindowQuery, dimension: &str) -> Response {
    reply(
        async {
            state
                .stats
                .breakdown(window(q)?, dimension)
                .await
                .map_err(store_error)
        }
        .await,
    )
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RequestsQuery {
    limit: Option<usize>,
    model: Option<String>,
    provider: Option<String>,
    status: Option<String>,
    /// A client session id (`X-Claude-Code-Session-Id`).
    session: Option<String>,
}

#[utoipa::path(get, path = "/api/requests", tag = "stats", params(RequestsQuery), responses((status = 200, body = Vec<crate::domain::RequestRecord>)))]
pub async fn requests(State(state): State<AppState>, Query(q): Query<RequestsQuery>) -> Response {
    let filter = RecentFilter {
        model: q.model,
        provider: q.provider,
        status: q.status,
        session: q.session,
    };
    let limit = q.limit.unwrap_or(100).min(10_000);
    reply(
        state
            .stats
            .recent(limit, &filter)
            .await
            .map_err(store_error),
    )
}

#[utoipa::path(get, path = "/api/pricing", tag = "stats", responses((status = 200, body = Vec<crate::domain::ModelPrice>)))]
pub async fn pricing(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.gateway().catalogue.all().to_vec())
}
