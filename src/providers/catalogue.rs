//! The catalogue of well-known models (`catalogue.toml`): which provider serves each one, and its price.

use crate::domain::ModelPrice;
use std::collections::HashMap;

use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    model: Vec<ModelPrice>,
}

pub struct Catalogue {
    models: Vec<ModelPrice>,
    /// foldhash: looked up several times per request; the ids come from the catalogue and the
    /// configuration, never from a client.
    by_id: HashMap<String, usize, foldhash::fast::RandomState>,
}

/// `[pricing."<model>"]`: overrides a catalogued model's prices, or adds a model to the catalogue
/// (then `provider` is needed, and the model routes to it). Prices in USD per 1M tokens.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub provider: Option<String>,
    pub input: f64,
    /// Defaults to `input`.
    pub cached_input: Option<f64>,
    pub output: f64,
    /// USD per 1M tokens written to the prompt cache; defaults to the catalogue's, else `input`.
    pub cache_write: Option<f64>,
    pub context_window: Option<u64>,
}

impl Catalogue {
    pub fn builtin() -> Catalogue {
        let file: File =
            toml::from_str(include_str!("catalogue.toml")).expect("catalogue.toml is valid");
        let by_id = file
            .model
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        Catalogue {
            models: file.model,
            by_id,
        }
    }

    /// The built-in catalogue with the configuration's `[pricing]` applied.
    pub fn with_overrides(
        pricing: &std::collections::BTreeMap<String, PriceOverride>,
    ) -> Catalogue {
        let mut catalogue = Catalogue::builtin();
        for (id, price) in pricing {
            let cached = price.cached_input.unwrap_or(price.input);
            match catalogue.by_id.get(id) {
                Some(&i) => {
                    let m = &mut catalogue.models[i];
                    (m.input, m.cached_input, m.output) = (price.input, cached, price.output);
                    if price.cache_write.is_some() {
                        m.cache_write = price.cache_write;
                    }
                    if let Some(p) = &price.provider {
                        m.provider = p.clone();
                    }
                    if let Some(w) = price.context_window {
                        m.context_window = w;
                    }
                }
                None => {
                    let Some(provider) = price.provider.clone() else {
                        tracing::warn!(model = %id, "[pricing] entry for an unknown model without `provider`: ignored");
                        continue;
                    };
                    catalogue.by_id.insert(id.clone(), catalogue.models.len());
                    catalogue.models.push(ModelPrice {
                        id: id.clone(),
                        provider,
                        context_window: price.context_window.unwrap_or(0),
                        input: price.input,
                        cached_input: cached,
                        output: price.output,
                        cache_write: price.cache_write,
                    });
                }
            }
        }
        catalogue
    }

    pub fn get(&self, id: &str) -> Option<&ModelPrice> {
        self.by_id.get(id).map(|&i| &self.models[i])
    }

    pub fn all(&self) -> &[ModelPrice] {
        &self.models
    }

    /// Cost in USD of one request; cached prompt tokens are billed at the cached price.
    pub fn cost(&self, model: &str, prompt: u64, cached: u64, completion: u64) -> Option<f64> {
        self.cost_with_writes(model, prompt, cached, 0, completion)
    }

    /// [`Self::cost`] with `written` of the prompt tokens written to the prompt cache, billed at
    /// the cache-write price instead of the input price.
    pub fn cost_with_writes(
        &self,
        model: &str,
        prompt: u64,
        cached: u64,
        written: u64,
        completion: u64,
    ) -> Option<f64> {
        let m = self.get(model)?;
        let written = written.min(prompt - cached.min(prompt));
        let surcharge = m
            .cache_write
            .map_or(0.0, |w| written as f64 * (w - m.input) / 1_000_000.0);
        Some(
            crate::domain::cost_usd(
                [m.input, m.cached_input, m.output],
                prompt,
                cached,
                completion,
            ) + surcharge,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_cost_and_console_estimate_agree_and_clamp_cached_tokens() {
        let catalogue = Catalogue::with_overrides(&Default::default());
        let m = catalogue.get("gpt-4o-mini").expect("catalogued");
        let price = m.clone();
        for (prompt, cached, completion) in [(1000, 200, 50), (10, 40, 5), (0, 0, 0)] {
            let recorded = catalogue
                .cost("gpt-4o-mini", prompt, cached, completion)
                .unwrap();
            assert_eq!(recorded, price.cost(prompt, cached, completion));
        }
        // More cached tokens than the prompt: billed as a fully cached prompt.
        assert_eq!(
            catalogue.cost("gpt-4o-mini", 10, 40, 0),
            catalogue.cost("gpt-4o-mini", 10, 10, 0)
        );
    }

    #[test]
    fn every_builtin_provider_has_models_and_ids_are_unique() {
        let c = Catalogue::builtin();
        assert_eq!(c.by_id.len(), c.all().len(), "duplicate model ids");
        for spec in crate::providers::BUILTIN {
            assert!(
                c.all().iter().any(|m| m.provider == spec.id),
                "no model for {}",
                spec.id
            );
        }
        for m in c.all() {
            assert!(
                crate::providers::spec::ProviderSpec::find(&m.provider).is_some(),
                "{}",
                m.id
            );
        }
    }

    #[test]
    fn config_overrides_and_adds_prices() {
        let toml = "[pricing.gpt-4o-mini]\ninput = 1.0\noutput = 2.0\n[pricing.\"llama3.2\"]\nprovider = \"ollama\"\ninput = 0.0\noutput = 0.0\n";
        let pricing: toml::Table = toml::from_str(toml).unwrap();
        let pricing = pricing["pricing"].clone().try_into().unwrap();
        let c = Catalogue::with_overrides(&pricing);
        let m = c.get("gpt-4o-mini").unwrap();
        assert_eq!((m.input, m.cached_input, m.output), (1.0, 1.0, 2.0));
        assert_eq!(c.get("llama3.2").unwrap().provider, "ollama");
        assert_eq!(c.cost("gpt-4o-mini", 1_000_000, 0, 1_000_000), Some(3.0));
    }

    #[test]
    fn cost_uses_cached_price() {
        let c = Catalogue::builtin();
        // gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out per 1M.
        let cost = c
            .cost("gpt-4o-mini", 1_000_000, 400_000, 1_000_000)
            .unwrap();
        assert!(
            (cost - (0.6 * 0.15 + 0.4 * 0.075 + 0.60)).abs() < 1e-12,
            "{cost}"
        );
        assert!(c.cost("nope", 1, 0, 1).is_none());
    }

    #[test]
    fn cache_writes_cost_the_cache_write_price() {
        let c = Catalogue::builtin();
        // claude-sonnet-4-5: 3.00 in, 0.30 cached, 3.75 cache write, 15.00 out per 1M.
        let cost = c
            .cost_with_writes("claude-sonnet-4-5", 1_000_000, 200_000, 500_000, 0)
            .unwrap();
        let expected = 0.3 * 3.0 + 0.2 * 0.3 + 0.5 * 3.75;
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
        // Without a cache-write price, writes cost the input price.
        let plain = c.cost_with_writes("gpt-4o-mini", 1000, 0, 1000, 0).unwrap();
        assert_eq!(plain, c.cost("gpt-4o-mini", 1000, 0, 0).unwrap());
    }
}
