use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use crate::governance::Caller;
use crate::providers::openai_types::Model;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

fn may_use(state: &AppState, caller: &Option<Extension<Caller>>, model: &str) -> bool {
    state.may_use_model(caller.as_ref().map(|c| &c.0), model)
}

#[utoipa::path(get, path = "/v1/models", tag = "models", responses((status = 200, description = "The enabled providers' models", body = ModelList)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let mut data = state.gateway().models();
    // A virtual key (or a team) limited to some models sees only those.
    data.retain(|m| may_use(&state, &caller, &m.id));
    // Anthropic's clients (Claude Code's model discovery) get Anthropic's list shape.
    if headers.contains_key("anthropic-version") {
        let models: Vec<serde_json::Value> = data
            .iter()
            .map(|m| {
                serde_json::json!({
                    "type": "model",
                    "id": m.id,
                    "display_name": m.id,
                    "created_at": "1970-01-01T00:00:00Z",
                })
            })
            .collect();
        return Json(serde_json::json!({
            "data": models,
            "has_more": false,
            "first_id": data.first().map(|m| &m.id),
            "last_id": data.last().map(|m| &m.id),
        }))
        .into_response();
    }
    Json(ModelList {
        object: "list",
        data,
    })
    .into_response()
}

#[utoipa::path(get, path = "/v1/models/{id}", tag = "models", params(("id" = String, Path, description = "Model name")), responses((status = 200, body = Model), (status = 404, body = crate::error::ErrorResponse)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Response {
    if !may_use(&state, &caller, &id) {
        return crate::error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("The model `{id}` does not exist or this key may not use it."),
        )
        .with_code("model_not_found")
        .into_response();
    }
    if let Some(m) = state.gateway().models().into_iter().find(|m| m.id == id) {
        return Json(m).into_response();
    }
    match state.gateway().resolve(&id) {
        Ok(route) => Json(Model {
            id,
            object: "model",
            created: 0,
            owned_by: route.provider.name.clone(),
        })
        .into_response(),
        Err(e) => e.into_response(),
    }
}
