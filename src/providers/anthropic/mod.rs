//! Anthropic's Messages API (`POST /v1/messages`): OpenAI chat requests are encoded into it and its
//! replies, streamed or not, are decoded back into OpenAI's chat completion shape.

use serde::Deserialize;

use crate::error::ApiError;
use crate::providers::spec::{ProviderSpec, Wire};

mod reply;
mod request;
mod stream;
mod wire;

pub use self::reply::*;
pub use self::request::*;
pub use self::stream::*;
use self::wire::*;

pub const SPEC: ProviderSpec = ProviderSpec {
    id: "anthropic",
    display_name: "Anthropic",
    key_env: &["ANTHROPIC_API_KEY"],
    base_url_env: "ANTHROPIC_BASE_URL",
    region_env: None,
    default_base_url: "https://api.anthropic.com",
    regions: &[],
    wire: Wire::Anthropic,
};

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is what a request without a limit gets.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// `{base}/v1/messages` (base without trailing slash).
pub fn chat_url(base_url: &str) -> String {
    format!("{}/v1/messages", base_url.trim_end_matches('/'))
}

/// The message from an Anthropic error body ({"type":"error","error":{"type","message"}}), if any.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        error: WireError,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let e = envelope.error;
    if !e.message.is_empty() {
        Some(e.message)
    } else if !e.kind.is_empty() {
        Some(e.kind)
    } else {
        None
    }
}

/// The failure an `error` event of an Anthropic stream reports (`overloaded_error` as 503).
pub fn stream_error(data: &[u8]) -> ApiError {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        error: WireError,
    }
    let error = serde_json::from_slice::<Envelope>(data)
        .map(|e| e.error)
        .unwrap_or_default();
    upstream_error(&error)
}

#[cfg(test)]
mod tests;
