//! Chat completion chunks (OpenAI's shape, as every translator writes them) as Messages stream
//! events: `message_start`, one content block per thinking, text or tool call
//! (`content_block_start`/`_delta`/`_stop`), then `message_delta` with the stop reason and usage,
//! and `message_stop`.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::providers::chunks::{self, Chunk, FromChunks, FunctionDelta};
use crate::providers::openai_types::Usage;

#[derive(PartialEq, Clone, Copy)]
enum Block {
    Thinking,
    Text,
    Tool(u32),
}

/// Writes Messages events for the chunks of one reply.
pub struct MessagesStream {
    id: String,
    model: String,
    started: bool,
    /// The open content block and its index.
    open: Option<(Block, u32)>,
    next_index: u32,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

fn event(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, data).expect("an event serialises");
    out.extend_from_slice(b"\n\n");
}

/// `content_block_delta`, written from borrowed text (the stream's hot path: one per piece).
#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: Piece<'a>,
}

/// A delta's `type` is its variant's name and `_delta`.
#[derive(Serialize)]
#[serde(tag = "type")]
enum Piece<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

fn block_delta(out: &mut Vec<u8>, index: u32, delta: Piece) {
    let data = BlockDelta {
        kind: "content_block_delta",
        index,
        delta,
    };
    event(out, "content_block_delta", &data);
}

impl MessagesStream {
    pub fn new(id: String, model: String) -> MessagesStream {
        MessagesStream {
            id,
            model,
            started: false,
            open: None,
            next_index: 0,
            finish_reason: None,
            usage: None,
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": super::reply::usage_json(None),
            }}),
        );
    }

    /// Opens `block` unless it is the open one; returns its index.
    fn open(&mut self, block: Block, first: Value, out: &mut Vec<u8>) -> u32 {
        if let Some((open, index)) = self.open
            && open == block
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": first}),
        );
        index
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((block, index)) = self.open.take() {
            if block == Block::Thinking {
                let delta = json!({"type": "signature_delta", "signature": ""});
                event(
                    out,
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index, "delta": delta}),
                );
            }
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// A thinking block carrying what the tool call `id` needs back ([`super::carried`]).
    fn carry(&mut self, id: &str, extra_content: &Value, out: &mut Vec<u8>) {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let first = json!({"type": "thinking", "thinking": "", "signature": ""});
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": first}),
        );
        let signature = crate::providers::carried::signature(id, extra_content);
        Self::delta(
            out,
            index,
            json!({"type": "signature_delta", "signature": signature}),
        );
        event(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }

    fn delta(out: &mut Vec<u8>, index: u32, delta: Value) {
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn chunk(&mut self, chunk: Chunk, out: &mut Vec<u8>) {
        self.start(out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                let first = json!({"type": "thinking", "thinking": ""});
                let index = self.open(Block::Thinking, first, out);
                block_delta(out, index, Piece::Thinking { thinking: &text });
            }
            if let Some(extra) = delta.extra_content.filter(Value::is_object) {
                self.carry(crate::providers::carried::MESSAGE, &extra, out);
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                let index = self.open(Block::Text, json!({"type": "text", "text": ""}), out);
                block_delta(out, index, Piece::Text { text: &text });
            }
            for call in delta.tool_calls {
                if let (Some(id), Some(extra)) = (&call.id, &call.extra_content) {
                    self.carry(id, extra, out);
                }
                let function = call.function.unwrap_or(FunctionDelta {
                    name: None,
                    arguments: None,
                });
                let first = json!({
                    "type": "tool_use",
                    "id": call.id.unwrap_or_default(),
                    "name": function.name.unwrap_or_default(),
                    "input": {},
                });
                let index = self.open(Block::Tool(call.index), first, out);
                if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                    let delta = Piece::InputJson {
                        partial_json: &arguments,
                    };
                    block_delta(out, index, delta);
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
    }
}

impl FromChunks for MessagesStream {
    fn frames(&mut self, frames: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        chunks::each(frames, |chunk| self.chunk(chunk, out))
    }

    /// The end of the reply: the open block closed, the stop reason and usage, `message_stop`.
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        let reason = super::stop_reason(self.finish_reason.as_deref().unwrap_or("stop"));
        let usage = super::reply::usage_json(self.usage.as_ref());
        event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": usage}),
        );
        event(out, "message_stop", &json!({"type": "message_stop"}));
    }
}
