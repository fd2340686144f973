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
    /// The team a JWT caller acted as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The user a JWT caller's token named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
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
    /// Prompt tokens written to the provider's prompt cache (part of `prompt_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
    /// The provider reported no usage: the token counts are the gateway's estimate.
    pub usage_estimated: bool,
    pub cost_usd: f64,
    pub stream: bool,
    /// The model is not one the gateway knows (configured, catalogued, or answered by an
    /// upstream): stats and metrics count it as [`OTHER_MODEL`], so that client-chosen names
    /// never become series of their own. The request log keeps the name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unlisted_model: bool,
    /// The inbound API: `chat`, `embeddings` or `messages` (empty for requests refused before).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    /// The client's session (`X-Claude-Code-Session-Id`), when it sent a sane one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What the response cache did: `hit`, `miss` or `bypass` (empty with the cache off).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cache: String,
    /// A cache hit: what the reply cost when it was made (the hit itself costs nothing).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub saved_usd: f64,
}

/// The model stats and metrics count requests for unknown models under.
pub const OTHER_MODEL: &str = "(other)";

impl RequestRecord {
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error_class.is_some()
    }

    /// The model as stats and metrics count it.
    pub fn model_label(&self) -> &str {
        if self.unlisted_model {
            OTHER_MODEL
        } else {
            &self.model
        }
    }

    /// The deployment as stats and metrics count it (deployments created for an unknown model's
    /// name are counted together per provider).
    pub fn deployment_label(&self) -> std::borrow::Cow<'_, str> {
        if self.unlisted_model && !self.deployment.is_empty() {
            format!("{}/{OTHER_MODEL}", self.provider).into()
        } else {
            self.deployment.as_str().into()
        }
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

/// A catalogued model and its list prices in USD per 1M tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub id: String,
    pub provider: String,
    pub context_window: u64,
    pub input: f64,
    pub cached_input: f64,
    pub output: f64,
}

impl ModelPrice {
    /// Cost in USD; cached prompt tokens are billed at the cached price.
    pub fn cost(&self, prompt: u64, cached: u64, completion: u64) -> f64 {
        cost_usd(
            [self.input, self.cached_input, self.output],
            prompt,
            cached,
            completion,
        )
    }
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The one cost formula (the console's estimates and the recorded cost both use it): `prices` are
/// USD per 1M input, cached-input and output tokens; cached tokens, never counted as more than the
/// prompt, are billed at the cached price.
pub fn cost_usd(prices: [f64; 3], prompt: u64, cached: u64, completion: u64) -> f64 {
    let [input, cached_input, output] = prices;
    let cached = cached.min(prompt);
    ((prompt - cached) as f64 * input + cached as f64 * cached_input + completion as f64 * output)
        / 1_000_000.0
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

/// What a virtual key may do. Sent to create a key; every field but `name` may be left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct KeySettings {
    pub name: String,
    /// Models the key may use, as the client names them; empty: all.
    pub models: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    pub tpm: Option<u64>,
    /// Spend limit in USD per `budget_period`.
    pub budget_usd: Option<f64>,
    /// `day` (UTC) or `month` (UTC calendar month).
    pub budget_period: BudgetPeriod,
    /// Unix seconds after which the key stops working.
    pub expires_at: Option<u64>,
    /// The team the key belongs to: the team's models, limits and budget apply too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    #[default]
    Month,
}

/// A virtual key as listed: never its secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub id: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    #[serde(flatten)]
    pub settings: KeySettings,
    /// Unix seconds.
    pub created_at: u64,
    pub spend_today_usd: f64,
    pub spend_month_usd: f64,
}

/// A key just created or rotated: the only time its secret is shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: KeyInfo,
    pub key: String,
}
