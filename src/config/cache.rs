use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource};

/// `[cache]`: the response cache. Off by default. Entries live in memory (a byte cap, least
/// recently used out first) and, with `store.redis_url` set, in Redis, shared by every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `LLM_BRIDGE_CACHE`: `on` or `off`.
    pub enabled: bool,
    /// `LLM_BRIDGE_CACHE_TTL`: how long an entry serves (a request's `x-llm-bridge-cache-ttl` may
    /// ask for less or more, up to `max_ttl`).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// The longest TTL a request may ask for.
    #[serde(with = "humantime_serde")]
    pub max_ttl: Duration,
    /// `LLM_BRIDGE_CACHE_MAX_ENTRY_BYTES`: larger replies are not cached.
    pub max_entry_bytes: usize,
    /// `LLM_BRIDGE_CACHE_MAX_BYTES`: the most the entries take in memory. Replies being gathered
    /// for an entry take at most a quarter more, all together; past that they are not cached.
    pub max_bytes: usize,
    /// `LLM_BRIDGE_CACHE_SCOPE`: `shared` (every caller sees every entry) or `per-key` (a virtual
    /// key sees only the entries its own requests made).
    pub scope: CacheScope,
    /// `LLM_BRIDGE_CACHE_ONLY_DETERMINISTIC`: cache only requests with `temperature` 0 or a `seed`.
    pub only_deterministic: bool,
    /// Cache replies to requests asking for several choices (`n` > 1).
    pub multiple_choices: bool,
    /// How long a Redis read may take before the request goes on without the cache.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheScope {
    Shared,
    PerKey,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            max_entry_bytes: 1024 * 1024,
            max_bytes: 64 * 1024 * 1024,
            scope: CacheScope::Shared,
            only_deterministic: false,
            multiple_choices: false,
            redis_timeout: Duration::from_millis(100),
        }
    }
}

impl CacheConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(v) = super::env::parse_env_on_off(env, "LLM_BRIDGE_CACHE")? {
            self.enabled = v;
        }
        if let Some(v) = super::env::parse_env_duration(env, "LLM_BRIDGE_CACHE_TTL")? {
            self.ttl = v;
        }
        if let Some(v) = super::env::parse_env(env, "LLM_BRIDGE_CACHE_MAX_ENTRY_BYTES")? {
            self.max_entry_bytes = v;
        }
        if let Some(v) = super::env::parse_env(env, "LLM_BRIDGE_CACHE_MAX_BYTES")? {
            self.max_bytes = v;
        }
        if let Some(v) = env.var("LLM_BRIDGE_CACHE_SCOPE") {
            self.scope = match v.as_str() {
                "shared" => CacheScope::Shared,
                "per-key" => CacheScope::PerKey,
                other => {
                    return Err(ConfigError::Env {
                        var: "LLM_BRIDGE_CACHE_SCOPE".into(),
                        reason: format!("`{other}`: expected `shared` or `per-key`"),
                    });
                }
            };
        }
        if let Some(v) = super::env::parse_env_on_off(env, "LLM_BRIDGE_CACHE_ONLY_DETERMINISTIC")? {
            self.only_deterministic = v;
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("cache.{key}"),
            reason: reason.into(),
        };
        if self.ttl < Duration::from_secs(1) {
            return Err(invalid("ttl", "must be at least 1s"));
        }
        if self.max_ttl < self.ttl {
            return Err(invalid("max_ttl", "must be at least ttl"));
        }
        if self.max_entry_bytes < 1024 {
            return Err(invalid("max_entry_bytes", "must be at least 1024"));
        }
        if self.max_bytes < self.max_entry_bytes {
            return Err(invalid("max_bytes", "must be at least max_entry_bytes"));
        }
        if self.redis_timeout < Duration::from_millis(1)
            || self.redis_timeout > Duration::from_secs(10)
        {
            return Err(invalid("redis_timeout", "must be between 1ms and 10s"));
        }
        Ok(())
    }
}
