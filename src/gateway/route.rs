//! Resolving the model a client names to the provider that serves it and the upstream's model name.

use std::sync::Arc;
use std::time::Instant;

use crate::api::error::ApiError;
use crate::providers::Provider;
use crate::routing::Candidate;

use super::Gateway;

#[derive(Debug, Clone)]
pub struct Route {
    pub provider: Arc<Provider>,
    /// The model name the upstream knows.
    pub model: String,
}

impl Gateway {
    /// `alias` → its target; `provider/model` → that provider; a catalogued name → its provider;
    /// a model a provider lists in the config → that provider; anything else → 404.
    pub fn resolve(&self, requested: &str) -> Result<Route, ApiError> {
        let name = self
            .aliases
            .get(requested)
            .map_or(requested, String::as_str);
        if let Some((prefix, model)) = name.split_once('/')
            && self.providers.status(prefix).is_some()
        {
            return self.enabled(prefix, model, requested);
        }
        if let Some(entry) = self.catalogue.get(name) {
            return self.enabled(&entry.provider, name, requested);
        }
        if let Some(provider) = self
            .providers
            .enabled()
            .iter()
            .find(|p| p.extra_models.iter().any(|m| m == name))
        {
            return Ok(Route {
                provider: provider.clone(),
                model: name.to_string(),
            });
        }
        Err(ApiError::model_not_found(requested))
    }

    fn enabled(&self, provider: &str, model: &str, requested: &str) -> Result<Route, ApiError> {
        if model.is_empty() {
            return Err(ApiError::model_not_found(requested));
        }
        match self.providers.get(provider) {
            Some(p) => Ok(Route {
                provider: p.clone(),
                model: model.to_string(),
            }),
            None => {
                let status = self.providers.status(provider).expect("known provider");
                Err(ApiError::invalid_request(format!(
                    "The model `{requested}` is served by {}, which is not configured: set {} to enable it.",
                    status.display_name, status.enable_with
                ))
                .with_param("model")
                .with_code("provider_not_configured"))
            }
        }
    }
}

impl Gateway {
    /// The deployments to try for a model, in order: its own (by strategy and health), then those
    /// of its fallback models.
    pub fn plan(&self, requested: &str) -> Result<Vec<Candidate>, ApiError> {
        let now = Instant::now();
        let mut plan = self.candidates(requested, now)?;
        let target = self
            .aliases
            .get(requested)
            .map_or(requested, String::as_str);
        let fallbacks = match self.routing.fallbacks(requested) {
            [] => self.routing.fallbacks(target),
            f => f,
        };
        for fallback in fallbacks {
            match self.candidates(fallback, now) {
                Ok(more) => plan.extend(more),
                Err(e) => {
                    tracing::debug!(model = requested, fallback = %fallback, error = %e, "fallback unusable")
                }
            }
        }
        Ok(plan)
    }

    fn candidates(&self, requested: &str, now: Instant) -> Result<Vec<Candidate>, ApiError> {
        let name = self
            .aliases
            .get(requested)
            .map_or(requested, String::as_str);
        if let Some(candidates) = self.routing.group_candidates(name, now) {
            return Ok(candidates);
        }
        let route = self.resolve(name)?;
        Ok(self
            .routing
            .provider_candidates(&route.provider.name, &route.model, now))
    }
}
