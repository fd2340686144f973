//! Who is calling: the master key, a console session, or a virtual key. Credentials are checked
//! without keeping the master key around in the clear; the HTTP side (which routes need what, the
//! login form) is `api::auth`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use axum::http::{HeaderMap, header};

use super::Caller;
use super::keys::{KeyRing, SECRET_PREFIX};
use crate::config::AuthConfig;

pub const COOKIE: &str = "llmb_session";
pub const SESSION_SECONDS: u64 = 12 * 3600;

/// What the gateway needs to check credentials without keeping the key around in the clear.
pub struct Auth {
    master: Option<blake3::Hash>,
    session_key: [u8; 32],
    pub logins: LoginThrottle,
}

/// Wrong master keys allowed per client address and window on the login form.
const LOGIN_FAILURES: u32 = 10;
const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses tracked at most; past it (after dropping expired windows) they share one window.
const LOGIN_ADDRESSES: usize = 4096;

/// Slows down guessing the master key: after [`LOGIN_FAILURES`] wrong keys from one address, its
/// further attempts are refused until its window ends.
#[derive(Default)]
pub struct LoginThrottle {
    failures: std::sync::Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Err(wait)` while the address is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), std::time::Duration> {
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

    pub fn failed(&self, ip: IpAddr, now: Instant) {
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

    pub fn succeeded(&self, ip: IpAddr) {
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
    pub fn is_master_key(&self, candidate: &str) -> bool {
        self.master
            .is_some_and(|m| m == blake3::hash(candidate.as_bytes()))
    }

    pub fn new_session(&self) -> String {
        let expires = crate::clock::now_s() + SESSION_SECONDS;
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
        expires > crate::clock::now_s()
            && blake3::keyed_hash(&self.session_key, payload.as_bytes()) == mac
    }

    /// Who the request's credentials name (`Authorization: Bearer` or `x-api-key`), from what this
    /// replica knows: a virtual key it has not seen yet is `Wrong` here (see [`Auth::recheck`]).
    pub fn identify(&self, headers: &HeaderMap, keys: &KeyRing) -> Identity {
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
    pub async fn recheck(
        &self,
        identity: Identity,
        headers: &HeaderMap,
        keys: &KeyRing,
    ) -> Identity {
        if let Identity::Wrong = identity
            && let Some(sent) = presented(headers)
            && let Some(key) = keys.find_fresh(sent).await
        {
            return Identity::Known(Caller::Key(key));
        }
        identity
    }

    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        cookie(headers, COOKIE).is_some_and(|t| self.is_valid_session(t))
    }
}

/// The key a request sends: `Authorization: Bearer`, else `x-api-key`.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// What a request's credentials name.
pub enum Identity {
    Known(Caller),
    /// No credentials.
    Nobody,
    /// Credentials that match nothing (or a revoked virtual key).
    Wrong,
}
