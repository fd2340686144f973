//! Authentication: the master key for the API, a login and a signed session cookie for the console.
//! With no master key configured everything is open (and the gateway says so loudly).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::governance::Caller;
use crate::governance::keys::{KeyRing, SECRET_PREFIX};
use crate::state::AppState;

const COOKIE: &str = "llmb_session";
const SESSION_SECONDS: u64 = 12 * 3600;

/// What the gateway needs to check credentials without keeping the key around in the clear.
pub struct Auth {
    master: Option<blake3::Hash>,
    session_key: [u8; 32],
    logins: LoginThrottle,
}

/// Wrong master keys allowed per client address and window on the login form.
const LOGIN_FAILURES: u32 = 10;
const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses tracked at most; past it (after dropping expired windows) they share one window.
const LOGIN_ADDRESSES: usize = 4096;

/// Slows down guessing the master key: after [`LOGIN_FAILURES`] wrong keys from one address, its
/// further attempts are refused until its window ends.
#[derive(Default)]
struct LoginThrottle {
    failures: std::sync::Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Err(wait)` while the address is locked out.
    fn check(&self, ip: IpAddr, now: Instant) -> Result<(), std::time::Duration> {
        let failures = self.failures.lock().unwrap();
        let entry = failures
            .get(&ip)
            .or_else(|| failures.get(&SHARED_LOGIN_SLOT));
        match entry {
            Some((count, since)) if *count >= LOGIN_FAILURES && now < *since + LOGIN_WINDOW => {
                Err(*since + LOGIN_WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    fn failed(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap();
        if !failures.contains_key(&ip) && failures.len() >= LOGIN_ADDRESSES {
            failures.retain(|_, (_, since)| now < *since + LOGIN_WINDOW);
        }
        let ip = if failures.contains_key(&ip) || failures.len() < LOGIN_ADDRESSES {
            ip
        } else {
            SHARED_LOGIN_SLOT
        };
        let entry = failures.entry(ip).or_insert((0, now));
        if now >= entry.1 + LOGIN_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap().remove(&ip);
    }
}

/// The window addresses share when too many are tracked.
const SHARED_LOGIN_SLOT: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl Auth {
    pub fn new(config: &AuthConfig) -> Auth {
        let key = config
            .master_key
            .as_ref()
            .map(|k| k.expose().as_bytes().to_vec());
        Auth {
            master: key.as_deref().map(blake3::hash),
            session_key: key.as_deref().map_or([0; 32], |k| {
                blake3::derive_key("llm-bridge console session v1", k)
            }),
            logins: LoginThrottle::default(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.master.is_none()
    }

    /// Constant-time: compares fixed-size hashes (`blake3::Hash` equality is constant-time).
    fn is_master_key(&self, candidate: &str) -> bool {
        self.master
            .is_some_and(|m| m == blake3::hash(candidate.as_bytes()))
    }

    fn new_session(&self) -> String {
        let expires = now() + SESSION_SECONDS;
        let payload = format!("{expires}.{:032x}", fastrand::u128(..));
        let mac = blake3::keyed_hash(&self.session_key, payload.as_bytes());
        format!("{payload}.{}", mac.to_hex())
    }

    fn is_valid_session(&self, token: &str) -> bool {
        let Some((payload, mac)) = token.rsplit_once('.') else {
            return false;
        };
        let Ok(mac) = blake3::Hash::from_hex(mac) else {
            return false;
        };
        let expires: u64 = payload
            .split('.')
            .next()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        expires > now() && blake3::keyed_hash(&self.session_key, payload.as_bytes()) == mac
    }

    /// Who the request's credentials name (`Authorization: Bearer` or `x-api-key`), from what this
    /// replica knows: a virtual key it has not seen yet is `Wrong` here (see [`Auth::recheck`]).
    fn identify(&self, headers: &HeaderMap, keys: &KeyRing) -> Identity {
        let Some(sent) = presented(headers) else {
            return if self.has_session(headers) {
                Identity::Known(Caller::Session)
            } else {
                Identity::Nobody
            };
        };
        if self.is_master_key(sent) {
            return Identity::Known(Caller::Master);
        }
        if let Some(key) = keys.find(sent) {
            return Identity::Known(Caller::Key(key));
        }
        if self.has_session(headers) {
            return Identity::Known(Caller::Session);
        }
        if sent.starts_with(SECRET_PREFIX) || !self.is_open() {
            Identity::Wrong
        } else {
            // An open gateway ignores whatever placeholder key an SDK sends.
            Identity::Nobody
        }
    }

    /// Whether the request carries the master key or a console session (always, when open).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        if self.is_open() || self.has_session(headers) {
            return true;
        }
        presented(headers).is_some_and(|k| self.is_master_key(k))
    }

    /// For a request [`Auth::identify`] found `Wrong`: a secret that looks like a virtual key may
    /// have been created on another replica a moment ago, so the key ring looks it up again after
    /// reading the keys from the store (bounded; see [`KeyRing::find_fresh`]).
    async fn recheck(&self, identity: Identity, headers: &HeaderMap, keys: &KeyRing) -> Identity {
        if let Identity::Wrong = identity
            && let Some(sent) = presented(headers)
            && let Some(key) = keys.find_fresh(sent).await
        {
            return Identity::Known(Caller::Key(key));
        }
        identity
    }

    fn has_session(&self, headers: &HeaderMap) -> bool {
        cookie(headers, COOKIE).is_some_and(|t| self.is_valid_session(t))
    }
}

/// The key a request sends: `Authorization: Bearer`, else `x-api-key`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(api_key).map(str::trim)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

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

enum Identity {
    Known(Caller),
    /// No credentials.
    Nobody,
    /// Credentials that match nothing (or a revoked virtual key).
    Wrong,
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
