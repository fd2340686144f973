//! Resolving the model a client names to the provider that serves it and the upstream's model name.

use std::sync::Arc;
use std::time::Instant;

use crate::error::ApiError;
use crate::providers::openai_types::Model;
use crate::routing::Candidate;
use crate::routing::Provider;

use super::Gateway;
use super::record::Recording;

/// Longest model name the gateway accepts (400 past it).
pub const MAX_MODEL_NAME: usize = 256;

/// The characters a model name may use besides ASCII letters and digits: enough for every
/// provider's names (`gpt-4o-mini`, `llama3.1:8b`, `Qwen/Qwen2.5-7B-Instruct`,
/// `claude-3-5-sonnet@20240620`, `openai/gpt-4o`) and nothing that changes a URL's meaning.
pub const MODEL_NAME_PUNCTUATION: &str = "-._:/@+";

pub use crate::domain::OTHER_MODEL;

/// How many model names outside the configuration and the catalogue get their own stats series,
/// once an upstream has answered them (`provider/model` names of local or custom servers).
const MAX_ANSWERED_MODELS: usize = 256;

/// Refuses model names that are too long, use other characters, or hold `.`/`..` path segments.
pub fn check_model_name(name: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        let shown: String = name.chars().take(64).collect();
        let ellipsis = if name.chars().count() > 64 { "…" } else { "" };
        Err(ApiError::invalid_request(format!(
            "Invalid model name `{}{ellipsis}`: {why}",
            shown.escape_default()
        ))
        .with_param("model")
        .with_code("invalid_model"))
    };
    if name.is_empty() {
        return refuse("it is empty.");
    }
    if name.len() > MAX_MODEL_NAME {
        return refuse(&format!(
            "it is {} bytes long; the limit is {MAX_MODEL_NAME}.",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !MODEL_NAME_PUNCTUATION.contains(*c))
    {
        return refuse(&format!(
            "`{}` is not allowed; model names use ASCII letters, digits and `{MODEL_NAME_PUNCTUATION}`.",
            c.escape_default()
        ));
    }
    if name
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return refuse("`.` and `..` are not allowed as path segments.");
    }
    Ok(())
}

/// Names outside the configuration and the catalogue that an upstream has answered.
#[derive(Default)]
pub struct AnsweredModels(std::sync::Mutex<std::collections::HashSet<String>>);

impl AnsweredModels {
    /// Whether `name` has its own series: it has been answered before, or is answered now and
    /// there is room for one more.
    fn admit(&self, name: &str, answered: bool) -> bool {
        let mut names = self.0.lock().unwrap();
        if names.contains(name) {
            return true;
        }
        if answered && names.len() < MAX_ANSWERED_MODELS {
            names.insert(name.to_string());
            return true;
        }
        false
    }
}

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
    /// Puts the requested model on the request's record once its name passes
    /// [`check_model_name`] (a name that does not is recorded as [`OTHER_MODEL`]: it may be
    /// megabytes long).
    pub fn record_model(&self, recording: &mut Recording, requested: &str) -> Result<(), ApiError> {
        if let Err(e) = check_model_name(requested) {
            recording.record.model = OTHER_MODEL.to_string();
            recording.unlisted = true;
            return Err(e);
        }
        recording.record.model = requested.to_string();
        recording.unlisted = !self.is_listed(requested, false);
        Ok(())
    }

    /// Whether a requested model name gets its own series in stats and metrics (see
    /// [`OTHER_MODEL`]): configured names, catalogued ones (with or without a provider prefix),
    /// and a bounded number of others once an upstream has `answered` them. `requested` has passed
    /// [`check_model_name`].
    pub fn is_listed(&self, requested: &str, answered: bool) -> bool {
        let name = self
            .aliases
            .get(requested)
            .map_or(requested, String::as_str);
        let known = |model: &str| {
            self.catalogue.get(model).is_some()
                || self
                    .providers
                    .enabled()
                    .iter()
                    .any(|p| p.extra_models.iter().any(|m| m == model))
        };
        let configured = self.aliases.contains_key(requested)
            || self.routing.has_group(name)
            || self.routing.config.models.contains_key(requested)
            || known(name)
            || name.split_once('/').is_some_and(|(prefix, model)| {
                self.providers.status(prefix).is_some() && known(model)
            });
        configured || self.answered_models.admit(name, answered)
    }

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

impl Gateway {
    /// Every model the enabled providers serve: the catalogue's, then each provider's configured ones.
    pub fn models(&self) -> Vec<Model> {
        let model = |id: String, owner: &str| Model {
            id,
            object: "model",
            created: 0,
            owned_by: owner.to_string(),
        };
        let mut out = Vec::new();
        for provider in self.providers.enabled() {
            out.extend(
                self.catalogue
                    .all()
                    .iter()
                    .filter(|m| m.provider == provider.name)
                    .map(|m| model(m.id.clone(), &provider.name)),
            );
            out.extend(
                provider
                    .extra_models
                    .iter()
                    .map(|m| model(m.clone(), &provider.name)),
            );
        }
        for (alias, target) in &self.aliases {
            if let Ok(route) = self.resolve(target) {
                out.push(model(alias.clone(), &route.provider.name));
            }
        }
        out
    }
}
