//! Anthropic's Messages API (`POST /v1/messages`): OpenAI chat requests are encoded into it and its
//! replies, streamed or not, are decoded back into OpenAI's chat completion shape.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::providers::openai_types::*;
use crate::providers::spec::{ProviderSpec, Wire};
use crate::providers::sse;
use crate::providers::translate::ReplyContext;

pub const SPEC: ProviderSpec = ProviderSpec {
    id: "anthropic",
    display_name: "Anthropic",
    key_env: &["ANTHROPIC_API_KEY"],
    base_url_env: "ANTHROPIC_BASE_URL",
    region_env: None,
    default_base_url: "https://api.anthropic.com",
    regions: &[],
    wire: Wire::Anthropic,
};

/// The `anthropic-version` header sent with every request.
pub const API_VERSION: &str = "2023-06-01";

/// Anthropic requires `max_tokens`; this is what a request without a limit gets.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// `{base}/v1/messages` (base without trailing slash).
pub fn chat_url(base_url: &str) -> String {
    format!("{}/v1/messages", base_url.trim_end_matches('/'))
}

// ---------- request wire types ----------

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    stream: bool,
}

#[derive(Serialize)]
struct WireMessage {
    role: &'static str,
    content: Vec<Block>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
}

#[derive(Serialize)]
struct WireToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

// ---------- reply wire types ----------

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    content: Vec<ReplyBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReplyBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// `redacted_thinking`, server tools and whatever comes next: not representable in OpenAI's shape.
    #[serde(other)]
    Other,
}

/// Every field optional: `message_delta` carries only what changed.
#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: ReplyBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop {},
    Ping {},
    Error {
        #[serde(default)]
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        #[serde(default)]
        text: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: String,
    },
    /// `signature_delta`, `citations_delta`, …: nothing the client can use.
    #[serde(other)]
    Other,
}

// ---------- requests ----------

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Appends blocks to the conversation, merging them into the last message when it has the same
/// role: Anthropic requires user and assistant turns to alternate.
fn push_blocks(messages: &mut Vec<WireMessage>, role: &'static str, blocks: Vec<Block>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => messages.push(WireMessage {
            role,
            content: blocks,
        }),
    }
}

/// Text and image blocks of an OpenAI message content (empty text is left out: Anthropic rejects it).
fn content_blocks(content: Option<&Content>, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    match content {
        None => {}
        Some(Content::Text(text)) if text.is_empty() => {}
        Some(Content::Text(text)) => blocks.push(Block::Text { text: text.clone() }),
        Some(Content::Parts(parts)) => {
            for (k, part) in parts.iter().enumerate() {
                match part {
                    ContentPart::Text { text } => {
                        if !text.is_empty() {
                            blocks.push(Block::Text { text: text.clone() });
                        }
                    }
                    ContentPart::ImageUrl { image_url } => {
                        let param = format!("messages[{i}].content[{k}].image_url.url");
                        blocks.push(Block::Image {
                            source: image_source(&image_url.url, &param)?,
                        });
                    }
                }
            }
        }
    }
    Ok(blocks)
}

fn image_source(url: &str, param: &str) -> Result<ImageSource, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("The image data URL has no `,` before its data.", param))?;
        let media_type = meta
            .strip_suffix(";base64")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                invalid(
                    "Image data URLs must have the form `data:<mime type>;base64,<data>`.",
                    param,
                )
            })?;
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(ImageSource::Url {
            url: url.to_string(),
        });
    }
    Err(invalid(
        "Image URLs must be http(s) URLs or `data:<mime type>;base64,<data>` URLs.",
        param,
    ))
}

/// The `input` of a `tool_use` block from OpenAI's JSON-text arguments.
fn tool_input(arguments: &str, param: String) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(invalid("Tool call arguments must be a JSON object.", param)),
        Err(e) => Err(invalid(
            format!("Tool call arguments are not valid JSON: {e}"),
            param,
        )),
    }
}

fn json_instruction(format: &ResponseFormat) -> Option<String> {
    match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(
            "Respond with a single valid JSON object and nothing else: no prose, no explanations, no Markdown code fences."
                .to_string(),
        ),
        ResponseFormat::JsonSchema { json_schema } => {
            let mut s = format!(
                "Respond with valid JSON only, and nothing else (no prose, no explanations, no Markdown code fences), conforming to the JSON schema `{}`",
                json_schema.name
            );
            if let Some(description) = &json_schema.description {
                s.push_str(&format!(" ({description})"));
            }
            match &json_schema.schema {
                Some(schema) => {
                    s.push_str(":\n");
                    s.push_str(&serde_json::to_string(schema).unwrap_or_default());
                }
                None => s.push('.'),
            }
            Some(s)
        }
    }
}

fn thinking_budget(effort: Option<&str>) -> Result<Option<u32>, ApiError> {
    match effort {
        None | Some("none") | Some("minimal") => Ok(None),
        Some("low") => Ok(Some(1024)),
        Some("medium") => Ok(Some(4096)),
        Some("high") => Ok(Some(16384)),
        Some(other) => Err(invalid(
            format!(
                "Unknown reasoning_effort `{other}`: expected none, minimal, low, medium or high."
            ),
            "reasoning_effort",
        )),
    }
}

fn tool_choice<'a>(req: &'a ChatRequest) -> Result<Option<WireToolChoice<'a>>, ApiError> {
    let disable_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let choice = match &req.tool_choice {
        None => WireToolChoice {
            kind: "auto",
            name: None,
            disable_parallel_tool_use: None,
        },
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => WireToolChoice {
                kind: "auto",
                name: None,
                disable_parallel_tool_use: None,
            },
            "required" => WireToolChoice {
                kind: "any",
                name: None,
                disable_parallel_tool_use: None,
            },
            "none" => {
                return Ok(Some(WireToolChoice {
                    kind: "none",
                    name: None,
                    disable_parallel_tool_use: None,
                }));
            }
            other => {
                return Err(invalid(
                    format!(
                        "Unknown tool_choice `{other}`: expected none, auto, required or a named function."
                    ),
                    "tool_choice",
                ));
            }
        },
        Some(ToolChoice::Named(named)) => WireToolChoice {
            kind: "tool",
            name: Some(named.function.name.as_str()),
            disable_parallel_tool_use: None,
        },
    };
    if req.tool_choice.is_none() && disable_parallel.is_none() {
        // Anthropic's default is auto: say nothing.
        return Ok(None);
    }
    Ok(Some(WireToolChoice {
        disable_parallel_tool_use: disable_parallel,
        ..choice
    }))
}

/// The Messages API JSON body for an OpenAI request (with "stream": req.stream). Errors are
/// ApiError::invalid_request(..).with_param(..) naming the field.
pub fn chat_request(req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("Anthropic does not support n > 1", "n"));
    }

    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<WireMessage> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let no_content = || {
            invalid(
                format!("messages[{i}] has no content."),
                format!("messages[{i}].content"),
            )
        };
        match m.role {
            Role::System | Role::Developer => {
                let text = m.content.as_ref().ok_or_else(no_content)?.text();
                if !text.is_empty() {
                    system.push(text);
                }
            }
            Role::User => {
                let blocks = content_blocks(m.content.as_ref(), i)?;
                if blocks.is_empty() {
                    return Err(no_content());
                }
                push_blocks(&mut messages, "user", blocks);
            }
            Role::Assistant => {
                // `reasoning_content` is dropped: Anthropic only takes back its own signed thinking blocks.
                let mut blocks = content_blocks(m.content.as_ref(), i)?;
                for (j, call) in m.tool_calls.iter().flatten().enumerate() {
                    let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
                    blocks.push(Block::ToolUse {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        input: tool_input(&call.function.arguments, param)?,
                    });
                }
                if blocks.is_empty() {
                    return Err(no_content());
                }
                push_blocks(&mut messages, "assistant", blocks);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_ref().ok_or_else(|| {
                    invalid(
                        format!("messages[{i}] is a tool message without tool_call_id."),
                        format!("messages[{i}].tool_call_id"),
                    )
                })?;
                let content = m.content.as_ref().ok_or_else(no_content)?.text();
                push_blocks(
                    &mut messages,
                    "user",
                    vec![Block::ToolResult {
                        tool_use_id: id.clone(),
                        content,
                    }],
                );
            }
            Role::Function => {
                return Err(invalid(
                    "Function messages are not supported by Anthropic: send tool messages instead.",
                    format!("messages[{i}].role"),
                ));
            }
        }
    }
    if messages.is_empty() {
        return Err(invalid(
            "Anthropic needs at least one user or assistant message.",
            "messages",
        ));
    }

    if let Some(instruction) = req.response_format.as_ref().and_then(json_instruction) {
        system.push(instruction);
    }

    let tools: Vec<WireTool> = req
        .tools
        .iter()
        .flatten()
        .map(|t| WireTool {
            name: &t.function.name,
            description: t.function.description.as_deref(),
            input_schema: t
                .function
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        })
        .collect();
    let tool_choice = if tools.is_empty() {
        None
    } else {
        tool_choice(req)?
    };

    let budget = thinking_budget(req.reasoning_effort.as_deref())?;
    let requested = req.max_output_tokens();
    let (max_tokens, thinking, temperature, top_p) = match budget {
        Some(budget) => (
            budget + requested.unwrap_or(DEFAULT_MAX_TOKENS),
            Some(Thinking {
                kind: "enabled",
                budget_tokens: budget,
            }),
            None,
            None,
        ),
        None => (
            requested.unwrap_or(DEFAULT_MAX_TOKENS),
            None,
            req.temperature,
            req.top_p,
        ),
    };

    let body = MessagesRequest {
        model: &req.model,
        max_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages,
        tools,
        tool_choice,
        stop_sequences: req.stop.as_ref().map(Stop::to_vec).unwrap_or_default(),
        temperature,
        top_p,
        thinking,
        metadata: req.user.as_deref().map(|user_id| Metadata { user_id }),
        stream: req.stream,
    };
    serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("encoding the Anthropic request: {e}")))
}

// ---------- replies ----------

fn finish_reason(stop_reason: Option<&str>, saw_tool_use: bool) -> &'static str {
    if saw_tool_use {
        return "tool_calls";
    }
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn
        _ => "stop",
    }
}

fn usage_of(input: u64, cache_read: u64, cache_creation: u64, output: u64) -> Usage {
    Usage::new(input + cache_read + cache_creation, output, cache_read, 0)
}

fn upstream_error(error: &WireError) -> ApiError {
    let message = if error.message.is_empty() {
        error.kind.as_str()
    } else {
        error.message.as_str()
    };
    let message = format!("Anthropic: {message}");
    match error.kind.as_str() {
        "overloaded_error" => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "upstream_error", message)
                .with_code("overloaded")
        }
        _ => ApiError::bad_gateway(message),
    }
}

/// Upstream non-stream body -> OpenAI chat.completion JSON bytes + usage.
pub fn chat_response(body: &[u8], ctx: &ReplyContext) -> Result<(Vec<u8>, Usage), ApiError> {
    let reply: MessagesResponse = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_gateway(format!("Anthropic: unreadable reply: {e}")))?;
    if let Some(error) = &reply.error {
        return Err(upstream_error(error));
    }

    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in reply.content {
        match block {
            ReplyBlock::Text { text: t } => text.push_str(&t),
            ReplyBlock::Thinking { thinking } => reasoning.push_str(&thinking),
            ReplyBlock::ToolUse { id, name, input } => {
                let input = if input.is_null() {
                    Value::Object(Map::new())
                } else {
                    input
                };
                tool_calls.push(ToolCall {
                    id,
                    kind: "function".to_string(),
                    function: FunctionCall {
                        name,
                        arguments: input.to_string(),
                    },
                });
            }
            ReplyBlock::Other => {}
        }
    }

    let u = reply.usage;
    let usage = usage_of(
        u.input_tokens.unwrap_or(0),
        u.cache_read_input_tokens.unwrap_or(0),
        u.cache_creation_input_tokens.unwrap_or(0),
        u.output_tokens.unwrap_or(0),
    );
    let finish = finish_reason(reply.stop_reason.as_deref(), !tool_calls.is_empty());
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    let completion = ChatCompletion {
        id: ctx.id.clone(),
        object: "chat.completion".to_string(),
        created: ctx.created,
        model: ctx.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".to_string(),
                content,
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            },
            finish_reason: Some(finish.to_string()),
            logprobs: None,
        }],
        usage: Some(usage),
    };
    let bytes = serde_json::to_vec(&completion)
        .map_err(|e| ApiError::internal(format!("encoding the reply: {e}")))?;
    Ok((bytes, usage))
}

/// Translates the upstream SSE stream, one `data:` payload at a time (the payload JSON carries
/// "type"), into OpenAI chunk frames written with sse::write_json.
pub struct ChatStream {
    ctx: ReplyContext,
    /// `message_start` was seen (the role chunk is out).
    started: bool,
    input_tokens: u64,
    cache_read: u64,
    cache_creation: u64,
    output_tokens: u64,
    stop_reason: Option<String>,
    /// Content block index → tool call index, for the tool_use blocks seen so far.
    tool_blocks: Vec<(u32, u32)>,
    /// The chunk with the non-null finish_reason is out.
    finish_sent: bool,
    /// `message_stop` was seen.
    complete: bool,
    /// `finish` ran.
    finished: bool,
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
            finish_sent: false,
            complete: false,
            finished: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatChunk {
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

    fn write(&self, out: &mut Vec<u8>, delta: Delta) {
        sse::write_json(out, &self.chunk(delta, None));
    }

    /// The first chunk (`role: assistant`), written once, before anything else.
    fn start(&mut self, out: &mut Vec<u8>) {
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

    fn write_finish(&mut self, out: &mut Vec<u8>) {
        if !self.finish_sent {
            self.finish_sent = true;
            let reason = finish_reason(self.stop_reason.as_deref(), !self.tool_blocks.is_empty());
            sse::write_json(out, &self.chunk(Delta::default(), Some(reason)));
        }
    }

    fn merge_usage(&mut self, u: &WireUsage) {
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

    fn tool_index(&self, block: u32) -> Option<u32> {
        self.tool_blocks
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, t)| *t)
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
                match content_block {
                    ReplyBlock::ToolUse { id, name, .. } => {
                        let n = self.tool_blocks.len() as u32;
                        self.tool_blocks.push((index, n));
                        let call = ToolCallDelta {
                            index: n,
                            id: Some(id),
                            kind: Some("function".to_string()),
                            function: FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            },
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
                    ReplyBlock::Thinking { thinking } if !thinking.is_empty() => {
                        self.write(
                            out,
                            Delta {
                                reasoning_content: Some(thinking),
                                ..Default::default()
                            },
                        );
                    }
                    _ => {}
                }
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.start(out);
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
                        self.write(
                            out,
                            Delta {
                                reasoning_content: Some(thinking),
                                ..Default::default()
                            },
                        );
                    }
                    BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                        // Deltas of blocks that are not client tool calls (server tools) are not forwarded.
                        let Some(n) = self.tool_index(index) else {
                            return Ok(());
                        };
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
            StreamEvent::ContentBlockStop {} | StreamEvent::Ping {} | StreamEvent::Unknown => {}
        }
        Ok(())
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

/// The message from an Anthropic error body ({"type":"error","error":{"type","message"}}), if any.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        error: WireError,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let e = envelope.error;
    if !e.message.is_empty() {
        Some(e.message)
    } else if !e.kind.is_empty() {
        Some(e.kind)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).expect("a valid OpenAI request")
    }

    fn encode(v: Value) -> Value {
        serde_json::from_slice(&chat_request(&request(v)).expect("encodes")).unwrap()
    }

    fn encode_err(v: Value) -> ApiError {
        chat_request(&request(v)).expect_err("must be rejected")
    }

    fn ctx(include_usage: bool) -> ReplyContext {
        ReplyContext {
            id: "chatcmpl-test".to_string(),
            created: 1_700_000_000,
            model: "claude-test".to_string(),
            include_usage,
        }
    }

    // ---------- requests ----------

    #[test]
    fn spec_and_url() {
        assert_eq!(SPEC.id, "anthropic");
        assert!(matches!(SPEC.wire, Wire::Anthropic));
        assert_eq!(API_VERSION, "2023-06-01");
        assert_eq!(
            chat_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            chat_url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/v1/messages"
        );
    }

    #[test]
    fn basic_request_fields() {
        let body = encode(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "user", "content": "Again"}
            ],
            "temperature": 0.5, "top_p": 0.9, "stop": "END", "seed": 42, "user": "u-1",
            "presence_penalty": 0.3
        }));
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(body["system"], "Be brief.\n\nUse French.");
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["stream"], false);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["top_p"], 0.9);
        assert_eq!(body["stop_sequences"], json!(["END"]));
        assert_eq!(body["metadata"], json!({"user_id": "u-1"}));
        assert!(body.get("seed").is_none());
        assert!(body.get("presence_penalty").is_none());
        assert!(body.get("thinking").is_none());
        assert!(body.get("tools").is_none());
        assert!(body.get("tool_choice").is_none());
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
                {"role": "user", "content": [{"type": "text", "text": "Again"}]}
            ])
        );
    }

    #[test]
    fn stream_flag_and_max_tokens() {
        let body = encode(json!({"model": "m", "stream": true, "max_tokens": 100,
            "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]}));
        assert_eq!(body["stream"], true);
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["stop_sequences"], json!(["a", "b"]));
        assert!(body.get("system").is_none());
        let body = encode(
            json!({"model": "m", "max_tokens": 100, "max_completion_tokens": 200,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(body["max_tokens"], 200);
    }

    #[test]
    fn consecutive_roles_are_merged() {
        let body = encode(json!({"model": "m", "messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "three"}
        ]}));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "user", "content": [{"type": "text", "text": "three"}]}
            ])
        );
    }

    #[test]
    fn tool_calls_round_trip_by_id() {
        let body = encode(json!({"model": "m", "messages": [
            {"role": "user", "content": "Weather in Paris and Tokyo?"},
            {"role": "assistant", "content": null, "reasoning_content": "thinking...", "tool_calls": [
                {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "25C"}]},
            {"role": "user", "content": "Thanks"}
        ]}));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Tokyo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "25C"},
                    {"type": "text", "text": "Thanks"}
                ]}
            ])
        );
        assert!(
            !body.to_string().contains("thinking..."),
            "reasoning_content is dropped"
        );
    }

    #[test]
    fn assistant_text_and_tool_calls_and_empty_arguments() {
        let body = encode(json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "noon"}
        ]}));
        assert_eq!(
            body["messages"][1]["content"],
            json!([
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "now", "input": {}}
            ])
        );
    }

    #[test]
    fn invalid_tool_arguments_name_the_field() {
        let err = encode_err(json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
            ]}
        ]}));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.kind, "invalid_request_error");
        assert_eq!(
            err.param.as_deref(),
            Some("messages[1].tool_calls[1].function.arguments")
        );
        let err = encode_err(json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
        ]}));
        assert_eq!(
            err.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn message_without_content_is_rejected() {
        let err = encode_err(json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null}
        ]}));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.param.as_deref(), Some("messages[1].content"));
        let err = encode_err(json!({"model": "m", "messages": [{"role": "user"}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].content"));
        let err = encode_err(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
        assert_eq!(err.param.as_deref(), Some("messages[0].tool_call_id"));
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "system", "content": "only system"}]}),
        );
        assert_eq!(err.param.as_deref(), Some("messages"));
    }

    #[test]
    fn images() {
        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
            ]}]}),
        );
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
            ])
        );
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "x"},
                {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}
            ]}]}),
        );
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[1].image_url.url")
        );
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,rawdata"}}
            ]}]}),
        );
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[0].image_url.url")
        );
    }

    fn with_tools(extra: Value) -> Value {
        let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                "strict": true,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "now"}}
        ]});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        encode(req)
    }

    #[test]
    fn tools_are_translated() {
        let body = with_tools(json!({}));
        assert_eq!(
            body["tools"],
            json!([
                {"name": "get_weather", "description": "Weather for a city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "now", "input_schema": {"type": "object", "properties": {}}}
            ])
        );
        assert!(!body["tools"].to_string().contains("strict"));
        assert!(body.get("tool_choice").is_none());
    }

    #[test]
    fn tool_choice_mapping() {
        assert_eq!(
            with_tools(json!({"tool_choice": "auto"}))["tool_choice"],
            json!({"type": "auto"})
        );
        assert_eq!(
            with_tools(json!({"tool_choice": "required"}))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            with_tools(json!({"tool_choice": "none"}))["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            with_tools(
                json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
            )["tool_choice"],
            json!({"type": "tool", "name": "get_weather"})
        );
        assert_eq!(
            with_tools(json!({"parallel_tool_calls": false}))["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            with_tools(json!({"parallel_tool_calls": false, "tool_choice": "required"}))["tool_choice"],
            json!({"type": "any", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            with_tools(
                json!({"parallel_tool_calls": false, "tool_choice": {"type": "function", "function": {"name": "now"}}})
            )["tool_choice"],
            json!({"type": "tool", "name": "now", "disable_parallel_tool_use": true})
        );
        assert!(
            with_tools(json!({"parallel_tool_calls": true}))
                .get("tool_choice")
                .is_none()
        );
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
        );
        assert_eq!(err.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn reasoning_effort_enables_thinking() {
        for (effort, budget) in [("low", 1024), ("medium", 4096), ("high", 16384)] {
            let body = encode(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": effort, "temperature": 0.2, "top_p": 0.5}),
            );
            assert_eq!(
                body["thinking"],
                json!({"type": "enabled", "budget_tokens": budget})
            );
            assert_eq!(body["max_tokens"], budget + 4096);
            assert!(body.get("temperature").is_none());
            assert!(body.get("top_p").is_none());
        }
        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "medium", "max_completion_tokens": 500}),
        );
        assert_eq!(body["max_tokens"], 4096 + 500);
        for effort in ["none", "minimal"] {
            let body = encode(
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": effort, "temperature": 0.2}),
            );
            assert!(body.get("thinking").is_none());
            assert_eq!(body["temperature"], 0.2);
            assert_eq!(body["max_tokens"], 4096);
        }
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}),
        );
        assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn n_above_one_is_rejected() {
        let err = encode_err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}),
        );
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.message, "Anthropic does not support n > 1");
        assert_eq!(err.param.as_deref(), Some("n"));
        encode(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1}));
    }

    #[test]
    fn response_format_becomes_a_system_instruction() {
        let body = encode(
            json!({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
        );
        let system = body["system"].as_str().unwrap();
        assert!(system.starts_with("Be brief.\n\n"), "{system}");
        assert!(system.contains("JSON"), "{system}");

        let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}}),
        );
        let system = body["system"].as_str().unwrap();
        assert!(system.contains("JSON"), "{system}");
        assert!(system.contains("reply"), "{system}");
        assert!(
            system.contains(&serde_json::to_string(&schema).unwrap()),
            "{system}"
        );

        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "text"}}),
        );
        assert!(body.get("system").is_none());
    }

    // ---------- replies ----------

    fn decode(reply: Value) -> (Value, Usage) {
        let (bytes, usage) =
            chat_response(reply.to_string().as_bytes(), &ctx(false)).expect("decodes");
        (serde_json::from_slice(&bytes).unwrap(), usage)
    }

    #[test]
    fn text_reply_with_cached_usage() {
        let (body, usage) = decode(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 8, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 4, "output_tokens": 20}
        }));
        assert_eq!(
            body,
            json!({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000u64, "model": "claude-test",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                             "finish_reason": "stop", "logprobs": null}],
                "usage": {"prompt_tokens": 14, "completion_tokens": 20, "total_tokens": 34,
                          "prompt_tokens_details": {"cached_tokens": 4},
                          "completion_tokens_details": {"reasoning_tokens": 0}}
            })
        );
        assert_eq!(usage, Usage::new(14, 20, 4, 0));
    }

    #[test]
    fn usage_without_cache_fields() {
        let (_, usage) = decode(
            json!({"content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": null}}),
        );
        assert_eq!(usage, Usage::new(5, 3, 0, 0));
    }

    #[test]
    fn thinking_and_tool_use_reply() {
        let (body, _) = decode(json!({
            "content": [
                {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xxx"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01P", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01T", "name": "get_weather", "input": {"city": "Tokyo"}}
            ],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 2}
        }));
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Checking.");
        assert_eq!(choice["message"]["reasoning_content"], "Two cities.");
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["id"], "toolu_01P");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Tokyo"}));
    }

    #[test]
    fn tool_only_reply_has_null_content() {
        let (body, _) = decode(json!({
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "now", "input": {}}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}
        }));
        assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(
            body["choices"][0]["finish_reason"], "tool_calls",
            "any tool_use block means tool_calls"
        );
        assert!(
            body["choices"][0]["message"]
                .get("reasoning_content")
                .is_none()
        );
    }

    #[test]
    fn finish_reasons() {
        for (stop, expected) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("tool_use", "tool_calls"),
        ] {
            let (body, _) = decode(
                json!({"content": [{"type": "text", "text": "x"}], "stop_reason": stop,
                "usage": {"input_tokens": 1, "output_tokens": 1}}),
            );
            assert_eq!(body["choices"][0]["finish_reason"], expected, "{stop}");
        }
    }

    #[test]
    fn errors_and_garbage() {
        let body =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(body).as_deref(), Some("Overloaded"));
        assert_eq!(error_message(b"not json"), None);
        assert_eq!(error_message(br#"{"content":[]}"#), None);
        let err = chat_response(body, &ctx(false)).unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.message, "Anthropic: Overloaded");
        let err = chat_response(b"<html>", &ctx(false)).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    }

    // ---------- streams ----------

    /// Feeds events through a ChatStream and returns every chunk written, `finish` included.
    fn run(
        events: &[Value],
        include_usage: bool,
    ) -> (Vec<Value>, Result<(), ApiError>, Option<Usage>) {
        let mut stream = ChatStream::new(ctx(include_usage));
        let mut out = Vec::new();
        for e in events {
            stream
                .event(e.to_string().as_bytes(), &mut out)
                .expect("event translates");
        }
        let end = stream.finish(&mut out);
        (frames(&out), end, stream.usage())
    }

    fn frames(out: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(out).unwrap();
        assert!(text.is_empty() || text.ends_with("\n\n"));
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let payload = f.strip_prefix("data: ").expect("a data frame");
                assert_ne!(payload, "[DONE]", "the caller writes [DONE]");
                serde_json::from_str(payload).unwrap()
            })
            .collect()
    }

    fn message_start() -> Value {
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 1}}})
    }

    fn message_end(stop_reason: &str, output_tokens: u64) -> [Value; 2] {
        [
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
            json!({"type": "message_stop"}),
        ]
    }

    fn text_stream() -> Vec<Value> {
        let mut events = vec![
            message_start(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}}),
            json!({"type": "content_block_stop", "index": 0}),
        ];
        events.extend(message_end("end_turn", 20));
        events
    }

    fn finish_reasons_of(chunks: &[Value]) -> Vec<Value> {
        chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap().iter())
            .map(|c| c["finish_reason"].clone())
            .filter(|r| !r.is_null())
            .collect()
    }

    #[test]
    fn text_stream_without_usage() {
        let (chunks, end, usage) = run(&text_stream(), false);
        end.unwrap();
        for c in &chunks {
            assert_eq!(c["id"], "chatcmpl-test");
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["created"], 1_700_000_000u64);
            assert_eq!(c["model"], "claude-test");
            assert!(
                c.get("usage").is_none(),
                "no usage without include_usage: {c}"
            );
            assert_eq!(c["choices"].as_array().unwrap().len(), 1);
            assert_eq!(c["choices"][0]["index"], 0);
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[0]["choices"][0]["finish_reason"], Value::Null);
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(text, "Hello world");
        assert_eq!(chunks.len(), 4, "role, two words, finish: {chunks:?}");
        assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
        assert_eq!(usage, Some(Usage::new(12, 20, 4, 0)));
    }

    #[test]
    fn text_stream_with_usage_ends_with_usage_chunk() {
        let (chunks, end, _) = run(&text_stream(), true);
        end.unwrap();
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["object"], "chat.completion.chunk");
        assert_eq!(last["id"], "chatcmpl-test");
        assert_eq!(
            last["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32,
                   "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}})
        );
        assert_eq!(
            chunks.iter().filter(|c| c.get("usage").is_some()).count(),
            1
        );
        assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
    }

    #[test]
    fn tool_stream_indices_and_argument_pieces() {
        let mut events = vec![message_start()];
        for (block, (id, city)) in [("toolu_01P", "Paris"), ("toolu_01T", "Tokyo")]
            .into_iter()
            .enumerate()
        {
            let block = block + 1; // a text block comes first
            events.push(json!({"type": "content_block_start", "index": block,
                "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}));
            events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": ""}}));
            events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}));
            events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": format!("\"{city}\"}}")}}));
            events.push(json!({"type": "content_block_stop", "index": block}));
        }
        events.insert(
            1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        events.insert(
            2,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        );
        events.insert(3, json!({"type": "content_block_stop", "index": 0}));
        events.extend(message_end("tool_use", 30));
        let (chunks, end, usage) = run(&events, false);
        end.unwrap();

        let calls: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
            .map(|t| {
                assert_eq!(t.as_array().unwrap().len(), 1);
                &t[0]
            })
            .collect();
        assert_eq!(
            calls.len(),
            6,
            "a header and two argument pieces per call: {calls:?}"
        );
        assert_eq!(
            calls[0],
            &json!({"index": 0, "id": "toolu_01P", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        assert_eq!(
            calls[1],
            &json!({"index": 0, "function": {"arguments": "{\"city\": "}})
        );
        assert_eq!(
            calls[2],
            &json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})
        );
        assert_eq!(calls[3]["index"], 1);
        assert_eq!(calls[3]["id"], "toolu_01T");
        for n in [0, 1] {
            let args: String = calls
                .iter()
                .filter(|c| c["index"] == n)
                .filter_map(|c| c["function"]["arguments"].as_str())
                .collect::<Vec<_>>()
                .concat();
            let args: Value = serde_json::from_str(&args).unwrap();
            assert_eq!(args["city"], if n == 0 { "Paris" } else { "Tokyo" });
        }
        assert_eq!(finish_reasons_of(&chunks), vec![json!("tool_calls")]);
        assert_eq!(usage.unwrap().completion_tokens, 30);
    }

    #[test]
    fn tool_use_block_means_tool_calls_even_with_end_turn() {
        let mut events = vec![
            message_start(),
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "now", "input": {}}}),
            json!({"type": "content_block_stop", "index": 0}),
        ];
        events.extend(message_end("end_turn", 5));
        let (chunks, end, _) = run(&events, false);
        end.unwrap();
        assert_eq!(finish_reasons_of(&chunks), vec![json!("tool_calls")]);
    }

    #[test]
    fn reasoning_stream() {
        let mut events = vec![
            message_start(),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Answer."}}),
            json!({"type": "content_block_stop", "index": 1}),
        ];
        events.extend(message_end("end_turn", 27));
        let (chunks, end, usage) = run(&events, false);
        end.unwrap();
        let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
        assert_eq!(deltas[1], &json!({"reasoning_content": "Let me "}));
        assert_eq!(deltas[2], &json!({"reasoning_content": "think."}));
        assert_eq!(deltas[3], &json!({"content": "Answer."}));
        assert_eq!(
            chunks.len(),
            5,
            "role, 2 thinking, 1 text, finish; signature ignored"
        );
        assert!(
            !String::from_utf8(serde_json::to_vec(&chunks).unwrap())
                .unwrap()
                .contains("EqQBCgIYAhIM")
        );
        assert_eq!(usage, Some(Usage::new(12, 27, 4, 0)));
    }

    #[test]
    fn max_tokens_and_refusal_in_streams() {
        for (stop, expected) in [
            ("max_tokens", "length"),
            ("refusal", "content_filter"),
            ("stop_sequence", "stop"),
        ] {
            let mut events = text_stream();
            events.truncate(events.len() - 2);
            events.extend(message_end(stop, 3));
            let (chunks, end, _) = run(&events, true);
            end.unwrap();
            assert_eq!(finish_reasons_of(&chunks), vec![json!(expected)], "{stop}");
        }
    }

    #[test]
    fn message_stop_without_message_delta_still_finishes_once() {
        let mut events = text_stream();
        events.remove(events.len() - 2);
        let (chunks, end, _) = run(&events, false);
        end.unwrap();
        assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
    }

    #[test]
    fn truncated_stream_is_a_bad_gateway() {
        let events = text_stream();
        let mut stream = ChatStream::new(ctx(true));
        let mut out = Vec::new();
        for e in &events[..5] {
            stream.event(e.to_string().as_bytes(), &mut out).unwrap();
        }
        let mut tail = Vec::new();
        let err = stream.finish(&mut tail).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_GATEWAY);
        assert!(tail.is_empty(), "no usage chunk after a truncated stream");
        assert!(finish_reasons_of(&frames(&out)).is_empty());
        assert_eq!(stream.usage().map(|u| u.prompt_tokens), Some(12));
    }

    #[test]
    fn error_events() {
        let mut stream = ChatStream::new(ctx(false));
        let mut out = Vec::new();
        stream
            .event(message_start().to_string().as_bytes(), &mut out)
            .unwrap();
        let err = stream
            .event(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.message, "Anthropic: Overloaded");

        let mut stream = ChatStream::new(ctx(false));
        let err = stream
            .event(br#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#, &mut out)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_GATEWAY);
        assert_eq!(err.message, "Anthropic: Internal server error");

        let err = ChatStream::new(ctx(false))
            .event(b"{not json", &mut out)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn server_tool_blocks_are_not_forwarded() {
        let mut events = vec![
            message_start(),
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"x\"}"}}),
            json!({"type": "content_block_stop", "index": 0}),
        ];
        events.extend(message_end("end_turn", 5));
        let (chunks, end, _) = run(&events, false);
        end.unwrap();
        assert_eq!(chunks.len(), 2, "role and finish only: {chunks:?}");
        assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
    }

    #[test]
    fn ping_and_unknown_events_write_nothing() {
        let mut stream = ChatStream::new(ctx(false));
        let mut out = Vec::new();
        stream.event(br#"{"type":"ping"}"#, &mut out).unwrap();
        stream
            .event(br#"{"type":"something_new","x":1}"#, &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(stream.usage(), None);
    }
}
