//! Google Gemini: `generateContent`, `streamGenerateContent?alt=sse` and `batchEmbedContents`,
//! translated to and from OpenAI's wire format.
//!
//! Requests: system/developer messages become `systemInstruction`, assistant turns `model` turns,
//! tool results `functionResponse` parts (named after the assistant call with the same id), and
//! tool schemas are reduced to the OpenAPI subset Gemini accepts. A `json_schema` response format
//! goes whole as `responseJsonSchema` to the models that take JSON Schema (Gemini 2.5 and later)
//! and reduced as `responseSchema` to the older ones.
//! Replies: text parts become `content`, thought parts `reasoning_content`, `functionCall` parts
//! `tool_calls`; finish reasons, blocked prompts and usage are mapped to OpenAI's vocabulary.

use serde_json::Value;

use crate::providers::spec::{ProviderSpec, Wire};

mod embeddings;
mod reply;
mod request;
mod schema;
mod stream;
mod wire;

pub use self::embeddings::*;
pub use self::reply::*;
pub use self::request::*;
pub use self::stream::*;

pub const SPEC: ProviderSpec = ProviderSpec {
    id: "gemini",
    display_name: "Google Gemini",
    key_env: &["GEMINI_API_KEY"],
    base_url_env: "GEMINI_BASE_URL",
    region_env: None,
    default_base_url: "https://generativelanguage.googleapis.com/v1beta",
    regions: &[],
    wire: Wire::Gemini,
};

/// `{base}/models/{model}:generateContent` or `{base}/models/{model}:streamGenerateContent?alt=sse` (base without trailing slash).
pub fn chat_url(base_url: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let model = model_segment(model);
    if stream {
        format!("{base}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/models/{model}:generateContent")
    }
}

/// `{base}/models/{model}:{method}`, and `?alt=sse` for a stream framed as server-sent events:
/// the URL of any of Gemini's model methods (`generateContent`, `countTokens`, `embedContent`…).
pub fn method_url(base_url: &str, model: &str, method: &str, sse: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let model = model_segment(model);
    let alt = if sse { "?alt=sse" } else { "" };
    format!("{base}/models/{model}:{method}{alt}")
}

/// The last `usageMetadata` in a reply's bytes (a whole reply, a stream event or a JSON array of
/// them), as the gateway counts usage. Read from the end: Gemini writes it last.
pub fn usage_of(body: &[u8]) -> Option<crate::providers::openai_types::Usage> {
    static KEY: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"\"usageMetadata\""));
    let at = KEY.rfind(body)?;
    let rest = &body[at + 15..];
    let start = rest.iter().position(|b| !b" \t\r\n:".contains(b))?;
    let mut values =
        serde_json::Deserializer::from_slice(&rest[start..]).into_iter::<wire::UsageMetadata>();
    Some(values.next()?.ok()?.to_usage())
}

/// The model as one URL path segment: `/`, `?`, `#`, `%` and `:` cannot change the URL's meaning.
fn model_segment(model: &str) -> percent_encoding::PercentEncode<'_> {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(bare_model(model), SEGMENT)
}

/// Whether the model takes a whole JSON Schema as `responseJsonSchema` (Gemini 2.5 and later,
/// and any model outside the older families); Gemini 1.x and 2.0 take only the OpenAPI subset
/// as `responseSchema`.
fn takes_json_schema(model: &str) -> bool {
    let model = bare_model(model);
    !(model.starts_with("gemini-1.") || model.starts_with("gemini-2.0"))
}

/// `models/gemini-x` and `gemini-x` name the same model.
fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// The human-readable message from a Gemini error body ({"error":{"code","message","status"}}), if any.
/// Also reads the `[{"error":…}]` array form of `streamGenerateContent` without `alt=sse`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match &value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let error = value.get("error")?;
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    text("message")
        .or_else(|| text("status"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
