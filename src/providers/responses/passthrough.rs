//! Responses to an upstream that speaks the Responses API (OpenAI): the client's bytes and the
//! upstream's reply pass through untouched; only the usage is read on the way.

use serde::Deserialize;

use crate::error::ApiError;
use crate::providers::openai_types::Usage;
use crate::providers::sse::{self, SseEvent};

/// The Responses API's usage.
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<Cached>,
    #[serde(default)]
    output_tokens_details: Option<Reasoning>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Cached {
    #[serde(default)]
    cached_tokens: u64,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Reasoning {
    #[serde(default)]
    reasoning_tokens: u64,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage::new(
            self.input_tokens,
            self.output_tokens,
            self.input_tokens_details.map_or(0, |d| d.cached_tokens),
            self.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
        )
    }
}

#[derive(Deserialize)]
struct Ended {
    response: HasUsage,
}

#[derive(Deserialize)]
struct HasUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// The usage of a whole (non-stream) response, from its bytes.
pub fn usage_of_response(body: &[u8]) -> Option<Usage> {
    let at = memchr::memmem::rfind(body, b"\"usage\"")?;
    let rest = &body[at + 7..];
    let start = rest.iter().position(|b| !b" \t\r\n:".contains(b))?;
    let mut values = serde_json::Deserializer::from_slice(&rest[start..]).into_iter::<WireUsage>();
    Some(values.next()?.ok()?.usage())
}

/// A Responses stream forwarded event by event, exactly as the upstream framed it.
#[derive(Default)]
pub struct PassthroughStream {
    usage: Option<Usage>,
}

/// The events that end a response and carry its usage.
const ENDINGS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

impl PassthroughStream {
    pub fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let name = event.event.as_deref().unwrap_or("");
        if ENDINGS.contains(&name)
            && let Ok(ended) = serde_json::from_slice::<Ended>(&event.data)
            && let Some(usage) = ended.response.usage
        {
            self.usage = Some(usage.usage());
        }
        sse::write_event(out, event);
        Ok(())
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
