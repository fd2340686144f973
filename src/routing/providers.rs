//! The providers as configured at runtime: the enabled ones with their keys, base URLs and
//! timeouts (and the definitions of the others, for deployments with keys of their own).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{Config, Secret};
use crate::providers::BUILTIN;
use crate::providers::spec::{Quirks, Wire};

/// A provider as configured at runtime.
#[derive(Debug)]
pub struct Provider {
    /// `openai`, `gemini`, … or a custom provider's name.
    pub name: String,
    pub display_name: String,
    pub base_url: String,
    pub wire: Wire,
    /// Models served besides the catalogue's.
    pub extra_models: Vec<String>,
    pub timeouts: Timeouts,
    keys: Vec<Secret>,
    next_key: AtomicUsize,
}

impl Provider {
    /// The API key for the next request; several keys are used in turn.
    pub fn api_key(&self) -> Option<&Secret> {
        match self.keys.len() {
            0 => None,
            1 => self.keys.first(),
            n => self
                .keys
                .get(self.next_key.fetch_add(1, Ordering::Relaxed) % n),
        }
    }

    /// Every key, so that error messages can be scrubbed of them.
    pub fn keys(&self) -> &[Secret] {
        &self.keys
    }
}

/// How long an upstream may take: to its response headers (and a stream's first event), between
/// two chunks, and in all.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub first_byte: std::time::Duration,
    pub idle: std::time::Duration,
    pub total: std::time::Duration,
}

impl Timeouts {
    fn resolve(
        config: &Config,
        first_byte: Option<std::time::Duration>,
        idle: Option<std::time::Duration>,
        total: Option<std::time::Duration>,
    ) -> Timeouts {
        Timeouts {
            first_byte: first_byte.unwrap_or(config.server.first_byte_timeout),
            idle: idle.unwrap_or(config.server.idle_timeout),
            total: total.unwrap_or(config.server.total_timeout),
        }
    }
}

/// The status of a provider for `/health` and the console: enabled or the variable that would enable it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub display_name: String,
    pub enabled: bool,
    pub enable_with: String,
}

/// The enabled providers (and the definitions of the others, for deployments with keys of their own).
pub struct Providers {
    enabled: Vec<Arc<Provider>>,
    disabled: Vec<Arc<Provider>>,
    statuses: Vec<ProviderStatus>,
}

impl Providers {
    pub fn from_config(config: &Config) -> Providers {
        let mut enabled = Vec::new();
        let mut disabled = Vec::new();
        let mut statuses = Vec::new();
        for spec in BUILTIN {
            let settings = config.providers.get(spec.id);
            let keys = settings
                .and_then(|s| s.api_key.as_ref())
                .map(split_keys)
                .unwrap_or_default();
            statuses.push(ProviderStatus {
                name: spec.id.to_string(),
                display_name: spec.display_name.to_string(),
                enabled: !keys.is_empty(),
                enable_with: spec.key_env[0].to_string(),
            });
            let base_url = settings
                .and_then(|s| s.base_url.clone())
                .unwrap_or_else(|| {
                    spec.base_url_for(settings.and_then(|s| s.region.as_deref()))
                        .to_string()
                });
            let provider = Arc::new(Provider {
                name: spec.id.to_string(),
                display_name: spec.display_name.to_string(),
                base_url: base_url.trim_end_matches('/').to_string(),
                wire: spec.wire,
                extra_models: settings.map(|s| s.models.clone()).unwrap_or_default(),
                timeouts: Timeouts::resolve(
                    config,
                    settings.and_then(|s| s.first_byte_timeout),
                    settings.and_then(|s| s.idle_timeout),
                    settings.and_then(|s| s.total_timeout),
                ),
                keys,
                next_key: AtomicUsize::new(0),
            });
            if provider.keys.is_empty() {
                disabled.push(provider);
            } else {
                enabled.push(provider);
            }
        }
        for custom in &config.providers.custom {
            statuses.push(ProviderStatus {
                name: custom.name.clone(),
                display_name: custom.name.clone(),
                enabled: true,
                enable_with: "[[providers.custom]]".to_string(),
            });
            enabled.push(Arc::new(Provider {
                name: custom.name.clone(),
                display_name: custom.name.clone(),
                base_url: custom.base_url.trim_end_matches('/').to_string(),
                wire: Wire::OpenAi(Quirks {
                    speaks_responses: custom.responses_api,
                    ..Quirks::PASSTHROUGH
                }),
                extra_models: custom.models.clone(),
                timeouts: Timeouts::resolve(
                    config,
                    custom.first_byte_timeout,
                    custom.idle_timeout,
                    custom.total_timeout,
                ),
                keys: custom.api_key.as_ref().map(split_keys).unwrap_or_default(),
                next_key: AtomicUsize::new(0),
            }));
        }
        Providers {
            enabled,
            disabled,
            statuses,
        }
    }

    /// A provider's definition whether it is enabled or not.
    pub fn definition(&self, name: &str) -> Option<&Arc<Provider>> {
        self.get(name)
            .or_else(|| self.disabled.iter().find(|p| p.name == name))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.enabled.iter().find(|p| p.name == name)
    }

    pub fn enabled(&self) -> &[Arc<Provider>] {
        &self.enabled
    }

    pub fn statuses(&self) -> &[ProviderStatus] {
        &self.statuses
    }

    /// Whether `name` is a provider at all (enabled or not).
    pub fn status(&self, name: &str) -> Option<&ProviderStatus> {
        self.statuses.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
impl Provider {
    pub fn test(name: &str) -> Provider {
        Provider {
            name: name.into(),
            display_name: name.into(),
            base_url: String::new(),
            wire: Wire::OpenAi(Quirks::PASSTHROUGH),
            extra_models: vec![],
            timeouts: Timeouts::resolve(&Config::default(), None, None, None),
            keys: vec![],
            next_key: AtomicUsize::new(0),
        }
    }
}

fn split_keys(secret: &Secret) -> Vec<Secret> {
    secret
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(Secret::new)
        .collect()
}
