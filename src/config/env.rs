use std::collections::HashMap;

use super::ConfigError;

/// Where environment variables come from: the process, or a map in tests.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.is_empty())
    }
}

pub(crate) fn parse_env<T: std::str::FromStr>(
    env: &dyn EnvSource,
    var: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.var(var) {
        None => Ok(None),
        Some(raw) => raw.trim().parse().map(Some).map_err(|e| ConfigError::Env {
            var: var.to_string(),
            reason: format!("`{raw}`: {e}"),
        }),
    }
}

pub(crate) fn parse_env_duration(
    env: &dyn EnvSource,
    var: &str,
) -> Result<Option<std::time::Duration>, ConfigError> {
    match env.var(var) {
        None => Ok(None),
        Some(raw) => humantime::parse_duration(raw.trim())
            .map(Some)
            .map_err(|e| ConfigError::Env {
                var: var.to_string(),
                reason: format!("`{raw}`: {e} (expected e.g. \"30s\")"),
            }),
    }
}

/// `on`/`true`/`1` or `off`/`false`/`0`.
pub(crate) fn parse_env_on_off(
    env: &dyn EnvSource,
    var: &str,
) -> Result<Option<bool>, ConfigError> {
    match env.var(var).as_deref() {
        None => Ok(None),
        Some("on" | "true" | "1") => Ok(Some(true)),
        Some("off" | "false" | "0") => Ok(Some(false)),
        Some(other) => Err(ConfigError::Env {
            var: var.to_string(),
            reason: format!("`{other}`: expected `on` or `off`"),
        }),
    }
}
