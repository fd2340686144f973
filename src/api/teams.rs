//! `/api/teams`: create, list, change and delete teams (master key or an admin's console session).
//! Teams from the configuration are listed too, but only a reload changes them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::config::TeamConfig;
use crate::error::{ApiError, parse_json};
use crate::governance::teams::TeamError;
use crate::state::AppState;

/// A team as listed: its settings, where it comes from, and its spend as this replica last saw it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TeamInfo {
    #[serde(flatten)]
    pub team: TeamConfig,
    /// `config` (the configuration file) or `api`.
    pub source: &'static str,
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
}

fn info(state: &AppState, team: &TeamConfig, configured: bool) -> TeamInfo {
    let (today, month) = state
        .governance
        .keys
        .spend(&crate::governance::team_spender(&team.name));
    TeamInfo {
        team: team.clone(),
        source: if configured { "config" } else { "api" },
        spend_today_usd: today,
        spend_month_usd: month,
    }
}

fn refused(e: TeamError) -> Response {
    let (status, code, message) = match e {
        TeamError::Invalid(why) => (StatusCode::BAD_REQUEST, "invalid_team", why),
        TeamError::Configured(name) => (
            StatusCode::CONFLICT,
            "team_in_configuration",
            format!("The team `{name}` is defined in the configuration; change it there."),
        ),
        TeamError::Exists(name) => (
            StatusCode::CONFLICT,
            "team_exists",
            format!("The team `{name}` exists already."),
        ),
        TeamError::NotFound(name) => (
            StatusCode::NOT_FOUND,
            "team_not_found",
            format!("No team named `{name}`."),
        ),
        TeamError::Store(why) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", why)
                .into_response();
        }
    };
    ApiError::new(status, "invalid_request_error", message)
        .with_code(code)
        .into_response()
}

#[utoipa::path(get, path = "/api/teams", tag = "teams", responses((status = 200, body = Vec<TeamInfo>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<TeamInfo>> {
    Json(
        state
            .governance
            .teams
            .list()
            .iter()
            .map(|(team, configured)| info(&state, team, *configured))
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/teams/{name}", tag = "teams", params(("name" = String, Path)), responses((status = 200, body = TeamInfo), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn get_one(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state
        .governance
        .teams
        .list()
        .into_iter()
        .find(|(t, _)| t.name == name)
    {
        Some((team, configured)) => Json(info(&state, &team, configured)).into_response(),
        None => refused(TeamError::NotFound(name)),
    }
}

#[utoipa::path(post, path = "/api/teams", tag = "teams", request_body = TeamConfig, responses((status = 201, body = TeamInfo), (status = 400, body = crate::error::ErrorResponse), (status = 409, body = crate::error::ErrorResponse)))]
pub async fn create(State(state): State<AppState>, body: Bytes) -> Response {
    let team: TeamConfig = match parse_json(&body) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match state.governance.teams.put(team.clone(), false).await {
        Ok(()) => {
            tracing::info!(team = %team.name, "team created");
            (StatusCode::CREATED, Json(info(&state, &team, false))).into_response()
        }
        Err(e) => refused(e),
    }
}

#[utoipa::path(put, path = "/api/teams/{name}", tag = "teams", params(("name" = String, Path)), request_body = TeamConfig, responses((status = 200, body = TeamInfo), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let team: TeamConfig = match parse_json(&body) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    if team.name != name {
        return refused(TeamError::Invalid(
            "`name`: a team keeps its name; create a new team instead".into(),
        ));
    }
    match state.governance.teams.put(team.clone(), true).await {
        Ok(()) => {
            tracing::info!(team = %team.name, "team changed");
            Json(info(&state, &team, false)).into_response()
        }
        Err(e) => refused(e),
    }
}

#[utoipa::path(delete, path = "/api/teams/{name}", tag = "teams", params(("name" = String, Path)), responses((status = 200), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.governance.teams.delete(&name).await {
        Ok(()) => {
            tracing::info!(team = %name, "team deleted");
            Json(serde_json::json!({"name": name, "deleted": true})).into_response()
        }
        Err(e) => refused(e),
    }
}
