use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[auth.jwt]`: API callers that send a JWT from a trusted identity provider as their bearer
/// token. A verified caller acts as the team its token names (see `[[teams]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// The identity providers whose tokens are accepted.
    pub issuers: Vec<JwtIssuer>,
    /// Clock difference tolerated when checking `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// The claim that names the user (recorded with each request).
    pub user_claim: String,
    /// The claim that names the caller's team.
    pub team_claim: String,
    /// The claim that carries the caller's role (`admin` or `viewer`).
    pub role_claim: String,
    /// A token whose key id is unknown makes the gateway fetch the issuer's keys again, at most
    /// once per this interval.
    #[serde(with = "humantime_serde")]
    pub refresh_gap: Duration,
    /// The keys are also fetched again this often, so that keys an issuer withdrew stop working.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

/// One trusted identity provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// The `iss` its tokens carry; its OpenID discovery document is read from
    /// `<issuer>/.well-known/openid-configuration` unless `jwks_url` is given.
    pub issuer: String,
    /// Where its signing keys are (a JSON Web Key Set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The `aud` values accepted: a token must name at least one.
    pub audiences: Vec<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            issuers: Vec::new(),
            leeway: Duration::from_secs(30),
            user_claim: "sub".into(),
            team_claim: "team".into(),
            role_claim: "role".into(),
            refresh_gap: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(3600),
        }
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && reqwest::Url::parse(url).is_ok_and(|u| u.host().is_some())
}

impl JwtConfig {
    pub fn is_enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            reason: reason.into(),
        };
        for (i, issuer) in self.issuers.iter().enumerate() {
            let key = |field: &str| format!("auth.jwt.issuers[{i}].{field}");
            if !is_http_url(&issuer.issuer) {
                return Err(invalid(key("issuer"), "must be an http(s) URL"));
            }
            if let Some(url) = &issuer.jwks_url
                && !is_http_url(url)
            {
                return Err(invalid(key("jwks_url"), "must be an http(s) URL"));
            }
            if issuer.audiences.is_empty() || issuer.audiences.iter().any(String::is_empty) {
                return Err(invalid(
                    key("audiences"),
                    "name at least one audience; tokens must be meant for this gateway",
                ));
            }
        }
        for (field, claim) in [
            ("user_claim", &self.user_claim),
            ("team_claim", &self.team_claim),
            ("role_claim", &self.role_claim),
        ] {
            if claim.is_empty() {
                return Err(invalid(format!("auth.jwt.{field}"), "must not be empty"));
            }
        }
        if self.leeway > Duration::from_secs(600) {
            return Err(invalid("auth.jwt.leeway".into(), "must be at most 10m"));
        }
        if self.refresh_interval < Duration::from_secs(1) {
            return Err(invalid(
                "auth.jwt.refresh_interval".into(),
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}
