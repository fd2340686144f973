//! The HTTP surface: the OpenAI-compatible `/v1` routes, health, and the stats API.

use crate::endpoints::{chat, embeddings, gemini, messages, responses};

pub mod auth;
pub mod hardening;
mod health;
mod keys;
mod metrics;
pub mod models;
pub mod openapi;
mod stats;
mod teams;
mod v1;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get, post};

use crate::gateway::HEADER_REQUEST_ID;
use crate::state::AppState;

/// The front door every request passes, in one layer: the request's method and headers are
/// screened, the caller identified (or refused), and on `/v1/messages…` every error is put in
/// Anthropic's shape. One layer rather than three: each layer of its own cost a service clone and
/// a boxed future per request.
pub async fn front_door(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let anthropic = request.uri().path().starts_with("/v1/messages");
    let google = gemini::handler::is_gemini_path(request.uri().path());
    if google {
        gemini::handler::key_from_query(&mut request);
    }
    let client_id = anthropic
        .then(|| request.headers().get(&HEADER_REQUEST_ID).cloned())
        .flatten();
    let response = match hardening::screen(&request, state.config().server.max_header_bytes) {
        Some(refused) => return refused,
        None => match auth::authorize(&state, &mut request).await {
            Ok(()) => next.run(request).await,
            Err(refused) => refused,
        },
    };
    if anthropic {
        messages::handler::anthropic_shape(&state, client_id, response).await
    } else if google {
        gemini::handler::google_shape(response).await
    } else {
        response
    }
}

pub fn routes(state: &AppState) -> Router<AppState> {
    let admission = axum::middleware::from_fn_with_state(state.clone(), v1::admit);
    let mut v1 = Router::new()
        .route(
            "/v1/chat/completions",
            post(chat::handler::chat_completions).route_layer(admission.clone()),
        )
        .route(
            "/v1/embeddings",
            post(embeddings::handler::embeddings).route_layer(admission.clone()),
        )
        .route(
            "/v1/messages",
            post(messages::handler::messages).route_layer(admission.clone()),
        )
        .route(
            "/v1/responses",
            post(responses::handler::create)
                .route_layer(admission.clone())
                .get(responses::socket::upgrade),
        )
        .route(
            "/v1/responses/{id}",
            get(responses::handler::get_one).delete(responses::handler::delete),
        )
        .route(
            "/v1/messages/count_tokens",
            post(messages::handler::count_tokens).route_layer(admission.clone()),
        )
        .route("/v1/models", get(models::list))
        .route(
            "/v1/models/{*id}",
            post(gemini::handler::call)
                .route_layer(admission.clone())
                .get(models::get_one),
        )
        .route("/v1beta/models", get(gemini::handler::list))
        .route(
            "/v1beta/models/{*id}",
            post(gemini::handler::call)
                .route_layer(admission)
                .get(gemini::handler::get_one),
        );
    if let Some(cors) = hardening::cors(&state.config().server) {
        v1 = v1.layer(cors);
    }
    v1.route("/api/stats/overview", get(stats::overview))
        .route("/api/stats/timeseries", get(stats::timeseries))
        .route("/api/stats/providers", get(stats::providers))
        .route("/api/stats/keys", get(stats::keys))
        .route("/api/stats/teams", get(stats::teams))
        .route("/api/stats/users", get(stats::users))
        .route("/api/requests", get(stats::requests))
        .route("/api/pricing", get(stats::pricing))
        .route("/api/keys", get(keys::list).post(keys::create))
        .route("/api/keys/{id}", get(keys::get_one).delete(keys::revoke))
        .route("/api/keys/{id}/rotate", post(keys::rotate))
        .route("/api/teams", get(teams::list).post(teams::create))
        .route(
            "/api/teams/{name}",
            get(teams::get_one).put(teams::update).delete(teams::delete),
        )
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/{*rest}", any(hardening::unknown_route))
        .route("/v1beta/{*rest}", any(hardening::unknown_route))
        .route("/api/{*rest}", any(hardening::unknown_route))
        .layer(axum::middleware::map_response(hardening::json_errors))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/login/oidc", get(auth::oidc_start))
        .route("/login/oidc/callback", get(auth::oidc_callback))
        .route("/logout", post(auth::logout))
}
