//! Gemini's own API as an inbound dialect (what the Gemini CLI, `@google/genai` and `google-genai`
//! speak), at the gateway's root: `/v1beta/models/{model}:{method}` and `/v1/models/{model}:{method}`.
//!
//! To a Gemini upstream the client's bytes pass through: the model is in the URL, so only the URL
//! changes, and the reply's usage is read on the way. To any other upstream a request becomes
//! OpenAI's chat completions ([`request`]), which every provider's translator already speaks, and
//! the reply comes back as a `GenerateContentResponse` ([`reply`]) or as its stream ([`stream`]).
//! Errors on these routes come in Google's shape ([`handler::google_shape`]).

pub mod count_tokens;
pub mod embed;
pub mod endpoint;
pub mod handler;
pub mod models;
pub mod reply;
pub mod request;
pub mod stream;

use axum::http::StatusCode;

use crate::error::ApiError;

/// One of Gemini's model methods, from the last segment of its URL (`{model}:{method}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Generate,
    StreamGenerate,
    CountTokens,
    Embed,
    BatchEmbed,
}

impl Method {
    pub fn parse(name: &str) -> Option<Method> {
        Some(match name {
            "generateContent" => Method::Generate,
            "streamGenerateContent" => Method::StreamGenerate,
            "countTokens" => Method::CountTokens,
            "embedContent" => Method::Embed,
            "batchEmbedContents" => Method::BatchEmbed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Generate => "generateContent",
            Method::StreamGenerate => "streamGenerateContent",
            Method::CountTokens => "countTokens",
            Method::Embed => "embedContent",
            Method::BatchEmbed => "batchEmbedContents",
        }
    }
}

/// `{model}:{method}` (the model may hold colons itself: the method follows the last one).
pub fn split_call(segment: &str) -> Option<(&str, &str)> {
    let (model, method) = segment.rsplit_once(':')?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    (!model.is_empty()).then_some((model, method))
}

/// Google's status name for an HTTP status (`google.rpc.Code`).
pub fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        502 | 503 | 529 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// An error in Google's shape: `{"error":{"code","message","status"}}`.
pub fn error_json(status: StatusCode, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "error": {"code": status.as_u16(), "message": message, "status": status_name(status)},
    }))
    .expect("a JSON value serialises")
}

/// The error for a request the gateway refused or could not serve, in Google's shape.
pub fn error_of(error: &ApiError) -> Vec<u8> {
    error_json(error.status, &error.message)
}

/// Gemini's finish reason for OpenAI's `finish_reason` (a reply that called functions stops).
pub fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "STOP",
    }
}

#[cfg(test)]
mod tests;
