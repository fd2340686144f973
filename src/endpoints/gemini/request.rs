//! A `generateContent` request as OpenAI's chat completions, for upstreams that are not Gemini:
//! `systemInstruction`, `contents` and their parts (text, images, thoughts, function calls and
//! responses with their ids and signatures), `functionDeclarations`, `toolConfig` and
//! `generationConfig`. What chat completions cannot express is refused with 400 naming the field,
//! never dropped silently; `safetySettings` are the only settings left to the upstream's own
//! policy. Gemini's JSON takes field names in camelCase or snake_case; both are read.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::carried;

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// `camel` or its snake_case spelling.
fn field<'v>(object: &'v Map<String, Value>, camel: &str) -> Option<&'v Value> {
    if let Some(v) = object.get(camel).filter(|v| !v.is_null()) {
        return Some(v);
    }
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    object.get(&snake).filter(|v| !v.is_null())
}

fn object<'v>(value: &'v Value, param: &str) -> Result<&'v Map<String, Value>, ApiError> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("`{param}` must be an object"), param))
}

fn array<'v>(value: &'v Value, param: &str) -> Result<&'v [Value], ApiError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| invalid(format!("`{param}` must be an array"), param))
}

/// The chat completions body for a `generateContent` request (`body` is the client's JSON
/// object; `model` the model in its URL).
pub fn chat_body(
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<Vec<u8>, ApiError> {
    for unsupported in ["cachedContent"] {
        if field(body, unsupported).is_some() {
            return Err(invalid(
                format!(
                    "`{unsupported}` cannot be sent to this model's provider: it is Gemini's own"
                ),
                unsupported,
            ));
        }
    }
    let mut chat = Map::new();
    chat.insert("model".into(), model.into());
    let mut messages = Vec::new();
    if let Some(system) = field(body, "systemInstruction") {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let Some(contents) = field(body, "contents") else {
        return Err(invalid(
            "`contents` must hold at least one content",
            "contents",
        ));
    };
    let mut calls = Calls::default();
    for (i, content) in array(contents, "contents")?.iter().enumerate() {
        push_content(&mut messages, &mut calls, content, i)?;
    }
    if messages.iter().all(|m| m["role"] == "system") {
        return Err(invalid(
            "`contents` must hold at least one content",
            "contents",
        ));
    }
    chat.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = field(body, "tools") {
        let tools = translate_tools(tools)?;
        if !tools.is_empty() {
            chat.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(config) = field(body, "toolConfig")
        && let Some(choice) = tool_choice(object(config, "toolConfig")?)?
    {
        chat.insert("tool_choice".into(), choice);
    }
    if let Some(config) = field(body, "generationConfig") {
        generation_config(&mut chat, object(config, "generationConfig")?)?;
    }
    if stream {
        chat.insert("stream".into(), true.into());
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(serde_json::to_vec(&Value::Object(chat)).expect("a JSON value serialises"))
}

fn system_text(system: &Value) -> Result<String, ApiError> {
    if let Some(text) = system.as_str() {
        return Ok(text.to_string());
    }
    let system = object(system, "systemInstruction")?;
    let mut text = String::new();
    if let Some(parts) = field(system, "parts") {
        for (i, part) in array(parts, "systemInstruction.parts")?.iter().enumerate() {
            let param = format!("systemInstruction.parts[{i}]");
            let part = object(part, &param)?;
            match field(part, "text").and_then(Value::as_str) {
                Some(t) => {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(t);
                }
                None => {
                    return Err(invalid("a system instruction holds only text parts", param));
                }
            }
        }
    }
    Ok(text)
}

/// The function calls of the conversation so far, to give each response the id of its call.
#[derive(Default)]
struct Calls {
    /// (id, name, answered) in the order the model made them.
    made: Vec<(String, String, bool)>,
}

impl Calls {
    fn call(&mut self, id: Option<&str>, name: &str, content: usize, part: usize) -> String {
        let id = id
            .filter(|id| !id.is_empty())
            .map_or_else(|| format!("call_{content}_{part}"), str::to_string);
        self.made.push((id.clone(), name.to_string(), false));
        id
    }

    /// The id of the call a response answers: its own id, else the oldest unanswered call of that
    /// name.
    fn answer(&mut self, id: Option<&str>, name: &str, param: &str) -> Result<String, ApiError> {
        let found = match id.filter(|id| !id.is_empty()) {
            Some(id) => self.made.iter_mut().find(|(made, _, _)| made == id),
            None => self
                .made
                .iter_mut()
                .find(|(_, made, answered)| made == name && !answered),
        };
        match found {
            Some((id, _, answered)) => {
                *answered = true;
                Ok(id.clone())
            }
            None => Err(invalid(
                format!(
                    "this functionResponse (`{name}`) answers no functionCall of an earlier model turn"
                ),
                param,
            )),
        }
    }
}

fn push_content(
    messages: &mut Vec<Value>,
    calls: &mut Calls,
    content: &Value,
    i: usize,
) -> Result<(), ApiError> {
    let param = format!("contents[{i}]");
    let content = object(content, &param)?;
    let role = field(content, "role")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let parts = match field(content, "parts") {
        Some(parts) => array(parts, &format!("{param}.parts"))?,
        None => &[],
    };
    match role {
        "model" => push_model_turn(messages, calls, parts, i),
        "user" | "function" | "tool" => push_user_turn(messages, calls, parts, i),
        other => Err(invalid(
            format!("role `{other}` is not one of `user`, `model`"),
            format!("{param}.role"),
        )),
    }
}

fn push_user_turn(
    messages: &mut Vec<Value>,
    calls: &mut Calls,
    parts: &[Value],
    i: usize,
) -> Result<(), ApiError> {
    let mut content = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("contents[{i}].parts[{j}]");
        let part = object(part, &param)?;
        if let Some(response) = field(part, "functionResponse") {
            let response = object(response, &format!("{param}.functionResponse"))?;
            let name = field(response, "name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let id = field(response, "id").and_then(Value::as_str);
            let call_id = calls.answer(id, name, &format!("{param}.functionResponse"))?;
            let output = field(response, "response").cloned().unwrap_or(json!({}));
            let text = match output {
                Value::String(s) => s,
                other => serde_json::to_string(&other).expect("a JSON value serialises"),
            };
            messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": text}));
        } else if let Some(text) = field(part, "text").and_then(Value::as_str) {
            content.push(json!({"type": "text", "text": text}));
        } else if let Some(data) = field(part, "inlineData") {
            content.push(inline_data(object(data, &param)?, &param)?);
        } else if let Some(data) = field(part, "fileData") {
            content.push(file_data(object(data, &param)?, &param)?);
        } else {
            return Err(unsupported_part(part, &param));
        }
    }
    if !content.is_empty() {
        let only_text = content.len() == 1 && content[0]["type"] == "text";
        let content = if only_text {
            content[0]["text"].clone()
        } else {
            Value::Array(content)
        };
        messages.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

fn unsupported_part(part: &Map<String, Value>, param: &str) -> ApiError {
    let kind = part
        .keys()
        .find(|k| {
            !matches!(
                k.as_str(),
                "thought" | "thoughtSignature" | "thought_signature"
            )
        })
        .map_or("empty", String::as_str);
    invalid(
        format!("a `{kind}` part cannot be sent to this model's provider"),
        param.to_string(),
    )
}

fn inline_data(data: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
    let mime = field(data, "mimeType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let bytes = field(data, "data").and_then(Value::as_str).unwrap_or("");
    if mime.starts_with("image/") {
        Ok(
            json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{bytes}")}}),
        )
    } else if mime == "application/pdf" {
        Ok(json!({"type": "file", "file": {"file_data": format!("data:{mime};base64,{bytes}")}}))
    } else {
        Err(invalid(
            format!(
                "inline data of type `{mime}` cannot be sent to this model's provider (images and PDF can)"
            ),
            format!("{param}.inlineData.mimeType"),
        ))
    }
}

fn file_data(data: &Map<String, Value>, param: &str) -> Result<Value, ApiError> {
    let mime = field(data, "mimeType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let uri = field(data, "fileUri").and_then(Value::as_str).unwrap_or("");
    let web = uri.starts_with("https://") || uri.starts_with("http://");
    if (mime.is_empty() || mime.starts_with("image/")) && web {
        Ok(json!({"type": "image_url", "image_url": {"url": uri}}))
    } else {
        Err(invalid(
            "only images at http(s) URLs can be sent by fileData to this model's provider",
            format!("{param}.fileData"),
        ))
    }
}

fn push_model_turn(
    messages: &mut Vec<Value>,
    calls: &mut Calls,
    parts: &[Value],
    i: usize,
) -> Result<(), ApiError> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("contents[{i}].parts[{j}]");
        let part = object(part, &param)?;
        let signature = field(part, "thoughtSignature").and_then(Value::as_str);
        let thought = field(part, "thought").and_then(Value::as_bool) == Some(true);
        if let Some(call) = field(part, "functionCall") {
            let call = object(call, &format!("{param}.functionCall"))?;
            let name = field(call, "name").and_then(Value::as_str).unwrap_or("");
            let id = calls.call(field(call, "id").and_then(Value::as_str), name, i, j);
            let args = field(call, "args").cloned().unwrap_or(json!({}));
            let mut tool_call = json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": serde_json::to_string(&args).expect("a JSON value serialises")},
            });
            if let Some((_, extra)) = signature.and_then(carried::read) {
                tool_call["extra_content"] = extra;
            }
            tool_calls.push(tool_call);
        } else if let Some(t) = field(part, "text").and_then(Value::as_str) {
            if thought {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        } else if !thought && signature.is_none() {
            return Err(unsupported_part(part, &param));
        }
        // Claude's signed thinking, carried through Gemini's API on a thought part.
        if let Some(blocks) = signature.and_then(carried::read_thinking) {
            thinking_blocks.extend(blocks);
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        if text.is_empty() && !tool_calls.is_empty() {
            Value::Null
        } else {
            text.into()
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), reasoning.into());
    }
    if !thinking_blocks.is_empty() {
        message.insert(
            "thinking_blocks".into(),
            serde_json::to_value(&thinking_blocks).expect("thinking blocks serialise"),
        );
    }
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    messages.push(Value::Object(message));
    Ok(())
}

fn translate_tools(tools: &Value) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for (i, tool) in array(tools, "tools")?.iter().enumerate() {
        let param = format!("tools[{i}]");
        let tool = object(tool, &param)?;
        for key in tool.keys() {
            if !matches!(
                key.as_str(),
                "functionDeclarations" | "function_declarations"
            ) {
                return Err(invalid(
                    format!(
                        "the `{key}` tool is Gemini's own and cannot be sent to this model's provider; only `functionDeclarations` can"
                    ),
                    format!("{param}.{key}"),
                ));
            }
        }
        let Some(declarations) = field(tool, "functionDeclarations") else {
            continue;
        };
        let param = format!("{param}.functionDeclarations");
        for (j, declaration) in array(declarations, &param)?.iter().enumerate() {
            let param = format!("{param}[{j}]");
            let declaration = object(declaration, &param)?;
            let Some(name) = field(declaration, "name").and_then(Value::as_str) else {
                return Err(invalid("a function declaration needs a `name`", param));
            };
            let parameters = match (
                field(declaration, "parametersJsonSchema"),
                field(declaration, "parameters"),
            ) {
                (Some(schema), _) => schema.clone(),
                (None, Some(schema)) => json_schema(schema),
                (None, None) => json!({"type": "object", "properties": {}}),
            };
            let mut function = json!({"name": name, "parameters": parameters});
            if let Some(description) = field(declaration, "description") {
                function["description"] = description.clone();
            }
            out.push(json!({"type": "function", "function": function}));
        }
    }
    Ok(out)
}

/// Gemini's OpenAPI-style schema (`type: "OBJECT"`, `nullable`) as JSON Schema.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(fields) => {
            let mut out = Map::new();
            let mut nullable = false;
            for (key, value) in fields {
                match key.as_str() {
                    "type" => {
                        let kind = value.as_str().unwrap_or("").to_ascii_lowercase();
                        out.insert(key.clone(), kind.into());
                    }
                    "nullable" => nullable = value.as_bool() == Some(true),
                    "properties" | "$defs" | "definitions" => {
                        let props = value.as_object().map(|p| {
                            p.iter()
                                .map(|(k, v)| (k.clone(), json_schema(v)))
                                .collect::<Map<_, _>>()
                        });
                        out.insert(key.clone(), props.map_or(value.clone(), Value::Object));
                    }
                    "items" | "additionalProperties" | "not" => {
                        out.insert(key.clone(), json_schema(value));
                    }
                    "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                        let items = value
                            .as_array()
                            .map(|a| a.iter().map(json_schema).collect());
                        out.insert(key.clone(), items.map_or(value.clone(), Value::Array));
                    }
                    "propertyOrdering" => {}
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
            if nullable && let Some(Value::String(kind)) = out.get("type").cloned() {
                out.insert("type".into(), json!([kind, "null"]));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn tool_choice(config: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(calling) = field(config, "functionCallingConfig") else {
        return Ok(None);
    };
    let calling = object(calling, "toolConfig.functionCallingConfig")?;
    let mode = field(calling, "mode")
        .and_then(Value::as_str)
        .unwrap_or("AUTO");
    let allowed = match field(calling, "allowedFunctionNames") {
        Some(names) => array(
            names,
            "toolConfig.functionCallingConfig.allowedFunctionNames",
        )?,
        None => &[],
    };
    let param = "toolConfig.functionCallingConfig";
    let choice = match (mode, allowed) {
        ("AUTO" | "VALIDATED" | "MODE_UNSPECIFIED", []) => json!("auto"),
        ("NONE", _) => json!("none"),
        ("ANY", []) => json!("required"),
        ("ANY", [name]) => json!({"type": "function", "function": {"name": name}}),
        ("ANY" | "AUTO" | "VALIDATED", _) => {
            return Err(invalid(
                "`allowedFunctionNames` can name only one function for this model's provider (or leave out the others' declarations)",
                format!("{param}.allowedFunctionNames"),
            ));
        }
        (other, _) => {
            return Err(invalid(
                format!("mode `{other}` is not one of AUTO, ANY, NONE, VALIDATED"),
                format!("{param}.mode"),
            ));
        }
    };
    Ok(Some(choice))
}

fn generation_config(
    chat: &mut Map<String, Value>,
    config: &Map<String, Value>,
) -> Result<(), ApiError> {
    let param = |name: &str| format!("generationConfig.{name}");
    for (gemini, openai) in [
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("topK", "top_k"),
        ("candidateCount", "n"),
        ("maxOutputTokens", "max_completion_tokens"),
        ("stopSequences", "stop"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
        ("responseLogprobs", "logprobs"),
        ("logprobs", "top_logprobs"),
    ] {
        if let Some(v) = field(config, gemini) {
            chat.insert(openai.into(), v.clone());
        }
    }
    if let Some(modalities) = field(config, "responseModalities") {
        let text_only = array(modalities, &param("responseModalities"))?
            .iter()
            .all(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case("text")));
        if !text_only {
            return Err(invalid(
                "only TEXT replies can come from this model's provider",
                param("responseModalities"),
            ));
        }
    }
    let schema = match (
        field(config, "responseJsonSchema").or_else(|| field(config, "_responseJsonSchema")),
        field(config, "responseSchema"),
    ) {
        (Some(schema), _) => Some(schema.clone()),
        (None, Some(schema)) => Some(json_schema(schema)),
        (None, None) => None,
    };
    match field(config, "responseMimeType").and_then(Value::as_str) {
        None | Some("text/plain") if schema.is_none() => {}
        Some("application/json") | None => {
            let format = match schema {
                Some(schema) => {
                    json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}})
                }
                None => json!({"type": "json_object"}),
            };
            chat.insert("response_format".into(), format);
        }
        Some(other) => {
            return Err(invalid(
                format!(
                    "responseMimeType `{other}` cannot be asked of this model's provider (application/json and text/plain can)"
                ),
                param("responseMimeType"),
            ));
        }
    }
    if let Some(thinking) = field(config, "thinkingConfig") {
        let thinking = object(thinking, &param("thinkingConfig"))?;
        let level = field(thinking, "thinkingLevel").and_then(Value::as_str);
        let budget = field(thinking, "thinkingBudget").and_then(Value::as_i64);
        let effort = match (level, budget) {
            (Some(level), _) => match level.to_ascii_lowercase().as_str() {
                "minimal" => Some("minimal"),
                "low" => Some("low"),
                "medium" => Some("medium"),
                "high" => Some("high"),
                _ => None,
            },
            // 0 turns thinking off; -1 lets the model decide.
            (None, Some(0)) => Some("none"),
            (None, Some(b)) if b < 0 => None,
            (None, Some(b)) if b <= 2048 => Some("low"),
            (None, Some(b)) if b <= 16384 => Some("medium"),
            (None, Some(_)) => Some("high"),
            (None, None) => None,
        };
        if let Some(effort) = effort {
            chat.insert("reasoning_effort".into(), effort.into());
        }
    }
    Ok(())
}
