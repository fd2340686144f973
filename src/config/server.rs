use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::env::{parse_env, parse_env_duration};
use super::{ConfigError, EnvSource};

/// `[server]`: where the gateway listens and how it treats requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `LLM_BRIDGE_LISTEN`, `--listen`.
    pub listen: SocketAddr,
    /// `LLM_BRIDGE_DATA_DIR`, `--data-dir`: where the embedded store keeps its files.
    pub data_dir: PathBuf,
    /// `LLM_BRIDGE_SITE_ROOT`: the console's compiled assets (`pkg/`, favicon).
    pub site_root: PathBuf,
    /// `LLM_BRIDGE_MAX_BODY_BYTES`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `LLM_BRIDGE_MAX_HEADER_BYTES`: requests whose headers add up to more get 431.
    pub max_header_bytes: usize,
    /// `LLM_BRIDGE_CORS_ORIGINS`: comma-separated origins allowed to call `/v1` from a browser
    /// (`*` for any). Empty: no cross-origin access; the console is always same-origin only.
    pub cors_origins: Vec<String>,
    /// Reload the configuration when its file changes (SIGHUP always reloads).
    pub watch_config: bool,
    /// `LLM_BRIDGE_DRAIN_TIMEOUT`: how long in-flight requests may run after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// `LLM_BRIDGE_CONNECT_TIMEOUT`: connecting to an upstream.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `LLM_BRIDGE_FIRST_BYTE_TIMEOUT`: from sending a request to the upstream's response headers.
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// `LLM_BRIDGE_IDLE_TIMEOUT`: longest silence between two chunks of an upstream body.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// `LLM_BRIDGE_TOTAL_TIMEOUT`: longest an upstream request may take, streams included.
    #[serde(with = "humantime_serde")]
    pub total_timeout: Duration,
    /// `LLM_BRIDGE_CLIENT_HEADER_TIMEOUT`: a client must send a request's headers within this
    /// time of its first byte, or the connection is closed.
    #[serde(with = "humantime_serde")]
    pub client_header_timeout: Duration,
    /// `LLM_BRIDGE_CLIENT_BODY_TIMEOUT`: longest silence between two pieces of a request body
    /// (408 past it).
    #[serde(with = "humantime_serde")]
    pub client_body_timeout: Duration,
    /// `LLM_BRIDGE_CLIENT_IDLE_TIMEOUT`: a connection with no request in flight and nothing
    /// received for this long is closed (keep-alive and freshly opened connections alike).
    #[serde(with = "humantime_serde")]
    pub client_idle_timeout: Duration,
    /// `LLM_BRIDGE_MAX_CONNECTIONS`: open client connections at most; past it new connections
    /// wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// `LLM_BRIDGE_WEBSOCKET_IDLE_TIMEOUT`: a Responses WebSocket with no response in flight and
    /// nothing received for this long is closed.
    #[serde(with = "humantime_serde")]
    pub websocket_idle_timeout: Duration,
    /// `LLM_BRIDGE_WEBSOCKET_MAX_LIFETIME`: a Responses WebSocket is closed this long after it
    /// opened, once its response in flight has ended (as OpenAI closes its own after an hour).
    #[serde(with = "humantime_serde")]
    pub websocket_max_lifetime: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:3000".parse().expect("valid default address"),
            data_dir: PathBuf::from("./data"),
            site_root: PathBuf::from("target/site"),
            max_body_bytes: 10 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            cors_origins: Vec::new(),
            watch_config: true,
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(600),
            client_header_timeout: Duration::from_secs(10),
            client_body_timeout: Duration::from_secs(30),
            client_idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            websocket_idle_timeout: Duration::from_secs(600),
            websocket_max_lifetime: Duration::from_secs(3600),
        }
    }
}

impl ServerConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(v) = parse_env(env, "LLM_BRIDGE_LISTEN")? {
            self.listen = v;
        }
        if let Some(v) = env.var("LLM_BRIDGE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env
            .var("LLM_BRIDGE_SITE_ROOT")
            .or_else(|| env.var("LEPTOS_SITE_ROOT"))
        {
            self.site_root = PathBuf::from(v);
        }
        if let Some(v) = parse_env(env, "LLM_BRIDGE_MAX_BODY_BYTES")? {
            self.max_body_bytes = v;
        }
        if let Some(v) = parse_env(env, "LLM_BRIDGE_MAX_HEADER_BYTES")? {
            self.max_header_bytes = v;
        }
        if let Some(v) = env.var("LLM_BRIDGE_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_DRAIN_TIMEOUT")? {
            self.drain_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_CONNECT_TIMEOUT")? {
            self.connect_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_FIRST_BYTE_TIMEOUT")? {
            self.first_byte_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_IDLE_TIMEOUT")? {
            self.idle_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_TOTAL_TIMEOUT")? {
            self.total_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_CLIENT_HEADER_TIMEOUT")? {
            self.client_header_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_CLIENT_BODY_TIMEOUT")? {
            self.client_body_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_CLIENT_IDLE_TIMEOUT")? {
            self.client_idle_timeout = v;
        }
        if let Some(v) = parse_env(env, "LLM_BRIDGE_MAX_CONNECTIONS")? {
            self.max_connections = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_WEBSOCKET_IDLE_TIMEOUT")? {
            self.websocket_idle_timeout = v;
        }
        if let Some(v) = parse_env_duration(env, "LLM_BRIDGE_WEBSOCKET_MAX_LIFETIME")? {
            self.websocket_max_lifetime = v;
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for o in &self.cors_origins {
            let ok = o == "*"
                || ((o.starts_with("http://") || o.starts_with("https://"))
                    && axum::http::HeaderValue::from_str(o).is_ok());
            if !ok {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    key: "server.cors_origins".into(),
                    reason: format!(
                        "`{o}` is not an origin like `https://app.example.com` (or `*`)"
                    ),
                });
            }
        }
        let invalid = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                key: format!("server.{key}"),
                reason: reason.to_string(),
            })
        };
        if self.max_header_bytes < 1024 {
            return invalid("max_header_bytes", "must be at least 1024");
        }
        if self.max_body_bytes < 1024 {
            return invalid(
                "max_body_bytes",
                "must be at least 1024 (every request with a body would get 413)",
            );
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        for (key, value) in [
            ("client_header_timeout", self.client_header_timeout),
            ("client_body_timeout", self.client_body_timeout),
            ("client_idle_timeout", self.client_idle_timeout),
            ("connect_timeout", self.connect_timeout),
            ("first_byte_timeout", self.first_byte_timeout),
            ("idle_timeout", self.idle_timeout),
            ("total_timeout", self.total_timeout),
        ] {
            if value.is_zero() {
                return invalid(key, "must be longer than 0");
            }
        }
        Ok(())
    }
}
