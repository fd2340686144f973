use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// `[[deployments]]`: one way to serve a model — a provider with its key, base URL and limits.
/// Several deployments of one model are balanced by the model's strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Shown in headers, health and stats; defaults to `<provider>/<upstream model>#<n>`.
    pub name: Option<String>,
    /// The model name clients use.
    pub model: String,
    /// A built-in provider (`openai`, …) or a `[[providers.custom]]` name.
    pub provider: String,
    /// The upstream's name of the model, if different.
    pub upstream_model: Option<String>,
    /// Overrides the provider's key.
    pub api_key: Option<Secret>,
    /// Overrides the provider's base URL (a mirror, another region).
    pub base_url: Option<String>,
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower tiers are preferred; a tier is used only when every lower one is unavailable.
    #[serde(default)]
    pub priority: u32,
    /// Requests per minute this deployment may take.
    pub rpm: Option<u32>,
    /// Tokens per minute (prompt estimate plus completion) this deployment may take.
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u32>,
}

fn one() -> u32 {
    1
}

pub(super) fn validate(
    deployments: &[DeploymentConfig],
    providers: &super::ProvidersConfig,
    origin: &str,
) -> Result<(), ConfigError> {
    for (i, d) in deployments.iter().enumerate() {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("deployments[{i}].{field}"),
            reason,
        };
        let builtin = crate::providers::spec::ProviderSpec::find(&d.provider).is_some();
        let custom = providers.custom.iter().any(|c| c.name == d.provider);
        if !builtin && !custom {
            return Err(invalid(
                "provider",
                format!(
                    "`{}` is neither a built-in provider nor a [[providers.custom]] name",
                    d.provider
                ),
            ));
        }
        if d.model.is_empty() {
            return Err(invalid("model", "must not be empty".into()));
        }
        if d.weight == 0 {
            return Err(invalid("weight", "must be at least 1".into()));
        }
        if let Some(url) = &d.base_url {
            super::providers::check_url(url).map_err(|reason| invalid("base_url", reason))?;
        }
    }
    Ok(())
}
