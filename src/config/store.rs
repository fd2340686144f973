use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource, Secret};

/// `[store]`: where stats live. Without `redis_url` the embedded store under `server.data_dir` is used.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `REDIS_URL`, `--redis-url`: `redis://`, `rediss://`, `redis-cluster://` or `redis-sentinel://`.
    pub redis_url: Option<Secret>,
    /// `LLM_BRIDGE_STATS_FLUSH_INTERVAL`: how often buffered request records are written to the store.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// `LLM_BRIDGE_RECENT_REQUESTS`: how many recent requests the request log keeps.
    pub recent_requests: usize,
    /// How long the per-minute series is kept (at least 1 h).
    #[serde(with = "humantime_serde")]
    pub minute_retention: Duration,
    /// How long the per-hour series is kept (at least 1 day).
    #[serde(with = "humantime_serde")]
    pub hour_retention: Duration,
    /// `LLM_BRIDGE_STATS`: `on` or `off`. Off, requests are not recorded (metrics still are).
    pub stats: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            redis_url: None,
            flush_interval: Duration::from_secs(1),
            recent_requests: 1000,
            minute_retention: Duration::from_secs(25 * 3600),
            hour_retention: Duration::from_secs(30 * 24 * 3600),
            stats: true,
        }
    }
}

impl StoreConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(url) = env.var("REDIS_URL") {
            self.redis_url = Some(Secret::new(url));
        }
        if let Some(v) = super::env::parse_env_duration(env, "LLM_BRIDGE_STATS_FLUSH_INTERVAL")? {
            self.flush_interval = v;
        }
        if let Some(v) = super::env::parse_env(env, "LLM_BRIDGE_RECENT_REQUESTS")? {
            self.recent_requests = v;
        }
        if let Some(v) = super::env::parse_env_on_off(env, "LLM_BRIDGE_STATS")? {
            self.stats = v;
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            let scheme = url.expose().split("://").next().unwrap_or_default();
            if !matches!(
                scheme,
                "redis"
                    | "rediss"
                    | "redis-cluster"
                    | "rediss-cluster"
                    | "redis-sentinel"
                    | "rediss-sentinel"
            ) || !url.expose().contains("://")
            {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: "store.redis_url".into(),
                    reason: "expected a URL starting with redis://, rediss://, redis-cluster:// or redis-sentinel://".into(),
                });
            }
        }
        if self.minute_retention < Duration::from_secs(3600) {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: "store.minute_retention".into(),
                reason: "must be at least 1h".into(),
            });
        }
        if self.hour_retention < Duration::from_secs(24 * 3600) {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: "store.hour_retention".into(),
                reason: "must be at least 1d".into(),
            });
        }
        if self.flush_interval.is_zero() {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: "store.flush_interval".into(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(())
    }
}
