//! Who is calling: the master key, a console session, or a virtual key. Credentials are checked
//! without keeping the master key around in the clear; the HTTP side (which routes need what, the
//! login form) is `api::auth`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use axum::http::{HeaderMap, header};

use std::sync::Arc;

use super::jwt::{JwtVerifier, Verdict, looks_like_jwt};
use super::keys::{KeyRing, SECRET_PREFIX};
use super::oidc::{OidcClient, Pending};
use super::{Caller, Role};
use crate::config::AuthConfig;

pub const COOKIE: &str = "llmb_session";
pub const SESSION_SECONDS: u64 = 12 * 3600;
/// A sign-in with the OpenID provider under way (state, nonce and PKCE verifier, signed).
pub const OIDC_COOKIE: &str = "llmb_oidc";
pub const OIDC_SECONDS: u64 = 600;

/// What the gateway needs to check credentials without keeping the key around in the clear.
pub struct Auth {
    master: Option<blake3::Hash>,
    /// With `[auth.jwt]` issuers: checks bearer tokens they signed.
    jwt: Option<Arc<JwtVerifier>>,
    /// With `[auth.oidc]`: console sign-in with an OpenID provider.
    pub oidc: Option<Arc<OidcClient>>,
    session_key: [u8; 32],
    pub logins: LoginThrottle,
}

/// Wrong master keys allowed per client address and window on the login form.
const LOGIN_FAILURES: u32 = 10;
/// The same while wrong keys arrive from many addresses at once (see [`LOGIN_PRESSURE`]).
const LOGIN_FAILURES_UNDER_PRESSURE: u32 = 1;
const LOGIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses tracked at most; past it (after dropping expired windows) the oldest is forgotten.
const LOGIN_ADDRESSES: usize = 4096;
/// Wrong keys from all addresses together in one window past which each address is allowed
/// [`LOGIN_FAILURES_UNDER_PRESSURE`] instead of [`LOGIN_FAILURES`].
const LOGIN_PRESSURE: u32 = 200;

/// Slows down guessing the master key: after [`LOGIN_FAILURES`] wrong keys from one address (an
/// IPv6 /64 counts as one address), its further attempts are refused until its window ends. While
/// more than [`LOGIN_PRESSURE`] wrong keys arrived in the last window from everywhere, an address
/// is locked out after its first wrong key. Nothing here is shared between addresses: an address
/// that has not sent a wrong key recently may always try, so the right key still signs in however
/// many wrong ones others send.
#[derive(Default)]
pub struct LoginThrottle {
    inner: std::sync::Mutex<Throttled>,
}

#[derive(Default)]
struct Throttled {
    /// Per address: wrong keys in its window, and when the window started.
    failures: HashMap<IpAddr, (u32, Instant)>,
    /// Addresses in the order their windows started (a pair whose window was restarted since is
    /// stale and passed over): the oldest is found without a walk over all of them.
    started: std::collections::VecDeque<(IpAddr, Instant)>,
    /// All addresses together: wrong keys in the window, and when it started.
    total: Option<(u32, Instant)>,
}

impl Throttled {
    fn under_pressure(&self, now: Instant) -> bool {
        self.total
            .is_some_and(|(count, since)| count > LOGIN_PRESSURE && now < since + LOGIN_WINDOW)
    }
}

/// What the throttle tracks for a client address: IPv4 addresses one by one, IPv6 addresses by
/// their /64 (one host usually holds a whole /64).
fn login_slot(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl LoginThrottle {
    /// `Err(wait)` while the address is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), std::time::Duration> {
        let inner = self.inner.lock().unwrap();
        let allowed = if inner.under_pressure(now) {
            LOGIN_FAILURES_UNDER_PRESSURE
        } else {
            LOGIN_FAILURES
        };
        match inner.failures.get(&login_slot(ip)) {
            Some((count, since)) if *count >= allowed && now < *since + LOGIN_WINDOW => {
                Err(*since + LOGIN_WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let ip = login_slot(ip);
        let mut inner = self.inner.lock().unwrap();
        let total = inner.total.get_or_insert((0, now));
        if now >= total.1 + LOGIN_WINDOW {
            *total = (0, now);
        }
        total.0 = total.0.saturating_add(1);
        let Throttled {
            failures, started, ..
        } = &mut *inner;
        // Full: the address whose window started first is forgotten (an expired one, if any).
        while !failures.contains_key(&ip) && failures.len() >= LOGIN_ADDRESSES {
            let Some((oldest, since)) = started.pop_front() else {
                break;
            };
            if failures.get(&oldest).is_some_and(|(_, s)| *s == since) {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if entry.0 == 0 || now >= entry.1 + LOGIN_WINDOW {
            *entry = (0, now);
            started.push_back((ip, now));
        }
        entry.0 = entry.0.saturating_add(1);
        // Pairs left by restarted or forgotten windows never outnumber the live ones for long.
        if started.len() > 2 * failures.len() + 64 {
            started.retain(|(ip, since)| failures.get(ip).is_some_and(|(_, s)| s == since));
        }
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.inner.lock().unwrap().failures.remove(&login_slot(ip));
    }
}

impl Auth {
    pub fn new(config: &AuthConfig) -> Auth {
        let key = config
            .master_key
            .as_ref()
            .map(|k| k.expose().as_bytes().to_vec());
        let oidc = OidcClient::start(&config.oidc).map(Arc::new);
        // Sessions are signed with a key derived from the master key, or else from the OpenID
        // client's secret (a console reached by single sign-on only).
        let session_secret = key.clone().or_else(|| {
            oidc.as_ref()
                .and(config.oidc.client_secret.as_ref())
                .map(|s| {
                    let mut v = b"oidc:".to_vec();
                    v.extend_from_slice(s.expose().as_bytes());
                    v
                })
        });
        Auth {
            master: key.as_deref().map(blake3::hash),
            oidc,
            jwt: config
                .jwt
                .is_enabled()
                .then(|| JwtVerifier::start(&config.jwt)),
            session_key: session_secret.as_deref().map_or([0; 32], |k| {
                blake3::derive_key("llm-bridge console session v1", k)
            }),
            logins: LoginThrottle::default(),
        }
    }

    /// No master key, no trusted issuer, no sign-in: anyone may use everything.
    pub fn is_open(&self) -> bool {
        self.master.is_none() && self.jwt.is_none() && self.oidc.is_none()
    }

    pub fn has_master_key(&self) -> bool {
        self.master.is_some()
    }

    /// Constant-time: compares fixed-size hashes (`blake3::Hash` equality is constant-time).
    pub fn is_master_key(&self, candidate: &str) -> bool {
        self.master
            .is_some_and(|m| m == blake3::hash(candidate.as_bytes()))
    }

    pub fn new_session(&self, role: Role) -> String {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the operating system's random source");
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        self.sign(&format!("{nonce}.{}", role.as_str()), SESSION_SECONDS)
    }

    /// `<expires>.<content>.<mac>`: the content, readable by anyone, changeable by no one.
    fn sign(&self, content: &str, seconds: u64) -> String {
        let payload = format!("{}.{content}", crate::clock::now_s() + seconds);
        let mac = blake3::keyed_hash(&self.session_key, payload.as_bytes());
        format!("{payload}.{}", mac.to_hex())
    }

    /// The content of a value [`Auth::sign`] made, while it has not expired.
    fn signed<'a>(&self, token: &'a str) -> Option<&'a str> {
        let (payload, mac) = token.rsplit_once('.')?;
        let mac = blake3::Hash::from_hex(mac).ok()?;
        let (expires, content) = payload.split_once('.')?;
        let expires: u64 = expires.parse().ok()?;
        (expires > crate::clock::now_s()
            && blake3::keyed_hash(&self.session_key, payload.as_bytes()) == mac)
            .then_some(content)
    }

    /// The role of the request's console session, if it has a valid one.
    pub fn session_role(&self, headers: &HeaderMap) -> Option<Role> {
        let content = self.signed(cookie(headers, COOKIE)?)?;
        // `<nonce>.<role>`; sessions from the master key before roles existed are admins'.
        match content.split_once('.') {
            Some((_, role)) => Role::parse(role),
            None => Some(Role::Admin),
        }
    }

    /// The cookie value that carries a sign-in under way.
    pub fn oidc_cookie(&self, pending: &Pending) -> String {
        self.sign(&pending.encode(), OIDC_SECONDS)
    }

    /// The sign-in under way this browser started, if its cookie is genuine and fresh.
    pub fn oidc_pending(&self, headers: &HeaderMap) -> Option<Pending> {
        Pending::decode(self.signed(cookie(headers, OIDC_COOKIE)?)?)
    }

    /// Who the request's credentials name (`Authorization: Bearer` or `x-api-key`), from what this
    /// replica knows: a virtual key it has not seen yet is `Wrong` here (see [`Auth::recheck`]).
    pub fn identify(&self, headers: &HeaderMap, keys: &KeyRing) -> Identity {
        let Some(sent) = presented(headers) else {
            return match self.session_role(headers) {
                Some(role) => Identity::Known(Caller::Session(role)),
                None => Identity::Nobody,
            };
        };
        if self.is_master_key(sent) {
            return Identity::Known(Caller::Master);
        }
        if let Some(key) = keys.find(sent) {
            return Identity::Known(Caller::Key(key));
        }
        if let Some(jwt) = &self.jwt
            && looks_like_jwt(sent)
        {
            return jwt_identity(jwt.verify(sent));
        }
        if let Some(role) = self.session_role(headers) {
            return Identity::Known(Caller::Session(role));
        }
        if sent.starts_with(SECRET_PREFIX) || !self.is_open() {
            Identity::Wrong
        } else {
            // An open gateway ignores whatever placeholder key an SDK sends.
            Identity::Nobody
        }
    }

    /// Whether the request carries the master key or an admin's console session (always, when
    /// open).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        if self.is_open() || self.session_role(headers) == Some(Role::Admin) {
            return true;
        }
        presented(headers).is_some_and(|k| self.is_master_key(k))
    }

    /// For a request [`Auth::identify`] found `Wrong`: a secret that looks like a virtual key may
    /// have been created on another replica a moment ago, so the key ring looks it up again after
    /// reading the keys from the store (bounded; see [`KeyRing::find_fresh`]). A JWT signed by a
    /// key not held yet is checked again after the issuers' keys are fetched (rate-limited).
    pub async fn recheck(
        &self,
        identity: Identity,
        headers: &HeaderMap,
        keys: &KeyRing,
    ) -> Identity {
        if let Identity::UnknownSigningKey = identity
            && let Some(jwt) = &self.jwt
            && let Some(sent) = presented(headers)
        {
            return jwt_identity(jwt.verify_after_refresh(sent).await);
        }
        if let Identity::Wrong = identity
            && let Some(sent) = presented(headers)
            && let Some(key) = keys.find_fresh(sent).await
        {
            return Identity::Known(Caller::Key(key));
        }
        identity
    }
}

/// The key a request sends: `Authorization: Bearer`, else `x-api-key`, else `x-goog-api-key`
/// (Google's clients; `?key=` is moved there at the front door).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let api_key = || headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let goog_key = || headers.get("x-goog-api-key").and_then(|v| v.to_str().ok());
    bearer.or_else(api_key).or_else(goog_key).map(str::trim)
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

fn jwt_identity(verdict: Verdict) -> Identity {
    match verdict {
        Verdict::Valid(caller) => Identity::Known(Caller::Jwt(Arc::new(caller))),
        Verdict::UnknownKey => Identity::UnknownSigningKey,
        Verdict::Invalid(why) => Identity::Refused(why),
    }
}

/// What a request's credentials name.
pub enum Identity {
    Known(Caller),
    /// No credentials.
    Nobody,
    /// Credentials that match nothing (or a revoked virtual key).
    Wrong,
    /// A JWT signed by a key none of the trusted issuers' key sets held when it arrived.
    UnknownSigningKey,
    /// A JWT that failed verification, and why.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..LOGIN_FAILURES {
            throttle.failed(ip("2001:db8::1"), now);
        }
        assert!(throttle.check(ip("2001:db8::ffff:2"), now).is_err());
        assert!(throttle.check(ip("2001:db8:0:1::1"), now).is_ok());
        for _ in 0..LOGIN_FAILURES {
            throttle.failed(ip("::ffff:192.0.2.1"), now);
        }
        assert!(throttle.check(ip("192.0.2.1"), now).is_err());
        assert!(throttle.check(ip("192.0.2.2"), now).is_ok());
    }

    #[test]
    fn a_full_table_forgets_the_oldest_address_instead_of_sharing_one() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..LOGIN_FAILURES {
            throttle.failed(ip("198.51.100.1"), start);
        }
        assert!(throttle.check(ip("198.51.100.1"), start).is_err());
        let later = start + std::time::Duration::from_secs(1);
        for i in 0..LOGIN_ADDRESSES as u32 + 50 {
            throttle.failed(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), later);
        }
        let inner = throttle.inner.lock().unwrap();
        assert_eq!(inner.failures.len(), LOGIN_ADDRESSES);
        assert!(!inner.failures.contains_key(&ip("198.51.100.1")));
        assert!(inner.started.len() <= 2 * LOGIN_ADDRESSES + 64);
        drop(inner);
        // Under pressure, each address gets one wrong key; one that sent none is not refused.
        assert!(throttle.check(ip("203.0.113.9"), later).is_ok());
        throttle.failed(ip("203.0.113.9"), later);
        assert!(throttle.check(ip("203.0.113.9"), later).is_err());
        // Once the window has passed, the pressure is gone.
        let next = later + LOGIN_WINDOW;
        throttle.failed(ip("203.0.113.10"), next);
        assert!(throttle.check(ip("203.0.113.10"), next).is_ok());
    }
}
