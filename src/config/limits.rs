use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::env::parse_env;
use super::{ConfigError, EnvSource};

/// `[limits]`: rate limits per client address (limits per virtual key are set on the key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// `LLM_BRIDGE_IP_RPM`: requests per minute from one client address (`/v1` only).
    pub ip_rpm: Option<u64>,
    /// `LLM_BRIDGE_IP_TPM`: tokens per minute from one client address.
    pub ip_tpm: Option<u64>,
    /// `LLM_BRIDGE_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges whose
    /// `X-Forwarded-For` is believed. From anyone else the header is ignored.
    pub trusted_proxies: Vec<IpNet>,
}

impl LimitsConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(v) = parse_env(env, "LLM_BRIDGE_IP_RPM")? {
            self.ip_rpm = Some(v);
        }
        if let Some(v) = parse_env(env, "LLM_BRIDGE_IP_TPM")? {
            self.ip_tpm = Some(v);
        }
        if let Some(raw) = env.var("LLM_BRIDGE_TRUSTED_PROXIES") {
            self.trusted_proxies = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(parse_net)
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Env {
                    var: "LLM_BRIDGE_TRUSTED_PROXIES".into(),
                    reason,
                })?;
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for (key, value) in [
            ("limits.ip_rpm", self.ip_rpm),
            ("limits.ip_tpm", self.ip_tpm),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: key.into(),
                    reason: "must be at least 1 (leave it out for no limit)".into(),
                });
            }
        }
        Ok(())
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// `10.0.0.0/8` or a single address.
fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is neither an address nor a CIDR range"))
}
