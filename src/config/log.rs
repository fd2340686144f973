use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource};

/// `[log]`: how log lines look. The level comes from `RUST_LOG` (default `info`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `LLM_BRIDGE_LOG_FORMAT`: `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(v) = env.var("LLM_BRIDGE_LOG_FORMAT") {
            self.format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Env {
                        var: "LLM_BRIDGE_LOG_FORMAT".into(),
                        reason: format!("`{other}`: expected `text` or `json`"),
                    });
                }
            };
        }
        Ok(())
    }
}
