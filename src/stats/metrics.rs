//! Prometheus metrics through the `metrics` facade: each finished request updates counters and
//! histograms; gauges that describe state (circuits, store, dropped records) are set at scrape time.

use std::sync::OnceLock;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::shared::RequestRecord;

const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// The process-wide recorder (installed once, even when several gateways share a process in tests).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("valid buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding application): then ours
        // still renders what it records through this handle.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Histograms keep raw samples until they are folded into buckets: fold them regularly, scraped or not.
pub fn spawn_upkeep() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle().run_upkeep();
        }
    });
}

/// Called once per finished request.
pub fn observe(r: &RequestRecord) {
    let provider = if r.provider.is_empty() {
        "none".to_string()
    } else {
        r.provider.clone()
    };
    // An unresolved model name comes from the client: keep it out of the labels.
    let model = if r.provider.is_empty() {
        "unresolved".to_string()
    } else {
        r.model_label().to_string()
    };
    let status = r.status.to_string();
    counter!("llm_bridge_requests_total", "provider" => provider.clone(), "model" => model.clone(), "deployment" => r.deployment_label().into_owned(), "status" => status).increment(1);
    if let Some(class) = &r.error_class {
        counter!("llm_bridge_errors_total", "provider" => provider.clone(), "model" => model.clone(), "class" => class.clone()).increment(1);
    }
    histogram!("llm_bridge_request_duration_seconds", "provider" => provider.clone(), "model" => model.clone()).record(r.latency_ms / 1e3);
    if let Some(ttft) = r.ttft_ms {
        histogram!("llm_bridge_time_to_first_token_seconds", "provider" => provider.clone(), "model" => model.clone()).record(ttft / 1e3);
    }
    for (kind, n) in [
        ("prompt", r.prompt_tokens),
        ("completion", r.completion_tokens),
        ("reasoning", r.reasoning_tokens),
        ("cached", r.cached_tokens),
    ] {
        if n > 0 {
            counter!("llm_bridge_tokens_total", "provider" => provider.clone(), "model" => model.clone(), "kind" => kind).increment(n);
        }
    }
    if r.cost_usd > 0.0 {
        gauge!("llm_bridge_cost_usd_total", "provider" => provider.clone(), "model" => model)
            .increment(r.cost_usd);
    }
    counter!("llm_bridge_upstream_attempts_total", "provider" => provider, "deployment" => r.deployment_label().into_owned()).increment(r.attempts as u64);
}

/// The gateway's own share of a request's time.
pub fn observe_overhead(seconds: f64) {
    histogram!("llm_bridge_gateway_overhead_seconds").record(seconds);
}

/// A `/v1` request turned away before routing (`rate_limit_key`, `rate_limit_ip`, `budget`, `expired`).
pub fn observe_refusal(reason: &'static str) {
    counter!("llm_bridge_refused_total", "reason" => reason).increment(1);
}
