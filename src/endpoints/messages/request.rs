//! A Messages request as OpenAI's chat completions, for upstreams that are not Anthropic: system
//! prompts, text, images, tool use and results, thinking, tools and the sampling settings. What
//! chat completions cannot express is refused with 400 naming the field, never dropped silently.
//! (`cache_control` hints are dropped: caching is the upstream's own business there.)

use serde_json::{Map, Value, json};

use crate::error::ApiError;

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// The chat completions body for a Messages request (`body` is the client's JSON object).
pub fn chat_body(body: &Map<String, Value>, stream: bool) -> Result<Vec<u8>, ApiError> {
    let mut chat = Map::new();
    chat.insert(
        "model".into(),
        body.get("model").cloned().unwrap_or(Value::Null),
    );
    let mut messages = Vec::new();
    if let Some(system) = body.get("system") {
        let text = text_of(system, "system")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(Value::Array(turns)) = body.get("messages") else {
        return Err(invalid("`messages` must be an array", "messages"));
    };
    for (i, turn) in turns.iter().enumerate() {
        push_turn(&mut messages, turn, i)?;
    }
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(max) = body.get("max_tokens") {
        chat.insert("max_completion_tokens".into(), max.clone());
    }
    for field in ["temperature", "top_p", "top_k"] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            chat.insert(field.into(), v.clone());
        }
    }
    if let Some(stop) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        chat.insert("stop".into(), stop.clone());
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        chat.insert("user".into(), user.into());
    }
    if let Some(effort) = reasoning_effort(body.get("thinking"))? {
        chat.insert("reasoning_effort".into(), effort.into());
    }
    if let Some(tools) = body.get("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), Value::Array(translate_tools(tools)?));
    }
    if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = tool_choice(choice)?;
        chat.insert("tool_choice".into(), choice);
        if let Some(parallel) = parallel {
            chat.insert("parallel_tool_calls".into(), parallel.into());
        }
    }
    if stream {
        chat.insert("stream".into(), true.into());
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(serde_json::to_vec(&chat).expect("a JSON map serialises"))
}

/// The text of a `system` prompt or a tool result: a string, or text blocks joined by blank lines.
fn text_of(value: &Value, param: &str) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(block["text"].as_str().unwrap_or_default()),
                    other => {
                        return Err(invalid(
                            format!(
                                "a `{}` block cannot be sent to this provider here; only text",
                                other.unwrap_or("untyped")
                            ),
                            format!("{param}[{i}]"),
                        ));
                    }
                }
            }
            Ok(texts.join("\n\n"))
        }
        Value::Null => Ok(String::new()),
        _ => Err(invalid("must be a string or an array of blocks", param)),
    }
}

/// One Messages turn as one or more chat messages: tool results become `tool` messages (first,
/// as chat completions wants them right after the assistant's tool calls).
fn push_turn(messages: &mut Vec<Value>, turn: &Value, i: usize) -> Result<(), ApiError> {
    let param = format!("messages[{i}]");
    let role = turn.get("role").and_then(Value::as_str).unwrap_or("");
    let content = turn.get("content").unwrap_or(&Value::Null);
    match role {
        "system" => {
            let text = text_of(content, &format!("{param}.content"))?;
            messages.push(json!({"role": "system", "content": text}));
            return Ok(());
        }
        "user" | "assistant" => {}
        _ => {
            return Err(invalid(
                format!("`role` must be `user`, `assistant` or `system`, not `{role}`"),
                format!("{param}.role"),
            ));
        }
    }
    let blocks = match content {
        Value::String(text) => {
            messages.push(json!({"role": role, "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(invalid(
                "`content` must be a string or an array of blocks",
                format!("{param}.content"),
            ));
        }
    };
    let mut parts = Vec::new();
    let mut tool_calls = Vec::new();
    let mut reasoning = String::new();
    let mut carried = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => parts
                .push(json!({"type": "text", "text": block["text"].as_str().unwrap_or_default()})),
            "image" if role == "user" => parts.push(image_part(block, &at)?),
            "document" => parts.push(document_part(block, &at)?),
            "tool_use" if role == "assistant" => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": serde_json::to_string(block.get("input").unwrap_or(&json!({})))
                        .expect("a JSON value serialises"),
                },
            })),
            "tool_result" if role == "user" => {
                let mut text = text_of(
                    block.get("content").unwrap_or(&Value::Null),
                    &format!("{at}.content"),
                )?;
                if block.get("is_error").and_then(Value::as_bool) == Some(true) {
                    text = format!("Error: {text}");
                }
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": block["tool_use_id"],
                    "content": text,
                }));
            }
            "thinking" if role == "assistant" => {
                match block["signature"]
                    .as_str()
                    .and_then(crate::providers::carried::read)
                {
                    Some(call) => carried.push(call),
                    None => reasoning.push_str(block["thinking"].as_str().unwrap_or_default()),
                }
            }
            // Encrypted reasoning only Anthropic can read: nothing to pass to another provider.
            "redacted_thinking" if role == "assistant" => {}
            other => {
                return Err(invalid(
                    format!(
                        "a `{other}` block in a `{role}` message cannot be sent to this provider"
                    ),
                    at,
                ));
            }
        }
    }
    let mut message_extra = None;
    for (id, extra) in carried {
        if id == crate::providers::carried::MESSAGE {
            message_extra = Some(extra);
        } else if let Some(call) = tool_calls.iter_mut().find(|c| c["id"] == id.as_str()) {
            call["extra_content"] = extra;
        }
    }
    if role == "assistant" {
        if parts.is_empty() && tool_calls.is_empty() && reasoning.is_empty() {
            return Ok(());
        }
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        let text: String = parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("");
        message.insert(
            "content".into(),
            if text.is_empty() && !tool_calls.is_empty() {
                Value::Null
            } else {
                text.into()
            },
        );
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        if !reasoning.is_empty() {
            message.insert("reasoning_content".into(), reasoning.into());
        }
        if let Some(extra) = message_extra {
            message.insert("extra_content".into(), extra);
        }
        messages.push(Value::Object(message));
    } else if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn image_part(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = &block["source"];
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or("image/png"),
            source["data"].as_str().unwrap_or_default()
        ),
        Some("url") => source["url"].as_str().unwrap_or_default().to_string(),
        _ => {
            return Err(invalid(
                "an image's `source` must be `base64` or `url` for this provider",
                format!("{at}.source"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Plain-text documents become text; other documents (PDF) cannot go to a chat completions API.
fn document_part(block: &Value, at: &str) -> Result<Value, ApiError> {
    let source = &block["source"];
    match source.get("type").and_then(Value::as_str) {
        Some("text") => {
            Ok(json!({"type": "text", "text": source["data"].as_str().unwrap_or_default()}))
        }
        _ => Err(invalid(
            "only plain-text documents can be sent to this provider",
            format!("{at}.source"),
        )),
    }
}

/// `thinking` as OpenAI's `reasoning_effort`: the budget picks the effort.
fn reasoning_effort(thinking: Option<&Value>) -> Result<Option<&'static str>, ApiError> {
    let Some(thinking) = thinking.filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            Ok(Some(match budget {
                0..=4095 => "low",
                4096..=16383 => "medium",
                _ => "high",
            }))
        }
        Some("adaptive") => Ok(Some("medium")),
        Some("disabled") => Ok(None),
        _ => Err(invalid(
            "`thinking.type` must be `enabled`, `adaptive` or `disabled`",
            "thinking.type",
        )),
    }
}

/// Custom tools as functions; Anthropic's server tools have no equivalent elsewhere.
fn translate_tools(tools: &Value) -> Result<Vec<Value>, ApiError> {
    let Value::Array(tools) = tools else {
        return Err(invalid("`tools` must be an array", "tools"));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
            if kind != "custom" || tool.get("input_schema").is_none() {
                return Err(invalid(
                    format!("the server tool `{kind}` is only available with Anthropic models"),
                    format!("tools[{i}]"),
                ));
            }
            let mut function = Map::new();
            function.insert("name".into(), tool["name"].clone());
            if let Some(d) = tool.get("description") {
                function.insert("description".into(), d.clone());
            }
            function.insert("parameters".into(), tool["input_schema"].clone());
            Ok(json!({"type": "function", "function": function}))
        })
        .collect()
}

/// `tool_choice` as OpenAI's, and `parallel_tool_calls` from `disable_parallel_tool_use`.
fn tool_choice(choice: &Value) -> Result<(Value, Option<bool>), ApiError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    let translated = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
        _ => {
            return Err(invalid(
                "`tool_choice.type` must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ));
        }
    };
    Ok((translated, parallel))
}
