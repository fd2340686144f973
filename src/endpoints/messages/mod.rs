//! Anthropic's Messages API as an inbound dialect (`POST /v1/messages`, what Claude Code speaks).
//!
//! To an Anthropic upstream the client's bytes pass through ([`passthrough`]): only the model name
//! may change, and the reply's usage is read on the way. To any other upstream a request becomes
//! OpenAI's chat completions ([`request`]), which every provider's translator already speaks, and
//! the reply comes back as a message ([`reply`]) or as Messages stream events ([`stream`]).

pub mod count_tokens;
pub mod endpoint;
pub mod handler;
pub mod passthrough;
pub mod reply;
pub mod request;
pub mod stream;

use axum::http::StatusCode;

use crate::error::ApiError;

/// Anthropic's error `type` for a status.
pub fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 | 403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// An error in Anthropic's shape: `{"type":"error","error":{"type","message"}}`.
pub fn error_json(status: StatusCode, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    }))
    .expect("a JSON value serialises")
}

/// An error as a Messages stream event.
pub fn error_event(error: &ApiError, out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(&error_json(error.status, &error.message));
    out.extend_from_slice(b"\n\n");
}

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

#[cfg(test)]
mod tests;
