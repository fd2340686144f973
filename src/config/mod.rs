//! Configuration: an optional TOML file, overridden by environment variables, overridden by CLI flags.
//!
//! Each file section has its own module and type; reading the type tells you the file format.

pub mod alerts;
mod auth;
pub mod cache;
mod deployments;
pub mod env;
mod jwt;
mod limits;
mod log;
mod models;
mod oidc;
mod pricing;
mod providers;
mod responses;
mod routing;
pub mod secret;
mod server;
mod store;
mod teams;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use self::alerts::{AlertKind, AlertsConfig, WebhookConfig, WebhookFormat};
pub use self::auth::AuthConfig;
pub use self::cache::{CacheConfig, CacheScope};
pub use self::deployments::DeploymentConfig;
pub use self::env::EnvSource;
pub use self::jwt::{JwtConfig, JwtIssuer};
pub use self::limits::LimitsConfig;
pub use self::log::{LogConfig, LogFormat};
pub use self::models::ModelsConfig;
pub use self::oidc::OidcConfig;
pub use self::pricing::PriceConfig;
pub use self::providers::{CustomProviderConfig, ProviderConfig, ProvidersConfig};
pub use self::responses::ResponsesConfig;
pub use self::routing::{CircuitConfig, ModelRouting, RoutingConfig, Strategy};
pub use self::secret::{MASK, Secret};
pub use self::server::ServerConfig;
pub use self::store::StoreConfig;
pub use self::teams::{TeamConfig, validate_team};

/// Every environment variable the gateway reads besides the providers' (see [`known_env_vars`]).
pub const ENV_VARS: &[&str] = &[
    "LLM_BRIDGE_CONFIG",
    "LLM_BRIDGE_LISTEN",
    "LLM_BRIDGE_MASTER_KEY",
    "LLM_BRIDGE_OIDC_CLIENT_SECRET",
    "LLM_BRIDGE_DATA_DIR",
    "LLM_BRIDGE_SITE_ROOT",
    "LEPTOS_SITE_ROOT",
    "LLM_BRIDGE_MAX_BODY_BYTES",
    "LLM_BRIDGE_MAX_HEADER_BYTES",
    "LLM_BRIDGE_CORS_ORIGINS",
    "LLM_BRIDGE_IP_RPM",
    "LLM_BRIDGE_IP_TPM",
    "LLM_BRIDGE_TRUSTED_PROXIES",
    "LLM_BRIDGE_DRAIN_TIMEOUT",
    "LLM_BRIDGE_CONNECT_TIMEOUT",
    "LLM_BRIDGE_FIRST_BYTE_TIMEOUT",
    "LLM_BRIDGE_IDLE_TIMEOUT",
    "LLM_BRIDGE_TOTAL_TIMEOUT",
    "LLM_BRIDGE_CLIENT_HEADER_TIMEOUT",
    "LLM_BRIDGE_CLIENT_BODY_TIMEOUT",
    "LLM_BRIDGE_CLIENT_IDLE_TIMEOUT",
    "LLM_BRIDGE_MAX_CONNECTIONS",
    "LLM_BRIDGE_WEBSOCKET_IDLE_TIMEOUT",
    "LLM_BRIDGE_WEBSOCKET_MAX_LIFETIME",
    "REDIS_URL",
    "LLM_BRIDGE_STATS_FLUSH_INTERVAL",
    "LLM_BRIDGE_RECENT_REQUESTS",
    "LLM_BRIDGE_STATS",
    "LLM_BRIDGE_RESPONSES_TTL",
    "LLM_BRIDGE_RESPONSES_MAX_BYTES",
    "LLM_BRIDGE_CACHE",
    "LLM_BRIDGE_CACHE_TTL",
    "LLM_BRIDGE_CACHE_MAX_ENTRY_BYTES",
    "LLM_BRIDGE_CACHE_MAX_BYTES",
    "LLM_BRIDGE_CACHE_SCOPE",
    "LLM_BRIDGE_CACHE_ONLY_DETERMINISTIC",
    "LLM_BRIDGE_ALERTS_WEBHOOK",
    "LLM_BRIDGE_LOG_FORMAT",
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// All environment variables the gateway reads, providers' included.
pub fn known_env_vars() -> Vec<&'static str> {
    let mut vars = ENV_VARS.to_vec();
    for spec in crate::providers::BUILTIN {
        vars.extend(spec.key_env);
        vars.push(spec.base_url_env);
        vars.extend(spec.region_env);
    }
    vars
}

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub store: StoreConfig,
    pub responses: ResponsesConfig,
    pub cache: CacheConfig,
    pub log: LogConfig,
    pub providers: ProvidersConfig,
    pub models: ModelsConfig,
    pub pricing: std::collections::BTreeMap<String, PriceConfig>,
    pub routing: RoutingConfig,
    pub deployments: Vec<DeploymentConfig>,
    pub teams: Vec<TeamConfig>,
    pub alerts: AlertsConfig,
}

/// A configuration problem, precise enough to fix without reading the code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("{file}: {reason}")]
    Parse { file: PathBuf, reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        origin: String,
        key: String,
        reason: String,
    },
}

/// Overrides given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub redis_url: Option<String>,
}

impl Config {
    /// Loads the file (from the CLI flag or `LLM_BRIDGE_CONFIG`), applies the environment, then the CLI.
    pub fn load(
        cli: &CliOverrides,
        env: &dyn EnvSource,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let file = cli
            .config_file
            .clone()
            .or_else(|| env.var("LLM_BRIDGE_CONFIG").map(PathBuf::from));
        let mut config = match &file {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.apply_cli(cli)?;
        let origin = file
            .as_ref()
            .map_or_else(|| "configuration".to_string(), |f| f.display().to_string());
        config.validate(&origin)?;
        Ok((config, file))
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text).map_err(|reason| ConfigError::Parse {
            file: path.to_path_buf(),
            reason,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        self.server.apply_env(env)?;
        self.auth.apply_env(env)?;
        self.limits.apply_env(env)?;
        self.store.apply_env(env)?;
        self.responses.apply_env(env)?;
        self.cache.apply_env(env)?;
        self.log.apply_env(env)?;
        self.providers.apply_env(env)?;
        self.alerts.apply_env(env)?;
        Ok(())
    }

    fn apply_cli(&mut self, cli: &CliOverrides) -> Result<(), ConfigError> {
        if let Some(listen) = &cli.listen {
            self.server.listen = listen.parse().map_err(|e| ConfigError::Invalid {
                origin: "--listen".into(),
                key: "server.listen".into(),
                reason: format!("`{listen}` is not a socket address: {e}"),
            })?;
        }
        if let Some(dir) = &cli.data_dir {
            self.server.data_dir = dir.clone();
        }
        if let Some(url) = &cli.redis_url {
            self.store.redis_url = Some(Secret::new(url.clone()));
        }
        Ok(())
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.auth.validate(origin)?;
        self.limits.validate(origin)?;
        self.server.validate(origin)?;
        self.store.validate(origin)?;
        self.responses.validate(origin)?;
        self.cache.validate(origin)?;
        self.providers.validate(origin)?;
        self.models.validate(origin)?;
        self.routing.validate(origin)?;
        pricing::validate(&self.pricing, &self.providers, origin)?;
        deployments::validate(&self.deployments, &self.providers, origin)?;
        teams::validate(&self.teams, origin)?;
        self.alerts.validate(origin)?;
        Ok(())
    }

    /// The effective configuration as TOML with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
