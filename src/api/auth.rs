//! Authentication: the master key for the API, a login and a signed session cookie for the console.
//! With no master key configured everything is open (and the gateway says so loudly).

use std::net::SocketAddr;
use std::time::Instant;

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::governance::identity::{COOKIE, Identity, OIDC_COOKIE, OIDC_SECONDS, SESSION_SECONDS};
use crate::governance::oidc::Pending;
use crate::governance::{Caller, Role};
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
        || path.starts_with("/v1beta/")
        || path.starts_with("/api/")
        || path == "/metrics"
        || path == "/openapi.json"
    {
        Area::Api
    } else if path.starts_with("/health")
        || path.starts_with("/pkg/")
        || path == "/favicon.svg"
        || path == "/login"
        || path.starts_with("/login/")
        || path == "/logout"
    {
        Area::Open
    } else {
        Area::Console
    }
}

/// Console pages only admins open (their server functions check the role themselves). The path
/// is decoded first; `.`, `..` and empty segments never get here (`api::hardening::screen`).
fn is_admin_page(path: &str) -> bool {
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    ["/keys", "/system", "/teams", "/tester"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// Who is calling, put in the request's extensions; or the refusal.
pub async fn authorize(state: &AppState, request: &mut Request) -> Result<(), Response> {
    let auth = &state.auth;
    let path = request.uri().path();
    let area = area(path);
    if matches!(area, Area::Open) {
        return Ok(());
    }
    let headers = request.headers();
    let keys = &state.governance.keys;
    let identity = auth
        .recheck(auth.identify(headers, keys), headers, keys)
        .await;
    let is_v1 = path.starts_with("/v1/") || path.starts_with("/v1beta/");
    let caller = match (area, identity) {
        (Area::Api, Identity::Known(Caller::Key(_) | Caller::Jwt(_))) if !is_v1 => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "Virtual keys and tokens may call the /v1 API only; this needs the master key.",
            )
            .with_code("insufficient_permissions")
            .into_response());
        }
        // The session cookie travels with any request the browser makes, other sites' included.
        (Area::Api, Identity::Known(Caller::Session(_)))
            if !is_safe_method(request.method()) && is_cross_site(headers) =>
        {
            return Err(cross_site_refused());
        }
        (Area::Api, Identity::Known(Caller::Session(Role::Viewer))) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                "A viewer's console session may not call the API.",
            )
            .with_code("insufficient_permissions")
            .into_response());
        }
        (Area::Api, Identity::Known(caller)) => caller,
        (Area::Api, Identity::Refused(why)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                format!("The bearer token was refused: {why}."),
            )
            .with_code("invalid_api_key")
            .into_response());
        }
        (Area::Api, Identity::Nobody) if auth.is_open() => Caller::Anonymous,
        // A CORS preflight carries no credentials; the CORS layer answers it.
        (Area::Api, Identity::Nobody)
            if is_v1 && request.method() == axum::http::Method::OPTIONS =>
        {
            Caller::Anonymous
        }
        (Area::Api, _) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Missing or incorrect API key: send the gateway's key or a virtual key as `Authorization: Bearer <key>`, `x-api-key` or `x-goog-api-key`.",
            )
            .with_code("invalid_api_key")
            .into_response());
        }
        (Area::Console, _) if !is_safe_method(request.method()) && is_cross_site(headers) => {
            return Err(cross_site_refused());
        }
        (Area::Console, _) if auth.is_open() => Caller::Anonymous,
        (Area::Console, _) if auth.session_role(headers) == Some(Role::Viewer) => {
            if is_admin_page(path) {
                return Err((
                    StatusCode::FORBIDDEN,
                    Html("<!DOCTYPE html><title>Forbidden</title><p>This page is for admins; your role is viewer. <a href=\"/\">Dashboard</a></p>"),
                )
                    .into_response());
            }
            Caller::Session(Role::Viewer)
        }
        (Area::Console, _) if auth.session_role(headers).is_some() => Caller::Session(Role::Admin),
        (Area::Console, _) if path.starts_with("/console/fn") => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Log in to the console first.",
            )
            .into_response());
        }
        (Area::Console, _) => return Err(Redirect::to("/login").into_response()),
        (Area::Open, _) => unreachable!("handled above"),
    };
    request.extensions_mut().insert(caller);
    Ok(())
}

const LOGIN_PAGE: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · LLM Bridge</title><link rel="icon" type="image/svg+xml" href="/favicon.svg"><link rel="stylesheet" href="/pkg/llm-bridge.css"></head><body><main class="content login"><h1>LLM Bridge</h1>{form}{sso}{error}</main></body></html>"#;
const MASTER_KEY_FORM: &str = r#"<form method="post" action="/login"><label for="key">Master key</label> <input id="key" name="key" type="password" autocomplete="current-password" required autofocus> <button type="submit">Log in</button></form>"#;

/// The login page: the master key form (when there is a master key), the single sign-on button
/// (with `[auth.oidc]`), and an error if any.
fn login_html(state: &AppState, error: &str) -> String {
    let auth = &state.auth;
    let sso = auth.oidc.as_ref().map_or(String::new(), |o| {
        format!(
            r#"<p class="sso"><a class="button" href="/login/oidc">Sign in with {}</a></p>"#,
            html_escape(o.name())
        )
    });
    let form = if auth.has_master_key() {
        MASTER_KEY_FORM
    } else {
        ""
    };
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="error" role="alert">{}</p>"#,
            html_escape(error)
        )
    };
    LOGIN_PAGE
        .replace("{form}", form)
        .replace("{sso}", &sso)
        .replace("{error}", &error)
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub async fn login_page(State(state): State<AppState>) -> Html<String> {
    Html(login_html(&state, ""))
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
        let page = login_html(
            &state,
            "Too many wrong keys from this address; try again in a minute.",
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
        let page = login_html(&state, "That is not the master key.");
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    state.auth.logins.succeeded(ip);
    signed_in(&state, &headers, Role::Admin)
}

/// The reply that starts a console session: the session cookie, then the dashboard.
fn signed_in(state: &AppState, headers: &HeaderMap, role: Role) -> Response {
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{}",
        state.auth.new_session(role),
        secure(headers)
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `; Secure` behind a proxy that terminates HTTPS.
fn secure(headers: &HeaderMap) -> &'static str {
    if headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v == "https")
    {
        "; Secure"
    } else {
        ""
    }
}

/// `GET /login/oidc`: sends the browser to the OpenID provider, with this sign-in's state, nonce
/// and PKCE verifier in a signed cookie for the way back.
pub async fn oidc_start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(oidc) = &state.auth.oidc else {
        return (StatusCode::NOT_FOUND, "Single sign-on is not configured.").into_response();
    };
    let pending = Pending::fresh();
    let url = match oidc.authorization_url(&pending).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a single sign-on");
            let page = login_html(
                &state,
                "The identity provider cannot be reached; try again.",
            );
            return (StatusCode::BAD_GATEWAY, Html(page)).into_response();
        }
    };
    // Lax: the provider's redirect back is a cross-site navigation.
    let cookie = format!(
        "{OIDC_COOKIE}={}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={OIDC_SECONDS}{}",
        state.auth.oidc_cookie(&pending),
        secure(&headers)
    );
    let mut response = Redirect::to(&url).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
}

/// `GET /login/oidc/callback`: checks the provider's answer and starts the console session.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(oidc) = &state.auth.oidc else {
        return (StatusCode::NOT_FOUND, "Single sign-on is not configured.").into_response();
    };
    let refused = |message: &str| {
        let mut response =
            (StatusCode::UNAUTHORIZED, Html(login_html(&state, message))).into_response();
        response
            .headers_mut()
            .insert(header::SET_COOKIE, clear_oidc_cookie());
        response
    };
    let Some(pending) = state.auth.oidc_pending(&headers) else {
        return refused("This sign-in expired or was started elsewhere; sign in again.");
    };
    if callback.state.as_deref() != Some(pending.state.as_str()) {
        tracing::warn!("single sign-on refused: the state does not match this browser's");
        return refused("This sign-in does not match the one this browser started; sign in again.");
    }
    let Some(code) = callback.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return refused("The identity provider did not sign you in.");
    };
    match oidc.finish(&code, &pending).await {
        Ok(user) => {
            tracing::info!(
                user = %crate::telemetry::escape_controls(&user.user),
                role = user.role.as_str(),
                "console sign-in"
            );
            let mut response = signed_in(&state, &headers, user.role);
            response
                .headers_mut()
                .append(header::SET_COOKIE, clear_oidc_cookie());
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on refused");
            refused("The identity provider's answer was refused; see the gateway's log.")
        }
    }
}

fn clear_oidc_cookie() -> HeaderValue {
    HeaderValue::from_static("llmb_oidc=; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age=0")
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
