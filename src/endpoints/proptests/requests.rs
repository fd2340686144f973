//! Requests and whole replies: generated chat completions requests reach every provider with
//! their meaning (texts, roles, images, tool calls and results, tool names) and anything a client
//! may send is a reply or a 400, never a panic; a Messages request through chat completions to
//! Anthropic and Gemini keeps its meaning; whole replies keep theirs from one API to another.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::{config, name, some_text, text};
use crate::endpoints::responses::stream as responses_stream;
use crate::endpoints::{messages, responses};
use crate::error::ApiError;
use crate::providers::dialect::{self, ChatTarget};
use crate::providers::openai_compatible::{self, Edits};
use crate::providers::openai_types::{ChatRequest, Content, ContentPart, Role};
use crate::providers::translate::ReplyContext;
use crate::providers::{BUILTIN, anthropic, gemini};

// ---------- generated chat completions requests ----------

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Image(String),
}

#[derive(Debug, Clone)]
enum Turn {
    System {
        developer: bool,
        texts: Vec<String>,
        as_parts: bool,
    },
    User {
        parts: Vec<Part>,
        as_parts: bool,
    },
    Assistant {
        texts: Vec<String>,
        as_parts: bool,
        /// Name, arguments, and whether they are sent as empty text (meaning `{}`).
        calls: Vec<(String, Value, bool)>,
    },
    Tool {
        call: Index,
        content: String,
    },
}

fn image_url() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9+/]{0,40}={0,2}".prop_map(|d| format!("data:image/png;base64,{d}")),
        "[a-z0-9./_-]{1,30}".prop_map(|p| format!("https://example.com/{p}")),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![3 => text().prop_map(Part::Text), 1 => image_url().prop_map(Part::Image)]
}

fn arguments() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    prop::collection::vec((text(), value), 0..4)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![
        1 => (any::<bool>(), prop::collection::vec(text(), 1..3), any::<bool>())
            .prop_map(|(developer, texts, as_parts)| Turn::System { developer, texts, as_parts }),
        4 => (prop::collection::vec(part(), 1..4), any::<bool>())
            .prop_map(|(parts, as_parts)| Turn::User { parts, as_parts }),
        3 => (
            prop::collection::vec(text(), 0..3),
            any::<bool>(),
            prop::collection::vec((name(), arguments(), prop::bool::weighted(0.1)), 0..3),
        )
            .prop_map(|(texts, as_parts, calls)| Turn::Assistant { texts, as_parts, calls }),
        2 => (any::<Index>(), text()).prop_map(|(call, content)| Turn::Tool { call, content }),
    ]
}

fn tool() -> impl Strategy<Value = Value> {
    (
        name(),
        prop::option::of(text()),
        prop::collection::vec(
            (
                name(),
                prop::sample::select(vec!["string", "integer", "number", "boolean", "array"]),
            ),
            0..4,
        ),
    )
        .prop_map(|(name, description, properties)| {
            let properties: Map<String, Value> = properties
                .into_iter()
                .map(|(p, kind)| {
                    let mut schema = json!({"type": kind, "description": p});
                    if kind == "array" {
                        schema["items"] = json!({"type": "string"});
                    }
                    (p, schema)
                })
                .collect();
            let required: Vec<&String> = properties.keys().take(1).collect();
            let mut function = json!({"name": name, "parameters": {
                "type": "object", "properties": properties, "required": required,
            }});
            if let Some(d) = description {
                function["description"] = d.into();
            }
            json!({"type": "function", "function": function})
        })
}

/// A valid chat completions request, as JSON: every user and assistant message says something,
/// tool messages answer earlier calls.
fn chat_request() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(turn(), 1..10),
        prop::collection::vec(tool(), 0..4),
        prop::option::of(prop::sample::select(vec!["auto", "none", "required"])),
        any::<bool>(),
        prop::option::of(1u32..100_000),
        prop::option::of(prop::collection::vec(some_text(), 1..3)),
    )
        .prop_map(|(turns, tools, choice, stream, max_tokens, stop)| {
            let mut messages = Vec::new();
            let mut ids: Vec<String> = Vec::new();
            for (i, turn) in turns.into_iter().enumerate() {
                let texts = |texts: Vec<String>, as_parts: bool| {
                    if as_parts {
                        Value::Array(
                            texts
                                .into_iter()
                                .map(|t| json!({"type": "text", "text": t}))
                                .collect(),
                        )
                    } else {
                        Value::String(texts.concat())
                    }
                };
                match turn {
                    Turn::System {
                        developer,
                        texts: t,
                        as_parts,
                    } => messages.push(json!({
                        "role": if developer { "developer" } else { "system" },
                        "content": texts(t, as_parts),
                    })),
                    Turn::User {
                        mut parts,
                        as_parts,
                    } => {
                        let says = parts.iter().any(|p| match p {
                            Part::Text(t) => !t.is_empty(),
                            Part::Image(_) => true,
                        });
                        if !says {
                            parts.push(Part::Text("hello".into()));
                        }
                        let all_text = parts.iter().all(|p| matches!(p, Part::Text(_)));
                        let content = if all_text && !as_parts {
                            Value::String(
                                parts
                                    .iter()
                                    .map(|p| match p {
                                        Part::Text(t) => t.as_str(),
                                        Part::Image(_) => "",
                                    })
                                    .collect(),
                            )
                        } else {
                            Value::Array(
                                parts
                                    .iter()
                                    .map(|p| match p {
                                        Part::Text(t) => json!({"type": "text", "text": t}),
                                        Part::Image(url) => {
                                            json!({"type": "image_url", "image_url": {"url": url}})
                                        }
                                    })
                                    .collect(),
                            )
                        };
                        messages.push(json!({"role": "user", "content": content}));
                    }
                    Turn::Assistant {
                        texts: mut t,
                        as_parts,
                        calls,
                    } => {
                        if calls.is_empty() && t.iter().all(String::is_empty) {
                            t.push("ok".into());
                        }
                        let mut message =
                            json!({"role": "assistant", "content": texts(t, as_parts)});
                        if !calls.is_empty() {
                            let calls: Vec<Value> = calls
                                .into_iter()
                                .enumerate()
                                .map(|(j, (name, args, empty))| {
                                    let id = format!("call_{i}_{j}");
                                    ids.push(id.clone());
                                    let arguments =
                                        if empty && args.as_object().is_some_and(Map::is_empty) {
                                            String::new()
                                        } else {
                                            args.to_string()
                                        };
                                    json!({"id": id, "type": "function",
                                        "function": {"name": name, "arguments": arguments}})
                                })
                                .collect();
                            message["tool_calls"] = Value::Array(calls);
                        }
                        messages.push(message);
                    }
                    Turn::Tool { call, content } => {
                        if !ids.is_empty() {
                            let id = &ids[call.index(ids.len())];
                            messages.push(
                                json!({"role": "tool", "tool_call_id": id, "content": content}),
                            );
                        }
                    }
                }
            }
            if !messages
                .iter()
                .any(|m| m["role"] == "user" || m["role"] == "assistant")
            {
                messages.push(json!({"role": "user", "content": "hi"}));
            }
            let mut request = json!({"model": "m", "messages": messages, "stream": stream});
            if !tools.is_empty() {
                request["tools"] = Value::Array(tools);
                if let Some(choice) = choice {
                    request["tool_choice"] = choice.into();
                }
            }
            if let Some(max) = max_tokens {
                request["max_tokens"] = max.into();
            }
            if let Some(stop) = stop {
                request["stop"] = stop.into();
            }
            request
        })
}

// ---------- meaning ----------

/// One thing a conversation says, as every API can carry it.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Image(String),
    /// A tool call: id (where the API keeps one), name, arguments.
    Call(Option<String>, String, Value),
    /// A tool result: the call's id (Anthropic) or function's name (Gemini), and what it said.
    Result(String, Value),
}

fn arguments_value(text: &str) -> Value {
    if text.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(text).expect("generated arguments are JSON")
    }
}

/// The system prompt and conversation of a chat request as Anthropic is to receive them.
fn for_anthropic(req: &ChatRequest) -> (Vec<String>, Vec<(&'static str, Item)>) {
    let mut system = Vec::new();
    let mut items = Vec::new();
    let content_items = |content: &Option<Content>| -> Vec<Item> {
        match content {
            None => vec![],
            Some(Content::Text(t)) => (!t.is_empty())
                .then(|| Item::Text(t.clone()))
                .into_iter()
                .collect(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text, .. } => {
                        (!text.is_empty()).then(|| Item::Text(text.clone()))
                    }
                    ContentPart::ImageUrl { image_url } => Some(Item::Image(image_url.url.clone())),
                })
                .collect(),
        }
    };
    for m in &req.messages {
        match m.role {
            Role::System | Role::Developer => {
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                if !text.is_empty() {
                    system.push(text);
                }
            }
            Role::User => items.extend(content_items(&m.content).into_iter().map(|i| ("user", i))),
            Role::Assistant => {
                items.extend(
                    content_items(&m.content)
                        .into_iter()
                        .map(|i| ("assistant", i)),
                );
                for call in m.tool_calls.iter().flatten() {
                    let args = arguments_value(&call.function.arguments);
                    let item = Item::Call(Some(call.id.clone()), call.function.name.clone(), args);
                    items.push(("assistant", item));
                }
            }
            Role::Tool => {
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                let id = m.tool_call_id.clone().unwrap_or_default();
                items.push(("user", Item::Result(id, Value::String(text))));
            }
            Role::Function => unreachable!("not generated"),
        }
    }
    (system, items)
}

/// What an Anthropic request body says.
fn anthropic_said(body: &Value) -> (Vec<String>, Vec<(&'static str, Item)>) {
    let system = match &body["system"] {
        Value::Null => vec![],
        Value::String(s) => s.split("\n\n").map(str::to_string).collect(),
        other => panic!("system {other}"),
    };
    let mut items = Vec::new();
    let mut last_role = "";
    for m in body["messages"].as_array().unwrap() {
        let role = if m["role"] == "user" {
            "user"
        } else {
            "assistant"
        };
        assert_ne!(role, last_role, "roles alternate");
        last_role = role;
        for block in m["content"].as_array().unwrap() {
            let item = match block["type"].as_str().unwrap() {
                "text" => {
                    let text = block["text"].as_str().unwrap();
                    assert!(!text.is_empty(), "no empty text block");
                    Item::Text(text.into())
                }
                "image" => {
                    let s = &block["source"];
                    Item::Image(match s["type"].as_str().unwrap() {
                        "base64" => format!(
                            "data:{};base64,{}",
                            s["media_type"].as_str().unwrap(),
                            s["data"].as_str().unwrap()
                        ),
                        _ => s["url"].as_str().unwrap().to_string(),
                    })
                }
                "tool_use" => Item::Call(
                    Some(block["id"].as_str().unwrap().into()),
                    block["name"].as_str().unwrap().into(),
                    block["input"].clone(),
                ),
                "tool_result" => Item::Result(
                    block["tool_use_id"].as_str().unwrap().into(),
                    block["content"].clone(),
                ),
                other => panic!("unexpected block {other}"),
            };
            items.push((role, item));
        }
    }
    (system, items)
}

/// The system texts and conversation of a chat request as Gemini is to receive them.
fn for_gemini(req: &ChatRequest) -> (Vec<String>, Vec<(&'static str, Item)>) {
    let mut system = Vec::new();
    let mut items = Vec::new();
    let mut names: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for m in &req.messages {
        let (system_text, role) = match m.role {
            Role::System | Role::Developer => (true, ""),
            Role::User => (false, "user"),
            Role::Assistant => (false, "model"),
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or_default();
                let text = m.content.as_ref().map(Content::text).unwrap_or_default();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"result": text}),
                };
                items.push(("user", Item::Result(names[id].clone(), response)));
                continue;
            }
            Role::Function => unreachable!("not generated"),
        };
        if system_text {
            let text = m.content.as_ref().map(Content::text).unwrap_or_default();
            if !text.is_empty() {
                system.push(text);
            }
            continue;
        }
        let said: Vec<Item> = match &m.content {
            None => vec![],
            Some(Content::Text(t)) => (!t.is_empty())
                .then(|| Item::Text(t.clone()))
                .into_iter()
                .collect(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text, .. } => {
                        (!text.is_empty()).then(|| Item::Text(text.clone()))
                    }
                    ContentPart::ImageUrl { image_url } => Some(Item::Image(image_url.url.clone())),
                })
                .collect(),
        };
        items.extend(said.into_iter().map(|i| (role, i)));
        for call in m.tool_calls.iter().flatten() {
            names.insert(call.id.as_str(), call.function.name.clone());
            let args = arguments_value(&call.function.arguments);
            items.push((role, Item::Call(None, call.function.name.clone(), args)));
        }
    }
    (system, items)
}

/// What a Gemini request body says.
fn gemini_said(body: &Value) -> (Vec<String>, Vec<(&'static str, Item)>) {
    let system = body["systemInstruction"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect();
    let mut items = Vec::new();
    for content in body["contents"].as_array().unwrap() {
        let role = match content["role"].as_str().unwrap() {
            "user" => "user",
            "model" => "model",
            other => panic!("role {other}"),
        };
        for part in content["parts"].as_array().unwrap() {
            let item = if let Some(t) = part.get("text") {
                Item::Text(t.as_str().unwrap().into())
            } else if let Some(d) = part.get("inlineData") {
                Item::Image(format!(
                    "data:{};base64,{}",
                    d["mimeType"].as_str().unwrap(),
                    d["data"].as_str().unwrap()
                ))
            } else if let Some(f) = part.get("fileData") {
                Item::Image(f["fileUri"].as_str().unwrap().into())
            } else if let Some(c) = part.get("functionCall") {
                Item::Call(None, c["name"].as_str().unwrap().into(), c["args"].clone())
            } else if let Some(r) = part.get("functionResponse") {
                Item::Result(r["name"].as_str().unwrap().into(), r["response"].clone())
            } else {
                panic!("unexpected part {part}")
            };
            items.push((role, item));
        }
    }
    (system, items)
}

fn tool_names(req: &ChatRequest) -> Vec<String> {
    req.tools
        .iter()
        .flatten()
        .map(|t| t.function.name.clone())
        .collect()
}

fn target<'a>(model: &'a str) -> ChatTarget<'a> {
    ChatTarget {
        base_url: "http://upstream.test/v1",
        model,
        client_model: "m",
        stream: false,
        include_usage: false,
        request_id: "prop",
    }
}

/// A refusal is the client's fault (4xx), never a server error.
fn refused_for_the_client(e: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.message);
    Ok(())
}

/// Checks that a chat request reaches Anthropic and Gemini with its meaning.
fn reaches_providers_with_its_meaning(req: &ChatRequest) -> Result<(), TestCaseError> {
    let body = anthropic::chat_request(req).map_err(|e| TestCaseError::fail(e.message))?;
    let body: Value = serde_json::from_slice(&body).unwrap();
    let (system, items) = anthropic_said(&body);
    let (want_system, want_items) = for_anthropic(req);
    prop_assert_eq!(system.join("\n\n"), want_system.join("\n\n"));
    prop_assert_eq!(items, want_items);
    let names: Vec<String> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    prop_assert_eq!(&names, &tool_names(req));

    let body = gemini::chat_request(req).map_err(|e| TestCaseError::fail(e.message))?;
    let body: Value = serde_json::from_slice(&body).unwrap();
    prop_assert_eq!(gemini_said(&body), for_gemini(req));
    let names: Vec<String> = body["tools"][0]["functionDeclarations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    prop_assert_eq!(&names, &tool_names(req));
    Ok(())
}

// ---------- any request a client may send ----------

/// Values that are wrong in the ways clients get requests wrong.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!("")),
        Just(json!(5)),
        Just(json!(-1)),
        Just(json!(4294967295u64)),
        Just(json!([])),
        Just(json!({})),
        Just(json!("bogus")),
        Just(json!("function")),
        Just(json!("xhigh")),
        Just(json!("high")),
        Just(json!({"type": "function", "function": {"name": "nope"}})),
        Just(
            json!({"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object",
            "properties": {"a": {"$ref": "#/properties/a"}}}}})
        ),
        Just(json!({"type": "json_object"})),
        Just(json!([{"type": "image_url", "image_url": {"url": "data:,"}}])),
        Just(json!([{"type": "image_url", "image_url": {"url": "data:;base64"}}])),
        Just(json!([{"type": "image_url", "image_url": {"url": "ftp://x"}}])),
        Just(json!([{"type": "text", "text": "", "cache_control": {"type": "ephemeral"}}])),
        Just(json!([{"id": "x", "function": {"name": "f", "arguments": "{"}}])),
        Just(json!([{"id": "x", "function": {"name": "f", "arguments": "[1]"}}])),
        Just(json!([{"type": "web_search"}])),
        prop::sample::select(vec![
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function"
        ])
        .prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

#[derive(Debug, Clone)]
enum Damage {
    Top(&'static str, Value),
    Message(Index, &'static str, Value),
    Drop(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (
            prop::sample::select(vec![
                "n",
                "tool_choice",
                "reasoning_effort",
                "response_format",
                "stop",
                "max_tokens",
                "max_completion_tokens",
                "temperature",
                "logprobs",
                "top_logprobs",
                "tools",
                "parallel_tool_calls",
                "user",
                "seed",
                "stream_options",
            ]),
            odd_value()
        )
            .prop_map(|(k, v)| Damage::Top(k, v)),
        (
            any::<Index>(),
            prop::sample::select(vec![
                "role",
                "content",
                "tool_call_id",
                "tool_calls",
                "name"
            ]),
            odd_value()
        )
            .prop_map(|(i, k, v)| Damage::Message(i, k, v)),
        any::<Index>().prop_map(Damage::Drop),
    ]
}

fn damaged(mut request: Value, damage: &[Damage]) -> Value {
    for d in damage {
        let messages = request["messages"].as_array_mut().unwrap();
        match d {
            Damage::Top(k, v) => request[*k] = v.clone(),
            Damage::Message(i, k, v) if !messages.is_empty() => {
                let at = i.index(messages.len());
                messages[at][*k] = v.clone();
            }
            Damage::Drop(i) if !messages.is_empty() => {
                messages.remove(i.index(messages.len()));
            }
            _ => {}
        }
    }
    request
}

// ---------- Messages requests ----------

#[derive(Debug, Clone)]
enum MBlock {
    Text(String),
    Image(String),
    Document(String),
    ToolResult {
        call: Index,
        content: Vec<String>,
        as_blocks: bool,
        is_error: bool,
    },
    Thinking(String),
    ToolUse(String, Value),
}

fn messages_request() -> impl Strategy<Value = Value> {
    let user_block = prop_oneof![
        4 => text().prop_map(MBlock::Text),
        1 => image_url().prop_map(MBlock::Image),
        1 => text().prop_map(MBlock::Document),
        2 => (any::<Index>(), prop::collection::vec(text(), 0..3), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(call, content, as_blocks, is_error)| MBlock::ToolResult { call, content, as_blocks, is_error }),
    ];
    let assistant_block = prop_oneof![
        4 => text().prop_map(MBlock::Text),
        1 => text().prop_map(MBlock::Thinking),
        2 => (name(), arguments()).prop_map(|(n, a)| MBlock::ToolUse(n, a)),
    ];
    let turn = prop_oneof![
        (prop::collection::vec(user_block, 1..4), any::<bool>()).prop_map(|(b, s)| (true, b, s)),
        (prop::collection::vec(assistant_block, 1..4), any::<bool>())
            .prop_map(|(b, s)| (false, b, s)),
    ];
    (
        prop::option::of((prop::collection::vec(text(), 1..3), any::<bool>())),
        prop::collection::vec(turn, 1..8),
    )
        .prop_map(|(system, turns)| {
            let mut ids: Vec<String> = Vec::new();
            let mut messages = Vec::new();
            for (i, (user, blocks, as_string)) in turns.into_iter().enumerate() {
                let role = if user { "user" } else { "assistant" };
                let only_text: Option<String> = blocks
                    .iter()
                    .map(|b| match b {
                        MBlock::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                if as_string && let Some(t) = only_text.filter(|t| !t.is_empty()) {
                    messages.push(json!({"role": role, "content": t}));
                    continue;
                }
                let mut content = Vec::new();
                for (j, b) in blocks.into_iter().enumerate() {
                    // Anthropic takes no empty text from a user (nor does any provider).
                    let empty = matches!(&b, MBlock::Text(t) | MBlock::Document(t) if t.is_empty());
                    if user && empty {
                        continue;
                    }
                    content.push(match b {
                        MBlock::Text(t) => json!({"type": "text", "text": t}),
                        MBlock::Image(url) => match url.strip_prefix("data:image/png;base64,") {
                            Some(data) => json!({"type": "image", "source":
                                {"type": "base64", "media_type": "image/png", "data": data}}),
                            None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                        },
                        MBlock::Document(t) => json!({"type": "document", "source":
                            {"type": "text", "media_type": "text/plain", "data": t}}),
                        MBlock::ToolResult { .. } if ids.is_empty() => continue,
                        MBlock::ToolResult {
                            call,
                            content,
                            as_blocks,
                            is_error,
                        } => {
                            let content = if as_blocks {
                                Value::Array(
                                    content
                                        .into_iter()
                                        .map(|t| json!({"type": "text", "text": t}))
                                        .collect(),
                                )
                            } else {
                                Value::String(content.concat())
                            };
                            json!({"type": "tool_result", "tool_use_id": ids[call.index(ids.len())],
                                "content": content, "is_error": is_error})
                        }
                        MBlock::Thinking(t) => {
                            json!({"type": "thinking", "thinking": t, "signature": "s"})
                        }
                        MBlock::ToolUse(name, input) => {
                            let id = format!("toolu_{i}_{j}");
                            ids.push(id.clone());
                            json!({"type": "tool_use", "id": id, "name": name, "input": input})
                        }
                    });
                }
                // A turn says something Anthropic takes: text that is not empty, or more.
                let says = content.iter().any(|b| match b["type"].as_str().unwrap() {
                    "text" => b["text"] != "",
                    "document" => b["source"]["data"] != "",
                    "thinking" => false,
                    _ => true,
                });
                if !says {
                    content.push(json!({"type": "text", "text": "ok"}));
                }
                messages.push(json!({"role": role, "content": content}));
            }
            let mut request = json!({"model": "claude", "max_tokens": 1024, "messages": messages});
            if let Some((texts, as_blocks)) = system {
                request["system"] = if as_blocks {
                    Value::Array(
                        texts
                            .into_iter()
                            .map(|t| json!({"type": "text", "text": t}))
                            .collect(),
                    )
                } else {
                    Value::String(texts.concat())
                };
            }
            request
        })
}

/// What a Messages request says, as a chat request through which it goes is to say it.
fn messages_said(request: &Value) -> (String, Vec<(&'static str, Item)>) {
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| b["text"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => String::new(),
    };
    let system = text_of(&request["system"]);
    let mut items = Vec::new();
    for m in request["messages"].as_array().unwrap() {
        let role = if m["role"] == "user" {
            "user"
        } else {
            "assistant"
        };
        let blocks = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(b) => b.clone(),
            _ => unreachable!(),
        };
        let mut results = Vec::new();
        let mut said = Vec::new();
        let mut text = String::new();
        let mut calls = Vec::new();
        for b in &blocks {
            match b["type"].as_str().unwrap() {
                "text" if role == "assistant" => text += b["text"].as_str().unwrap(),
                "text" | "document" => {
                    let t = b["text"].as_str().or(b["source"]["data"].as_str()).unwrap();
                    if !t.is_empty() {
                        said.push(Item::Text(t.into()));
                    }
                }
                "image" => {
                    let s = &b["source"];
                    said.push(Item::Image(match s["type"].as_str().unwrap() {
                        "base64" => format!(
                            "data:{};base64,{}",
                            s["media_type"].as_str().unwrap(),
                            s["data"].as_str().unwrap()
                        ),
                        _ => s["url"].as_str().unwrap().into(),
                    }));
                }
                "tool_result" => {
                    let mut t = text_of(&b["content"]);
                    if b["is_error"] == true {
                        t = format!("Error: {t}");
                    }
                    let id = b["tool_use_id"].as_str().unwrap().to_string();
                    results.push(Item::Result(id, Value::String(t)));
                }
                "tool_use" => calls.push(Item::Call(
                    Some(b["id"].as_str().unwrap().into()),
                    b["name"].as_str().unwrap().into(),
                    b["input"].clone(),
                )),
                _ => {}
            }
        }
        if !text.is_empty() {
            said.push(Item::Text(text));
        }
        for item in results.into_iter().chain(said).chain(calls) {
            items.push((role, item));
        }
    }
    (system, items)
}

// ---------- whole replies ----------

#[derive(Debug, Clone)]
struct WholeReply {
    text: String,
    thinking: String,
    calls: Vec<(String, Value)>,
    stop: &'static str,
    usage: (u64, u64, u64),
}

fn whole_reply() -> impl Strategy<Value = WholeReply> {
    (
        text(),
        text(),
        prop::collection::vec((name(), arguments()), 0..4),
        prop::sample::select(vec!["end_turn", "max_tokens", "refusal", "stop_sequence"]),
        (0u64..1 << 40, 0u64..1 << 40, 0u64..1 << 40),
    )
        .prop_map(|(text, thinking, calls, stop, usage)| WholeReply {
            text,
            thinking,
            calls,
            stop,
            usage,
        })
}

fn ctx() -> ReplyContext {
    ReplyContext {
        id: "chatcmpl-prop".into(),
        created: 1,
        model: "m".into(),
        include_usage: false,
    }
}

/// A Messages reply's text, thinking, calls and stop reason.
fn message_meaning(message: &Value) -> (String, String, Vec<(String, Value)>, String) {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for block in message["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => text += block["text"].as_str().unwrap(),
            "thinking" => thinking += block["thinking"].as_str().unwrap(),
            "tool_use" => calls.push((
                block["name"].as_str().unwrap().to_string(),
                block["input"].clone(),
            )),
            other => panic!("block {other}"),
        }
    }
    let stop = message["stop_reason"].as_str().unwrap().to_string();
    (text, thinking, calls, stop)
}

proptest! {
    #![proptest_config(config(64, 1))]

    /// A valid chat request reaches Anthropic and Gemini with its texts, roles, images, tool
    /// calls (names and arguments), tool results and tool names; every provider takes it.
    #[test]
    fn chat_requests_reach_every_provider_with_their_meaning(request in chat_request()) {
        let req: ChatRequest = serde_json::from_value(request.clone()).expect("a chat request");
        reaches_providers_with_its_meaning(&req)?;
        let body = Bytes::from(serde_json::to_vec(&request).unwrap());
        for spec in BUILTIN {
            let encoded = dialect::encode_chat(spec.wire, &target("upstream-model"), body.clone());
            prop_assert!(encoded.is_ok(), "{}: {}", spec.id, encoded.err().unwrap().message);
        }
        // OpenAI's dialect: only the edits, the messages as they were.
        for quirks in BUILTIN.iter().map(|s| s.quirks()) {
            let edits = Edits { model: Some("renamed"), add_include_usage: true, quirks };
            let out: Value = serde_json::from_slice(
                &openai_compatible::chat_body(body.clone(), &edits).unwrap()).unwrap();
            prop_assert_eq!(&out["model"], "renamed");
            prop_assert_eq!(&out["messages"], &request["messages"]);
            prop_assert_eq!(&out["stream_options"]["include_usage"], true);
        }
    }

    /// Whatever a client sends: a request for the upstream or a 400, never a panic.
    #[test]
    fn any_chat_request_is_translated_or_refused(
        request in chat_request(),
        damage in prop::collection::vec(damage(), 1..5),
    ) {
        let request = damaged(request, &damage);
        let body = Bytes::from(serde_json::to_vec(&request).unwrap());
        for spec in BUILTIN {
            for stream in [false, true] {
                let target = ChatTarget { stream, ..target("upstream-model") };
                if let Err(e) = dialect::encode_chat(spec.wire, &target, body.clone()) {
                    refused_for_the_client(&e)?;
                }
            }
        }
        let as_messages = Bytes::from(serde_json::to_vec(&request).unwrap());
        for spec in BUILTIN {
            if let Err(e) = encode_messages(spec.wire, &target("x"), as_messages.clone()) {
                refused_for_the_client(&e)?;
            }
        }
    }

    /// Any bytes as a request body: a 400, never a panic.
    #[test]
    fn any_bytes_are_refused(body in prop::collection::vec(any::<u8>(), 0..200)) {
        for spec in BUILTIN {
            let body = Bytes::from(body.clone());
            for encoded in [
                dialect::encode_chat(spec.wire, &target("m2"), body.clone()).map(|_| ()),
                encode_messages(spec.wire, &target("m2"), body.clone()).map(|_| ()),
            ] {
                if let Err(e) = encoded {
                    refused_for_the_client(&e)?;
                }
            }
        }
    }

    /// A Messages request becomes a chat request that says the same, which reaches Anthropic
    /// and Gemini with that meaning; thinking goes as the assistant's reasoning.
    #[test]
    fn messages_requests_keep_their_meaning_through_chat(request in messages_request()) {
        let map = request.as_object().unwrap();
        let chat = messages::request::chat_body(map, false).map_err(|e| TestCaseError::fail(e.message))?;
        let req: ChatRequest = serde_json::from_slice(&chat).expect("a chat request");
        let (system, items) = messages_said(&request);
        let (chat_system, chat_items) = for_anthropic(&req);
        prop_assert_eq!(chat_system.concat(), system);
        prop_assert_eq!(&chat_items, &items);
        let thinking: String = request["messages"].as_array().unwrap().iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter_map(|b| b["thinking"].as_str())
            .collect();
        let reasoning: String = req.messages.iter()
            .filter_map(|m| m.reasoning_content.as_deref())
            .collect();
        prop_assert_eq!(reasoning, thinking);
        reaches_providers_with_its_meaning(&req)?;
    }

    /// An Anthropic reply, made a chat completion and then a Messages reply again, says the same.
    #[test]
    fn anthropic_replies_survive_the_round_trip_through_chat(reply in whole_reply()) {
        let mut content = Vec::new();
        if !reply.thinking.is_empty() {
            content.push(json!({"type": "thinking", "thinking": reply.thinking, "signature": "s"}));
        }
        if !reply.text.is_empty() {
            content.push(json!({"type": "text", "text": reply.text}));
        }
        for (i, (name, input)) in reply.calls.iter().enumerate() {
            content.push(json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": input}));
        }
        let stop = if reply.calls.is_empty() { reply.stop } else { "tool_use" };
        let (input, cache_read, output) = reply.usage;
        let upstream = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": content, "stop_reason": stop,
            "usage": {"input_tokens": input, "output_tokens": output, "cache_read_input_tokens": cache_read}});
        let (chat, usage) = anthropic::chat_response(upstream.to_string().as_bytes(), &ctx()).unwrap();
        prop_assert_eq!((usage.prompt_tokens, usage.completion_tokens), (input + cache_read, output));
        let (message, _) = messages::reply::message(&chat, "msg_1", "claude").unwrap();
        let message: Value = serde_json::from_slice(&message).unwrap();
        let back = message_meaning(&message);
        let stop_back = if stop == "stop_sequence" { "end_turn" } else { stop };
        prop_assert_eq!(back, (reply.text.clone(), reply.thinking.clone(), reply.calls.clone(), stop_back.to_string()));
        let u = &message["usage"];
        prop_assert_eq!((&u["input_tokens"], &u["cache_read_input_tokens"], &u["output_tokens"]),
            (&json!(input), &json!(cache_read), &json!(output)));
        for (i, block) in message["content"].as_array().unwrap().iter().filter(|b| b["type"] == "tool_use").enumerate() {
            prop_assert_eq!(&block["id"], &json!(format!("toolu_{i}")));
        }
    }

    /// A Gemini reply, made a chat completion, becomes a Messages reply and a response object
    /// that say the same.
    #[test]
    fn gemini_replies_reach_every_inbound_api(reply in whole_reply()) {
        let mut parts = Vec::new();
        if !reply.thinking.is_empty() {
            parts.push(json!({"text": reply.thinking, "thought": true}));
        }
        parts.push(json!({"text": reply.text}));
        for (name, args) in &reply.calls {
            parts.push(json!({"functionCall": {"name": name, "args": args}}));
        }
        let reason = match reply.stop { "max_tokens" => "MAX_TOKENS", "refusal" => "SAFETY", _ => "STOP" };
        let (prompt, cached, completion) = reply.usage;
        let upstream = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt + cached, "candidatesTokenCount": completion,
                "cachedContentTokenCount": cached}});
        let (chat, usage) = gemini::chat_response(upstream.to_string().as_bytes(), &ctx()).unwrap();
        prop_assert_eq!((usage.prompt_tokens, usage.completion_tokens), (prompt + cached, completion));
        let finish = if !reply.calls.is_empty() { "tool_calls" } else {
            match reason { "MAX_TOKENS" => "length", "SAFETY" => "content_filter", _ => "stop" }
        };

        let (message, _) = messages::reply::message(&chat, "msg_1", "m").unwrap();
        let message: Value = serde_json::from_slice(&message).unwrap();
        prop_assert_eq!(message_meaning(&message), (reply.text.clone(), reply.thinking.clone(),
            reply.calls.clone(), messages::stop_reason(finish).to_string()));

        let skeleton = responses::skeleton(&Map::new(), "resp_1", "m", 1);
        let (stream, usage) = responses_stream::whole(&chat, skeleton).unwrap();
        let usage = usage.unwrap();
        prop_assert_eq!((usage.prompt_tokens, usage.completion_tokens), (prompt + cached, completion));
        let (mut text, mut thinking, mut calls) = (String::new(), String::new(), Vec::new());
        for item in stream.output() {
            match item["type"].as_str().unwrap() {
                "message" => text += item["content"][0]["text"].as_str().unwrap(),
                "reasoning" => thinking += item["summary"][0]["text"].as_str().unwrap(),
                "function_call" => calls.push((item["name"].as_str().unwrap().to_string(),
                    serde_json::from_str::<Value>(item["arguments"].as_str().unwrap()).unwrap())),
                other => panic!("item {other}"),
            }
        }
        prop_assert_eq!((text, thinking, calls), (reply.text.clone(), reply.thinking.clone(), reply.calls.clone()));
        let status = stream.response()["status"].as_str().unwrap();
        prop_assert_eq!(status, if matches!(finish, "length" | "content_filter") { "incomplete" } else { "completed" });
    }
}

/// Regression: `$ref`s were inlined without a bound on the nodes they add, so definitions that
/// each name the next one twice grew a small tool schema to 2^32 nodes (time and memory without
/// end, from any client). The reduction now stops inlining past a node budget.
#[test]
fn a_fanning_out_schema_reaches_gemini_in_bounded_time() {
    let mut defs = Map::new();
    for i in 0..40 {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(
            format!("d{i}"),
            json!({"type": "object", "properties": {"a": next, "b": next}}),
        );
    }
    defs.insert("d40".into(), json!({"type": "string"}));
    let request: ChatRequest = serde_json::from_value(json!({
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters":
            {"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/d0"}}}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema":
            {"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/d0"}}}}},
    }))
    .unwrap();
    let started = std::time::Instant::now();
    let body = gemini::chat_request(&request).unwrap();
    assert!(body.len() < 64 << 20, "{} bytes", body.len());
    let old = ChatRequest {
        model: "gemini-2.0-flash".into(),
        ..request
    };
    let body = gemini::chat_request(&old).unwrap();
    assert!(body.len() < 64 << 20, "{} bytes", body.len());
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// A Messages body encoded for `wire` as the Messages endpoint does.
fn encode_messages(
    wire: crate::providers::spec::Wire,
    target: &dialect::ChatTarget,
    body: bytes::Bytes,
) -> Result<dialect::Encoded<dialect::InboundReply>, crate::error::ApiError> {
    let chat = || messages::request::chat_body(&crate::error::parse_json(&body)?, target.stream);
    dialect::encode_messages(wire, target, body.clone(), chat)
}
