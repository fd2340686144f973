//! OpenAI chat requests → `generateContent` requests.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::reply::signature_of;
use super::schema::{function_parameters, reduce_root};
use super::takes_json_schema;
use super::wire::{
    FileData, FunctionCallingConfig, FunctionDeclaration, GContent, GFunctionCall,
    GFunctionResponse, GTool, GenerateContentRequest, GenerationConfig, InlineData, Part,
    ThinkingConfig, ToolConfig,
};
use crate::error::ApiError;
use crate::providers::openai_types::{
    ChatRequest, Content, ContentPart, Message, ResponseFormat, Role, Stop, ToolChoice,
};

pub(super) fn invalid(message: impl Into<String>, param: impl Into<String>) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// Gemini 3 refuses a turn whose function call comes back without its thought signature. A call
/// with none to give back (its client dropped it, or the conversation began on another model)
/// goes with the value Google documents for that case, which lets the turn through.
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

/// Whether the model refuses a function call that comes back without its thought signature.
pub fn checks_signatures(model: &str) -> bool {
    model.contains("gemini-3")
}

/// The generateContent JSON body for an OpenAI request. Errors are
/// ApiError::invalid_request(..).with_param(..) naming the field.
pub fn chat_request(req: &ChatRequest) -> Result<Vec<u8>, ApiError> {
    if req.messages.is_empty() {
        return Err(invalid(
            "`messages` must hold at least one message.",
            "messages",
        ));
    }
    let mut turns = Turns::default();
    for (i, m) in req.messages.iter().enumerate() {
        turns.push(m, &format!("messages[{i}]"), &req.model)?;
    }
    if turns.contents.is_empty() {
        return Err(invalid(
            "`messages` must hold at least one user, assistant or tool message.",
            "messages",
        ));
    }
    let body = GenerateContentRequest {
        contents: turns.contents,
        system_instruction: (!turns.system.is_empty()).then_some(GContent {
            role: None,
            parts: turns.system,
        }),
        tools: tools(req)?,
        tool_config: tool_config(req)?,
        generation_config: Some(generation_config(req)?)
            .filter(|config| *config != GenerationConfig::default()),
    };
    Ok(serde_json::to_vec(&body).expect("serialising to a Vec cannot fail"))
}

/// The conversation as Gemini's contents, built message by message.
#[derive(Default)]
struct Turns<'r> {
    system: Vec<Part>,
    contents: Vec<GContent>,
    /// Tool call id → function name, from the assistant turns seen so far.
    call_names: HashMap<&'r str, &'r str>,
    /// The last content holds function responses: the next tool message joins it.
    in_tool_turn: bool,
}

impl<'r> Turns<'r> {
    fn push(&mut self, m: &'r Message, param: &str, model: &str) -> Result<(), ApiError> {
        match m.role {
            Role::System | Role::Developer => self.system(m, param),
            Role::User => self.user(m, param),
            Role::Assistant => self.assistant(m, param, model),
            Role::Tool | Role::Function => self.tool(m, param),
        }
    }

    fn system(&mut self, m: &Message, param: &str) -> Result<(), ApiError> {
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
            self.system.push(Part::text(text));
        }
        Ok(())
    }

    fn user(&mut self, m: &Message, param: &str) -> Result<(), ApiError> {
        let parts = match &m.content {
            Some(c) => content_parts(c, param)?,
            None => Vec::new(),
        };
        if parts.is_empty() {
            return Err(invalid(format!("{param} has no content."), param));
        }
        self.contents.push(GContent {
            role: Some("user".into()),
            parts,
        });
        self.in_tool_turn = false;
        Ok(())
    }

    /// `reasoning_content` is dropped: Gemini does not take thoughts back. Its signatures come back
    /// on their parts: a call's on the call, the answer's on its last text part.
    fn assistant(&mut self, m: &'r Message, param: &str, model: &str) -> Result<(), ApiError> {
        let mut parts = match &m.content {
            Some(c) => content_parts(c, param)?,
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
            self.call_names
                .insert(call.id.as_str(), call.function.name.as_str());
            let lost = || (j == 0 && checks_signatures(model)).then(|| NO_SIGNATURE.into());
            parts.push(Part {
                function_call: Some(GFunctionCall {
                    name: call.function.name.clone(),
                    args,
                }),
                thought_signature: signature_of(call.extra_content.as_ref()).or_else(lost),
                ..Default::default()
            });
        }
        if let Some(signature) = signature_of(m.extra_content.as_ref())
            && let Some(text) = parts.iter_mut().rev().find(|p| p.text.is_some())
        {
            text.thought_signature = Some(signature);
        }
        self.in_tool_turn = false;
        if !parts.is_empty() {
            self.contents.push(GContent {
                role: Some("model".into()),
                parts,
            });
        }
        Ok(())
    }

    fn tool(&mut self, m: &Message, param: &str) -> Result<(), ApiError> {
        let by_id = m
            .tool_call_id
            .as_deref()
            .and_then(|id| self.call_names.get(id).copied());
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
        match self.contents.last_mut() {
            Some(last) if self.in_tool_turn => last.parts.push(part),
            _ => self.contents.push(GContent {
                role: Some("user".into()),
                parts: vec![part],
            }),
        }
        self.in_tool_turn = true;
        Ok(())
    }
}

/// The request's function tools as Gemini's declarations.
fn tools(req: &ChatRequest) -> Result<Vec<GTool>, ApiError> {
    let Some(tools) = &req.tools else {
        return Ok(Vec::new());
    };
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
    Ok(if declarations.is_empty() {
        Vec::new()
    } else {
        vec![GTool {
            function_declarations: declarations,
        }]
    })
}

/// `tool_choice` as Gemini's function calling mode.
fn tool_config(req: &ChatRequest) -> Result<Option<ToolConfig>, ApiError> {
    let Some(choice) = &req.tool_choice else {
        return Ok(None);
    };
    let config = match choice {
        ToolChoice::Mode(mode) => {
            let mode = match mode.as_str() {
                "none" => "NONE",
                "auto" => "AUTO",
                "required" => "ANY",
                other => {
                    return Err(invalid(
                        format!("tool_choice `{other}` is not one of `none`, `auto`, `required`."),
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
    Ok(Some(ToolConfig {
        function_calling_config: config,
    }))
}

/// Sampling, limits, the response format and thinking as Gemini's generation config.
fn generation_config(req: &ChatRequest) -> Result<GenerationConfig, ApiError> {
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
        config.thinking_config = Some(thinking_config(effort)?);
    }
    Ok(config)
}

/// `reasoning_effort` as a thinking budget (none: thinking off).
fn thinking_config(effort: &str) -> Result<ThinkingConfig, ApiError> {
    let budget = match effort {
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
    Ok(match budget {
        None => ThinkingConfig {
            thinking_budget: 0,
            include_thoughts: None,
        },
        Some(b) => ThinkingConfig {
            thinking_budget: b,
            include_thoughts: Some(true),
        },
    })
}

/// The parts of a user or assistant message; empty text is left out.
pub(super) fn content_parts(content: &Content, param: &str) -> Result<Vec<Part>, ApiError> {
    match content {
        Content::Text(t) if t.is_empty() => Ok(Vec::new()),
        Content::Text(t) => Ok(vec![Part::text(t.clone())]),
        Content::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match part {
                    ContentPart::Text { text, .. } if text.is_empty() => {}
                    ContentPart::Text { text, .. } => out.push(Part::text(text.clone())),
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
pub(super) fn image_part(url: &str) -> Result<Part, String> {
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

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The MIME type of a file URL from its extension; `image/jpeg` when unknown.
pub(super) fn guess_mime(url: &str) -> &'static str {
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
pub(super) fn parse_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A tool result: the JSON object it is, or `{"result": <text>}`.
pub(super) fn tool_response(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "result": text }),
    }
}
