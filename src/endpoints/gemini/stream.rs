//! `streamGenerateContent` replies: a Gemini upstream's events forwarded as they came
//! ([`PassthroughStream`]), or chat completion chunks written as Gemini's events
//! ([`GeminiStream`]): thought and text parts as they arrive, function calls whole (Gemini never
//! sends a call in pieces) with the finish reason and `usageMetadata` in the last event. Framed as
//! server-sent events (`?alt=sse`, what every SDK and the Gemini CLI ask for) or as one JSON array.

use serde::Serialize;
use serde_json::Value;

use super::reply::{FunctionCall, Part, UsageMetadata, arguments, thinking_signature};
use crate::error::ApiError;
use crate::gateway::relay::{ChatTo, StreamOut};
use crate::providers::chunks::{self, Chunk, FromChunks};
use crate::providers::openai_types::{ThinkingBlock, Usage};
use crate::providers::sse::{self, SseEvent};

/// How a stream's events are framed for the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `data: {…}` events (`alt=sse`).
    Sse,
    /// One JSON array of responses, written as they come.
    Array,
}

/// Writes one response object per event in the client's framing.
struct Framer {
    framing: Framing,
    opened: bool,
}

impl Framer {
    fn write(&mut self, out: &mut Vec<u8>, value: &impl Serialize) {
        self.open(out);
        serde_json::to_writer(&mut *out, value).expect("an event serialises");
        self.end(out);
    }

    /// One response object's JSON as it is.
    fn write_raw(&mut self, out: &mut Vec<u8>, json: &[u8]) {
        self.open(out);
        out.extend_from_slice(json);
        self.end(out);
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Sse => out.extend_from_slice(b"data: "),
            Framing::Array if self.opened => out.extend_from_slice(b",\r\n"),
            Framing::Array => out.push(b'['),
        }
        self.opened = true;
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::Sse {
            out.extend_from_slice(b"\r\n\r\n");
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::Array {
            if !self.opened {
                out.push(b'[');
            }
            out.push(b']');
        }
    }

    fn error(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        let json: Value =
            serde_json::from_slice(&super::error_of(error)).expect("an error is JSON");
        self.write(out, &json);
        self.close(out);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    candidates: [EventCandidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventCandidate<'a> {
    content: EventContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct EventContent<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

/// The most function calls one candidate gathers (a bound on what an upstream's stream can grow).
const MAX_CALLS: usize = 256;

/// A function call being gathered from its pieces.
#[derive(Default)]
struct PendingCall {
    /// The chat stream's index of the call.
    index: u32,
    id: String,
    name: String,
    arguments: String,
    extra_content: Option<Value>,
}

/// What one candidate (one chat choice) has gathered so far.
#[derive(Default)]
struct CandidateState {
    index: u32,
    calls: Vec<PendingCall>,
    thinking: Vec<ThinkingBlock>,
    finish_reason: Option<String>,
}

/// Writes Gemini's events for the chunks of one chat reply.
pub struct GeminiStream {
    id: String,
    model: String,
    framer: Framer,
    candidates: Vec<CandidateState>,
    usage: Option<Usage>,
}

impl GeminiStream {
    pub fn new(id: String, model: String, framing: Framing) -> GeminiStream {
        GeminiStream {
            id,
            model,
            framer: Framer {
                framing,
                opened: false,
            },
            candidates: Vec::new(),
            usage: None,
        }
    }

    fn candidate(&mut self, index: u32) -> &mut CandidateState {
        let at = match self.candidates.iter().position(|c| c.index == index) {
            Some(at) => at,
            None => {
                self.candidates.push(CandidateState {
                    index,
                    ..CandidateState::default()
                });
                self.candidates.len() - 1
            }
        };
        &mut self.candidates[at]
    }

    fn write(
        &mut self,
        out: &mut Vec<u8>,
        index: u32,
        parts: Vec<Part>,
        finish: Option<&'static str>,
        usage: Option<UsageMetadata>,
    ) {
        let event = Event {
            candidates: [EventCandidate {
                content: EventContent {
                    role: "model",
                    parts,
                },
                finish_reason: finish,
                index,
            }],
            usage_metadata: usage,
            model_version: &self.model,
            response_id: &self.id,
        };
        self.framer.write(out, &event);
    }

    fn chunk(&mut self, chunk: Chunk, out: &mut Vec<u8>) {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            let state = self.candidate(choice.index);
            for piece in delta.thinking_blocks {
                chunks::gather_thinking(&mut state.thinking, piece);
            }
            for call in delta.tool_calls {
                // Found by its index, never allocated up to it (the index is the upstream's).
                let at = match state.calls.iter().position(|c| c.index == call.index) {
                    Some(at) => at,
                    None if state.calls.len() < MAX_CALLS => {
                        state.calls.push(PendingCall {
                            index: call.index,
                            ..PendingCall::default()
                        });
                        state.calls.len() - 1
                    }
                    None => continue,
                };
                let pending = &mut state.calls[at];
                if let Some(id) = call.id {
                    pending.id = id;
                }
                if let Some(extra) = call.extra_content.filter(Value::is_object) {
                    pending.extra_content = Some(extra);
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name {
                        pending.name.push_str(&name);
                    }
                    if let Some(arguments) = function.arguments {
                        pending.arguments.push_str(&arguments);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                state.finish_reason = Some(reason);
            }
            let reasoning = delta.reasoning_content.filter(|t| !t.is_empty());
            let text = delta.content.filter(|t| !t.is_empty());
            if reasoning.is_none() && text.is_none() {
                continue;
            }
            let mut parts = Vec::with_capacity(2);
            if let Some(reasoning) = &reasoning {
                parts.push(Part {
                    text: Some(reasoning),
                    thought: Some(true),
                    ..Part::default()
                });
            }
            if let Some(text) = &text {
                parts.push(Part {
                    text: Some(text),
                    ..Part::default()
                });
            }
            self.write(out, choice.index, parts, None, None);
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

impl FromChunks for GeminiStream {
    fn frames(&mut self, frames: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        chunks::each(frames, |chunk| self.chunk(chunk, out))
    }

    /// The end of the reply: per candidate, its function calls (whole), the finish reason and the
    /// usage.
    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.candidates.is_empty() {
            self.candidates.push(CandidateState::default());
        }
        let candidates = std::mem::take(&mut self.candidates);
        let last = candidates.len() - 1;
        for (i, state) in candidates.iter().enumerate() {
            let mut signature = thinking_signature(&state.thinking);
            let mut parts = Vec::with_capacity(state.calls.len() + 1);
            if signature.is_some() && state.calls.is_empty() {
                parts.push(Part {
                    text: Some(""),
                    thought: Some(true),
                    thought_signature: signature.take(),
                    ..Part::default()
                });
            }
            for call in &state.calls {
                let own = call
                    .extra_content
                    .as_ref()
                    .map(|extra| crate::providers::carried::signature(&call.id, extra));
                parts.push(Part {
                    function_call: Some(FunctionCall {
                        id: &call.id,
                        name: &call.name,
                        args: arguments(&call.arguments),
                    }),
                    thought_signature: own.or_else(|| signature.take()),
                    ..Part::default()
                });
            }
            let finish = super::finish_reason(state.finish_reason.as_deref().unwrap_or("stop"));
            let usage = (i == last)
                .then(|| self.usage.as_ref().map(UsageMetadata::of))
                .flatten();
            self.write(out, state.index, parts, Some(finish), usage);
        }
        self.framer.close(out);
    }
}

/// A Gemini upstream's stream (asked for as server-sent events) forwarded event by event: as the
/// upstream framed them, or each event's JSON as an element of the client's array. It succeeded
/// only if an event gave a finish reason: an error event or an end before one is a failure (not
/// recorded as a success, never cached).
pub struct PassthroughStream {
    framer: Framer,
    usage: Option<Usage>,
    finished: bool,
    errored: bool,
}

impl PassthroughStream {
    pub fn new(framing: Framing) -> PassthroughStream {
        PassthroughStream {
            framer: Framer {
                framing,
                opened: false,
            },
            usage: None,
            finished: false,
            errored: false,
        }
    }

    pub fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let data = &event.data[..];
        if let Some(usage) = crate::providers::gemini::usage_of(data) {
            self.usage = Some(usage);
        }
        if !self.finished && memchr::memmem::find(data, b"\"finishReason\"").is_some() {
            self.finished = true;
        }
        match self.framer.framing {
            Framing::Sse => sse::write_event(out, event),
            Framing::Array => self.framer.write_raw(out, data),
        }
        if memchr::memmem::find(&data[..data.len().min(16)], b"\"error\"").is_some() {
            self.errored = true;
            let message = crate::providers::gemini::error_message(data)
                .unwrap_or_else(|| "the stream reported an error".to_string());
            return Err(ApiError::bad_gateway(format!("Gemini: {message}")));
        }
        Ok(())
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.finished {
            self.framer.close(out);
            Ok(())
        } else {
            Err(ApiError::bad_gateway(
                "Gemini: the stream ended before a finish reason",
            ))
        }
    }
}

/// A Gemini stream, from Gemini as it is or from a chat translator's chunks.
pub enum GeminiOut {
    Passthrough(PassthroughStream),
    FromChat(Box<ChatTo<GeminiStream>>),
}

impl StreamOut for GeminiOut {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            GeminiOut::Passthrough(p) => p.event(event, out),
            GeminiOut::FromChat(c) => c.event(event, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        match self {
            GeminiOut::Passthrough(p) => p.finish(out),
            GeminiOut::FromChat(c) => c.finish(out),
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            GeminiOut::Passthrough(p) => p.usage,
            GeminiOut::FromChat(c) => c.usage(),
        }
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        match self {
            GeminiOut::Passthrough(p) if p.errored => p.framer.close(out),
            GeminiOut::Passthrough(p) => p.framer.error(error, out),
            GeminiOut::FromChat(c) => c.inbound.framer.error(error, out),
        }
    }
}
