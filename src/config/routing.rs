use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[routing]`: how a deployment is chosen, retried and failed over.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Default strategy for every model: `round-robin`, `weighted`, `least-latency` (priority tiers
    /// always apply: a higher `priority` number is used only when every lower one is unavailable).
    pub strategy: Strategy,
    /// Upstream attempts per request, failovers included.
    pub max_attempts: u32,
    /// Deadline for all attempts together, until the reply starts.
    #[serde(with = "humantime_serde")]
    pub total_timeout: Duration,
    /// First back-off before retrying a deployment (doubled each time, with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_base_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// How long a request waits for a deployment under its limits before a 429.
    #[serde(with = "humantime_serde")]
    pub limit_wait: Duration,
    pub circuit: CircuitConfig,
    /// Per-model settings: `[routing.models."gpt-4o-mini"]`.
    pub models: BTreeMap<String, ModelRouting>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            strategy: Strategy::RoundRobin,
            max_attempts: 3,
            total_timeout: Duration::from_secs(180),
            retry_base_delay: Duration::from_millis(25),
            retry_max_delay: Duration::from_secs(2),
            limit_wait: Duration::from_secs(2),
            circuit: CircuitConfig::default(),
            models: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    #[default]
    RoundRobin,
    Weighted,
    LeastLatency,
}

/// `[routing.circuit]`: when a deployment is taken out of rotation, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit.
    pub consecutive_failures: u32,
    /// Error ratio over the recent window that opens it (once `min_requests` were seen).
    pub error_ratio: f64,
    pub min_requests: u32,
    /// How long an open circuit stays open before one trial request (unless `Retry-After` says longer).
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            consecutive_failures: 5,
            error_ratio: 0.5,
            min_requests: 20,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// `[routing.models."<model>"]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelRouting {
    pub strategy: Option<Strategy>,
    /// Models tried in order when every deployment of this one failed: `["deepseek/deepseek-chat"]`.
    pub fallbacks: Vec<String>,
}

impl RoutingConfig {
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("routing.{key}"),
            reason: reason.to_string(),
        };
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.circuit.error_ratio) || self.circuit.error_ratio == 0.0 {
            return Err(invalid("circuit.error_ratio", "must be in (0, 1]"));
        }
        if self.circuit.consecutive_failures == 0 {
            return Err(invalid(
                "circuit.consecutive_failures",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
