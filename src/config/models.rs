use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[models]`: names clients may use besides the catalogue's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// `fast = "deepseek/deepseek-chat"`: an alias and the model it stands for.
    pub aliases: BTreeMap<String, String>,
}

impl ModelsConfig {
    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for (alias, target) in &self.aliases {
            if target.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: format!("models.aliases.{alias}"),
                    reason: "the target model is empty".into(),
                });
            }
            if self.aliases.contains_key(target) {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: format!("models.aliases.{alias}"),
                    reason: format!(
                        "points to another alias `{target}`; aliases must name a model"
                    ),
                });
            }
        }
        Ok(())
    }
}
