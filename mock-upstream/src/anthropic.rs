//! The mock's Anthropic Messages API: `POST /v1/messages`, plain and streamed.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use super::{
    Behaviour, CACHE_WRITE_TOKENS, CACHED_TOKENS, MockState, PROMPT_TOKENS, REASONING_TEXT,
    REASONING_TOKENS, REPLY_WORDS,
};

pub const MESSAGE_ID: &str = "msg_01MockUpstreamReply0001";
pub const TOOL_CALLS: [(&str, &str); 2] = [
    ("toolu_01MockWeatherParis", "Paris"),
    ("toolu_01MockWeatherTokyo", "Tokyo"),
];
/// The signature of the mock's thinking block ([`REASONING_TEXT`]).
pub const SIGNATURE: &str = "mock-thinking-signature";
/// The data of the mock's redacted thinking block (`redacted` in the model name).
pub const REDACTED_DATA: &str = "mock-redacted-thinking-data";

/// `{"type":"error","error":{"type":…,"message":…}}` with the given status.
pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn output_tokens(b: Behaviour) -> u64 {
    let words = REPLY_WORDS.len() as u64;
    if b == Behaviour::Reasoning {
        words + REASONING_TOKENS
    } else {
        words
    }
}

pub fn stop_reason(b: Behaviour) -> &'static str {
    match b {
        Behaviour::Tools => "tool_use",
        Behaviour::Length => "max_tokens",
        Behaviour::Safety => "refusal",
        _ => "end_turn",
    }
}

/// `cachewrite` in the model name: [`CACHE_WRITE_TOKENS`] of the prompt are written to the cache.
pub fn usage(output_tokens: u64, model: &str) -> Value {
    let written = if model.contains("cachewrite") {
        CACHE_WRITE_TOKENS
    } else {
        0
    };
    json!({
        "input_tokens": PROMPT_TOKENS - CACHED_TOKENS - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": CACHED_TOKENS,
        "output_tokens": output_tokens,
    })
}

/// POST /v1/messages
pub async fn messages(
    State(mock): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mock.record("/v1/messages", None, &headers, &body);
    if headers.get("x-api-key").is_none_or(|v| v.is_empty()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if headers.get("anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "The request body is not valid JSON.",
        );
    };
    let model = request["model"].as_str().unwrap_or_default().to_string();
    let streaming = request["stream"].as_bool().unwrap_or(false);

    let b = mock.behaviour(&model).await;
    match b {
        Behaviour::Fail500 => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "Internal server error (mock)",
            );
        }
        Behaviour::Fail400 => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "mock: the request was rejected",
            );
        }
        Behaviour::Fail429 => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "mock: rate limited",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        _ => {}
    }

    if let Some(refusal) = unsigned_turn(&request) {
        return refusal;
    }
    if model.contains("strict") && !thinking_on(&request) && answers_tools(&request) {
        // What proves the thinking came back: a `strict` model's tool turns keep thinking on.
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "mock: a strict model's tool results must come with thinking on",
        );
    }
    let content = content(&model, b, &request);
    if streaming {
        stream_reply(&model, b, &content)
    } else {
        reply(&model, b, content)
    }
}

/// Whether the request carries tool results.
fn answers_tools(request: &Value) -> bool {
    request["messages"].as_array().is_some_and(|messages| {
        messages.iter().any(|m| {
            m["content"]
                .as_array()
                .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
        })
    })
}

/// Whether the request turns extended thinking on.
fn thinking_on(request: &Value) -> bool {
    matches!(
        request["thinking"]["type"].as_str(),
        Some("enabled" | "adaptive")
    )
}

/// Anthropic's refusal of a turn with thinking on whose final assistant message (the one the tool
/// results answer) does not start with its thinking block, or whose thinking came back altered.
fn unsigned_turn(request: &Value) -> Option<Response> {
    let messages = request["messages"].as_array()?;
    for (i, message) in messages.iter().enumerate() {
        let blocks = message["content"].as_array().map_or(&[][..], Vec::as_slice);
        for (j, block) in blocks.iter().enumerate() {
            let altered = match block["type"].as_str() {
                Some("thinking") => {
                    block["thinking"] != REASONING_TEXT || block["signature"] != SIGNATURE
                }
                Some("redacted_thinking") => block["data"] != REDACTED_DATA,
                _ => false,
            };
            if altered {
                return Some(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    &format!("messages.{i}.content.{j}: Invalid `signature` in `thinking` block"),
                ));
            }
        }
    }
    if !thinking_on(request) {
        return None;
    }
    let at = messages.iter().rposition(|m| m["role"] == "assistant")?;
    let blocks = messages[at]["content"].as_array()?;
    let answered = answers_tools(&json!({"messages": &messages[at + 1..]}));
    let used_tools = blocks.iter().any(|b| b["type"] == "tool_use");
    let first = blocks.first().map(|b| &b["type"]);
    let thought = first.is_some_and(|t| t == "thinking" || t == "redacted_thinking");
    if !answered || !used_tools || thought {
        return None;
    }
    let found = first.and_then(Value::as_str).unwrap_or("nothing");
    Some(error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &format!(
            "messages.{at}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        ),
    ))
}

/// The content blocks of a reply: thinking first when the request turns it on (or for
/// `reasoning`), then the tool calls or the text.
fn content(model: &str, b: Behaviour, request: &Value) -> Vec<Value> {
    let mut content = Vec::new();
    if b == Behaviour::Reasoning || thinking_on(request) {
        content
            .push(json!({"type": "thinking", "thinking": REASONING_TEXT, "signature": SIGNATURE}));
        if model.contains("redacted") {
            content.push(json!({"type": "redacted_thinking", "data": REDACTED_DATA}));
        }
    }
    if model.contains("agent") {
        content.push(agent_block(request));
    } else if b == Behaviour::Tools {
        for (id, city) in TOOL_CALLS {
            content.push(json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": city}}));
        }
    } else {
        content.push(json!({"type": "text", "text": REPLY_WORDS.concat()}));
    }
    content
}

/// A coding agent's turn: a call to a shell or file tool reading [`super::AGENT_FILE`], or, once
/// the last message carries that call's result, an answer quoting it.
fn agent_block(request: &Value) -> Value {
    let last = request["messages"].as_array().and_then(|m| m.last());
    let result = last
        .and_then(|m| m["content"].as_array())
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"));
    if let Some(result) = result {
        let said = match &result["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
            _ => String::new(),
        };
        return json!({"type": "text", "text": format!("The tool said: {}", said.trim())});
    }
    let offered: Vec<&str> = request["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    let command = format!("cat {}", super::AGENT_FILE);
    let Some(name) = ["Bash", "exec_command", "shell", "Read", "read_file"]
        .into_iter()
        .find(|name| offered.contains(name))
    else {
        return json!({"type": "text", "text": "No tool to call."});
    };
    let input = match name {
        "Bash" => json!({"command": command, "description": "Read the note"}),
        "exec_command" => json!({"cmd": command}),
        "shell" => json!({"command": ["cat", super::AGENT_FILE]}),
        _ => json!({"file_path": super::AGENT_FILE}),
    };
    json!({"type": "tool_use", "id": "toolu_01MockAgentCall", "name": name, "input": input})
}

pub fn reply(model: &str, b: Behaviour, content: Vec<Value>) -> Response {
    let body = reply_with(model, b, content);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The reply body for a request without thinking or tools of its own.
pub fn reply_body(model: &str, b: Behaviour) -> Value {
    reply_with(model, b, content(model, b, &Value::Null))
}

fn reply_with(model: &str, b: Behaviour, content: Vec<Value>) -> Value {
    let stop_reason = if content.iter().any(|c| c["type"] == "tool_use") {
        "tool_use"
    } else {
        stop_reason(b)
    };
    json!({
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage(output_tokens(b), model),
    })
}

/// `event: <type>\ndata: <json>\n\n`
pub fn frame(event: &Value) -> Bytes {
    let kind = event["type"].as_str().unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// The events of a streamed reply to a request without thinking or tools of its own, in order.
/// For `Cut`, only the ones sent before the connection drops.
pub fn stream_events(model: &str, b: Behaviour) -> Vec<Value> {
    events_of(model, b, &content(model, b, &Value::Null))
}

/// The events that stream `content`.
fn events_of(model: &str, b: Behaviour, content: &[Value]) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(1, model),
        }}),
        json!({"type": "ping"}),
    ];
    let delta = |index: usize, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    for (index, block) in content.iter().enumerate() {
        let start = |block: Value| json!({"type": "content_block_start", "index": index, "content_block": block});
        match block["type"].as_str() {
            Some("thinking") => {
                events.push(start(
                    json!({"type": "thinking", "thinking": "", "signature": ""}),
                ));
                events.push(delta(
                    index,
                    json!({"type": "thinking_delta", "thinking": block["thinking"]}),
                ));
                events.push(delta(
                    index,
                    json!({"type": "signature_delta", "signature": block["signature"]}),
                ));
            }
            Some("tool_use") => {
                events.push(start(json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})));
                let input = block["input"].to_string();
                let (first, rest) = input.split_at(input.len() / 2);
                for piece in [first, rest] {
                    events.push(delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": piece}),
                    ));
                }
            }
            Some("text") => {
                events.push(start(json!({"type": "text", "text": ""})));
                let text = block["text"].as_str().unwrap_or_default();
                let broken = matches!(
                    b,
                    Behaviour::Cut | Behaviour::ErrorMidway | Behaviour::Truncated
                );
                let words: Vec<&str> = if text != REPLY_WORDS.concat() {
                    vec![text]
                } else if broken {
                    REPLY_WORDS[..2].to_vec()
                } else {
                    REPLY_WORDS.to_vec()
                };
                for word in words {
                    events.push(delta(index, json!({"type": "text_delta", "text": word})));
                }
                if b == Behaviour::ErrorMidway {
                    events.push(json!({"type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"}}));
                }
                if broken {
                    return events;
                }
            }
            _ => events.push(start(block.clone())),
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    let stop_reason = if content.iter().any(|c| c["type"] == "tool_use") {
        "tool_use"
    } else {
        stop_reason(b)
    };
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens(b)}}));
    events.push(json!({"type": "message_stop"}));
    events
}

pub fn stream_reply(model: &str, b: Behaviour, content: &[Value]) -> Response {
    let mut frames: Vec<Result<Bytes, std::io::Error>> = events_of(model, b, content)
        .iter()
        .map(|e| Ok(frame(e)))
        .collect();
    // The error event, or the end without `message_stop`, comes a while after the words: the
    // client has the start of the reply by then.
    let late = match b {
        Behaviour::ErrorMidway => frames.pop(),
        _ => None,
    };
    let frames = stream::iter(frames);
    let body = if matches!(b, Behaviour::ErrorMidway | Behaviour::Truncated) {
        let late = stream::once(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            late
        })
        .filter_map(std::future::ready);
        Body::from_stream(frames.chain(late))
    } else if b == Behaviour::Cut {
        // One yield first, so hyper flushes the head and the events already given; then the error aborts
        // the connection: the client sees a reply that breaks off without message_stop.
        let abort = stream::once(async {
            tokio::task::yield_now().await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "mock upstream: cut mid-stream",
            ))
        });
        Body::from_stream(frames.chain(abort))
    } else {
        Body::from_stream(frames)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("a valid response")
}

/// POST /v1/messages/count_tokens: a count the tests can tell from an estimate (`PROMPT_TOKENS`).
pub async fn count_tokens(
    State(mock): State<Arc<MockState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mock.record("/v1/messages/count_tokens", None, &headers, &body);
    if headers.get("x-api-key").is_none_or(|v| v.is_empty()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    axum::Json(json!({"input_tokens": super::PROMPT_TOKENS})).into_response()
}
