//! What the console's pages and the stats API show: totals, series, usage rows, health, provider
//! cards, the tester's setup, the request log and the cost analysis.

use serde::{Deserialize, Serialize};

use crate::domain::{ModelPrice, RequestRecord};

/// Totals over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Overview {
    pub window: String,
    pub requests: u64,
    pub errors: u64,
    pub success_rate: f64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    pub latency_p99_ms: f64,
    pub ttft_p50_ms: f64,
    /// Response cache hits and misses (requests that bypassed it count in neither).
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub cache_misses: u64,
    /// Tokens and money the cache's hits saved.
    #[serde(default)]
    pub saved_tokens: u64,
    #[serde(default)]
    pub saved_usd: f64,
}

/// One point of a time series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Unix seconds at the start of the bucket.
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

/// Usage of one provider, model or key over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageRow {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub cache_misses: u64,
    #[serde(default)]
    pub saved_usd: f64,
}

/// `GET /health` and the console's system page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HealthReport {
    /// `ok` or `degraded`.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
    pub providers: Vec<ProviderHealth>,
    pub store: StoreHealth,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ProviderHealth {
    pub name: String,
    pub display_name: String,
    pub enabled: bool,
    /// The environment variable (or config section) that enables it.
    pub enable_with: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StoreHealth {
    /// `embedded` or `redis`.
    pub backend: String,
    pub reachable: bool,
    pub detail: String,
}

/// The console's dashboard: totals, series and the busiest models and providers of a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DashboardData {
    pub overview: Overview,
    pub series: Vec<SeriesPoint>,
    pub top_models: Vec<UsageRow>,
    pub top_providers: Vec<UsageRow>,
}

/// One provider card: its configuration state and its usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderSummary {
    pub name: String,
    pub display_name: String,
    pub enabled: bool,
    /// The environment variable (or config section) that enables it.
    pub enable_with: String,
    /// Usage over the chosen window (`name` is the provider).
    pub usage: UsageRow,
    /// Requests over the last hour, whatever the window.
    pub requests_last_hour: u64,
    /// Models it serves (catalogued plus configured).
    pub model_count: usize,
}

/// A provider's details: its models with prices and its recent errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderDetails {
    pub name: String,
    pub display_name: String,
    pub enabled: bool,
    pub enable_with: String,
    pub base_url: Option<String>,
    pub models: Vec<ModelPrice>,
    /// Models from the configuration, without a catalogue price.
    pub extra_models: Vec<String>,
    pub errors: Vec<RequestRecord>,
}

/// The system page: health, process figures and the masked configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub health: HealthReport,
    pub listen: String,
    /// Resident memory (VmRSS), when the platform reports it.
    pub memory_rss_bytes: Option<u64>,
    /// User plus system CPU time of the process.
    pub cpu_seconds: Option<f64>,
    /// Records the stats channel had to drop.
    pub dropped_records: u64,
    pub config_toml: String,
}

/// A model the API tester offers, with its price when catalogued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TesterModel {
    pub id: String,
    pub provider: String,
    pub price: Option<ModelPrice>,
}

/// What the API tester needs: the live model list and every catalogue price.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TesterSetup {
    pub models: Vec<TesterModel>,
    pub prices: Vec<ModelPrice>,
    /// `http://host:port` as the browser reached the console, for the code snippets.
    pub origin: String,
}

/// The request log page: matching records and the values its filters offer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestLog {
    pub records: Vec<RequestRecord>,
    pub models: Vec<String>,
    pub providers: Vec<String>,
}

/// The cost analysis: prices, spend per dimension and the window's token volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostAnalysis {
    pub window: String,
    pub prices: Vec<ModelPrice>,
    pub by_provider: Vec<UsageRow>,
    pub by_model: Vec<UsageRow>,
    pub by_key: Vec<UsageRow>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
}
