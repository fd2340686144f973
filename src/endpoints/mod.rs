//! The inbound APIs, one folder each: its HTTP handler, its [`Endpoint`](crate::gateway::journey::Endpoint)
//! (what it peeks, how an attempt encodes and starts its reply, how the reply is relayed), its
//! translation to and from chat completions, and what it keeps. A new inbound API is one folder
//! here and one line in the router (`api::routes`).

pub mod chat;
pub mod embeddings;
pub mod gemini;
pub mod messages;
#[cfg(test)]
mod proptests;
pub mod responses;

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::gateway::journey::Endpoint;
use crate::governance::Admission;
use crate::state::AppState;

/// Every inbound API's handler: the body read (413 over the size limit), then the journey with
/// the endpoint `endpoint` makes for this request.
pub async fn serve<E: Endpoint>(
    state: &AppState,
    admission: Option<Arc<Admission>>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: impl FnOnce(&Option<Arc<Admission>>) -> E,
) -> Response {
    match body_or_error(body, state.config().server.max_body_bytes) {
        Ok(body) => {
            let endpoint = endpoint(&admission);
            let gateway = state.gateway();
            gateway.serve(&endpoint, headers, body, admission).await
        }
        Err(e) => e.into_response(),
    }
}

/// The body, or the reason it could not be read (413 when over the size limit) in OpenAI's shape.
pub fn body_or_error(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if timed_out(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                "The request body did not arrive in time.",
            )
            .with_code("request_timeout")
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request_error",
                format!("The request body is larger than the limit of {limit} bytes."),
            )
            .with_code("request_too_large")
        } else {
            ApiError::new(
                status,
                "invalid_request_error",
                format!("Cannot read the request body: {}", rejection.body_text()),
            )
        }
    })
}

/// Whether reading the body stopped at the body timeout (`server.client_body_timeout`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}
