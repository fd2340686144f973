//! Google Gemini: `generateContent`, `streamGenerateContent?alt=sse` and `batchEmbedContents`,
//! translated to and from OpenAI's wire format.
//!
//! Requests: system/developer messages become `systemInstruction`, assistant turns `model` turns,
//! tool results `functionResponse` parts (named after the assistant call with the same id), and
//! tool schemas are reduced to the OpenAPI subset Gemini accepts. A `json_schema` response format
//! goes whole as `responseJsonSchema` to the models that take JSON Schema (Gemini 2.5 and later)
//! and reduced as `responseSchema` to the older ones.
//! Replies: text parts become `content`, thought parts `reasoning_content`, `functionCall` parts
//! `tool_calls`; finish reasons, blocked prompts and usage are mapped to OpenAI's vocabulary.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::openai_types::*;
use crate::providers::spec::{ProviderSpec, Wire};
use crate::providers::sse;
use crate::providers::translate::ReplyContext;

pub const SPEC: ProviderSpec = ProviderSpec {
    id: "gemini",
    display_name: "Google Gemini",
    key_env: &["GEMINI_API_KEY"],
    base_url_env: "GEMINI_BASE_URL",
    region_env: None,
    default_base_url: "https://generativelanguage.googleapis.com/v1beta",
    regions: &[],
    wire: Wire::Gemini,
};

/// `{base}/models/{model}:generateContent` or `{base}/models/{model}:streamGenerateContent?alt=sse` (base without trailing slash).
pub fn chat_url(base_url: &str, model: &str, stream: bool) -> String {
    let base = base_url.trim_end_matches('/');
    let model = model_segment(model);
    if stream {
        format!("{base}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/models/{model}:generateContent")
    }
}

/// The model as one URL path segment: `/`, `?`, `#`, `%` and `:` cannot change the URL's meaning.
fn model_segment(model: &str) -> percent_encoding::PercentEncode<'_> {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(bare_model(model), SEGMENT)
}

/// Whether the model takes a whole JSON Schema as `responseJsonSchema` (Gemini 2.5 and later,
/// and any model outside the older families); Gemini 1.x and 2.0 take only the OpenAPI subset
/// as `responseSchema`.
fn takes_json_schema(model: &str) -> bool {
    let model = bare_model(model);
    !(model.starts_with("gemini-1.") || model.starts_with("gemini-2.0"))
}

/// `models/gemini-x` and `gemini-x` name the same model.
fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

// ---------- Gemini wire types ----------

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest {
    contents: Vec<GContent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<GContent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<GTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline_data: Option<InlineData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_call: Option<GFunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function_response: Option<GFunctionResponse>,
}

impl Part {
    fn text(text: impl Into<String>) -> Part {
        Part {
            text: Some(text.into()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InlineData {
    mime_type: String,
    data: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileData {
    mime_type: String,
    file_uri: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GFunctionCall {
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GFunctionResponse {
    name: String,
    response: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GTool {
    function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    function_calling_config: FunctionCallingConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse {
    #[serde(default)]
    candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    /// Errors reported inside a 200 body or a stream event.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<GContent>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl UsageMetadata {
    fn to_usage(&self) -> Usage {
        Usage::new(
            self.prompt_token_count,
            self.candidates_token_count + self.thoughts_token_count,
            self.cached_content_token_count,
            self.thoughts_token_count,
        )
    }
}

// ---------- requests ----------

fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// The generateContent JSON body for an OpenAI request. Errors are ApiError::invalid_request(..).with_param(..) naming the field.
pub fn chat_request(req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
    if req.messages.is_empty() {
        return Err(invalid(
            "`messages` must hold at least one message.",
            "messages",
        ));
    }
    let mut system: Vec<Part> = Vec::new();
    let mut contents: Vec<GContent> = Vec::new();
    // Tool call id → function name, from the assistant turns seen so far.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    // The last content holds function responses: the next tool message joins it.
    let mut in_tool_turn = false;

    for (i, m) in req.messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        match m.role {
            Role::System | Role::Developer => {
                let text = match &m.content {
                    None => return Err(invalid(format!("{param} has no content."), param)),
                    Some(Content::Text(t)) => t.clone(),
                    Some(Content::Parts(parts)) => {
                        if parts.iter().any(|p| !matches!(p, ContentPart::Text { .. })) {
                            return Err(invalid(
                                format!("{param}: system messages can only hold text."),
                                param,
                            ));
                        }
                        m.content.as_ref().map(Content::text).unwrap_or_default()
                    }
                };
                if !text.is_empty() {
                    system.push(Part::text(text));
                }
            }
            Role::User => {
                let parts = match &m.content {
                    Some(c) => content_parts(c, &param)?,
                    None => Vec::new(),
                };
                if parts.is_empty() {
                    return Err(invalid(format!("{param} has no content."), param));
                }
                contents.push(GContent {
                    role: Some("user".into()),
                    parts,
                });
                in_tool_turn = false;
            }
            Role::Assistant => {
                // `reasoning_content` is dropped: Gemini does not take thoughts back.
                let mut parts = match &m.content {
                    Some(c) => content_parts(c, &param)?,
                    None => Vec::new(),
                };
                for (j, call) in m.tool_calls.iter().flatten().enumerate() {
                    let args_param = format!("{param}.tool_calls[{j}].function.arguments");
                    let args = parse_arguments(&call.function.arguments).ok_or_else(|| {
                        invalid(
                            format!("{args_param} must be a JSON object."),
                            args_param.clone(),
                        )
                    })?;
                    call_names.insert(call.id.as_str(), call.function.name.as_str());
                    parts.push(Part {
                        function_call: Some(GFunctionCall {
                            name: call.function.name.clone(),
                            args,
                        }),
                        ..Default::default()
                    });
                }
                in_tool_turn = false;
                if !parts.is_empty() {
                    contents.push(GContent {
                        role: Some("model".into()),
                        parts,
                    });
                }
            }
            Role::Tool | Role::Function => {
                let by_id = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| call_names.get(id).copied());
                let Some(name) = by_id.or(m.name.as_deref()) else {
                    let message = match &m.tool_call_id {
                        Some(id) => format!(
                            "{param}: tool_call_id `{id}` matches no tool call of an earlier assistant message."
                        ),
                        None => format!(
                            "{param}: a tool message needs the `tool_call_id` of an earlier assistant tool call."
                        ),
                    };
                    return Err(invalid(message, param));
                };
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                let part = Part {
                    function_response: Some(GFunctionResponse {
                        name: name.to_string(),
                        response: tool_response(&text),
                    }),
                    ..Default::default()
                };
                match contents.last_mut() {
                    Some(last) if in_tool_turn => last.parts.push(part),
                    _ => contents.push(GContent {
                        role: Some("user".into()),
                        parts: vec![part],
                    }),
                }
                in_tool_turn = true;
            }
        }
    }
    if contents.is_empty() {
        return Err(invalid(
            "`messages` must hold at least one user, assistant or tool message.",
            "messages",
        ));
    }

    let mut body = GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(GContent {
            role: None,
            parts: system,
        }),
        ..Default::default()
    };

    if let Some(tools) = &req.tools {
        let mut declarations = Vec::with_capacity(tools.len());
        for (i, tool) in tools.iter().enumerate() {
            if tool.kind != "function" {
                return Err(invalid(
                    format!(
                        "tools[{i}]: only `function` tools are supported by Gemini, not `{}`.",
                        tool.kind
                    ),
                    format!("tools[{i}]"),
                ));
            }
            declarations.push(FunctionDeclaration {
                name: tool.function.name.clone(),
                description: tool.function.description.clone().filter(|d| !d.is_empty()),
                parameters: tool
                    .function
                    .parameters
                    .as_ref()
                    .and_then(function_parameters),
            });
        }
        if !declarations.is_empty() {
            body.tools.push(GTool {
                function_declarations: declarations,
            });
        }
    }

    if let Some(choice) = &req.tool_choice {
        let config = match choice {
            ToolChoice::Mode(mode) => {
                let mode = match mode.as_str() {
                    "none" => "NONE",
                    "auto" => "AUTO",
                    "required" => "ANY",
                    other => {
                        return Err(invalid(
                            format!(
                                "tool_choice `{other}` is not one of `none`, `auto`, `required`."
                            ),
                            "tool_choice",
                        ));
                    }
                };
                FunctionCallingConfig {
                    mode,
                    allowed_function_names: None,
                }
            }
            ToolChoice::Named(named) => FunctionCallingConfig {
                mode: "ANY",
                allowed_function_names: Some(vec![named.function.name.clone()]),
            },
        };
        body.tool_config = Some(ToolConfig {
            function_calling_config: config,
        });
    }

    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_output_tokens(),
        candidate_count: req.n,
        stop_sequences: req
            .stop
            .as_ref()
            .map(Stop::to_vec)
            .filter(|s| !s.is_empty()),
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        ..Default::default()
    };
    if req.logprobs == Some(true) {
        config.response_logprobs = Some(true);
        config.logprobs = req.top_logprobs;
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => config.response_mime_type = Some("application/json"),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            config.response_mime_type = Some("application/json");
            let schema = json_schema
                .schema
                .as_ref()
                .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()));
            if takes_json_schema(&req.model) {
                config.response_json_schema = schema.cloned();
            } else {
                config.response_schema = schema
                    .map(|s| Value::Object(reduce_root(s)))
                    .filter(|s| s.as_object().is_some_and(|o| !o.is_empty()));
            }
        }
    }
    if let Some(effort) = &req.reasoning_effort {
        let budget = match effort.as_str() {
            "none" | "minimal" => None,
            "low" => Some(1024),
            "medium" => Some(8192),
            "high" | "xhigh" => Some(24576),
            other => {
                return Err(invalid(
                    format!(
                        "reasoning_effort `{other}` is not one of `none`, `minimal`, `low`, `medium`, `high`."
                    ),
                    "reasoning_effort",
                ));
            }
        };
        config.thinking_config = Some(match budget {
            None => ThinkingConfig {
                thinking_budget: 0,
                include_thoughts: None,
            },
            Some(b) => ThinkingConfig {
                thinking_budget: b,
                include_thoughts: Some(true),
            },
        });
    }
    if config != GenerationConfig::default() {
        body.generation_config = Some(config);
    }

    Ok(serde_json::to_vec(&body).expect("serialising to a Vec cannot fail"))
}

/// The parts of a user or assistant message; empty text is left out.
fn content_parts(content: &Content, param: &str) -> Result<Vec<Part>, ApiError> {
    match content {
        Content::Text(t) if t.is_empty() => Ok(Vec::new()),
        Content::Text(t) => Ok(vec![Part::text(t.clone())]),
        Content::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match part {
                    ContentPart::Text { text } if text.is_empty() => {}
                    ContentPart::Text { text } => out.push(Part::text(text.clone())),
                    ContentPart::ImageUrl { image_url } => {
                        out.push(image_part(&image_url.url).map_err(|why| {
                            invalid(format!("{param}.content[{j}]: {why}"), param.to_string())
                        })?);
                    }
                }
            }
            Ok(out)
        }
    }
}

/// `data:<mime>;base64,<data>` → `inlineData`; `http(s)://…` → `fileData`.
fn image_part(url: &str) -> Result<Part, String> {
    if let Some(rest) = strip_prefix_ci(url, "data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err("the image data URL has no `,`.".into());
        };
        let mut fields = meta.split(';');
        let mime = fields.next().unwrap_or_default().trim();
        if !fields.any(|f| f.trim().eq_ignore_ascii_case("base64")) {
            return Err(
                "only base64 image data URLs (`data:<mime>;base64,…`) are supported.".into(),
            );
        }
        let mime = if mime.is_empty() { "image/jpeg" } else { mime };
        return Ok(Part {
            inline_data: Some(InlineData {
                mime_type: mime.to_string(),
                data: data.to_string(),
            }),
            ..Default::default()
        });
    }
    if strip_prefix_ci(url, "https://").is_some() || strip_prefix_ci(url, "http://").is_some() {
        return Ok(Part {
            file_data: Some(FileData {
                mime_type: guess_mime(url).to_string(),
                file_uri: url.to_string(),
            }),
            ..Default::default()
        });
    }
    Err("the image URL must be `https://…`, `http://…` or a base64 `data:` URL.".into())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The MIME type of a file URL from its extension; `image/jpeg` when unknown.
fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "bmp" => "image/bmp",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

/// OpenAI's arguments text as the JSON object Gemini wants (empty text is `{}`).
fn parse_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A tool result: the JSON object it is, or `{"result": <text>}`.
fn tool_response(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "result": text }),
    }
}

// ---------- JSON Schema → Gemini Schema ----------

/// Deeper schemas are cut here: keeps a hostile schema from recursing without bound.
const MAX_SCHEMA_DEPTH: usize = 32;

/// A function's parameters; none when they describe no property (Gemini rejects an OBJECT without properties).
fn function_parameters(schema: &Value) -> Option<Value> {
    let reduced = reduce_root(schema);
    let object_without_properties = reduced.get("type").and_then(Value::as_str) == Some("object")
        && !reduced.contains_key("properties");
    if reduced.is_empty() || object_without_properties {
        None
    } else {
        Some(Value::Object(reduced))
    }
}

fn reduce_root(schema: &Value) -> Map<String, Value> {
    reduce_schema(schema, schema, &mut Vec::new(), 0)
}

/// Keeps the JSON Schema keywords Gemini's Schema knows and rewrites the ones it spells differently.
fn reduce_schema(
    node: &Value,
    root: &Value,
    refs: &mut Vec<String>,
    depth: usize,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Value::Object(obj) = node else { return out };
    if depth > MAX_SCHEMA_DEPTH {
        return out;
    }
    let mut nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);

    // `$ref`: inline a local, non-recursive target beneath the node's own keywords; drop anything else.
    let mut inlined = None;
    if let Some(Value::String(r)) = obj.get("$ref")
        && !refs.contains(r)
        && let Some(target) = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
    {
        refs.push(r.clone());
        inlined = Some(reduce_schema(target, root, refs, depth + 1));
        refs.pop();
    }

    let mut any_of: Vec<Value> = Vec::new();
    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.clone()));
        }
        Some(Value::Array(types)) => {
            let mut kinds = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    nullable = true;
                } else {
                    kinds.push(t);
                }
            }
            match kinds.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), json!(one));
                }
                many => any_of.extend(many.iter().map(|k| json!({ "type": k }))),
            }
        }
        _ => {}
    }
    let ty = out.get("type").and_then(Value::as_str).map(str::to_owned);

    if let Some(Value::String(d)) = obj.get("description") {
        out.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(Value::String(f)) = obj.get("format") {
        // Gemini refuses other formats (`only 'enum' and 'date-time' are supported for STRING type`).
        let allowed = match ty.as_deref() {
            Some("string") => matches!(f.as_str(), "enum" | "date-time"),
            Some("number") => matches!(f.as_str(), "float" | "double"),
            Some("integer") => matches!(f.as_str(), "int32" | "int64"),
            _ => false,
        };
        if allowed {
            out.insert("format".into(), Value::String(f.clone()));
        }
    }
    for key in ["minimum", "maximum", "minItems", "maxItems"] {
        if let Some(v @ Value::Number(_)) = obj.get(key) {
            out.insert(key.into(), v.clone());
        }
    }

    // `enum` (or `const`): Gemini takes string enums only.
    let values = match (obj.get("enum"), obj.get("const")) {
        (Some(Value::Array(values)), _) => Some(values.clone()),
        (None, Some(c)) => Some(vec![c.clone()]),
        _ => None,
    };
    if let Some(values) = values {
        let mut strings = Vec::new();
        let mut all_strings = true;
        for v in values {
            match v {
                Value::Null => nullable = true,
                Value::String(s) => strings.push(Value::String(s)),
                Value::Number(n) => {
                    all_strings = false;
                    strings.push(Value::String(n.to_string()));
                }
                Value::Bool(b) => {
                    all_strings = false;
                    strings.push(Value::String(b.to_string()));
                }
                _ => all_strings = false,
            }
        }
        let keep = match ty.as_deref() {
            Some("string") => true,
            None => all_strings,
            Some(_) => false,
        };
        if keep && !strings.is_empty() {
            out.entry("type").or_insert_with(|| json!("string"));
            out.insert("enum".into(), Value::Array(strings));
        }
    }

    if let Some(Value::Object(props)) = obj.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .map(|(name, schema)| {
                (
                    name.clone(),
                    Value::Object(reduce_schema(schema, root, refs, depth + 1)),
                )
            })
            .collect();
        if !props.is_empty() {
            if let Some(Value::Array(required)) = obj.get("required") {
                let required: Vec<Value> = required
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|n| props.contains_key(n)))
                    .cloned()
                    .collect();
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            out.entry("type").or_insert_with(|| json!("object"));
            out.insert("properties".into(), Value::Object(props));
        }
    }
    let items = match obj.get("items") {
        Some(items @ Value::Object(_)) => Some(items),
        Some(Value::Array(tuple)) => tuple.first(),
        _ => None,
    };
    if let Some(items) = items {
        out.entry("type").or_insert_with(|| json!("array"));
        out.insert(
            "items".into(),
            Value::Object(reduce_schema(items, root, refs, depth + 1)),
        );
    }

    // `anyOf` (and `oneOf`, which Gemini lacks): a `{"type":"null"}` branch becomes `nullable`, a lone branch is inlined.
    let mut single = Vec::new();
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = obj.get(key) else {
            continue;
        };
        let mut kept = Vec::new();
        for branch in branches {
            if branch.get("type").and_then(Value::as_str) == Some("null") {
                nullable = true;
                continue;
            }
            let reduced = reduce_schema(branch, root, refs, depth + 1);
            if !reduced.is_empty() {
                kept.push(reduced);
            }
        }
        if kept.len() == 1 {
            single.extend(kept);
        } else {
            any_of.extend(kept.into_iter().map(Value::Object));
        }
    }
    if let Some(Value::Array(all_of)) = obj.get("allOf")
        && let [only] = all_of.as_slice()
    {
        single.push(reduce_schema(only, root, refs, depth + 1));
    }
    if !any_of.is_empty() {
        out.insert("anyOf".into(), Value::Array(any_of));
    }
    for from in single.into_iter().chain(inlined) {
        for (k, v) in from {
            out.entry(k).or_insert(v);
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    out
}

// ---------- replies ----------

fn malformed_call() -> ApiError {
    ApiError::bad_gateway(
        "Gemini: the model produced a malformed function call (MALFORMED_FUNCTION_CALL)",
    )
}

fn blocked_prompt(reason: &str) -> ApiError {
    ApiError::invalid_request(format!("Gemini blocked the prompt: {reason}"))
        .with_code("content_filter")
}

fn parse_reply(body: &[u8]) -> Result<GenerateContentResponse, ApiError> {
    let reply: GenerateContentResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "Gemini: the reply is not a GenerateContentResponse: {e}"
        ))
    })?;
    if let Some(error) = &reply.error {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty());
        return Err(ApiError::bad_gateway(format!(
            "Gemini: {}",
            message.unwrap_or("the reply reports an error")
        )));
    }
    Ok(reply)
}

/// The error owed when a reply holds no candidate: a blocked prompt, or nothing usable.
fn no_candidate(reply: &GenerateContentResponse) -> Option<ApiError> {
    let reason = reply.prompt_feedback.as_ref()?.block_reason.as_deref()?;
    (!reason.is_empty() && reason != "BLOCK_REASON_UNSPECIFIED").then(|| blocked_prompt(reason))
}

/// A candidate's finish reason, if it has a meaningful one.
fn finish_of(candidate: &Candidate) -> Option<&str> {
    candidate
        .finish_reason
        .as_deref()
        .filter(|r| !r.is_empty() && *r != "FINISH_REASON_UNSPECIFIED")
}

/// Gemini's finish reason in OpenAI's words (a choice that called tools says `tool_calls` instead).
fn map_finish(reason: &str) -> Result<&'static str, ApiError> {
    Ok(match reason {
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        "MALFORMED_FUNCTION_CALL" => return Err(malformed_call()),
        "UNEXPECTED_TOOL_CALL" => {
            return Err(ApiError::bad_gateway(
                "Gemini: the model called a function it was not given (UNEXPECTED_TOOL_CALL)",
            ));
        }
        _ => "stop",
    })
}

/// A candidate's parts sorted out: answer text, thought text and function calls (name, arguments JSON).
#[derive(Default)]
struct Sorted {
    text: String,
    thoughts: String,
    calls: Vec<(String, String)>,
}

fn sort_parts(content: Option<GContent>) -> Sorted {
    let mut sorted = Sorted::default();
    for part in content.map(|c| c.parts).unwrap_or_default() {
        if let Some(call) = part.function_call {
            let args = if call.args.is_null() {
                "{}".to_string()
            } else {
                call.args.to_string()
            };
            sorted.calls.push((call.name, args));
        } else if let Some(text) = part.text {
            if part.thought == Some(true) {
                sorted.thoughts.push_str(&text);
            } else {
                sorted.text.push_str(&text);
            }
        }
    }
    sorted
}

/// A short, id-safe token from the reply id, so tool call ids are unique across replies.
fn short_id(id: &str) -> String {
    let id = id.strip_prefix("chatcmpl-").unwrap_or(id);
    let chars: Vec<char> = id.chars().filter(char::is_ascii_alphanumeric).collect();
    let short: String = chars[chars.len().saturating_sub(12)..].iter().collect();
    if short.is_empty() {
        "gemini".to_string()
    } else {
        short
    }
}

fn call_id(short: &str, n: usize) -> String {
    format!("call_{short}_{n}")
}

/// Upstream non-stream body (GenerateContentResponse) -> OpenAI chat.completion JSON bytes + usage.
pub fn chat_response(body: &[u8], ctx: &ReplyContext) -> Result<(Vec<u8>, Usage), ApiError> {
    let mut reply = parse_reply(body)?;
    let candidates = reply.candidates.take().unwrap_or_default();
    if candidates.is_empty() {
        return Err(no_candidate(&reply)
            .unwrap_or_else(|| ApiError::bad_gateway("Gemini: the reply holds no candidate")));
    }
    let short = short_id(&ctx.id);
    let mut calls_made = 0;
    let mut choices = Vec::with_capacity(candidates.len());
    for (pos, candidate) in candidates.into_iter().enumerate() {
        let index = candidate.index.unwrap_or(pos as u32);
        let reason = finish_of(&candidate).map(str::to_owned);
        if reason.as_deref() == Some("MALFORMED_FUNCTION_CALL") {
            return Err(malformed_call());
        }
        let sorted = sort_parts(candidate.content);
        let tool_calls: Vec<ToolCall> = sorted
            .calls
            .into_iter()
            .map(|(name, arguments)| {
                calls_made += 1;
                ToolCall {
                    id: call_id(&short, calls_made - 1),
                    kind: "function".into(),
                    function: FunctionCall { name, arguments },
                }
            })
            .collect();
        let finish = match reason.as_deref() {
            _ if !tool_calls.is_empty() => "tool_calls",
            Some(r) => map_finish(r)?,
            None => "stop",
        };
        let content = if sorted.text.is_empty() && !tool_calls.is_empty() {
            None
        } else {
            Some(sorted.text)
        };
        choices.push(Choice {
            index,
            message: ResponseMessage {
                role: "assistant".into(),
                content,
                reasoning_content: (!sorted.thoughts.is_empty()).then_some(sorted.thoughts),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            },
            finish_reason: Some(finish.into()),
            logprobs: None,
        });
    }
    let usage = reply.usage_metadata.as_ref().map(UsageMetadata::to_usage);
    let completion = ChatCompletion {
        id: ctx.id.clone(),
        object: "chat.completion".into(),
        created: ctx.created,
        model: ctx.model.clone(),
        choices,
        usage,
    };
    let bytes = serde_json::to_vec(&completion).expect("serialising to a Vec cannot fail");
    Ok((bytes, usage.unwrap_or_default()))
}

#[derive(Debug, Default)]
struct ChoiceState {
    /// The role chunk went out.
    started: bool,
    /// The finish reason went out: later deltas for this choice are ignored.
    finished: bool,
    /// Tool calls so far: the next call's `index`.
    calls: u32,
}

/// Translates the upstream SSE stream, one `data:` payload at a time, into OpenAI chunk frames written with sse::write_json.
pub struct ChatStream {
    ctx: ReplyContext,
    short: String,
    choices: BTreeMap<u32, ChoiceState>,
    /// Tool calls in the whole reply, for unique ids.
    calls_made: usize,
    usage: Option<Usage>,
    usage_written: bool,
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

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatChunk {
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
            if !sorted.calls.is_empty() {
                let mut deltas = Vec::with_capacity(sorted.calls.len());
                for (name, arguments) in sorted.calls {
                    deltas.push(ToolCallDelta {
                        index: state.calls,
                        id: Some(call_id(&self.short, self.calls_made)),
                        kind: Some("function".into()),
                        function: FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(arguments),
                        },
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
                && delta.tool_calls.is_none();
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

/// The human-readable message from a Gemini error body ({"error":{"code","message","status"}}), if any.
/// Also reads the `[{"error":…}]` array form of `streamGenerateContent` without `alt=sse`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let value = match &value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let error = value.get("error")?;
    let text = |key: &str| {
        error
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    text("message")
        .or_else(|| text("status"))
        .map(str::to_owned)
}

// ---------- embeddings ----------

pub fn embeddings_url(base_url: &str, model: &str) -> String {
    format!(
        "{}/models/{}:batchEmbedContents",
        base_url.trim_end_matches('/'),
        model_segment(model)
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchEmbedRequest {
    requests: Vec<EmbedRequest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedRequest {
    model: String,
    content: GContent,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Deserialize)]
struct BatchEmbedResponse {
    #[serde(default)]
    embeddings: Option<Vec<ContentEmbedding>>,
}

#[derive(Deserialize)]
struct ContentEmbedding {
    #[serde(default)]
    values: Vec<f32>,
}

pub fn embeddings_request(req: &EmbeddingRequest, model: &str) -> Result<Vec<u8>, ApiError> {
    let inputs = req.input.to_vec();
    if inputs.is_empty() {
        return Err(invalid("`input` must hold at least one text.", "input"));
    }
    let model = format!("models/{}", bare_model(model));
    let requests = inputs
        .into_iter()
        .map(|text| EmbedRequest {
            model: model.clone(),
            content: GContent {
                role: None,
                parts: vec![Part::text(text)],
            },
            output_dimensionality: req.dimensions,
        })
        .collect();
    Ok(serde_json::to_vec(&BatchEmbedRequest { requests })
        .expect("serialising to a Vec cannot fail"))
}

/// Gemini's estimate-free stand-in for a token count: ceil(chars / 4) over all inputs.
pub fn estimate_embedding_tokens(req: &EmbeddingRequest) -> u64 {
    let chars: usize = req.input.to_vec().iter().map(|s| s.chars().count()).sum();
    (chars as u64).div_ceil(4)
}

/// The reply as OpenAI's embedding list. Gemini reports no token count and this function does not
/// see the input, so `prompt_tokens` is 0 and the third element is `true` ("estimated"): the caller,
/// which holds the request, fills the count with [`estimate_embedding_tokens`] (ceil(chars / 4)).
pub fn embeddings_response(
    body: &[u8],
    model: &str,
) -> Result<(Vec<u8>, EmbeddingUsage, bool), ApiError> {
    let reply: BatchEmbedResponse = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "Gemini: the reply is not a BatchEmbedContentsResponse: {e}"
        ))
    })?;
    let embeddings = reply
        .embeddings
        .ok_or_else(|| ApiError::bad_gateway("Gemini: the reply holds no embeddings"))?;
    let data = embeddings
        .into_iter()
        .enumerate()
        .map(|(i, e)| Embedding {
            object: "embedding".into(),
            index: i as u32,
            embedding: e.values,
        })
        .collect();
    let usage = EmbeddingUsage::default();
    let response = EmbeddingResponse {
        object: "list".into(),
        data,
        model: bare_model(model).to_string(),
        usage,
    };
    Ok((
        serde_json::to_vec(&response).expect("serialising to a Vec cannot fail"),
        usage,
        true,
    ))
}

#[cfg(test)]
mod tests;
