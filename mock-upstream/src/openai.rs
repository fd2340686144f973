//! OpenAI's dialect: `/chat/completions` (JSON and SSE), `/embeddings`, `/models`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{
    AGENT_FILE, Behaviour, CACHED_TOKENS, GARBLED, MockState, PROMPT_TOKENS, REASONING_TEXT,
    REASONING_TOKENS, REPLY_WORDS,
};

fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().unwrap());
    }
    r
}

/// A 401 quoting the caller's key the careless ways an upstream might: percent-encoded byte by
/// byte, and cut short by one character.
fn leaked_key(headers: &HeaderMap) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
    let cut = &key[..key.len().saturating_sub(1)];
    error(
        StatusCode::UNAUTHORIZED,
        &format!("Incorrect API key provided: {cut}. Request: /v1/x?key={encoded}"),
        "invalid_request_error",
    )
}

fn usage(behaviour: Behaviour) -> Value {
    let reasoning = if behaviour == Behaviour::Reasoning {
        REASONING_TOKENS
    } else {
        0
    };
    let completion = REPLY_WORDS.len() as u64 + reasoning;
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": PROMPT_TOKENS + completion,
        "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
        "completion_tokens_details": {"reasoning_tokens": reasoning}
    })
}

/// [`usage`], with the completion of a `chunks<N>` model.
fn usage_of(model: &str, behaviour: Behaviour) -> Value {
    let mut u = usage(behaviour);
    if let Some(n) = super::chunk_count(model) {
        u["completion_tokens"] = json!(n);
        u["total_tokens"] = json!(PROMPT_TOKENS + n as u64);
    }
    u
}

/// A reply whose body fails before its first byte: the connection closes without a response.
fn reset() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::other("connection reset by the mock"))
    });
    Response::new(Body::from_stream(body))
}

fn tool_calls() -> Value {
    json!([
        {"id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_tokyo", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}
    ])
}

pub async fn chat(
    State(mock): State<Arc<MockState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mock.record(uri.path(), uri.query().map(str::to_string), &headers, &body);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
        );
    };
    let model = request["model"].as_str().unwrap_or_default().to_string();
    let stream = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    if model.contains("leakkey") {
        return leaked_key(&headers);
    }
    if model.contains("agent") {
        return agent(&model, &request, stream);
    }
    let behaviour = mock.behaviour(&model).await;
    match behaviour {
        Behaviour::Fail500 => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request.",
                "server_error",
            );
        }
        Behaviour::Fail400 => {
            return error(
                StatusCode::BAD_REQUEST,
                "Invalid value for 'temperature': must be at most 2.",
                "invalid_request_error",
            );
        }
        Behaviour::Fail429 => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests.",
                "requests",
            );
        }
        Behaviour::Reset => return reset(),
        Behaviour::HalfJson if !stream => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    r#"{"id":"chatcmpl-mock","object":"chat.completion","choices":["#,
                ))
                .unwrap();
        }
        Behaviour::Garbage if !stream => {
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("<html><body>502 Bad Gateway</body></html>"))
                .unwrap();
        }
        _ => {}
    }
    if stream {
        stream_reply(model, behaviour, include_usage)
    } else {
        let finish = match behaviour {
            Behaviour::Tools => "tool_calls",
            Behaviour::Length => "length",
            _ => "stop",
        };
        let content = match super::chunk_count(&model) {
            Some(n) => (0..n).map(|i| REPLY_WORDS[i % REPLY_WORDS.len()]).collect(),
            None => REPLY_WORDS.concat(),
        };
        let mut message = json!({"role": "assistant", "content": content, "refusal": null});
        if behaviour == Behaviour::Tools {
            message["content"] = Value::Null;
            message["tool_calls"] = tool_calls();
        }
        if behaviour == Behaviour::Reasoning {
            message["reasoning_content"] = json!(REASONING_TEXT);
        }
        let mut reply = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1_700_000_000u64,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "system_fingerprint": "fp_mock"
        });
        if behaviour != Behaviour::NoUsage {
            reply["usage"] = usage_of(&model, behaviour);
        }
        Json(reply).into_response()
    }
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> Bytes {
    let c = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    Bytes::from(format!("data: {c}\n\n"))
}

fn stream_reply(model: String, behaviour: Behaviour, include_usage: bool) -> Response {
    let mut events: Vec<Bytes> = vec![chunk(
        &model,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    if behaviour == Behaviour::Reasoning {
        events.push(chunk(
            &model,
            json!({"reasoning_content": REASONING_TEXT}),
            None,
        ));
    }
    if behaviour == Behaviour::Tools {
        for (i, call) in tool_calls().as_array().unwrap().iter().enumerate() {
            let args = call["function"]["arguments"].as_str().unwrap();
            let (a, b) = args.split_at(args.len() / 2);
            events.push(chunk(
                &model,
                json!({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": a}}]}),
                None,
            ));
            events.push(chunk(
                &model,
                json!({"tool_calls": [{"index": i, "function": {"arguments": b}}]}),
                None,
            ));
        }
    } else if let Some(n) = super::chunk_count(&model) {
        for i in 0..n {
            let word = REPLY_WORDS[i % REPLY_WORDS.len()];
            events.push(chunk(&model, json!({"content": word}), None));
        }
    } else {
        for word in REPLY_WORDS {
            events.push(chunk(&model, json!({"content": word}), None));
        }
    }
    let finish = match behaviour {
        Behaviour::Tools => "tool_calls",
        Behaviour::Length => "length",
        _ => "stop",
    };
    if behaviour == Behaviour::Stall {
        events.truncate(3);
        let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>))
            .chain(futures_util::stream::pending());
        return sse_response(Body::from_stream(body));
    }
    if behaviour == Behaviour::Cut {
        events.truncate(3);
        let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>))
            .chain(futures_util::stream::once(async {
                // Let the events go out before the connection drops.
                tokio::task::yield_now().await;
                Err(std::io::Error::other("connection cut by the mock"))
            }));
        return sse_response(Body::from_stream(body));
    }
    events.push(chunk(&model, json!({}), Some(finish)));
    if include_usage && behaviour != Behaviour::NoUsage {
        let c = json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
            "choices": [], "usage": usage_of(&model, behaviour)
        });
        events.push(Bytes::from(format!("data: {c}\n\n")));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    if behaviour == Behaviour::Drip {
        // Each event 100 ms after the last: a steady, complete
        // stream that takes its time.
        let body = futures_util::stream::iter(events).then(|event| async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Ok::<_, std::io::Error>(event)
        });
        return sse_response(Body::from_stream(body));
    }
    if behaviour == Behaviour::BadJson {
        let rest = events.split_off(3);
        let garbled = Bytes::from(format!(
            "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{GARBLED}\n\n"
        ));
        let body = futures_util::stream::iter(events.into_iter().map(Ok::<_, std::io::Error>))
            .chain(futures_util::stream::once(async move {
                // The first events go out on their own, so the reply has started when this one comes.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Ok(garbled)
            }))
            .chain(futures_util::stream::iter(
                rest.into_iter().map(Ok::<_, std::io::Error>),
            ));
        return sse_response(Body::from_stream(body));
    }
    if behaviour == Behaviour::SlowFirst {
        let body = futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            Ok::<_, std::io::Error>(Bytes::new())
        })
        .chain(futures_util::stream::iter(
            events.into_iter().map(Ok::<_, std::io::Error>),
        ));
        return sse_response(Body::from_stream(body));
    }

    sse_response(Body::from_stream(futures_util::stream::iter(
        events.into_iter().map(Ok::<_, std::io::Error>),
    )))
}

use futures_util::StreamExt;

fn sse_response(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

pub async fn embeddings(
    State(mock): State<Arc<MockState>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mock.record(uri.path(), None, &headers, &body);
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_string();
    let behaviour = mock.behaviour(&model).await;
    if behaviour == Behaviour::Fail500 {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server had an error.",
            "server_error",
        );
    }
    let inputs: Vec<String> = match &request["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => vec![],
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": super::vector_for(text)}))
        .collect();
    let tokens: u64 = inputs
        .iter()
        .map(|t| t.split_whitespace().count() as u64)
        .sum();
    Json(json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
        .into_response()
}

pub async fn models() -> impl IntoResponse {
    Json(
        json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]}),
    )
}

/// A coding agent's turn: a call to a shell or file tool reading [`AGENT_FILE`], or, once the last
/// message is that call's result, an answer quoting it.
fn agent(model: &str, request: &Value, stream: bool) -> Response {
    let last = request["messages"].as_array().and_then(|m| m.last());
    let (message, finish) = match last.filter(|m| m["role"] == "tool") {
        Some(result) => {
            let text = match &result["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
                _ => String::new(),
            };
            let answer = format!("The tool said: {}", text.trim());
            (json!({"role": "assistant", "content": answer}), "stop")
        }
        None => {
            let offered: Vec<&str> = request["tools"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["function"]["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let command = format!("cat {AGENT_FILE}");
            let call = ["Bash", "exec_command", "shell", "Read", "read_file"]
                .into_iter()
                .find(|name| offered.contains(name))
                .map(|name| {
                    let arguments = match name {
                        "Bash" => json!({"command": command, "description": "Read the note"}),
                        "exec_command" => json!({"cmd": command}),
                        "shell" => json!({"command": ["cat", AGENT_FILE]}),
                        _ => json!({"file_path": AGENT_FILE}),
                    };
                    json!([{"id": "call_agent", "type": "function",
                        "function": {"name": name, "arguments": arguments.to_string()}}])
                });
            match call {
                Some(calls) => (
                    json!({"role": "assistant", "content": null, "tool_calls": calls}),
                    "tool_calls",
                ),
                None => (
                    json!({"role": "assistant", "content": "No tool to call."}),
                    "stop",
                ),
            }
        }
    };
    let usage = usage(Behaviour::Text);
    if !stream {
        return Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1_700_000_000u64,
            "model": model, "usage": usage,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        }))
        .into_response();
    }
    let mut delta = message.clone();
    if let Some(calls) = delta["tool_calls"].as_array_mut() {
        for (i, call) in calls.iter_mut().enumerate() {
            call["index"] = i.into();
        }
    }
    let end = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1_700_000_000u64,
        "model": model, "choices": [], "usage": usage
    });
    let events = vec![
        chunk(model, delta, None),
        chunk(model, json!({}), Some(finish)),
        Bytes::from(format!("data: {end}\n\n")),
        Bytes::from_static(b"data: [DONE]\n\n"),
    ];
    sse_response(Body::from_stream(futures_util::stream::iter(
        events.into_iter().map(Ok::<_, std::io::Error>),
    )))
}
