//! Console sign-in with an OpenID provider (`[auth.oidc]`): the authorization code flow with PKCE.
//!
//! The browser is sent to the provider with a fresh `state`, `nonce` and PKCE challenge; the three
//! travel with the browser in a short-lived cookie signed by the gateway (so any replica can finish
//! the sign-in). On the way back the `state` must match, the code is exchanged at the provider's
//! token endpoint with the PKCE verifier, and the ID token is verified like any JWT (signature
//! against the provider's published keys, `iss`, `aud` = the client id, `exp`) and must carry the
//! `nonce`. Its role claim decides what the session may do.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::Digest;

use super::Role;
use super::jwt::JwtVerifier;
use crate::config::{JwtConfig, JwtIssuer, OidcConfig};

/// How long the token endpoint may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in under way: what the callback must find again.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Pending {
    /// A sign-in with fresh random values.
    pub fn fresh() -> Pending {
        Pending {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }

    /// Its parts joined for the signed cookie (none of them contains `.`).
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.state, self.nonce, self.verifier)
    }

    pub fn decode(text: &str) -> Option<Pending> {
        let mut parts = text.split('.');
        let pending = Pending {
            state: parts.next()?.to_string(),
            nonce: parts.next()?.to_string(),
            verifier: parts.next()?.to_string(),
        };
        parts.next().is_none().then_some(pending)
    }

    fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(self.verifier.as_bytes()))
    }
}

struct Endpoints {
    authorization: String,
    token: String,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: String,
    pub role: Role,
}

pub struct OidcClient {
    config: OidcConfig,
    verifier: Arc<JwtVerifier>,
    endpoints: ArcSwapOption<Endpoints>,
}

impl OidcClient {
    pub fn start(config: &OidcConfig) -> Option<OidcClient> {
        let issuer = config.issuer.clone()?;
        let verifier = JwtVerifier::start(&JwtConfig {
            issuers: vec![JwtIssuer {
                issuer,
                jwks_url: None,
                audiences: vec![config.client_id.clone()],
            }],
            user_claim: config.user_claim.clone(),
            role_claim: config.role_claim.clone(),
            ..JwtConfig::default()
        });
        Some(OidcClient {
            config: config.clone(),
            verifier,
            endpoints: ArcSwapOption::empty(),
        })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The provider's endpoints, read from its discovery document once.
    async fn endpoints(&self) -> Result<Arc<Endpoints>, String> {
        if let Some(e) = self.endpoints.load_full() {
            return Ok(e);
        }
        let issuer = self.config.issuer.as_deref().unwrap_or_default();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.verifier.get_json(&url).await?;
        let endpoint = |name: &str| -> Result<String, String> {
            doc.get(name)
                .and_then(Value::as_str)
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .map(str::to_string)
                .ok_or_else(|| format!("the discovery document has no usable {name}"))
        };
        let endpoints = Arc::new(Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
        });
        self.endpoints.store(Some(endpoints.clone()));
        Ok(endpoints)
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, pending: &Pending) -> Result<String, String> {
        let endpoints = self.endpoints().await?;
        let mut url = reqwest::Url::parse(&endpoints.authorization)
            .map_err(|e| format!("the authorization endpoint: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_url)
            .append_pair("scope", &self.config.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges the code and checks the ID token; the user and the role it grants.
    pub async fn finish(&self, code: &str, pending: &Pending) -> Result<SignedIn, String> {
        let endpoints = self.endpoints().await?;
        let secret = self
            .config
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string());
        let response = self
            .verifier
            .http()
            .post(&endpoints.token)
            .timeout(TOKEN_TIMEOUT)
            .basic_auth(&self.config.client_id, secret)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.config.redirect_url.as_str()),
                ("code_verifier", pending.verifier.as_str()),
            ])
            .send()
            .await
            .map_err(|e| format!("the token endpoint: {}", e.without_url()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the token endpoint's reply: {}", e.without_url()))?;
        let body: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("the token endpoint's reply is not JSON: {e}"))?;
        if !status.is_success() {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("?");
            return Err(format!(
                "the token endpoint refused the code: HTTP {status}, {}",
                crate::telemetry::escape_controls(error)
            ));
        }
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or("the token endpoint's reply has no id_token")?;
        let claims = self
            .verifier
            .claims(id_token)
            .await
            .map_err(|why| format!("the ID token was refused: {why}"))?;
        if claims.get("nonce").and_then(Value::as_str) != Some(pending.nonce.as_str()) {
            return Err("the ID token does not carry this sign-in's nonce".into());
        }
        let caller = self.verifier.caller(&claims);
        let role = caller
            .role
            .as_deref()
            .or(self.config.default_role.as_deref())
            .and_then(Role::parse)
            .ok_or_else(|| {
                format!(
                    "the ID token gives `{}` no role (claim `{}`: admin or viewer)",
                    caller.user, self.config.role_claim
                )
            })?;
        Ok(SignedIn {
            user: caller.user,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_sign_ins_survive_the_cookie() {
        let p = Pending::fresh();
        assert_eq!(Pending::decode(&p.encode()), Some(p.clone()));
        assert_ne!(p.state, Pending::fresh().state);
        assert!(Pending::decode("a.b").is_none());
        assert!(Pending::decode("a.b.c.d").is_none());
        // RFC 7636's example: the S256 challenge of its verifier.
        let rfc = Pending {
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
            ..p
        };
        assert_eq!(
            rfc.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
