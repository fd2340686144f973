//! `streamGenerateContent?alt=sse` events → OpenAI chat completion chunks.

use std::collections::BTreeMap;

use super::reply::{
    call_id, finish_of, malformed_call, map_finish, no_candidate, parse_reply, short_id,
    signature_content, sort_parts,
};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta, Usage,
};
use crate::providers::sse;
use crate::providers::translate::ReplyContext;

#[derive(Debug, Default)]
pub(super) struct ChoiceState {
    /// The role chunk went out.
    pub(super) started: bool,
    /// The finish reason went out: later deltas for this choice are ignored.
    pub(super) finished: bool,
    /// Tool calls so far: the next call's `index`.
    pub(super) calls: u32,
}

/// Translates the upstream SSE stream, one `data:` payload at a time, into OpenAI chunk frames written with sse::write_json.
pub struct ChatStream {
    pub(super) ctx: ReplyContext,
    pub(super) short: String,
    pub(super) choices: BTreeMap<u32, ChoiceState>,
    /// Tool calls in the whole reply, for unique ids.
    pub(super) calls_made: usize,
    pub(super) usage: Option<Usage>,
    pub(super) usage_written: bool,
}

impl ChatStream {
    pub fn new(ctx: ReplyContext) -> Self {
        let short = short_id(&ctx.id);
        ChatStream {
            ctx,
            short,
            choices: BTreeMap::new(),
            calls_made: 0,
            usage: None,
            usage_written: false,
        }
    }

    pub(super) fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.ctx.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices,
            usage,
        }
    }

    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        let data = data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return Ok(());
        }
        let mut reply = parse_reply(data)?;
        if let Some(usage) = &reply.usage_metadata {
            self.usage = Some(usage.to_usage());
        }
        let candidates = reply.candidates.take().unwrap_or_default();
        if candidates.is_empty() {
            return match no_candidate(&reply) {
                Some(blocked) => Err(blocked),
                None => Ok(()),
            };
        }
        let mut choices = Vec::with_capacity(candidates.len());
        for (pos, candidate) in candidates.into_iter().enumerate() {
            let index = candidate.index.unwrap_or(pos as u32);
            let reason = finish_of(&candidate).map(str::to_owned);
            if reason.as_deref() == Some("MALFORMED_FUNCTION_CALL") {
                return Err(malformed_call());
            }
            let state = self.choices.entry(index).or_default();
            if state.finished {
                continue;
            }
            let mut delta = Delta::default();
            if !state.started {
                state.started = true;
                delta.role = Some("assistant".into());
            }
            let sorted = sort_parts(candidate.content);
            if !sorted.text.is_empty() {
                delta.content = Some(sorted.text);
            }
            if !sorted.thoughts.is_empty() {
                delta.reasoning_content = Some(sorted.thoughts);
            }
            delta.extra_content = signature_content(sorted.signature);
            if !sorted.calls.is_empty() {
                let mut deltas = Vec::with_capacity(sorted.calls.len());
                for call in sorted.calls {
                    deltas.push(ToolCallDelta {
                        index: state.calls,
                        id: Some(call_id(&self.short, self.calls_made)),
                        kind: Some("function".into()),
                        function: FunctionCallDelta {
                            name: Some(call.name),
                            arguments: Some(call.arguments),
                        },
                        extra_content: signature_content(call.signature),
                    });
                    state.calls += 1;
                    self.calls_made += 1;
                }
                delta.tool_calls = Some(deltas);
            }
            let finish = match reason.as_deref() {
                None => None,
                Some(_) if state.calls > 0 => Some("tool_calls"),
                Some(r) => Some(map_finish(r)?),
            };
            if finish.is_some() {
                state.finished = true;
            }
            let empty = delta.role.is_none()
                && delta.content.is_none()
                && delta.reasoning_content.is_none()
                && delta.tool_calls.is_none()
                && delta.extra_content.is_none();
            if empty && finish.is_none() {
                continue;
            }
            choices.push(ChunkChoice {
                index,
                delta,
                finish_reason: finish.map(str::to_owned),
            });
        }
        if !choices.is_empty() {
            sse::write_json(out, &self.chunk(choices, None));
        }
        Ok(())
    }

    /// Upstream ended: emit whatever is still owed (the usage chunk with `choices: []` when ctx.include_usage). Do NOT write `data: [DONE]` (the caller does).
    ///
    /// A stream that ends before every choice got its finish reason was cut short: that is an
    /// error, not a silent `stop`. Without any usage from Gemini no usage chunk is written.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.choices.is_empty() {
            return Err(ApiError::bad_gateway(
                "Gemini: the stream ended without any candidate",
            ));
        }
        if self.choices.values().any(|c| !c.finished) {
            return Err(ApiError::bad_gateway(
                "Gemini: the stream ended before the reply was finished (no finishReason)",
            ));
        }
        if self.ctx.include_usage
            && !self.usage_written
            && let Some(usage) = self.usage
        {
            sse::write_json(out, &self.chunk(Vec::new(), Some(usage)));
            self.usage_written = true;
        }
        Ok(())
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
