use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource};

/// `[responses]`: the responses `POST /v1/responses` keeps when a request has `store` (the
/// default), for `GET /v1/responses/{id}` and `previous_response_id`. They live in memory, and in
/// Redis as well when `store.redis_url` is set, so that a conversation continues on any replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponsesConfig {
    /// `LLM_BRIDGE_RESPONSES_TTL`: how long a stored response is kept.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// `LLM_BRIDGE_RESPONSES_MAX_BYTES`: the most the kept responses take in memory; the oldest
    /// go first.
    pub max_bytes: usize,
    /// The largest response (with its conversation) that is kept; larger ones are not stored.
    pub max_entry_bytes: usize,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            ttl: Duration::from_secs(24 * 3600),
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 8 * 1024 * 1024,
        }
    }
}

impl ResponsesConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(v) = super::env::parse_env_duration(env, "LLM_BRIDGE_RESPONSES_TTL")? {
            self.ttl = v;
        }
        if let Some(v) = super::env::parse_env(env, "LLM_BRIDGE_RESPONSES_MAX_BYTES")? {
            self.max_bytes = v;
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("responses.{key}"),
            reason: reason.into(),
        };
        if self.ttl < Duration::from_secs(1) {
            return Err(invalid("ttl", "must be at least 1s"));
        }
        if self.max_entry_bytes < 1024 {
            return Err(invalid("max_entry_bytes", "must be at least 1024"));
        }
        if self.max_bytes < self.max_entry_bytes {
            return Err(invalid("max_bytes", "must be at least max_entry_bytes"));
        }
        Ok(())
    }
}
