//! `GET /metrics`: Prometheus text format.

use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics::{counter, gauge};

use crate::routing::circuit::CircuitState;
use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let handle = crate::stats::metrics::handle();
    let now = Instant::now();
    let gateway = state.gateway();
    // Deployments created for model names the gateway does not know get no series of their own.
    let listed = |d: &crate::routing::DeploymentReport| {
        d.resolved_model.as_ref().is_none_or(|model| {
            gateway.is_listed(model, false)
                || gateway.is_listed(&format!("{}/{model}", d.provider), false)
        })
    };
    for d in gateway.routing.reports(now).into_iter().filter(listed) {
        let value = match d.circuit.state {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        };
        gauge!("llm_bridge_circuit_state", "deployment" => d.id.clone(), "provider" => d.provider.clone()).set(value);
        gauge!("llm_bridge_in_flight_requests", "deployment" => d.id, "provider" => d.provider)
            .set(d.in_flight as f64);
    }
    counter!("llm_bridge_stats_dropped_records_total").absolute(state.stats.dropped());
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    gauge!("llm_bridge_runtime_alive_tasks").set(tasks as f64);
    let store = state.stats.store().health().await;
    gauge!("llm_bridge_store_up", "backend" => store.backend).set(if store.reachable {
        1.0
    } else {
        0.0
    });
    let mut text = handle.render();
    crate::stats::metrics::render_budgets(&mut text, &state.governance.budget_use());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
