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
mod tests;
