//! A chat completion (OpenAI's shape, as every translator writes it) as a Messages reply.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::providers::openai_types::Usage;

/// Anthropic's usage for the gateway's: `input_tokens` excludes the cache reads.
pub fn usage_json(usage: Option<&Usage>) -> Value {
    let (prompt, completion, cached) = usage.map_or((0, 0, 0), |u| {
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens())
    });
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "output_tokens": completion,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    })
}

/// `chat` is a whole `chat.completion`; `id` the message id, `model` the model reported back.
pub fn message(chat: &[u8], id: &str, model: &str) -> Result<(Vec<u8>, Option<Usage>), ApiError> {
    let chat: Value = serde_json::from_slice(chat)
        .map_err(|e| ApiError::bad_gateway(format!("the upstream reply is not JSON: {e}")))?;
    let usage: Option<Usage> = chat
        .get("usage")
        .filter(|u| !u.is_null())
        .and_then(|u| serde_json::from_value(u.clone()).ok());
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    let reasoning = message
        .get("reasoning_content")
        .or_else(|| message.get("reasoning"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !reasoning.is_empty() {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if let Some(extra) = message.get("extra_content").filter(|e| e.is_object()) {
        let carried = crate::providers::carried::MESSAGE;
        content.push(crate::providers::carried::block(carried, extra));
    }
    if let Some(text) = message.get("content").and_then(Value::as_str)
        && !text.is_empty()
    {
        content.push(json!({"type": "text", "text": text}));
    }
    if let Some(Value::Array(calls)) = message.get("tool_calls") {
        for call in calls {
            let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
            let input: Value = serde_json::from_str(if arguments.trim().is_empty() {
                "{}"
            } else {
                arguments
            })
            .unwrap_or_else(|_| json!({}));
            if let (Some(id), Some(extra)) = (call["id"].as_str(), call.get("extra_content"))
                && extra.is_object()
            {
                content.push(crate::providers::carried::block(id, extra));
            }
            content.push(json!({
                "type": "tool_use",
                "id": call["id"],
                "name": call["function"]["name"],
                "input": input,
            }));
        }
    }
    let finish = choice["finish_reason"].as_str().unwrap_or("stop");
    let reply = json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": super::stop_reason(finish),
        "stop_sequence": null,
        "usage": usage_json(usage.as_ref()),
    });
    Ok((
        serde_json::to_vec(&reply).expect("a JSON value serialises"),
        usage,
    ))
}
