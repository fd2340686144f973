//! Anthropic's Messages API on `/v1/messages` (what Claude Code speaks): the handlers, and every
//! error of these routes in Anthropic's shape with its `request-id`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use crate::endpoints::messages::error_json;
use crate::gateway::HEADER_REQUEST_ID;
use crate::governance::Admission;
use crate::providers::openai_compatible;
use crate::state::AppState;

/// Set on a `count_tokens` answer that is the gateway's estimate, not the provider's count.
pub use super::count_tokens::HEADER_ESTIMATED;
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

pub async fn messages(
    State(state): State<AppState>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let messages = |_: &Option<Arc<Admission>>| super::endpoint::Messages::new(&headers);
    crate::endpoints::serve(&state, admission.map(|a| a.0), &headers, body, messages).await
}

/// `POST /v1/messages/count_tokens`, through the journey ([`super::count_tokens`]): admitted,
/// routed, failed over and recorded as any request.
pub async fn count_tokens(
    State(state): State<AppState>,
    admission: Option<Extension<Arc<Admission>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let count = |_: &Option<Arc<Admission>>| super::count_tokens::CountTokens::new(&headers);
    crate::endpoints::serve(&state, admission.map(|a| a.0), &headers, body, count).await
}

/// On `/v1/messages…`: errors (from any layer: authentication, limits, the gateway) in Anthropic's
/// shape, `retry-after` kept, and the request id as Anthropic's `request-id` too.
pub async fn anthropic_shape(
    state: &AppState,
    client_id: Option<HeaderValue>,
    response: Response,
) -> Response {
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let id = match parts.headers.get(&HEADER_REQUEST_ID) {
        Some(id) => id.clone(),
        // An answer from before the gateway gave the request an id (authentication).
        None => {
            let mut headers = HeaderMap::new();
            if let Some(id) = client_id {
                headers.insert(HEADER_REQUEST_ID, id);
            }
            let id = state.gateway().request_id(&headers);
            let id = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
            parts.headers.insert(HEADER_REQUEST_ID, id.clone());
            id
        }
    };
    parts.headers.insert(REQUEST_ID, id);
    if !(status.is_client_error() || status.is_server_error()) {
        return Response::from_parts(parts, body);
    }
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let message = openai_compatible::error_message(&bytes).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        }
    });
    // Anthropic answers 529 when it is overloaded; a gateway with no deployment left is that.
    let status = if status == StatusCode::SERVICE_UNAVAILABLE {
        StatusCode::from_u16(529).expect("a valid status")
    } else {
        status
    };
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error_json(status, &message)))
}
