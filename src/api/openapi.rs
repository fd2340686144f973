//! `GET /openapi.json`: the gateway's API as OpenAPI 3.1, generated from the handlers and types.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LLM Bridge",
        description = "An OpenAI-compatible gateway to many LLM providers."
    ),
    paths(
        crate::endpoints::chat::handler::chat_completions,
        crate::endpoints::embeddings::handler::embeddings,
        super::models::list,
        super::models::get_one,
        super::health::health,
        super::health::live,
        super::health::ready,
        super::stats::overview,
        super::stats::timeseries,
        super::stats::providers,
        super::stats::keys,
        super::stats::teams,
        super::stats::users,
        super::stats::requests,
        super::stats::pricing,
        super::keys::create,
        super::keys::list,
        super::keys::get_one,
        super::keys::rotate,
        super::keys::revoke,
        super::teams::list,
        super::teams::get_one,
        super::teams::create,
        super::teams::update,
        super::teams::delete,
    ),
    components(schemas(crate::providers::openai_types::ChatChunk))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
