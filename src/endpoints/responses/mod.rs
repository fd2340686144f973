//! OpenAI's Responses API as an inbound dialect (`POST /v1/responses`, what Codex speaks).
//!
//! To an upstream that speaks the Responses API (OpenAI) the client's bytes pass through
//! ([`passthrough`]): only the model name may change, and the usage is read on the way. To any
//! other upstream the conversation becomes OpenAI's chat completions ([`request`]), which every
//! provider's translator already speaks, and the reply comes back as a response object or as
//! Responses stream events ([`stream`]).

pub mod endpoint;
pub mod handler;
pub mod passthrough;
pub mod request;
pub mod socket;
pub mod stream;

use serde_json::{Map, Value, json};

use crate::providers::openai_types::Usage;

/// The Responses API's usage for the gateway's.
pub fn usage_json(usage: Option<&Usage>) -> Value {
    let u = usage.copied().unwrap_or_default();
    let reasoning = u
        .completion_tokens_details
        .map_or(0, |d| d.reasoning_tokens);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens()},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    })
}

/// A new id: `prefix` and 32 random hex digits (unguessable: a stored response's id is what
/// gives access to it).
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The response object as it starts (`in_progress`, no output yet), echoing the request's settings.
pub fn skeleton(request: &Map<String, Value>, id: &str, model: &str, created_at: u64) -> Value {
    let echo = |field: &str, default: Value| {
        request
            .get(field)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let reasoning = request.get("reasoning").filter(|v| v.is_object());
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": echo("instructions", Value::Null),
        "max_output_tokens": echo("max_output_tokens", Value::Null),
        "model": model,
        "output": [],
        "parallel_tool_calls": echo("parallel_tool_calls", true.into()),
        "previous_response_id": echo("previous_response_id", Value::Null),
        "reasoning": {
            "effort": reasoning.and_then(|r| r.get("effort")).cloned().unwrap_or(Value::Null),
            "summary": reasoning.and_then(|r| r.get("summary")).cloned().unwrap_or(Value::Null),
        },
        "store": echo("store", true.into()),
        "temperature": echo("temperature", 1.0.into()),
        "text": echo("text", json!({"format": {"type": "text"}})),
        "tool_choice": echo("tool_choice", "auto".into()),
        "tools": echo("tools", json!([])),
        "top_p": echo("top_p", 1.0.into()),
        "truncation": echo("truncation", "disabled".into()),
        "usage": null,
        "user": echo("user", Value::Null),
        "metadata": echo("metadata", json!({})),
    })
}

#[cfg(test)]
mod tests;
