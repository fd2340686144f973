//! What every `/v1` request goes through before its endpoint: admission.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::domain::RequestRecord;
use crate::gateway::HEADER_REQUEST_ID;
use crate::governance::Caller;
use crate::state::AppState;

/// Admits a `/v1` request (key expiry and budget, rate limits) and adds the `x-ratelimit-*` headers.
pub async fn admit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    let governance = &state.governance;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.ip());
    let ip = governance.client_ip(peer, request.headers());
    match governance.admit(&caller, ip).await {
        Ok(admission) => {
            let admission = Arc::new(admission);
            request.extensions_mut().insert(admission.clone());
            let mut response = next.run(request).await;
            admission.write_headers(response.headers_mut());
            response
        }
        Err(rejection) => {
            // Refused requests show in the stats and the request log like any other.
            let request_id = state.gateway().request_id(request.headers());
            state.stats.record(RequestRecord {
                time_ms: crate::clock::now_ms(),
                request_id: request_id.clone(),
                client_key: rejection.key_id.clone(),
                status: rejection.error.status.as_u16(),
                error_class: Some(rejection.error.class().to_string()),
                ..Default::default()
            });
            let mut response = rejection.into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(HEADER_REQUEST_ID, v);
            }
            response
        }
    }
}
