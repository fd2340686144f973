//! Prometheus metrics through the `metrics` facade: each finished request updates counters and
//! histograms; gauges that describe state (circuits, store, dropped records, runtime tasks) are set at
//! scrape time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::RequestRecord;

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
        describe();
        handle
    })
}

/// Help texts of the gateway's metric families (rendered with each family once it has a series).
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "llm_bridge_requests_total",
        "Finished requests per provider, model, deployment and HTTP status (refused ones under provider `none`)."
    );
    describe_counter!(
        "llm_bridge_errors_total",
        "Failed requests per provider, model and error class."
    );
    describe_histogram!(
        "llm_bridge_request_duration_seconds",
        "Request duration, first byte in to last byte out, per provider and model."
    );
    describe_histogram!(
        "llm_bridge_time_to_first_token_seconds",
        "Time until the first token of a reply, per provider and model."
    );
    describe_histogram!(
        "llm_bridge_gateway_overhead_seconds",
        "The gateway's own time before a reply is relayed (the upstream calls' time excluded)."
    );
    describe_counter!(
        "llm_bridge_tokens_total",
        "Tokens per provider, model and kind (prompt, completion, reasoning, cached)."
    );
    describe_gauge!(
        "llm_bridge_cost_usd_total",
        "Cost in USD per provider and model since the process started (only ever grows)."
    );
    describe_counter!(
        "llm_bridge_upstream_attempts_total",
        "Upstream calls per provider and deployment, retries and fallbacks included."
    );
    describe_counter!(
        "llm_bridge_cache_requests_total",
        "Response cache lookups per model and result (hit, miss, bypass)."
    );
    describe_counter!(
        "llm_bridge_cache_saved_tokens_total",
        "Prompt and completion tokens the response cache saved, per model."
    );
    describe_gauge!(
        "llm_bridge_cache_saved_usd_total",
        "USD the response cache saved per model since the process started (only ever grows)."
    );
    describe_counter!(
        "llm_bridge_refused_total",
        "/v1 requests refused before routing, per reason (rate_limit_key, rate_limit_team, rate_limit_ip, budget, expired, team)."
    );
    describe_gauge!(
        "llm_bridge_circuit_state",
        "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(
        "llm_bridge_in_flight_requests",
        "Requests in flight per deployment."
    );
    describe_counter!(
        "llm_bridge_stats_dropped_records_total",
        "Request records lost to the stats and request log: the queue was full, or the store stayed unreachable too long."
    );
    describe_counter!(
        "llm_bridge_alerts_total",
        "Alerts to people per kind and outcome (sent and failed per webhook, dropped)."
    );
    describe_gauge!(
        "llm_bridge_runtime_alive_tasks",
        "Tasks alive in the gateway's async runtime (connections, requests, background work)."
    );
    describe_gauge!(
        "llm_bridge_store_up",
        "Whether the store (embedded or Redis) answers: 1 yes, 0 no."
    );
}

/// The family [`render_budgets`] writes.
pub const BUDGET_FAMILY: &str = "llm_bridge_budget_used_ratio";

/// How much of a budget is spent in its current period.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetUse {
    /// `key` or `team`.
    pub scope: &'static str,
    /// The virtual key's id or the team's name.
    pub id: String,
    pub period: crate::domain::BudgetPeriod,
    /// Spend over budget: 1 or more and the spender's requests are refused.
    pub ratio: f64,
}

/// Appends the budget gauges in the Prometheus text format. Written at scrape time from the
/// governance state (not through the recorder), so a revoked key or deleted team leaves no stale
/// series behind; the family's `# TYPE` line is always there.
pub fn render_budgets(out: &mut String, uses: &[BudgetUse]) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP {BUDGET_FAMILY} Spend in the current budget period over the budget, per virtual key or team with a budget (1 or more: refused)."
    );
    let _ = writeln!(out, "# TYPE {BUDGET_FAMILY} gauge");
    for u in uses {
        let period = match u.period {
            crate::domain::BudgetPeriod::Day => "day",
            crate::domain::BudgetPeriod::Month => "month",
        };
        let _ = writeln!(
            out,
            "{BUDGET_FAMILY}{{scope=\"{}\",id=\"{}\",period=\"{period}\"}} {}",
            u.scope,
            escape_label(&u.id),
            u.ratio
        );
    }
    out.push('\n');
}

/// A label value as the text format wants it.
fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
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
    // An unresolved model name comes from the client: keep it out of the labels.
    let (provider, model) = if r.provider.is_empty() {
        ("none", "unresolved")
    } else {
        (r.provider.as_str(), r.model_label())
    };
    let deployment = r.deployment_label();
    if let Some(class) = &r.error_class {
        counter!("llm_bridge_errors_total", "provider" => provider.to_string(), "model" => model.to_string(), "class" => class.clone()).increment(1);
    }
    let series = Series::of(provider, model, &deployment, r.status);
    series.requests.increment(1);
    series.duration.record(r.latency_ms / 1e3);
    if let Some(ttft) = r.ttft_ms {
        series.ttft.record(ttft / 1e3);
    }
    let tokens = [
        r.prompt_tokens,
        r.completion_tokens,
        r.reasoning_tokens,
        r.cached_tokens,
    ];
    for (counter, n) in series.tokens.iter().zip(tokens) {
        if n > 0 {
            counter.increment(n);
        }
    }
    if r.cost_usd > 0.0 {
        series.cost.increment(r.cost_usd);
    }
    series.attempts.increment(r.attempts as u64);
    if !r.cache.is_empty() {
        observe_cache(r, model);
    }
}

/// The response cache's outcome, per model (a label from the configuration, never the client).
fn observe_cache(r: &RequestRecord, model: &str) {
    let result = match r.cache.as_str() {
        "hit" => "hit",
        "miss" => "miss",
        _ => "bypass",
    };
    counter!("llm_bridge_cache_requests_total", "model" => model.to_string(), "result" => result)
        .increment(1);
    if result == "hit" {
        counter!("llm_bridge_cache_saved_tokens_total", "model" => model.to_string())
            .increment(r.prompt_tokens + r.completion_tokens);
        gauge!("llm_bridge_cache_saved_usd_total", "model" => model.to_string())
            .increment(r.saved_usd);
    }
}

/// The series one finished request updates, resolved once per label set: building and hashing
/// the label sets for every request was most of the cost of recording its metrics.
struct Series {
    labels: (String, String, String, u16),
    requests: Counter,
    duration: Histogram,
    ttft: Histogram,
    /// prompt, completion, reasoning, cached.
    tokens: [Counter; 4],
    cost: Gauge,
    attempts: Counter,
}

/// More label sets than this (the configuration's providers × models × deployments × statuses)
/// empties the cache rather than letting it grow.
const MAX_CACHED_SERIES: usize = 4096;

impl Series {
    fn of(provider: &str, model: &str, deployment: &str, status: u16) -> Arc<Series> {
        static CACHE: LazyLock<Mutex<HashMap<u64, Arc<Series>>>> = LazyLock::new(Default::default);
        let mut hasher = std::hash::DefaultHasher::new();
        (provider, model, deployment, status).hash(&mut hasher);
        let hash = hasher.finish();
        let same = |s: &Series| {
            let (p, m, d, st) = &s.labels;
            (p.as_str(), m.as_str(), d.as_str(), *st) == (provider, model, deployment, status)
        };
        if let Some(series) = CACHE.lock().expect("metrics cache").get(&hash)
            && same(series)
        {
            return series.clone();
        }
        let series = Arc::new(Series::register(provider, model, deployment, status));
        let mut cache = CACHE.lock().expect("metrics cache");
        if cache.len() >= MAX_CACHED_SERIES {
            cache.clear();
        }
        cache.insert(hash, series.clone());
        series
    }

    fn register(provider: &str, model: &str, deployment: &str, status: u16) -> Series {
        let (p, m, d) = (
            provider.to_string(),
            model.to_string(),
            deployment.to_string(),
        );
        let token = |kind: &'static str| counter!("llm_bridge_tokens_total", "provider" => p.clone(), "model" => m.clone(), "kind" => kind);
        Series {
            requests: counter!("llm_bridge_requests_total", "provider" => p.clone(), "model" => m.clone(), "deployment" => d.clone(), "status" => status.to_string()),
            duration: histogram!("llm_bridge_request_duration_seconds", "provider" => p.clone(), "model" => m.clone()),
            ttft: histogram!("llm_bridge_time_to_first_token_seconds", "provider" => p.clone(), "model" => m.clone()),
            tokens: [
                token("prompt"),
                token("completion"),
                token("reasoning"),
                token("cached"),
            ],
            cost: gauge!("llm_bridge_cost_usd_total", "provider" => p.clone(), "model" => m.clone()),
            attempts: counter!("llm_bridge_upstream_attempts_total", "provider" => p.clone(), "deployment" => d.clone()),
            labels: (p, m, d, status),
        }
    }
}

/// The gateway's own share of a request's time.
pub fn observe_overhead(seconds: f64) {
    histogram!("llm_bridge_gateway_overhead_seconds").record(seconds);
}

/// A `/v1` request turned away before routing (`rate_limit_key`, `rate_limit_ip`, `budget`, `expired`).
pub fn observe_refusal(reason: &'static str) {
    counter!("llm_bridge_refused_total", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BudgetPeriod;

    #[test]
    fn budgets_render_as_one_gauge_family() {
        let mut out = String::new();
        render_budgets(&mut out, &[]);
        assert!(
            out.contains("# TYPE llm_bridge_budget_used_ratio gauge\n"),
            "{out}"
        );
        let uses = [
            BudgetUse {
                scope: "key",
                id: "key_0123".into(),
                period: BudgetPeriod::Day,
                ratio: 0.5,
            },
            BudgetUse {
                scope: "team",
                id: "odd \"name\"\\".into(),
                period: BudgetPeriod::Month,
                ratio: 1.25,
            },
        ];
        let mut out = String::new();
        render_budgets(&mut out, &uses);
        assert!(
            out.contains(
                "llm_bridge_budget_used_ratio{scope=\"key\",id=\"key_0123\",period=\"day\"} 0.5\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(r#"llm_bridge_budget_used_ratio{scope="team",id="odd \"name\"\\",period="month"} 1.25"#),
            "{out}"
        );
    }
}
