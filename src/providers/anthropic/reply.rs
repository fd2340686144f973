//! Messages API replies → OpenAI chat completions: content blocks, stop reasons, usage, errors.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::wire::{MessagesResponse, ReplyBlock, WireError};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatCompletion, Choice, FunctionCall, ResponseMessage, ThinkingBlock, ToolCall, Usage,
};
use crate::providers::translate::ReplyContext;

pub(super) fn finish_reason(stop_reason: Option<&str>, saw_tool_use: bool) -> &'static str {
    if saw_tool_use {
        return "tool_calls";
    }
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn
        _ => "stop",
    }
}

pub(super) fn usage_of(input: u64, cache_read: u64, cache_creation: u64, output: u64) -> Usage {
    let prompt = input
        .saturating_add(cache_read)
        .saturating_add(cache_creation);
    Usage::new(prompt, output, cache_read, 0).with_cache_writes(cache_creation)
}

pub(super) fn upstream_error(error: &WireError) -> ApiError {
    let message = if error.message.is_empty() {
        error.kind.as_str()
    } else {
        error.message.as_str()
    };
    let message = format!("Anthropic: {message}");
    match error.kind.as_str() {
        "overloaded_error" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "upstream_error", message)
                .with_code("overloaded")
        }
        _ => ApiError::bad_gateway(message),
    }
}

/// Upstream non-stream body -> OpenAI chat.completion JSON bytes + usage.
pub fn chat_response(body: &[u8], ctx: &ReplyContext) -> Result<(Vec<u8>, Usage), ApiError> {
    let reply: MessagesResponse = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_gateway(format!("Anthropic: unreadable reply: {e}")))?;
    if let Some(error) = &reply.error {
        return Err(upstream_error(error));
    }

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in reply.content {
        match block {
            ReplyBlock::Text { text: t } => text.push_str(&t),
            ReplyBlock::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(&thinking);
                thinking_blocks.push(ThinkingBlock::Thinking {
                    thinking,
                    signature,
                });
            }
            ReplyBlock::RedactedThinking { data } => {
                thinking_blocks.push(ThinkingBlock::RedactedThinking { data });
            }
            ReplyBlock::ToolUse { id, name, input } => {
                let input = if input.is_null() {
                    Value::Object(Map::new())
                } else {
                    input
                };
                tool_calls.push(ToolCall {
                    id,
                    kind: "function".to_string(),
                    function: FunctionCall {
                        name,
                        arguments: input.to_string(),
                    },
                    extra_content: None,
                });
            }
            ReplyBlock::Other => {}
        }
    }

    let u = reply.usage;
    let usage = usage_of(
        u.input_tokens.unwrap_or(0),
        u.cache_read_input_tokens.unwrap_or(0),
        u.cache_creation_input_tokens.unwrap_or(0),
        u.output_tokens.unwrap_or(0),
    );
    let finish = finish_reason(reply.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    let completion = ChatCompletion {
        id: ctx.id.clone(),
        object: "chat.completion".to_string(),
        created: ctx.created,
        model: ctx.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".to_string(),
                content,
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
                extra_content: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            },
            finish_reason: Some(finish.to_string()),
            logprobs: None,
        }],
        usage: Some(usage),
    };
    let bytes = serde_json::to_vec(&completion)
        .map_err(|e| ApiError::internal(format!("encoding the reply: {e}")))?;
    Ok((bytes, usage))
}
