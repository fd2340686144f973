//! One request through the gateway, as it is recorded.

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
    /// How the request arrived when not as one HTTP request: `websocket` (a Responses
    /// WebSocket's `response.create`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transport: String,
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

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
