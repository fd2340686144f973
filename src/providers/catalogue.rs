//! The catalogue of well-known models (`catalogue.toml`): which provider serves each one, and its price.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CatalogueModel {
    pub id: String,
    pub provider: String,
    pub context_window: u64,
    /// USD per 1M input tokens.
    pub input: f64,
    /// USD per 1M cached input tokens.
    pub cached_input: f64,
    /// USD per 1M output tokens.
    pub output: f64,
}

#[derive(Deserialize)]
struct File {
    model: Vec<CatalogueModel>,
}

pub struct Catalogue {
    models: Vec<CatalogueModel>,
    by_id: HashMap<String, usize>,
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

    pub fn get(&self, id: &str) -> Option<&CatalogueModel> {
        self.by_id.get(id).map(|&i| &self.models[i])
    }

    pub fn all(&self) -> &[CatalogueModel] {
        &self.models
    }

    /// Cost in USD of one request; cached prompt tokens are billed at the cached price.
    pub fn cost(&self, model: &str, prompt: u64, cached: u64, completion: u64) -> Option<f64> {
        let m = self.get(model)?;
        let uncached = prompt.saturating_sub(cached) as f64;
        Some(
            (uncached * m.input + cached as f64 * m.cached_input + completion as f64 * m.output)
                / 1_000_000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
