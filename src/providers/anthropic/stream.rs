//! Messages API stream events → OpenAI chat completion chunks.

use super::reply::{finish_reason, upstream_error, usage_of};
use super::wire::{BlockDelta, ReplyBlock, StreamEvent, WireUsage};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatChunk, ChunkChoice, Delta, FunctionCallDelta, ThinkingBlock, ThinkingBlockDelta,
    ToolCallDelta, Usage,
};
use crate::providers::sse;
use crate::providers::translate::ReplyContext;

/// Translates the upstream SSE stream, one `data:` payload at a time (the payload JSON carries
/// "type"), into OpenAI chunk frames written with sse::write_json.
pub struct ChatStream {
    pub(super) ctx: ReplyContext,
    /// `message_start` was seen (the role chunk is out).
    pub(super) started: bool,
    pub(super) input_tokens: u64,
    pub(super) cache_read: u64,
    pub(super) cache_creation: u64,
    pub(super) output_tokens: u64,
    pub(super) stop_reason: Option<String>,
    /// Content block index → tool call index, for the tool_use blocks seen so far.
    pub(super) tool_blocks: Vec<(u32, u32)>,
    /// The content block index of each thinking (or redacted thinking) block so far, in order:
    /// the position is the block's index in `thinking_blocks`.
    pub(super) thinking_blocks: Vec<u32>,
    /// The tool_use block (content block index, tool call index) still without arguments: a
    /// call without input gets `{}` when its block stops, as in a whole reply.
    pub(super) no_arguments_yet: Option<(u32, u32)>,
    /// The chunk with the non-null finish_reason is out.
    pub(super) finish_sent: bool,
    /// `message_stop` was seen.
    pub(super) complete: bool,
    /// `finish` ran.
    pub(super) finished: bool,
}

impl ChatStream {
    pub fn new(ctx: ReplyContext) -> Self {
        ChatStream {
            ctx,
            started: false,
            input_tokens: 0,
            cache_read: 0,
            cache_creation: 0,
            output_tokens: 0,
            stop_reason: None,
            tool_blocks: Vec::new(),
            thinking_blocks: Vec::new(),
            no_arguments_yet: None,
            finish_sent: false,
            complete: false,
            finished: false,
        }
    }

    pub(super) fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatChunk {
        ChatChunk {
            id: self.ctx.id.clone(),
            object: "chat.completion.chunk".to_string(),
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_string),
            }],
            usage: None,
        }
    }

    pub(super) fn write(&self, out: &mut Vec<u8>, delta: Delta) {
        sse::write_json(out, &self.chunk(delta, None));
    }

    /// The first chunk (`role: assistant`), written once, before anything else.
    pub(super) fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let delta = Delta {
                role: Some("assistant".to_string()),
                content: Some(String::new()),
                ..Default::default()
            };
            self.write(out, delta);
        }
    }

    pub(super) fn write_finish(&mut self, out: &mut Vec<u8>) {
        if !self.finish_sent {
            self.finish_sent = true;
            let reason = finish_reason(self.stop_reason.as_deref(), !self.tool_blocks.is_empty());
            sse::write_json(out, &self.chunk(Delta::default(), Some(reason)));
        }
    }

    pub(super) fn merge_usage(&mut self, u: &WireUsage) {
        if let Some(n) = u.input_tokens {
            self.input_tokens = n;
        }
        if let Some(n) = u.cache_read_input_tokens {
            self.cache_read = n;
        }
        if let Some(n) = u.cache_creation_input_tokens {
            self.cache_creation = n;
        }
        if let Some(n) = u.output_tokens {
            self.output_tokens = n;
        }
    }

    pub(super) fn tool_index(&self, block: u32) -> Option<u32> {
        self.tool_blocks
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, t)| *t)
    }

    /// A piece of the thinking block that content block `block` is, with its reasoning text.
    fn thinking(&mut self, out: &mut Vec<u8>, block: u32, piece: ThinkingBlock) {
        let index = match self.thinking_blocks.iter().position(|b| *b == block) {
            Some(at) => at,
            None => {
                self.thinking_blocks.push(block);
                self.thinking_blocks.len() - 1
            }
        } as u32;
        let reasoning_content = match &piece {
            ThinkingBlock::Thinking { thinking, .. } if !thinking.is_empty() => {
                Some(thinking.clone())
            }
            _ => None,
        };
        let delta = Delta {
            reasoning_content,
            thinking_blocks: Some(vec![ThinkingBlockDelta {
                index,
                block: piece,
            }]),
            ..Default::default()
        };
        self.write(out, delta);
    }

    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.complete {
            return Ok(());
        }
        let event: StreamEvent = serde_json::from_slice(data).map_err(|e| {
            ApiError::bad_gateway(format!("Anthropic: unreadable stream event: {e}"))
        })?;
        match event {
            StreamEvent::MessageStart { message } => {
                self.merge_usage(&message.usage);
                self.start(out);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                self.start(out);
                self.block_start(index, content_block, out);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.start(out);
                self.block_delta(index, delta, out);
            }
            StreamEvent::MessageDelta { delta, usage } => {
                self.start(out);
                self.merge_usage(&usage);
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.write_finish(out);
            }
            StreamEvent::MessageStop {} => {
                self.start(out);
                self.write_finish(out);
                self.complete = true;
            }
            StreamEvent::Error { error } => return Err(upstream_error(&error)),
            StreamEvent::ContentBlockStop { index } => self.block_stop(index, out),
            StreamEvent::Ping {} | StreamEvent::Unknown => {}
        }
        Ok(())
    }

    /// A content block starts: a tool call's first delta, or the block's first text or thinking.
    fn block_start(&mut self, index: u32, content_block: ReplyBlock, out: &mut Vec<u8>) {
        match content_block {
            ReplyBlock::ToolUse { id, name, .. } => {
                let n = self.tool_blocks.len() as u32;
                self.tool_blocks.push((index, n));
                self.no_arguments_yet = Some((index, n));
                let call = ToolCallDelta {
                    index: n,
                    id: Some(id),
                    kind: Some("function".to_string()),
                    function: FunctionCallDelta {
                        name: Some(name),
                        arguments: Some(String::new()),
                    },
                    extra_content: None,
                };
                self.write(
                    out,
                    Delta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    },
                );
            }
            ReplyBlock::Text { text } if !text.is_empty() => {
                self.write(
                    out,
                    Delta {
                        content: Some(text),
                        ..Default::default()
                    },
                );
            }
            ReplyBlock::Thinking {
                thinking,
                signature,
            } if !(thinking.is_empty() && signature.is_empty()) => {
                let piece = ThinkingBlock::Thinking {
                    thinking,
                    signature,
                };
                self.thinking(out, index, piece);
            }
            ReplyBlock::RedactedThinking { data } => {
                self.thinking(out, index, ThinkingBlock::RedactedThinking { data });
            }
            _ => {}
        }
    }

    /// More of a block: text, thinking, its signature, or a tool call's arguments.
    fn block_delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<u8>) {
        match delta {
            BlockDelta::TextDelta { text } if !text.is_empty() => {
                self.write(
                    out,
                    Delta {
                        content: Some(text),
                        ..Default::default()
                    },
                );
            }
            BlockDelta::ThinkingDelta { thinking } if !thinking.is_empty() => {
                let piece = ThinkingBlock::Thinking {
                    thinking,
                    signature: String::new(),
                };
                self.thinking(out, index, piece);
            }
            BlockDelta::SignatureDelta { signature } if !signature.is_empty() => {
                let piece = ThinkingBlock::Thinking {
                    thinking: String::new(),
                    signature,
                };
                self.thinking(out, index, piece);
            }
            BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                // Deltas of blocks that are not client tool calls (server tools) are not forwarded.
                let Some(n) = self.tool_index(index) else {
                    return;
                };
                if self
                    .no_arguments_yet
                    .is_some_and(|(block, _)| block == index)
                {
                    self.no_arguments_yet = None;
                }
                let call = ToolCallDelta {
                    index: n,
                    function: FunctionCallDelta {
                        arguments: Some(partial_json),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                self.write(
                    out,
                    Delta {
                        tool_calls: Some(vec![call]),
                        ..Default::default()
                    },
                );
            }
            _ => {}
        }
    }

    /// A block ends: a tool call that got no arguments gets `{}`.
    fn block_stop(&mut self, index: Option<u32>, out: &mut Vec<u8>) {
        if let Some((block, n)) = self.no_arguments_yet
            && index.is_none_or(|i| i == block)
        {
            self.no_arguments_yet = None;
            let call = ToolCallDelta {
                index: n,
                function: FunctionCallDelta {
                    arguments: Some("{}".to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            self.write(
                out,
                Delta {
                    tool_calls: Some(vec![call]),
                    ..Default::default()
                },
            );
        }
    }

    /// Upstream ended: emit what is owed (the usage chunk with `choices: []` when
    /// ctx.include_usage). Does not write `data: [DONE]` (the caller does). If the upstream
    /// ended before message_stop, returns Err(ApiError::bad_gateway(..)).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if !self.complete {
            return Err(ApiError::bad_gateway(
                "Anthropic: the stream ended before message_stop",
            ));
        }
        if self.ctx.include_usage {
            let chunk = ChatChunk {
                id: self.ctx.id.clone(),
                object: "chat.completion.chunk".to_string(),
                created: self.ctx.created,
                model: self.ctx.model.clone(),
                choices: vec![],
                usage: self.usage(),
            };
            sse::write_json(out, &chunk);
        }
        Ok(())
    }

    /// The usage reported so far (none before `message_start`).
    pub fn usage(&self) -> Option<Usage> {
        self.started.then(|| {
            usage_of(
                self.input_tokens,
                self.cache_read,
                self.cache_creation,
                self.output_tokens,
            )
        })
    }
}
