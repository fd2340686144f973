//! What every handler and server function shares.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::shared::{HealthReport, ProviderHealth};
use crate::stats::Stats;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub auth: Arc<crate::api::auth::Auth>,
    pub governance: Arc<crate::governance::Governance>,
    pub gateway: Arc<Gateway>,
    pub stats: Arc<Stats>,
    pub started: Instant,
    /// Behind an `Arc`: the state is cloned for every request.
    pub leptos_options: Arc<LeptosOptions>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos_options).clone()
    }
}

impl AppState {
    pub async fn health(&self) -> HealthReport {
        let store = self.stats.store().health().await;
        HealthReport {
            status: if store.reachable { "ok" } else { "degraded" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_seconds: self.started.elapsed().as_secs(),
            providers: self
                .gateway
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
