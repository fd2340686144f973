//! A Responses request as OpenAI's chat completions, for upstreams that do not speak the Responses
//! API: instructions, input messages (text, images), function calls and their outputs, reasoning,
//! function tools, and the sampling and format settings. Tools of other types (`web_search`,
//! `namespace`, …) have no equivalent there: they are dropped and named in a response header, or
//! refused with 400 when `tool_choice` requires one. Other input the chat API cannot express is
//! refused with 400 naming it.

use serde_json::{Map, Value, json};

use crate::error::ApiError;

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// At most this many dropped tool types are named in the response header.
const MAX_DROPPED_NAMED: usize = 8;

/// The request's `input` as items, taken out of it (it is kept once): a string is one user message.
pub fn input_items(request: &mut Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    match request.remove("input") {
        Some(Value::String(text)) => Ok(vec![json!({
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })]),
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        Some(Value::Array(_)) => Err(invalid("`input` must hold at least one item", "input")),
        None | Some(Value::Null) => Err(invalid("`input` is required", "input")),
        Some(_) => Err(invalid(
            "`input` must be a string or an array of items",
            "input",
        )),
    }
}

/// Fields of the Responses API that need the upstream's own state or services.
const UNSUPPORTED: [&str; 3] = ["background", "conversation", "prompt"];

/// The chat completions body for a Responses request. `history` is the conversation so far (from
/// `previous_response_id`), `input` this request's items.
pub fn chat_body(
    request: &Map<String, Value>,
    history: &[Value],
    input: &[Value],
    stream: bool,
) -> Result<Vec<u8>, ApiError> {
    for field in UNSUPPORTED {
        if request
            .get(field)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
        {
            return Err(invalid(
                format!("`{field}` is only available with providers that speak the Responses API"),
                field,
            ));
        }
    }
    let mut chat = Map::new();
    chat.insert(
        "model".into(),
        request.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut turns = Turns::default();
    if let Some(instructions) = request.get("instructions").filter(|v| !v.is_null()) {
        let text = text_of(instructions, "instructions")?;
        if !text.is_empty() {
            turns
                .messages
                .push(json!({"role": "system", "content": text}));
        }
    }
    for item in history {
        turns.push(item, "previous_response_id")?;
    }
    for (i, item) in input.iter().enumerate() {
        turns.push(item, &format!("input[{i}]"))?;
    }
    chat.insert("messages".into(), Value::Array(turns.messages));
    if let Some(max) = request.get("max_output_tokens").filter(|v| !v.is_null()) {
        chat.insert("max_completion_tokens".into(), max.clone());
    }
    for field in ["temperature", "top_p", "parallel_tool_calls"] {
        if let Some(v) = request.get(field).filter(|v| !v.is_null()) {
            chat.insert(field.into(), v.clone());
        }
    }
    if let Some(user) = ["safety_identifier", "user"]
        .iter()
        .find_map(|f| request.get(*f).and_then(Value::as_str))
    {
        chat.insert("user".into(), user.into());
    }
    if let Some(effort) = request
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        chat.insert("reasoning_effort".into(), effort.into());
    }
    if let Some(format) = response_format(request.get("text"))? {
        chat.insert("response_format".into(), format);
    }
    let (tools, dropped) = translate_tools(request.get("tools"))?;
    if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
        chat.insert("tool_choice".into(), tool_choice(choice, &tools, &dropped)?);
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
    }
    if stream {
        chat.insert("stream".into(), true.into());
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(serde_json::to_vec(&chat).expect("a JSON map serialises"))
}

/// The types of the tools a translated request goes without (sanitised, each once, at most
/// [`MAX_DROPPED_NAMED`]), for the response header that names them.
pub fn dropped_tools(request: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let tools = match request.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array", "tools")),
    };
    let mut named: Vec<String> = Vec::new();
    let kinds = tools
        .iter()
        .map(|t| t.get("type").and_then(Value::as_str).unwrap_or(""))
        .filter(|kind| *kind != "function");
    for kind in kinds.map(tool_type_name) {
        if named.len() < MAX_DROPPED_NAMED && !named.contains(&kind) {
            named.push(kind);
        }
    }
    Ok(named)
}

/// The chat messages being built, with reasoning waiting for the assistant turn it belongs to.
#[derive(Default)]
struct Turns {
    messages: Vec<Value>,
    reasoning: String,
    /// What reasoning items carried for the function calls that follow them (call id, extra).
    carried: Vec<(String, Value)>,
    /// Anthropic's signed thinking that reasoning items carried, for the next assistant message.
    thinking: Vec<Value>,
    /// What a reasoning item carried for the next assistant message itself.
    message_extra: Option<Value>,
}

impl Turns {
    fn push(&mut self, item: &Value, param: &str) -> Result<(), ApiError> {
        let kind = match item.get("type").and_then(Value::as_str) {
            Some(kind) => kind,
            None if item.get("role").is_some() => "message",
            None => return Err(invalid("an input item needs a `type`", param)),
        };
        match kind {
            "message" => self.message(item, param),
            "function_call" => {
                let mut call = json!({
                    "id": item["call_id"],
                    "type": "function",
                    "function": {
                        "name": item["name"],
                        "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}"),
                    },
                });
                if let Some(at) = self
                    .carried
                    .iter()
                    .position(|(id, _)| item["call_id"] == *id)
                {
                    call["extra_content"] = self.carried.swap_remove(at).1;
                }
                if !matches!(self.messages.last(), Some(last) if last["role"] == "assistant") {
                    let message = self.assistant(Value::Null);
                    self.messages.push(message);
                }
                let last = self.messages.last_mut().expect("an assistant message");
                let calls = last
                    .as_object_mut()
                    .expect("a message is an object")
                    .entry("tool_calls")
                    .or_insert_with(|| json!([]));
                if let Some(calls) = calls.as_array_mut() {
                    calls.push(call);
                }
                Ok(())
            }
            "function_call_output" => {
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(parts @ Value::Array(_)) => text_of(parts, &format!("{param}.output"))?,
                    _ => String::new(),
                };
                self.messages.push(json!({
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": output,
                }));
                Ok(())
            }
            "reasoning" => {
                let carried = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .and_then(crate::providers::carried::read);
                match carried {
                    // It follows the message it belongs to (or, from elsewhere, precedes it).
                    Some((id, extra)) if id == crate::providers::carried::MESSAGE => {
                        match self.messages.last_mut() {
                            Some(last) if last["role"] == "assistant" => {
                                last["extra_content"] = extra
                            }
                            _ => self.message_extra = Some(extra),
                        }
                        return Ok(());
                    }
                    Some(call) => {
                        self.carried.push(call);
                        return Ok(());
                    }
                    None => {}
                }
                let thinking = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .and_then(crate::providers::carried::read_thinking);
                for block in thinking.into_iter().flatten() {
                    self.thinking
                        .push(serde_json::to_value(block).expect("a thinking block serialises"));
                }
                for part in ["summary", "content"] {
                    if let Some(Value::Array(texts)) = item.get(part) {
                        for t in texts {
                            if let Some(text) = t.get("text").and_then(Value::as_str) {
                                self.reasoning.push_str(text);
                            }
                        }
                    }
                }
                Ok(())
            }
            other => Err(invalid(
                format!(
                    "input items of type `{}` cannot be sent to this provider",
                    clip(other)
                ),
                param,
            )),
        }
    }

    /// An assistant message with `content`, carrying the reasoning that preceded it.
    fn assistant(&mut self, content: Value) -> Value {
        let mut message = json!({"role": "assistant", "content": content});
        if !self.reasoning.is_empty() {
            message["reasoning_content"] = std::mem::take(&mut self.reasoning).into();
        }
        if !self.thinking.is_empty() {
            message["thinking_blocks"] = std::mem::take(&mut self.thinking).into();
        }
        if let Some(extra) = self.message_extra.take() {
            message["extra_content"] = extra;
        }
        message
    }

    fn message(&mut self, item: &Value, param: &str) -> Result<(), ApiError> {
        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
        let content = item.get("content").unwrap_or(&Value::Null);
        let at = format!("{param}.content");
        match role {
            "system" | "developer" => {
                let text = text_of(content, &at)?;
                self.messages
                    .push(json!({"role": "system", "content": text}));
            }
            "assistant" => {
                let text = text_of(content, &at)?;
                let message = self.assistant(text.into());
                self.messages.push(message);
            }
            "user" => {
                let content = match content {
                    Value::String(s) => Value::String(s.clone()),
                    Value::Array(parts) => Value::Array(
                        parts
                            .iter()
                            .enumerate()
                            .map(|(j, p)| user_part(p, &format!("{at}[{j}]")))
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(invalid("must be a string or an array of parts", at)),
                };
                self.messages
                    .push(json!({"role": "user", "content": content}));
            }
            _ => {
                return Err(invalid(
                    format!(
                        "`role` must be `user`, `assistant`, `system` or `developer`, not `{}`",
                        clip(role)
                    ),
                    format!("{param}.role"),
                ));
            }
        }
        Ok(())
    }
}

fn user_part(part: &Value, at: &str) -> Result<Value, ApiError> {
    match part.get("type").and_then(Value::as_str).unwrap_or("") {
        "input_text" | "output_text" | "text" => {
            Ok(json!({"type": "text", "text": part["text"].as_str().unwrap_or_default()}))
        }
        "input_image" => match part.get("image_url").and_then(Value::as_str) {
            Some(url) => {
                let mut image = json!({"url": url});
                if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                    image["detail"] = detail.clone();
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            None => Err(invalid(
                "only images given by `image_url` can be sent to this provider",
                at,
            )),
        },
        other => Err(invalid(
            format!("`{}` parts cannot be sent to this provider", clip(other)),
            at,
        )),
    }
}

/// The text of instructions, a system or assistant message or a tool output: a string, or its
/// text parts joined.
fn text_of(value: &Value, param: &str) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for (i, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str).unwrap_or("") {
                    "input_text" | "output_text" | "text" | "summary_text" => {
                        text.push_str(part["text"].as_str().unwrap_or_default())
                    }
                    "refusal" => text.push_str(part["refusal"].as_str().unwrap_or_default()),
                    other => {
                        return Err(invalid(
                            format!(
                                "`{}` parts cannot be sent to this provider here; only text",
                                clip(other)
                            ),
                            format!("{param}[{i}]"),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Value::Null => Ok(String::new()),
        _ => Err(invalid("must be a string or an array of parts", param)),
    }
}

/// `text.format` as chat's `response_format`.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for field in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(field) {
                    schema.insert(field.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(invalid(
            "`text.format.type` must be `text`, `json_object` or `json_schema`",
            "text.format.type",
        )),
    }
}

/// Function tools as chat's; the types of the others, which are dropped.
fn translate_tools(tools: Option<&Value>) -> Result<(Vec<Value>, Vec<String>), ApiError> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("`tools` must be an array", "tools")),
    };
    let mut functions = Vec::new();
    let mut dropped = Vec::new();
    for tool in tools {
        match tool.get("type").and_then(Value::as_str).unwrap_or("") {
            "function" => {
                let mut function = Map::new();
                for field in ["name", "description", "parameters", "strict"] {
                    if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                        function.insert(field.into(), v.clone());
                    }
                }
                functions.push(json!({"type": "function", "function": function}));
            }
            other => dropped.push(tool_type_name(other)),
        }
    }
    Ok((functions, dropped))
}

/// `tool_choice` as chat's; refused when it requires a tool that was dropped.
fn tool_choice(choice: &Value, functions: &[Value], dropped: &[String]) -> Result<Value, ApiError> {
    if let Some(mode) = choice.as_str() {
        return match mode {
            "auto" | "none" | "required" => Ok(mode.into()),
            _ => Err(invalid(
                "`tool_choice` must be `auto`, `none`, `required` or an object",
                "tool_choice",
            )),
        };
    }
    let kind = choice.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "function" {
        let name = choice.get("name").and_then(Value::as_str).unwrap_or("");
        if functions.iter().any(|f| f["function"]["name"] == name) {
            return Ok(json!({"type": "function", "function": {"name": name}}));
        }
        return Err(invalid(
            format!(
                "`tool_choice` names the function `{}`, which is not in `tools`",
                clip(name)
            ),
            "tool_choice.name",
        ));
    }
    let name = tool_type_name(kind);
    let why = if dropped.contains(&name) {
        "which this provider does not have"
    } else {
        "which cannot be required with this provider"
    };
    Err(invalid(
        format!("`tool_choice` requires the `{name}` tool, {why}"),
        "tool_choice",
    ))
}

/// A tool type as it may appear in a header: lowercase letters, digits and `_`, at most 32.
fn tool_type_name(kind: &str) -> String {
    let name: String = kind
        .chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "untyped".into()
    } else {
        name
    }
}

/// A client's value quoted in an error message, cut to 64 characters.
fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}
