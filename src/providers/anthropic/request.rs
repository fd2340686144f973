//! OpenAI chat requests → Messages API requests.

use serde_json::{Map, Value};

use super::DEFAULT_MAX_TOKENS;
use super::wire::{
    Block, ImageSource, MessagesRequest, Metadata, System, Thinking, WireMessage, WireTool,
    WireToolChoice,
};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatRequest, Content, ContentPart, Message, ResponseFormat, Role, Stop, ThinkingBlock,
    ToolChoice,
};

pub(super) fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Appends blocks to the conversation, merging them into the last message when it has the same
/// role: Anthropic requires user and assistant turns to alternate.
pub(super) fn push_blocks(messages: &mut Vec<WireMessage>, role: &'static str, blocks: Vec<Block>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => messages.push(WireMessage {
            role,
            content: blocks,
        }),
    }
}

/// Text and image blocks of an OpenAI message content (empty text is left out: Anthropic rejects it).
pub(super) fn content_blocks(content: Option<&Content>, i: usize) -> Result<Vec<Block>, ApiError> {
    let mut blocks = Vec::new();
    match content {
        None => {}
        Some(Content::Text(text)) if text.is_empty() => {}
        Some(Content::Text(text)) => blocks.push(Block::Text {
            text: text.clone(),
            cache_control: None,
        }),
        Some(Content::Parts(parts)) => {
            for (k, part) in parts.iter().enumerate() {
                match part {
                    ContentPart::Text {
                        text,
                        cache_control,
                    } => {
                        if !text.is_empty() {
                            blocks.push(Block::Text {
                                text: text.clone(),
                                cache_control: cache_control.clone(),
                            });
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

pub(super) fn image_source(url: &str, param: &str) -> Result<ImageSource, ApiError> {
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
pub(super) fn tool_input(arguments: &str, param: String) -> Result<Value, ApiError> {
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

pub(super) fn json_instruction(format: &ResponseFormat) -> Option<String> {
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

pub(super) fn thinking_budget(effort: Option<&str>) -> Result<Option<u32>, ApiError> {
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

pub(super) fn tool_choice<'a>(
    req: &'a ChatRequest,
) -> Result<Option<WireToolChoice<'a>>, ApiError> {
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

/// The system prompt: one string, or text blocks when one of them marks a prompt-cache
/// breakpoint (`cache_control`), which only blocks carry.
fn system_of(texts: Vec<String>, blocks: Vec<Block>) -> Option<System> {
    let breakpoint = |b: &Block| {
        matches!(
            b,
            Block::Text {
                cache_control: Some(_),
                ..
            }
        )
    };
    if blocks.iter().any(breakpoint) {
        return Some(System::Blocks(blocks));
    }
    (!texts.is_empty()).then(|| System::Text(texts.join("\n\n")))
}

/// An assistant message's signed thinking as Anthropic takes it back (a block without its
/// signature would be refused, and is left out).
fn thinking_blocks<'a>(blocks: impl Iterator<Item = &'a ThinkingBlock>) -> Vec<Block> {
    blocks
        .filter_map(|b| match b {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => (!signature.is_empty()).then(|| Block::Thinking {
                thinking: thinking.clone(),
                signature: signature.clone(),
            }),
            ThinkingBlock::RedactedThinking { data } => {
                Some(Block::RedactedThinking { data: data.clone() })
            }
        })
        .collect()
}

/// Whether the conversation continues a tool-using assistant turn whose thinking did not come
/// back (a client that keeps no `thinking_blocks`). With thinking on, Anthropic refuses that: the
/// final assistant message before tool results must start with its thinking block. Such a turn
/// goes with thinking off instead.
fn unsigned_tool_turn(messages: &[WireMessage]) -> bool {
    let Some(at) = messages.iter().rposition(|m| m.role == "assistant") else {
        return false;
    };
    let last = &messages[at];
    let thought = matches!(
        last.content.first(),
        Some(Block::Thinking { .. } | Block::RedactedThinking { .. })
    );
    let used_tools = last
        .content
        .iter()
        .any(|b| matches!(b, Block::ToolUse { .. }));
    let answered = messages[at + 1..]
        .iter()
        .flat_map(|m| &m.content)
        .any(|b| matches!(b, Block::ToolResult { .. }));
    used_tools && answered && !thought
}

/// The Messages API JSON body for an OpenAI request (with "stream": req.stream). Errors are
/// ApiError::invalid_request(..).with_param(..) naming the field.
pub fn chat_request(req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("Anthropic does not support n > 1", "n"));
    }
    let mut budget = thinking_budget(req.reasoning_effort.as_deref())?;
    let mut turns = Turns {
        thinking: budget.is_some(),
        ..Default::default()
    };
    for (i, m) in req.messages.iter().enumerate() {
        turns.push(m, i)?;
    }
    let Turns {
        mut system,
        mut system_blocks,
        mut messages,
        ..
    } = turns;
    if messages.is_empty() {
        return Err(invalid(
            "Anthropic needs at least one user or assistant message.",
            "messages",
        ));
    }
    if let Some(instruction) = req.response_format.as_ref().and_then(json_instruction) {
        system.push(instruction.clone());
        system_blocks.push(Block::Text {
            text: instruction,
            cache_control: None,
        });
    }
    let tools = wire_tools(req);
    let tool_choice = if tools.is_empty() {
        None
    } else {
        tool_choice(req)?
    };
    if budget.is_some() && unsigned_tool_turn(&messages) {
        budget = None;
        for m in &mut messages {
            m.content
                .retain(|b| !matches!(b, Block::Thinking { .. } | Block::RedactedThinking { .. }));
        }
    }
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
        system: system_of(system, system_blocks),
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

/// The conversation as Anthropic's system prompt and messages, built message by message.
#[derive(Default)]
struct Turns {
    /// Thinking is on: assistant turns take back their signed thinking.
    thinking: bool,
    system: Vec<String>,
    /// The same as text blocks, for when one of them marks a prompt-cache breakpoint.
    system_blocks: Vec<Block>,
    messages: Vec<WireMessage>,
}

impl Turns {
    fn push(&mut self, m: &Message, i: usize) -> Result<(), ApiError> {
        let no_content = || {
            invalid(
                format!("messages[{i}] has no content."),
                format!("messages[{i}].content"),
            )
        };
        match m.role {
            Role::System | Role::Developer => {
                let content = m.content.as_ref().ok_or_else(no_content)?;
                let text = content.text();
                if !text.is_empty() {
                    self.system.push(text);
                }
                let blocks = content_blocks(Some(content), i)?;
                self.system_blocks.extend(
                    blocks
                        .into_iter()
                        .filter(|b| matches!(b, Block::Text { .. })),
                );
            }
            Role::User => {
                let blocks = content_blocks(m.content.as_ref(), i)?;
                if blocks.is_empty() {
                    return Err(no_content());
                }
                push_blocks(&mut self.messages, "user", blocks);
            }
            Role::Assistant => {
                let blocks = self.assistant(m, i)?;
                if blocks.is_empty() {
                    return Err(no_content());
                }
                push_blocks(&mut self.messages, "assistant", blocks);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_ref().ok_or_else(|| {
                    invalid(
                        format!("messages[{i}] is a tool message without tool_call_id."),
                        format!("messages[{i}].tool_call_id"),
                    )
                })?;
                let content = m.content.as_ref().ok_or_else(no_content)?.text();
                let result = Block::ToolResult {
                    tool_use_id: id.clone(),
                    content,
                };
                push_blocks(&mut self.messages, "user", vec![result]);
            }
            Role::Function => {
                return Err(invalid(
                    "Function messages are not supported by Anthropic: send tool messages instead.",
                    format!("messages[{i}].role"),
                ));
            }
        }
        Ok(())
    }

    /// An assistant message's blocks. `reasoning_content` is dropped: Anthropic only takes back
    /// its own signed thinking blocks, and only with thinking on.
    fn assistant(&self, m: &Message, i: usize) -> Result<Vec<Block>, ApiError> {
        let mut blocks = if self.thinking {
            thinking_blocks(m.thinking_blocks.iter().flatten())
        } else {
            Vec::new()
        };
        blocks.extend(content_blocks(m.content.as_ref(), i)?);
        for (j, call) in m.tool_calls.iter().flatten().enumerate() {
            let param = format!("messages[{i}].tool_calls[{j}].function.arguments");
            blocks.push(Block::ToolUse {
                id: call.id.clone(),
                name: call.function.name.clone(),
                input: tool_input(&call.function.arguments, param)?,
            });
        }
        Ok(blocks)
    }
}

/// The request's function tools as Anthropic's.
fn wire_tools(req: &ChatRequest) -> Vec<WireTool<'_>> {
    req.tools
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
        .collect()
}
