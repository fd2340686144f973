//! `generateContent` replies → OpenAI chat completions: parts, finish reasons, blocked prompts,
//! usage.

use serde_json::Value;

use super::wire::{Candidate, GContent, GenerateContentResponse, UsageMetadata};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatCompletion, Choice, FunctionCall, ResponseMessage, ToolCall, Usage,
};
use crate::providers::translate::ReplyContext;

pub(super) fn malformed_call() -> ApiError {
    ApiError::bad_gateway(
        "Gemini: the model produced a malformed function call (MALFORMED_FUNCTION_CALL)",
    )
}

pub(super) fn blocked_prompt(reason: &str) -> ApiError {
    ApiError::invalid_request(format!("Gemini blocked the prompt: {reason}"))
        .with_code("content_filter")
}

pub(super) fn parse_reply(body: &[u8]) -> Result<GenerateContentResponse, ApiError> {
    let reply: GenerateContentResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "Gemini: the reply is not a GenerateContentResponse: {e}"
        ))
    })?;
    if let Some(error) = &reply.error {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty());
        return Err(ApiError::bad_gateway(format!(
            "Gemini: {}",
            message.unwrap_or("the reply reports an error")
        )));
    }
    Ok(reply)
}

/// The error owed when a reply holds no candidate: a blocked prompt, or nothing usable.
pub(super) fn no_candidate(reply: &GenerateContentResponse) -> Option<ApiError> {
    let reason = reply.prompt_feedback.as_ref()?.block_reason.as_deref()?;
    (!reason.is_empty() && reason != "BLOCK_REASON_UNSPECIFIED").then(|| blocked_prompt(reason))
}

/// A candidate's finish reason, if it has a meaningful one.
pub(super) fn finish_of(candidate: &Candidate) -> Option<&str> {
    candidate
        .finish_reason
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "FINISH_REASON_UNSPECIFIED")
}

/// Gemini's finish reason in OpenAI's words (a choice that called tools says `tool_calls` instead).
pub(super) fn map_finish(reason: &str) -> Result<&'static str, ApiError> {
    Ok(match reason {
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        "MALFORMED_FUNCTION_CALL" => return Err(malformed_call()),
        "UNEXPECTED_TOOL_CALL" => {
            return Err(ApiError::bad_gateway(
                "Gemini: the model called a function it was not given (UNEXPECTED_TOOL_CALL)",
            ));
        }
        _ => "stop",
    })
}

/// A function call of a reply: its name, its arguments (JSON) and its thought signature.
pub(super) struct Call {
    pub(super) name: String,
    pub(super) arguments: String,
    pub(super) signature: Option<String>,
}

/// A candidate's parts sorted out: answer text, thought text and function calls.
#[derive(Default)]
pub(super) struct Sorted {
    pub(super) text: String,
    pub(super) thoughts: String,
    pub(super) calls: Vec<Call>,
    /// The thought signature on a part that is not a function call (Gemini 3 signs its answer's
    /// last part).
    pub(super) signature: Option<String>,
}

/// Where a chat completions tool call carries Gemini's thought signature, as Google's own
/// OpenAI-compatible endpoint does: `extra_content.google.thought_signature`.
pub(super) fn signature_content(signature: Option<String>) -> Option<Value> {
    signature.map(|s| serde_json::json!({"google": {"thought_signature": s}}))
}

/// The thought signature a client sent back on a tool call.
pub(super) fn signature_of(extra_content: Option<&Value>) -> Option<String> {
    extra_content?
        .pointer("/google/thought_signature")?
        .as_str()
        .map(str::to_owned)
}

pub(super) fn sort_parts(content: Option<GContent>) -> Sorted {
    let mut sorted = Sorted::default();
    for part in content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = part.function_call {
            let args = if call.args.is_null() {
                "{}".to_string()
            } else {
                call.args.to_string()
            };
            sorted.calls.push(Call {
                name: call.name,
                arguments: args,
                signature: part.thought_signature,
            });
        } else if let Some(text) = part.text {
            if part.thought_signature.is_some() {
                sorted.signature = part.thought_signature;
            }
            if part.thought == Some(true) {
                sorted.thoughts.push_str(&text);
            } else {
                sorted.text.push_str(&text);
            }
        }
    }
    sorted
}

/// A short, id-safe token from the reply id, so tool call ids are unique across replies.
pub(super) fn short_id(id: &str) -> String {
    let id = id.strip_prefix("chatcmpl-").unwrap_or(id);
    let chars: Vec<char> = id.chars().filter(char::is_ascii_alphanumeric).collect();
    let short: String = chars[chars.len().saturating_sub(12)..].iter().collect();
    if short.is_empty() {
        "gemini".to_string()
    } else {
        short
    }
}

pub(super) fn call_id(short: &str, n: usize) -> String {
    format!("call_{short}_{n}")
}

/// Upstream non-stream body (GenerateContentResponse) -> OpenAI chat.completion JSON bytes + usage.
pub fn chat_response(body: &[u8], ctx: &ReplyContext) -> Result<(Vec<u8>, Usage), ApiError> {
    let mut reply = parse_reply(body)?;
    let candidates = reply.candidates.take().unwrap_or_default();
    if candidates.is_empty() {
        return Err(no_candidate(&reply)
            .unwrap_or_else(|| ApiError::bad_gateway("Gemini: the reply holds no candidate")));
    }
    let short = short_id(&ctx.id);
    let mut calls_made = 0;
    let mut choices = Vec::with_capacity(candidates.len());
    for (pos, candidate) in candidates.into_iter().enumerate() {
        let index = candidate.index.unwrap_or(pos as u32);
        let reason = finish_of(&candidate).map(str::to_owned);
        if reason.as_deref() == Some("MALFORMED_FUNCTION_CALL") {
            return Err(malformed_call());
        }
        let sorted = sort_parts(candidate.content);
        let tool_calls: Vec<ToolCall> = sorted
            .calls
            .into_iter()
            .map(|call| {
                calls_made += 1;
                ToolCall {
                    id: call_id(&short, calls_made - 1),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: call.name,
                        arguments: call.arguments,
                    },
                    extra_content: signature_content(call.signature),
                }
            })
            .collect();
        let finish = match reason.as_deref() {
            _ if !tool_calls.is_empty() => "tool_calls",
            Some(r) => map_finish(r)?,
            None => "stop",
        };
        let content = if sorted.text.is_empty() && !tool_calls.is_empty() {
            None
        } else {
            Some(sorted.text)
        };
        choices.push(Choice {
            index,
            message: ResponseMessage {
                role: "assistant".into(),
                content,
                reasoning_content: (!sorted.thoughts.is_empty()).then_some(sorted.thoughts),
                thinking_blocks: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                extra_content: signature_content(sorted.signature),
            },
            finish_reason: Some(finish.into()),
            logprobs: None,
        });
    }
    let usage = reply.usage_metadata.as_ref().map(UsageMetadata::to_usage);
    let completion = ChatCompletion {
        id: ctx.id.clone(),
        object: "chat.completion".into(),
        created: ctx.created,
        model: ctx.model.clone(),
        choices,
        usage,
    };
    let bytes = serde_json::to_vec(&completion).expect("serialising to a Vec cannot fail");
    Ok((bytes, usage.unwrap_or_default()))
}
