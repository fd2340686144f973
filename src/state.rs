//! What every handler and server function shares.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::reports::{HealthReport, ProviderHealth};
use crate::stats::Stats;

/// Cloned for every request and by each layer on its way, hence one `Arc` around the fields.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    /// The configuration and the gateway built from it, swapped as one on a reload. A request
    /// takes its own `Arc` when it starts and finishes on it.
    current: Arc<ArcSwap<Current>>,
    pub auth: Arc<crate::governance::identity::Auth>,
    pub governance: Arc<crate::governance::Governance>,
    pub stats: Arc<Stats>,
    /// The responses `/v1/responses` keeps; not rebuilt on a reload.
    pub responses: Arc<crate::gateway::response_store::ResponseStore>,
    /// The reasoning state chat completions clients may not send back
    /// (the chat endpoint's `kept_reasoning`); not rebuilt on a reload.
    pub reasoning: Arc<crate::gateway::response_store::ResponseStore>,
    pub started: Instant,
    /// Turns true when the gateway starts shutting down: long-lived connections (Responses
    /// WebSockets) close cleanly.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Behind an `Arc`: the state is cloned for every request.
    pub leptos_options: Arc<LeptosOptions>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos_options).clone()
    }
}

pub struct Current {
    pub config: Arc<Config>,
    pub gateway: Arc<Gateway>,
}

impl AppState {
    /// Whether the caller may use the model: a virtual key's or a JWT caller's team's models, if
    /// any.
    pub fn may_use_model(&self, caller: Option<&crate::governance::Caller>, model: &str) -> bool {
        use crate::governance::Caller;
        match caller {
            Some(Caller::Key(key)) => key.allows_model(model),
            Some(Caller::Jwt(jwt)) => jwt
                .team
                .as_deref()
                .and_then(|name| self.governance.team(name))
                .is_none_or(|team| team.allows_model(model)),
            _ => true,
        }
    }

    pub fn new(
        config: Config,
        gateway: Arc<Gateway>,
        auth: Arc<crate::governance::identity::Auth>,
        governance: Arc<crate::governance::Governance>,
        stats: Arc<Stats>,
        leptos_options: LeptosOptions,
    ) -> AppState {
        let responses = Arc::new(crate::gateway::response_store::ResponseStore::new(
            &config.responses,
            stats.store().redis().cloned(),
        ));
        let reasoning = Arc::new(crate::gateway::response_store::ResponseStore::in_namespace(
            "reasoning",
            &config.responses,
            stats.store().redis().cloned(),
        ));
        AppState(Arc::new(Shared {
            responses,
            reasoning,
            current: Arc::new(ArcSwap::from_pointee(Current {
                config: Arc::new(config),
                gateway,
            })),
            auth,
            governance,
            stats,
            started: Instant::now(),
            stopping: tokio::sync::watch::Sender::new(false),
            leptos_options: Arc::new(leptos_options),
        }))
    }

    pub fn config(&self) -> Arc<Config> {
        self.current.load().config.clone()
    }

    pub fn gateway(&self) -> Arc<Gateway> {
        self.current.load().gateway.clone()
    }

    /// Serves a new configuration from now on; requests already running keep the old one.
    pub fn replace(&self, config: Config, gateway: Arc<Gateway>) {
        self.current.store(Arc::new(Current {
            config: Arc::new(config),
            gateway,
        }));
    }

    pub async fn health(&self) -> HealthReport {
        let store = self.stats.store().health().await;
        HealthReport {
            status: if store.reachable { "ok" } else { "degraded" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            providers: self
                .gateway()
                .providers
                .statuses()
                .iter()
                .map(|s| ProviderHealth {
                    name: s.name.clone(),
                    display_name: s.display_name.clone(),
                    enabled: s.enabled,
                    enable_with: s.enable_with.clone(),
                })
                .collect(),
            store,
        }
    }
}
