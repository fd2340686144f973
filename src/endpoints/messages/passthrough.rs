//! Messages to an Anthropic upstream: the client's bytes and the upstream's reply pass through
//! untouched; only the usage is read on the way, for the stats and the cost.

use serde::Deserialize;

use crate::error::ApiError;
use crate::providers::openai_types::Usage;
use crate::providers::sse::{self, SseEvent};

/// Anthropic's usage; every field optional (`message_delta` carries only what changed).
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    fn merge(&mut self, newer: WireUsage) {
        self.input_tokens = newer.input_tokens.or(self.input_tokens);
        self.output_tokens = newer.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = newer
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = newer
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    /// As the gateway counts it: the prompt includes cache reads and writes.
    fn usage(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let written = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(read)
            .saturating_add(written);
        Usage::new(prompt, self.output_tokens.unwrap_or(0), read, 0).with_cache_writes(written)
    }
}

#[derive(Deserialize)]
struct Start {
    message: HasUsage,
}

#[derive(Deserialize)]
struct HasUsage {
    #[serde(default)]
    usage: WireUsage,
}

/// The usage of a whole (non-stream) message, from its bytes.
pub fn usage_of_message(body: &[u8]) -> Option<Usage> {
    crate::providers::openai_compatible::last_usage::<WireUsage>(body).map(|u| u.usage())
}

/// A Messages stream forwarded event by event, exactly as the upstream framed it. It succeeded
/// only if it reached `message_stop`: an `error` event or an end before it is a failure (not
/// recorded as a success, never cached).
#[derive(Default)]
pub struct PassthroughStream {
    usage: Option<WireUsage>,
    stopped: bool,
    /// The upstream's own `error` event was forwarded: the client has its error already.
    errored: bool,
}

impl PassthroughStream {
    pub fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let name = event.event.as_deref().unwrap_or("");
        match name {
            "error" => {
                sse::write_event(out, event);
                self.errored = true;
                return Err(crate::providers::anthropic::stream_error(&event.data));
            }
            "message_stop" => self.stopped = true,
            "message_start" => {
                if let Ok(start) = serde_json::from_slice::<Start>(&event.data) {
                    self.usage
                        .get_or_insert_default()
                        .merge(start.message.usage);
                }
            }
            "message_delta" => {
                if let Ok(delta) = serde_json::from_slice::<HasUsage>(&event.data) {
                    self.usage.get_or_insert_default().merge(delta.usage);
                }
            }
            _ => {}
        }
        sse::write_event(out, event);
        Ok(())
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.stopped {
            Ok(())
        } else {
            Err(ApiError::bad_gateway(
                "Anthropic: the stream ended before message_stop",
            ))
        }
    }

    /// Whether the upstream's `error` event already told the client of the failure.
    pub fn errored(&self) -> bool {
        self.errored
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.map(|u| u.usage())
    }
}
