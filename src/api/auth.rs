//! Authentication: the master key for the API, a login and a signed session cookie for the console.
//! With no master key configured everything is open (and the gateway says so loudly).

use std::net::SocketAddr;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::governance::Caller;
use crate::governance::identity::{COOKIE, Identity, SESSION_SECONDS};
use crate::state::AppState;

/// A request from another site (checked on the console's state-changing requests).
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin.split("://").nth(1) != Some(host),
        _ => false,
    }
}

fn is_safe_method(method: &axum::http::Method) -> bool {
    use axum::http::Method;
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn cross_site_refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        "Cross-site request refused.",
    )
    .with_code("cross_site_request")
    .into_response()
}

enum Area {
    Open,
    Api,
    Console,
}

fn area(path: &str) -> Area {
    if path.starts_with("/v1/")
        || path.starts_with("/api/")
        || path == "/metrics"
        || path == "/openapi.json"
    {
        Area::Api
    } else if path.starts_with("/health")
        || path.starts_with("/pkg/")
        || path == "/favicon.svg"
        || path == "/login"
        || path == "/logout"
    {
        Area::Open
    } else {
        Area::Console
    }
}

pub async fn require(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let auth = &state.auth;
    let path = request.uri().path();
    let area = area(path);
    if matches!(area, Area::Open) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let keys = &state.governance.keys;
    let identity = auth
        .recheck(auth.identify(headers, keys), headers, keys)
        .await;
    let is_v1 = path.starts_with("/v1/");
    let caller = match (area, identity) {
        (Area::Api, Identity::Known(Caller::Key(_))) if !is_v1 => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "Virtual keys may call the /v1 API only; this needs the master key.",
            )
            .with_code("insufficient_permissions")
            .into_response();
        }
        // The session cookie travels with any request the browser makes, other sites' included.
        (Area::Api, Identity::Known(Caller::Session))
            if !is_safe_method(request.method()) && is_cross_site(headers) =>
        {
            return cross_site_refused();
        }
        (Area::Api, Identity::Known(caller)) => caller,
        (Area::Api, Identity::Nobody) if auth.is_open() => Caller::Anonymous,
        // A CORS preflight carries no credentials; the CORS layer answers it.
        (Area::Api, Identity::Nobody)
            if is_v1 && request.method() == axum::http::Method::OPTIONS =>
        {
            Caller::Anonymous
        }
        (Area::Api, _) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Missing or incorrect API key: send the gateway's key or a virtual key as `Authorization: Bearer <key>` or `x-api-key`.",
            )
            .with_code("invalid_api_key")
            .into_response();
        }
        (Area::Console, _) if !is_safe_method(request.method()) && is_cross_site(headers) => {
            return cross_site_refused();
        }
        (Area::Console, _) if auth.is_open() => Caller::Anonymous,
        (Area::Console, _) if auth.has_session(headers) => Caller::Session,
        (Area::Console, _) if path.starts_with("/console/fn") => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Log in to the console first.",
            )
            .into_response();
        }
        (Area::Console, _) => return Redirect::to("/login").into_response(),
        (Area::Open, _) => unreachable!("handled above"),
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

const LOGIN_PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · LLM Bridge</title><link rel="icon" type="image/svg+xml" href="/favicon.svg"><link rel="stylesheet" href="/pkg/llm-bridge.css"></head><body><main class="content login"><h1>LLM Bridge</h1><form method="post" action="/login"><label for="key">Master key</label> <input id="key" name="key" type="password" autocomplete="current-password" required autofocus> <button type="submit">Log in</button></form>{error}</main></body></html>"#;

pub async fn login_page() -> Html<String> {
    Html(LOGIN_PAGE.replace("{error}", ""))
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
}

pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if is_cross_site(&headers) {
        return (StatusCode::FORBIDDEN, "Cross-site login refused.").into_response();
    }
    let peer = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0.0.ip());
    let ip = state.governance.client_ip(peer, &headers);
    let now = Instant::now();
    if let Err(wait) = state.auth.logins.check(ip, now) {
        let page = LOGIN_PAGE.replace(
            "{error}",
            r#"<p class="error" role="alert">Too many wrong keys from this address; try again in a minute.</p>"#,
        );
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Html(page)).into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return response;
    }
    if !state.auth.is_master_key(&form.key) {
        state.auth.logins.failed(ip, now);
        let page = LOGIN_PAGE.replace(
            "{error}",
            r#"<p class="error" role="alert">That is not the master key.</p>"#,
        );
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    state.auth.logins.succeeded(ip);
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v == "https");
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        state.auth.new_session(),
        if https { "; Secure" } else { "" }
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("ascii"),
    );
    response
}
