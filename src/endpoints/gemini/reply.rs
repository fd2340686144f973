//! A chat completion (OpenAI's shape, as every translator writes it) as a `GenerateContentResponse`:
//! one candidate per choice, with thought, text and `functionCall` parts, Gemini's finish reasons
//! and `usageMetadata`.

use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::providers::carried;
use crate::providers::openai_types::{ThinkingBlock, Usage};

/// Gemini's usage for the gateway's: candidates exclude the thoughts, which count apart.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    thoughts_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cached_content_token_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UsageMetadata {
    pub fn of(usage: &Usage) -> UsageMetadata {
        let thoughts = usage.reasoning_tokens();
        UsageMetadata {
            prompt_token_count: usage.prompt_tokens,
            candidates_token_count: usage.completion_tokens.saturating_sub(thoughts),
            total_token_count: usage.prompt_tokens.saturating_add(usage.completion_tokens),
            thoughts_token_count: thoughts,
            cached_content_token_count: usage.cached_tokens(),
        }
    }
}

/// One part of a candidate's content, as the client reads it.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

#[derive(Serialize)]
pub struct FunctionCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub args: Value,
}

/// A function call's arguments (a JSON string in chat completions) as an object.
pub fn arguments(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({"arguments": text}))
}

/// What Claude's signed thinking carries through a Gemini client: the blocks as one signature.
pub fn thinking_signature(blocks: &[ThinkingBlock]) -> Option<String> {
    (!blocks.is_empty()).then(|| carried::thinking_signature(blocks))
}

/// `chat` is a whole `chat.completion`; `id` the response id, `model` the model reported back.
pub fn generate_content(
    chat: &[u8],
    id: &str,
    model: &str,
) -> Result<(Vec<u8>, Option<Usage>), ApiError> {
    let chat: Value = serde_json::from_slice(chat)
        .map_err(|e| ApiError::bad_gateway(format!("the upstream reply is not JSON: {e}")))?;
    let usage: Option<Usage> = chat
        .get("usage")
        .filter(|u| !u.is_null())
        .and_then(|u| serde_json::from_value(u.clone()).ok());
    let empty = Vec::new();
    let choices = chat["choices"].as_array().unwrap_or(&empty);
    let mut candidates = Vec::with_capacity(choices.len());
    for (i, choice) in choices.iter().enumerate() {
        let message = &choice["message"];
        let blocks: Vec<ThinkingBlock> = message
            .get("thinking_blocks")
            .and_then(|b| serde_json::from_value(b.clone()).ok())
            .unwrap_or_default();
        let mut signature = thinking_signature(&blocks);
        let mut parts = Vec::new();
        let reasoning = message
            .get("reasoning_content")
            .or_else(|| message.get("reasoning"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let calls = message["tool_calls"].as_array().unwrap_or(&empty);
        if !reasoning.is_empty() || (signature.is_some() && calls.is_empty()) {
            parts.push(Part {
                text: Some(reasoning),
                thought: Some(true),
                // With calls, the signature goes on the first call, as Gemini puts its own.
                thought_signature: if calls.is_empty() {
                    signature.take()
                } else {
                    None
                },
                ..Part::default()
            });
        }
        if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
            parts.push(Part {
                text: Some(text),
                ..Part::default()
            });
        }
        for call in calls {
            let id = call["id"].as_str().unwrap_or_default();
            let own = call
                .get("extra_content")
                .filter(|e| e.is_object())
                .map(|extra| carried::signature(id, extra));
            parts.push(Part {
                function_call: Some(FunctionCall {
                    id,
                    name: call["function"]["name"].as_str().unwrap_or_default(),
                    args: arguments(call["function"]["arguments"].as_str().unwrap_or("{}")),
                }),
                thought_signature: own.or_else(|| signature.take()),
                ..Part::default()
            });
        }
        let finish = choice["finish_reason"].as_str().unwrap_or("stop");
        candidates.push(serde_json::json!({
            "content": {"role": "model", "parts": parts},
            "finishReason": super::finish_reason(finish),
            "index": i,
        }));
    }
    let mut reply = serde_json::json!({
        "candidates": candidates,
        "modelVersion": model,
        "responseId": id,
    });
    if let Some(usage) = &usage {
        reply["usageMetadata"] =
            serde_json::to_value(UsageMetadata::of(usage)).expect("usage serialises");
    }
    Ok((
        serde_json::to_vec(&reply).expect("a JSON value serialises"),
        usage,
    ))
}
