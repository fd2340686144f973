use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource, Secret};

/// `[auth]`: who may use the gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `LLM_BRIDGE_MASTER_KEY`: when set, `/v1` needs it as `Authorization: Bearer` (or `x-api-key`),
    /// `/api` and `/metrics` need it too, and the console needs a login with it. Unset: open.
    pub master_key: Option<Secret>,
    pub jwt: super::jwt::JwtConfig,
    pub oidc: super::oidc::OidcConfig,
}

impl AuthConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(key) = env.var("LLM_BRIDGE_MASTER_KEY") {
            self.master_key = Some(Secret::new(key));
        }
        self.oidc.apply_env(env);
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if let Some(key) = &self.master_key
            && key.expose().len() < 16
        {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: "auth.master_key".into(),
                reason: "must be at least 16 characters".into(),
            });
        }
        self.jwt.validate(origin)?;
        self.oidc.validate(origin)
    }
}
