//! Model prices and the one cost formula.

use serde::{Deserialize, Serialize};

/// A catalogued model and its list prices in USD per 1M tokens: the one price type, of the
/// catalogue (`catalogue.toml` with `[pricing]`), the recorded cost and the console.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ModelPrice {
    pub id: String,
    pub provider: String,
    pub context_window: u64,
    /// USD per 1M input tokens.
    pub input: f64,
    /// USD per 1M cached input tokens.
    pub cached_input: f64,
    /// USD per 1M output tokens.
    pub output: f64,
    /// USD per 1M tokens written to the prompt cache (Anthropic: 1.25 × input); `input` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
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

/// The one cost formula (the console's estimates and the recorded cost both use it): `prices` are
/// USD per 1M input, cached-input and output tokens; cached tokens, never counted as more than the
/// prompt, are billed at the cached price.
pub fn cost_usd(prices: [f64; 3], prompt: u64, cached: u64, completion: u64) -> f64 {
    let [input, cached_input, output] = prices;
    let cached = cached.min(prompt);
    ((prompt - cached) as f64 * input + cached as f64 * cached_input + completion as f64 * output)
        / 1_000_000.0
}
