//! JWT callers: a bearer token signed by a trusted identity provider (`[auth.jwt]`).
//!
//! Each issuer's signing keys (its JWKS) are fetched once, kept in memory and fetched again every
//! `refresh_interval`, and early when a token names a key id none of them has (at most once per
//! `refresh_gap`, however many such tokens arrive). A failed fetch keeps the keys already held.
//! Verification itself never waits: it reads the keys held.
//!
//! The key decides the algorithm: a token must be signed with the algorithm of the key its `kid`
//! names (the key's `alg`, or the one its type implies), so `none`, HMAC with a public key, or an
//! RSA token checked against an EC key are all refused. `iss`, `aud` and `exp` are required;
//! `nbf` is checked when present; a header with `crit` is refused.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use crate::config::{JwtConfig, JwtIssuer};

/// How long one fetch of a discovery document or key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set or discovery document larger than this is refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Keys kept per issuer at most.
const MAX_KEYS: usize = 64;
/// Claims recorded with requests are cut to this many characters.
const MAX_CLAIM_CHARS: usize = 128;

/// A caller whose token was verified.
#[derive(Debug, Clone)]
pub struct JwtCaller {
    pub user: String,
    /// The token's issuer and subject, digested: the same person from the same identity
    /// provider, whatever their display name (what they own on the gateway is keyed by it).
    pub principal: String,
    pub team: Option<String>,
    pub role: Option<String>,
}

/// What checking a token found.
pub enum Verdict {
    Valid(JwtCaller),
    /// Signed with a key id no trusted issuer's key set holds (yet).
    UnknownKey,
    /// Refused, and why (said to the client; never contains the token).
    Invalid(String),
}

/// Why [`JwtVerifier::check`] refused a token.
enum Refusal {
    UnknownKey,
    Invalid(String),
}

impl Refusal {
    /// The reason, once the keys were fetched again.
    fn after_refresh(self) -> String {
        match self {
            Refusal::UnknownKey => "it is signed by a key that no trusted issuer publishes".into(),
            Refusal::Invalid(why) => why,
        }
    }
}

struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

struct Issuer {
    config: JwtIssuer,
    keys: ArcSwap<Vec<SigningKey>>,
    /// When the keys were last asked for (successfully or not).
    asked: Mutex<Option<Instant>>,
    /// One fetch at a time per issuer.
    fetching: tokio::sync::Mutex<()>,
}

pub struct JwtVerifier {
    config: JwtConfig,
    issuers: Vec<Issuer>,
    http: reqwest::Client,
    verified: Verified,
}

/// Tokens already verified, by their hash, until they expire: a client sends the same token with
/// every request, and its signature need not be checked each time. Bounded; emptied whenever an
/// issuer's keys are fetched again.
#[derive(Default)]
struct Verified(Mutex<std::collections::HashMap<blake3::Hash, (JwtCaller, u64)>>);

/// Verified tokens remembered at most.
const VERIFIED_TOKENS: usize = 4096;

impl Verified {
    fn get(&self, digest: &blake3::Hash, now_s: u64) -> Option<JwtCaller> {
        let map = self.0.lock().unwrap();
        let (caller, exp) = map.get(digest)?;
        (*exp > now_s).then(|| caller.clone())
    }

    fn put(&self, digest: blake3::Hash, caller: JwtCaller, exp: u64) {
        let mut map = self.0.lock().unwrap();
        if map.len() >= VERIFIED_TOKENS {
            let now = crate::clock::now_s();
            map.retain(|_, (_, exp)| *exp > now);
            if map.len() >= VERIFIED_TOKENS {
                map.clear();
            }
        }
        map.insert(digest, (caller, exp));
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Whether a presented credential has the shape of a JWT (three base64url parts, a JSON header).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ")
        && token.bytes().filter(|&b| b == b'.').count() == 2
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether a token's header has `crit`: extensions the token says must be understood, and this
/// gateway understands none (RFC 7515 §4.1.11). A header that cannot be read counts as having it.
fn has_critical_extensions(token: &str) -> bool {
    use base64::Engine;
    let Some(header) = token.split('.').next() else {
        return true;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .is_none_or(|header| header.contains_key("crit"))
}

impl JwtVerifier {
    /// The verifier, with a background task that fetches the key sets now and then every
    /// `refresh_interval` (sooner while an issuer has no keys yet).
    pub fn start(config: &JwtConfig) -> Arc<JwtVerifier> {
        let verifier = Arc::new(JwtVerifier {
            config: config.clone(),
            issuers: config
                .issuers
                .iter()
                .map(|c| Issuer {
                    config: c.clone(),
                    keys: ArcSwap::from_pointee(Vec::new()),
                    asked: Mutex::new(None),
                    fetching: tokio::sync::Mutex::new(()),
                })
                .collect(),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(3))
                .build()
                .expect("a TLS client"),
            verified: Verified::default(),
        });
        let weak = Arc::downgrade(&verifier);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                loop {
                    let Some(v) = weak.upgrade() else { return };
                    let mut all_held = true;
                    for i in 0..v.issuers.len() {
                        v.fetch(i).await;
                        all_held &= !v.issuers[i].keys.load().is_empty();
                    }
                    let wait = if all_held {
                        v.config.refresh_interval
                    } else {
                        v.config.refresh_gap.max(Duration::from_secs(1))
                    };
                    drop(v);
                    tokio::time::sleep(wait).await;
                }
            });
        }
        verifier
    }

    /// Checks a token against the keys held, without waiting on anything.
    pub fn verify(&self, token: &str) -> Verdict {
        let digest = blake3::hash(token.as_bytes());
        let now = crate::clock::now_s();
        if let Some(caller) = self.verified.get(&digest, now) {
            return Verdict::Valid(caller);
        }
        match self.check(token) {
            Ok(claims) => {
                let caller = self.caller(&claims);
                if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
                    self.verified.put(digest, caller.clone(), exp);
                }
                Verdict::Valid(caller)
            }
            Err(Refusal::UnknownKey) => Verdict::UnknownKey,
            Err(Refusal::Invalid(why)) => Verdict::Invalid(why),
        }
    }

    /// A token's claims once its signature, issuer, audience and times are checked.
    fn check(&self, token: &str) -> Result<Map<String, Value>, Refusal> {
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            Err(_) => return Err(Refusal::Invalid("it is not a well-formed JWT".into())),
        };
        if has_critical_extensions(token) {
            return Err(Refusal::Invalid(
                "its header lists critical extensions (crit), which this gateway does not support"
                    .into(),
            ));
        }
        let mut found = None;
        for issuer in &self.issuers {
            let keys = issuer.keys.load();
            let matching = keys.iter().position(|k| match (&header.kid, &k.kid) {
                (Some(kid), Some(key_kid)) => kid == key_kid,
                (None, _) => k.alg == header.alg,
                (Some(_), None) => false,
            });
            if let Some(i) = matching {
                found = Some((issuer, keys, i));
                break;
            }
        }
        let Some((issuer, keys, i)) = found else {
            return Err(Refusal::UnknownKey);
        };
        let key = &keys[i];
        if header.alg != key.alg {
            return Err(Refusal::Invalid(format!(
                "its algorithm {:?} is not its key's ({:?})",
                header.alg, key.alg
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer.config.issuer.as_str()]);
        validation.set_audience(&issuer.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => Err(Refusal::Invalid(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "it has expired",
                    ErrorKind::ImmatureSignature => "it is not valid yet (nbf)",
                    ErrorKind::InvalidAudience => "it is not meant for this gateway (aud)",
                    ErrorKind::InvalidIssuer => "its issuer (iss) does not match its key's",
                    ErrorKind::InvalidSignature => "its signature does not verify",
                    ErrorKind::MissingRequiredClaim(_) => "it lacks exp, iss or aud",
                    ErrorKind::InvalidAlgorithm => "its algorithm does not match its key",
                    _ => "it could not be verified",
                }
                .to_string(),
            )),
        }
    }

    /// A token's checked claims, fetching the keys again first if its key is not held (as
    /// [`JwtVerifier::verify_after_refresh`] does).
    pub async fn claims(&self, token: &str) -> Result<Map<String, Value>, String> {
        match self.check(token) {
            Err(Refusal::UnknownKey) => {
                self.refresh_unknown().await;
                self.check(token).map_err(Refusal::after_refresh)
            }
            Err(Refusal::Invalid(why)) => Err(why),
            Ok(claims) => Ok(claims),
        }
    }

    /// For a token whose key is unknown: fetches the key sets again (unless that happened within
    /// `refresh_gap`), then checks the token once more.
    pub async fn verify_after_refresh(&self, token: &str) -> Verdict {
        self.refresh_unknown().await;
        match self.check(token) {
            Ok(claims) => Verdict::Valid(self.caller(&claims)),
            Err(refusal) => Verdict::Invalid(refusal.after_refresh()),
        }
    }

    /// Fetches the key sets again, except those fetched within `refresh_gap`.
    async fn refresh_unknown(&self) {
        for i in 0..self.issuers.len() {
            let issuer = &self.issuers[i];
            // An issuer whose keys were never fetched (it was down) is asked again sooner.
            let gap = if issuer.keys.load().is_empty() {
                self.config.refresh_gap.min(Duration::from_secs(1))
            } else {
                self.config.refresh_gap
            };
            {
                let mut asked = issuer.asked.lock().unwrap();
                if asked.is_some_and(|t| t.elapsed() < gap) {
                    continue;
                }
                *asked = Some(Instant::now());
            }
            self.fetch(i).await;
        }
    }

    /// Fetches one issuer's keys; on failure the keys held stay.
    async fn fetch(&self, i: usize) {
        let issuer = &self.issuers[i];
        let Ok(_one) = tokio::time::timeout(FETCH_TIMEOUT * 3, issuer.fetching.lock()).await else {
            return;
        };
        *issuer.asked.lock().unwrap() = Some(Instant::now());
        match tokio::time::timeout(FETCH_TIMEOUT * 2, self.read_keys(&issuer.config)).await {
            Ok(Ok(keys)) => {
                tracing::debug!(issuer = %issuer.config.issuer, keys = keys.len(), "JWT signing keys fetched");
                issuer.keys.store(Arc::new(keys));
                // A key the issuer withdrew must stop working: check every token afresh.
                self.verified.clear();
            }
            Ok(Err(e)) => {
                tracing::warn!(issuer = %issuer.config.issuer, error = %e, "cannot fetch the JWT signing keys; keeping the ones held")
            }
            Err(_) => {
                tracing::warn!(issuer = %issuer.config.issuer, "fetching the JWT signing keys timed out; keeping the ones held")
            }
        }
    }

    async fn read_keys(&self, issuer: &JwtIssuer) -> Result<Vec<SigningKey>, String> {
        let jwks_url = match &issuer.jwks_url {
            Some(url) => url.clone(),
            None => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.issuer.trim_end_matches('/')
                );
                let discovery = self.get_json(&url).await?;
                let uri = discovery
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("the discovery document has no jwks_uri")?;
                if !(uri.starts_with("https://") || uri.starts_with("http://")) {
                    return Err("the discovery document's jwks_uri is not an http(s) URL".into());
                }
                uri.to_string()
            }
        };
        let set = self.get_json(&jwks_url).await?;
        let keys = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the key set has no `keys` array")?;
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter_map(|jwk| signing_key(&jwk))
            .take(MAX_KEYS)
            .collect())
    }

    /// The HTTP client for identity providers (timeouts set).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(super) async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// The caller a verified token names.
    pub fn caller(&self, claims: &Map<String, Value>) -> JwtCaller {
        let text = |name: &str| -> Option<String> {
            let value = match claims.get(name)? {
                Value::String(s) => s.as_str(),
                // A list of groups: the first one.
                Value::Array(items) => items.first()?.as_str()?,
                _ => return None,
            };
            let clean: String = value
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_CLAIM_CHARS)
                .collect();
            (!clean.is_empty()).then_some(clean)
        };
        let user = text(&self.config.user_claim).unwrap_or_else(|| "(unnamed)".into());
        JwtCaller {
            principal: principal(claims, &user),
            user,
            team: text(&self.config.team_claim),
            role: text(&self.config.role_claim),
        }
    }
}

/// A fixed-length digest of the token's issuer and subject (the user claim when it has no `sub`).
fn principal(claims: &Map<String, Value>, user: &str) -> String {
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let mut hasher = blake3::Hasher::new();
    hasher.update(claim("iss").unwrap_or("").as_bytes());
    hasher.update(b"\0");
    hasher.update(claim("sub").unwrap_or(user).as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// A key usable for verifying signatures, with the one algorithm it verifies.
fn signing_key(jwk: &Jwk) -> Option<SigningKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        // Symmetric keys are never published for verification; other curves are not supported.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => implied,
        Some(KeyAlgorithm::RS256) => Algorithm::RS256,
        Some(KeyAlgorithm::RS384) => Algorithm::RS384,
        Some(KeyAlgorithm::RS512) => Algorithm::RS512,
        Some(KeyAlgorithm::PS256) => Algorithm::PS256,
        Some(KeyAlgorithm::PS384) => Algorithm::PS384,
        Some(KeyAlgorithm::PS512) => Algorithm::PS512,
        Some(KeyAlgorithm::ES256) => Algorithm::ES256,
        Some(KeyAlgorithm::ES384) => Algorithm::ES384,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
        Some(_) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    // A key's `alg` must fit its type (an RSA key claiming ES256 is dropped).
    let fits = match implied {
        Algorithm::RS256 => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        other => alg == other,
    };
    fits.then(|| SigningKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jwt_shaped_credentials_are_treated_as_tokens() {
        assert!(looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"));
        assert!(!looks_like_jwt("sk-llmb-0123456789abcdef"));
        assert!(!looks_like_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0"));
        assert!(!looks_like_jwt("eyJ.a b.c"));
    }

    #[test]
    fn keys_verify_only_the_algorithm_their_type_allows() {
        let rsa: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA", "kid": "r", "alg": "ES256", "n": "AQAB", "e": "AQAB"
        }))
        .unwrap();
        assert!(signing_key(&rsa).is_none(), "an RSA key claiming ES256");
        let ec: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "kid": "e", "crv": "P-256",
            "x": "Y16U1TrIzlyzCHIMdG_2HjTPP8S3eUKSrBVTYQ0PbRY",
            "y": "Y16U1TrIzlyzCHIMdG_2HjTPP8S3eUKSrBVTYQ0PbRY"
        }))
        .unwrap();
        assert_eq!(signing_key(&ec).map(|k| k.alg), Some(Algorithm::ES256));
        let oct: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "oct", "kid": "h", "alg": "HS256", "k": "c2VjcmV0"
        }))
        .unwrap();
        assert!(signing_key(&oct).is_none(), "symmetric keys are never used");
    }
}
