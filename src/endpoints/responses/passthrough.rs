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
struct Whole {
    response: serde_json::Value,
}

#[derive(Deserialize)]
struct HasUsage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// The usage of a whole (non-stream) response, from its bytes.
pub fn usage_of_response(body: &[u8]) -> Option<Usage> {
    crate::providers::openai_compatible::last_usage::<WireUsage>(body).map(|u| u.usage())
}

/// A Responses stream forwarded event by event, exactly as the upstream framed it.
#[derive(Default)]
pub struct PassthroughStream {
    usage: Option<Usage>,
    /// Hand back the whole response when it ends (to keep it).
    wanted: bool,
}

/// The events that end a response and carry its usage.
const ENDINGS: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

impl PassthroughStream {
    /// `wanted`: [`Self::event`] hands back the whole response from the event that ends it.
    pub fn new(wanted: bool) -> PassthroughStream {
        PassthroughStream {
            usage: None,
            wanted,
        }
    }

    /// Forwards one event; the whole response once it ended successfully, if wanted.
    pub fn event(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<u8>,
    ) -> Result<Option<serde_json::Value>, ApiError> {
        let name = event.event.as_deref().unwrap_or("");
        let mut whole = None;
        if ENDINGS.contains(&name) {
            if let Ok(ended) = serde_json::from_slice::<Ended>(&event.data)
                && let Some(usage) = ended.response.usage
            {
                self.usage = Some(usage.usage());
            }
            if self.wanted && name != "response.failed" {
                whole = serde_json::from_slice::<Whole>(&event.data)
                    .ok()
                    .map(|w| w.response);
            }
        }
        sse::write_event(out, event);
        Ok(whole)
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
