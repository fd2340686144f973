use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[pricing."<model>"]`: overrides a catalogued model's prices, or adds a model to the catalogue
/// (then `provider` is needed, and the model routes to it). Prices in USD per 1M tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub provider: Option<String>,
    pub input: f64,
    /// Defaults to `input`.
    pub cached_input: Option<f64>,
    pub output: f64,
    pub context_window: Option<u64>,
}

pub(super) fn validate(
    pricing: &BTreeMap<String, PriceConfig>,
    providers: &super::ProvidersConfig,
    origin: &str,
) -> Result<(), ConfigError> {
    for (model, price) in pricing {
        let invalid = |field: &str, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("pricing.{model}.{field}"),
            reason: reason.to_string(),
        };
        if let Some(p) = &price.provider
            && crate::providers::spec::ProviderSpec::find(p).is_none()
            && !providers.custom.iter().any(|c| &c.name == p)
        {
            return Err(invalid(
                "provider",
                "is neither a built-in provider nor a [[providers.custom]] name",
            ));
        }
        for (field, value) in [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cached_input", price.cached_input),
        ] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(invalid(field, "must be a price of zero or more"));
            }
        }
    }
    Ok(())
}
