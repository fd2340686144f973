use std::collections::BTreeMap;

use super::ConfigError;

/// `[pricing."<model>"]`: the catalogue's price override, read as it is.
pub use crate::providers::catalogue::PriceOverride as PriceConfig;

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
