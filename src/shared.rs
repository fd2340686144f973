//! Types that cross between the server and the browser: what the console's server functions return.

use serde::{Deserialize, Serialize};

/// One request through the gateway, as the stats and the request log keep it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RequestRecord {
    /// Unix milliseconds when the request arrived.
    pub time_ms: u64,
    pub request_id: String,
    /// Virtual key id, never the secret.
    pub client_key: Option<String>,
    /// The model as the client asked for it.
    pub model: String,
    pub provider: String,
    pub deployment: String,
    pub status: u16,
    pub error_class: Option<String>,
    pub attempts: u32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    /// The provider reported no usage: the token counts are the gateway's estimate.
    pub usage_estimated: bool,
    pub cost_usd: f64,
    pub stream: bool,
}

impl RequestRecord {
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error_class.is_some()
    }
}

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
