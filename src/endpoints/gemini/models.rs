//! `GET /v1beta/models` and `GET /v1beta/models/{model}`: the gateway's models in Gemini's shape,
//! as the Gemini CLI and the SDKs list them; a key limited to some models sees only those.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::governance::Caller;
use crate::state::AppState;

fn model_json(id: &str, owned_by: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "baseModelId": id,
        "version": "001",
        "displayName": id,
        "description": format!("{id} through LLM Bridge ({owned_by})"),
        "supportedGenerationMethods": [
            "generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents",
        ],
    })
}

pub fn list(state: &AppState, caller: Option<&Caller>) -> Response {
    let models: Vec<Value> = state
        .gateway()
        .models()
        .iter()
        .filter(|m| state.may_use_model(caller, &m.id))
        .map(|m| model_json(&m.id, &m.owned_by))
        .collect();
    Json(json!({"models": models})).into_response()
}

pub fn get_one(state: &AppState, caller: Option<&Caller>, id: &str) -> Response {
    let id = id.strip_prefix("models/").unwrap_or(id);
    let not_found = || {
        let message = format!("models/{id} is not found, or this key may not use it.");
        (
            StatusCode::NOT_FOUND,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            super::error_json(StatusCode::NOT_FOUND, &message),
        )
            .into_response()
    };
    if !state.may_use_model(caller, id) {
        return not_found();
    }
    if let Some(m) = state.gateway().models().iter().find(|m| m.id == id) {
        return Json(model_json(&m.id, &m.owned_by)).into_response();
    }
    match state.gateway().resolve(id) {
        Ok(route) => Json(model_json(id, &route.provider.name)).into_response(),
        Err(_) => not_found(),
    }
}
