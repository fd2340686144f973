use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource, Secret};

/// `[auth.oidc]`: signing in to the console with an OpenID provider (authorization code flow with
/// PKCE). Off while `issuer` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer; its endpoints come from its discovery document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub client_id: String,
    /// `LLM_BRIDGE_OIDC_CLIENT_SECRET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Where the provider sends the browser back: this gateway's `/login/oidc/callback`.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// The ID token claim with the user's role: `admin` or `viewer`.
    pub role_claim: String,
    /// The role of a user whose token has no (known) role; unset: such users are refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_role: Option<String>,
    /// The claim that names the user (in the log).
    pub user_claim: String,
    /// Shown on the login page: "Sign in with <name>".
    pub name: String,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: None,
            client_id: String::new(),
            client_secret: None,
            redirect_url: String::new(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            role_claim: "role".into(),
            default_role: None,
            user_claim: "sub".into(),
            name: "single sign-on".into(),
        }
    }
}

pub const ROLES: [&str; 2] = ["admin", "viewer"];

impl OidcConfig {
    pub fn is_enabled(&self) -> bool {
        self.issuer.is_some()
    }

    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) {
        if let Some(secret) = env.var("LLM_BRIDGE_OIDC_CLIENT_SECRET") {
            self.client_secret = Some(Secret::new(secret));
        }
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("auth.oidc.{key}"),
            reason: reason.into(),
        };
        let url = |u: &str| {
            (u.starts_with("https://") || u.starts_with("http://"))
                && reqwest::Url::parse(u).is_ok_and(|u| u.host().is_some())
        };
        if !url(issuer) {
            return Err(invalid("issuer", "must be an http(s) URL"));
        }
        if !url(&self.redirect_url) || !self.redirect_url.ends_with("/login/oidc/callback") {
            return Err(invalid(
                "redirect_url",
                "must be this gateway's http(s) URL ending in /login/oidc/callback",
            ));
        }
        if self.client_id.is_empty() {
            return Err(invalid("client_id", "must be set"));
        }
        if self
            .client_secret
            .as_ref()
            .is_none_or(|s| s.expose().len() < 8)
        {
            return Err(invalid(
                "client_secret",
                "must be set (at least 8 characters; or LLM_BRIDGE_OIDC_CLIENT_SECRET)",
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(invalid("scopes", "must include `openid`"));
        }
        if let Some(role) = &self.default_role
            && !ROLES.contains(&role.as_str())
        {
            return Err(invalid("default_role", "must be `admin` or `viewer`"));
        }
        if self.name.is_empty() || self.name.len() > 64 {
            return Err(invalid("name", "1 to 64 characters"));
        }
        Ok(())
    }
}
