//! Chat completion chunks (OpenAI's shape, as every translator writes them) as Responses stream
//! events, each with its `sequence_number`: `response.created`, `response.in_progress`, then per
//! output item (reasoning, message, function call) `response.output_item.added`, its parts and
//! deltas, `response.output_item.done`, and at the end `response.completed` (or
//! `response.incomplete`) with the whole response and its usage. A whole (non-stream) reply goes
//! through the same steps as one chunk, so both shapes are built by the same code.

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::providers::chunks::{self, Chunk, FromChunks};
use crate::providers::openai_types::{ThinkingBlock, Usage};

/// The output item being written.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        index: u32,
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Writes Responses events for the chunks of one reply, and keeps the response they describe.
pub struct ResponsesStream {
    /// The response object: the request's settings, `output` filled in as items close.
    response: Value,
    /// The random part of the response id, for its items' ids.
    suffix: String,
    sequence: u64,
    started: bool,
    open: Option<Open>,
    output: Vec<Value>,
    /// Anthropic's signed thinking not yet written into a reasoning item's `encrypted_content`.
    thinking: Vec<ThinkingBlock>,
    /// What the message needs back with its text (Gemini's signature on its answer): a carrier
    /// reasoning item after the message item.
    message_extra: Option<Value>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

/// A delta event (text, reasoning summary, function call arguments), written from borrowed text:
/// the stream's hot path, one per piece.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary_index: Option<u32>,
    delta: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<[(); 0]>,
}

impl Delta<'_> {
    fn write(self, out: &mut Vec<u8>, sequence: &mut u64) {
        let data = Delta {
            sequence_number: *sequence,
            ..self
        };
        *sequence += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(data.kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        serde_json::to_writer(&mut *out, &data).expect("an event serialises");
        out.extend_from_slice(b"\n\n");
    }
}

/// An event that carries the whole response (`response.created`, `.in_progress`, `.completed`),
/// written from a borrow of it rather than a copy.
#[derive(Serialize)]
struct WholeResponse<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    response: &'a Value,
}

fn whole_response(out: &mut Vec<u8>, sequence: &mut u64, kind: &str, response: &Value) {
    let data = WholeResponse {
        kind,
        sequence_number: *sequence,
        response,
    };
    *sequence += 1;
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, &data).expect("an event serialises");
    out.extend_from_slice(b"\n\n");
}

fn event(out: &mut Vec<u8>, sequence: &mut u64, kind: &str, mut data: Value) {
    data["type"] = kind.into();
    data["sequence_number"] = (*sequence).into();
    *sequence += 1;
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, &data).expect("a JSON value serialises");
    out.extend_from_slice(b"\n\n");
}

impl ResponsesStream {
    /// `skeleton` is the response as it starts ([`super::skeleton`]).
    pub fn new(skeleton: Value) -> ResponsesStream {
        let suffix = skeleton["id"]
            .as_str()
            .and_then(|id| id.strip_prefix("resp_"))
            .unwrap_or("0")
            .to_string();
        ResponsesStream {
            response: skeleton,
            suffix,
            sequence: 0,
            started: false,
            open: None,
            output: Vec::new(),
            thinking: Vec::new(),
            message_extra: None,
            finish_reason: None,
            usage: None,
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The response as it stands (whole once [`Self::finish`] ran).
    pub fn response(&self) -> &Value {
        &self.response
    }

    /// The output items written so far.
    pub fn output(&self) -> &[Value] {
        &self.output
    }

    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, data: Value) {
        event(out, &mut self.sequence, kind, data);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let sequence = &mut self.sequence;
        whole_response(out, sequence, "response.created", &self.response);
        whole_response(out, sequence, "response.in_progress", &self.response);
    }

    fn item_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}{:02}", self.suffix, self.output.len())
    }

    pub fn chunk(&mut self, chunk: Chunk, out: &mut Vec<u8>) {
        self.start(out);
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                self.reasoning(&text, out);
            }
            for piece in delta.thinking_blocks {
                chunks::gather_thinking(&mut self.thinking, piece);
            }
            if let Some(extra) = delta.extra_content.filter(Value::is_object) {
                self.message_extra = Some(extra);
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.text(&text, out);
            }
            for call in delta.tool_calls {
                let function = call.function.unwrap_or_default();
                let same =
                    matches!(&self.open, Some(Open::Call { index, .. }) if *index == call.index);
                if !same {
                    self.close(out);
                    self.carry_thinking(out);
                    let call_id = call
                        .id
                        .filter(|id| !id.is_empty())
                        .unwrap_or_else(|| format!("call_{}{:02}", self.suffix, self.output.len()));
                    if let Some(extra) = &call.extra_content {
                        self.carry(&call_id, extra, out);
                    }
                    let id = self.item_id("fc");
                    let name = function.name.clone().unwrap_or_default();
                    let item = json!({"id": id, "type": "function_call", "status": "in_progress",
                        "arguments": "", "call_id": call_id, "name": name});
                    let index = self.output.len();
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": index, "item": item}),
                    );
                    self.open = Some(Open::Call {
                        index: call.index,
                        id,
                        call_id,
                        name,
                        arguments: String::new(),
                    });
                }
                if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                    let index = self.output.len();
                    if let Some(Open::Call {
                        id, arguments: all, ..
                    }) = &mut self.open
                    {
                        all.push_str(&arguments);
                        Delta {
                            kind: "response.function_call_arguments.delta",
                            sequence_number: 0,
                            item_id: id,
                            output_index: index,
                            content_index: None,
                            summary_index: None,
                            delta: &arguments,
                            logprobs: None,
                        }
                        .write(out, &mut self.sequence);
                    }
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
    }

    /// Signed thinking that came without reasoning text (redacted thinking): a reasoning item of
    /// its own that carries it.
    fn carry_thinking(&mut self, out: &mut Vec<u8>) {
        if !self.thinking.is_empty() {
            let blocks = std::mem::take(&mut self.thinking);
            self.carrier(crate::providers::carried::thinking_signature(&blocks), out);
        }
    }

    /// A reasoning item carrying what the call `call_id` needs back ([`crate::providers::carried`]).
    fn carry(&mut self, call_id: &str, extra_content: &Value, out: &mut Vec<u8>) {
        self.carrier(
            crate::providers::carried::signature(call_id, extra_content),
            out,
        );
    }

    /// A reasoning item with nothing but `encrypted_content`.
    fn carrier(&mut self, encrypted_content: String, out: &mut Vec<u8>) {
        let index = self.output.len();
        let item = json!({"id": self.item_id("rs"), "type": "reasoning", "summary": [],
            "encrypted_content": encrypted_content});
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let id = self.item_id("rs");
            let index = self.output.len();
            let item = json!({"id": id, "type": "reasoning", "summary": []});
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id,
                "output_index": index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}),
            );
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        if let Some(Open::Reasoning { id, text: all }) = &mut self.open {
            all.push_str(text);
            Delta {
                kind: "response.reasoning_summary_text.delta",
                sequence_number: 0,
                item_id: id,
                output_index: index,
                content_index: None,
                summary_index: Some(0),
                delta: text,
                logprobs: None,
            }
            .write(out, &mut self.sequence);
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out);
            self.carry_thinking(out);
            let id = self.item_id("msg");
            let index = self.output.len();
            let item = json!({"id": id, "type": "message", "status": "in_progress",
                "role": "assistant", "content": []});
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id,
                "output_index": index, "content_index": 0,
                "part": {"type": "output_text", "annotations": [], "text": ""}}),
            );
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        if let Some(Open::Message { id, text: all }) = &mut self.open {
            all.push_str(text);
            Delta {
                kind: "response.output_text.delta",
                sequence_number: 0,
                item_id: id,
                output_index: index,
                content_index: Some(0),
                summary_index: None,
                delta: text,
                logprobs: Some([]),
            }
            .write(out, &mut self.sequence);
        }
    }

    /// Closes the open item: its `.done` events, and the item into the output.
    fn close(&mut self, out: &mut Vec<u8>) {
        let index = self.output.len();
        let item = match self.open.take() {
            None => return,
            Some(Open::Reasoning { id, text }) => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id,
                    "output_index": index, "summary_index": 0, "text": text}),
                );
                self.emit(
                    out,
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id,
                    "output_index": index, "summary_index": 0, "part": part}),
                );
                let mut item = json!({"id": id, "type": "reasoning", "summary": [part]});
                if !self.thinking.is_empty() {
                    let blocks = std::mem::take(&mut self.thinking);
                    item["encrypted_content"] =
                        crate::providers::carried::thinking_signature(&blocks).into();
                }
                item
            }
            Some(Open::Message { id, text }) => {
                let part = json!({"type": "output_text", "annotations": [], "text": text});
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "part": part}),
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant",
                    "content": [part]})
            }
            Some(Open::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            }) => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id,
                    "output_index": index, "name": name, "arguments": arguments}),
                );
                json!({"id": id, "type": "function_call", "status": "completed",
                    "arguments": arguments, "call_id": call_id, "name": name})
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
        if let Some(extra) = self.message_extra.take() {
            self.carry(crate::providers::carried::MESSAGE, &extra, out);
        }
    }

    /// The stream broke off: `response.failed` with the error.
    pub fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        self.start(out);
        let code = if error.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        let r = &mut self.response;
        r["status"] = "failed".into();
        r["output"] = Value::Array(self.output.clone());
        r["error"] = json!({"code": code, "message": error.message});
        let response = self.response.clone();
        self.emit(out, "response.failed", json!({"response": response}));
    }
}

impl FromChunks for ResponsesStream {
    fn frames(&mut self, frames: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        chunks::each(frames, |chunk| self.chunk(chunk, out))
    }

    /// The end of the reply: the open item closed, then `response.completed` (or
    /// `response.incomplete` when the reply was cut by the token limit or a content filter).
    fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        self.carry_thinking(out);
        if let Some(extra) = self.message_extra.take() {
            self.carry(crate::providers::carried::MESSAGE, &extra, out);
        }
        let incomplete = match self.finish_reason.as_deref() {
            Some("length") => Some("max_output_tokens"),
            Some("content_filter") => Some("content_filter"),
            _ => None,
        };
        let r = &mut self.response;
        r["output"] = Value::Array(self.output.clone());
        r["usage"] = super::usage_json(self.usage.as_ref());
        r["status"] = if incomplete.is_some() {
            "incomplete"
        } else {
            "completed"
        }
        .into();
        if let Some(reason) = incomplete {
            r["incomplete_details"] = json!({"reason": reason});
        }
        let kind = if incomplete.is_some() {
            "response.incomplete"
        } else {
            "response.completed"
        };
        whole_response(out, &mut self.sequence, kind, &self.response);
    }
}

/// A whole `chat.completion` as a response object (and its usage), built as its stream would be.
pub fn whole(chat: &[u8], skeleton: Value) -> Result<(ResponsesStream, Option<Usage>), ApiError> {
    let chunk = chunks::whole(chat)?;
    let mut stream = ResponsesStream::new(skeleton);
    let mut scratch = Vec::new();
    stream.chunk(chunk, &mut scratch);
    stream.finish(&mut scratch);
    let usage = stream.usage;
    Ok((stream, usage))
}
