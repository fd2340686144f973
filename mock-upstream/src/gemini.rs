//! The mock's Gemini dialect: `POST /v1beta/models/{model}:{action}` with `generateContent`,
//! `streamGenerateContent` (`?alt=sse` for server-sent events, else one JSON array) and `batchEmbedContents`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Value, json};

use super::{
    Behaviour, CACHED_TOKENS, MockState, PROMPT_TOKENS, REASONING_TEXT, REASONING_TOKENS,
    REPLY_WORDS,
};

/// Dimensions of the mock's embeddings when the request names none.
pub const EMBEDDING_DIMS: usize = 8;
/// Output tokens reported for every reply.
pub const COMPLETION_TOKENS: u64 = REPLY_WORDS.len() as u64;

pub async fn dispatch(
    State(mock): State<Arc<MockState>>,
    Path(model_action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1beta/models/{model_action}");
    mock.record(&path, query.clone(), &headers, &body);

    let Some((model, action)) = model_action.rsplit_once(':') else {
        return error(StatusCode::NOT_FOUND, &format!("Method not found: {path}"));
    };
    if !matches!(
        action,
        "generateContent"
            | "streamGenerateContent"
            | "batchEmbedContents"
            | "embedContent"
            | "countTokens"
    ) {
        return error(
            StatusCode::NOT_FOUND,
            &format!("Method not found: {action}"),
        );
    }
    if headers.get("x-goog-api-key").is_none_or(|v| v.is_empty()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON payload received.");
    };

    let behaviour = mock.behaviour(model).await;
    match behaviour {
        Behaviour::Fail500 => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error encountered.",
            );
        }
        Behaviour::Fail400 => {
            return error(
                StatusCode::BAD_REQUEST,
                "Request contains an invalid argument. (mock fail400)",
            );
        }
        Behaviour::Fail429 => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan and billing details. (mock fail429)",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        _ => {}
    }

    match action {
        "batchEmbedContents" => embed(&request),
        "embedContent" => embed_one(&request),
        "countTokens" => count_tokens(&request),
        _ => {
            if request
                .get("contents")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "* GenerateContentRequest.contents: contents is not specified",
                );
            }
            if let Some(refused) = unsigned_call(model, &request) {
                return refused;
            }
            if model.contains("agent") {
                let reply = response(
                    model,
                    Some(agent_parts(model, &request)),
                    Some("STOP"),
                    usage(behaviour),
                );
                if action == "generateContent" {
                    return json_response(StatusCode::OK, &reply);
                }
                let body = Body::from(format!("data: {reply}\r\n\r\n"));
                return Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(body)
                    .expect("a valid response");
            }
            if action == "generateContent" {
                json_response(StatusCode::OK, &reply(model, behaviour))
            } else {
                let sse = query
                    .as_deref()
                    .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
                stream_response(model, behaviour, sse)
            }
        }
    }
}

/// Gemini's error shape: `{"error":{"code","message","status"}}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let name = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let body = json!({"error": {"code": status.as_u16(), "message": message, "status": name}});
    json_response(status, &body)
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

pub fn usage(behaviour: Behaviour) -> Option<Value> {
    let thoughts = if behaviour == Behaviour::Reasoning {
        REASONING_TOKENS
    } else {
        0
    };
    match behaviour {
        Behaviour::NoUsage => None,
        Behaviour::Blocked => {
            Some(json!({"promptTokenCount": PROMPT_TOKENS, "totalTokenCount": PROMPT_TOKENS}))
        }
        _ => {
            let mut usage = json!({
                "promptTokenCount": PROMPT_TOKENS,
                "candidatesTokenCount": COMPLETION_TOKENS,
                "cachedContentTokenCount": CACHED_TOKENS,
                "totalTokenCount": PROMPT_TOKENS + COMPLETION_TOKENS + thoughts,
            });
            if thoughts > 0 {
                usage["thoughtsTokenCount"] = json!(thoughts);
            }
            Some(usage)
        }
    }
}

pub fn finish_reason(behaviour: Behaviour) -> &'static str {
    match behaviour {
        Behaviour::Length => "MAX_TOKENS",
        Behaviour::Malformed => "MALFORMED_FUNCTION_CALL",
        Behaviour::Safety => "SAFETY",
        _ => "STOP",
    }
}

pub fn weather_call(city: &str) -> Value {
    json!({"functionCall": {"name": "get_weather", "args": {"city": city}}})
}

/// Whether the model thinks as Gemini 3 does: the first function call part of a reply carries a
/// thought signature, which the next turn must send back on that part.
fn signs_calls(model: &str) -> bool {
    model.contains("gemini-3")
}

/// The signature the mock gives a function call (and expects back with it).
pub fn thought_signature(call: &Value) -> String {
    format!(
        "sig/{}/{}",
        call["name"].as_str().unwrap_or(""),
        call["args"]
    )
}

/// The signature a Gemini 3 model puts on its answer's last text part (returning it is
/// recommended, not checked).
pub const TEXT_SIGNATURE: &str = "sig/answer";

/// An answer's (last) text part, signed when the model signs.
fn signed_answer(model: &str, text: &str) -> Value {
    let mut part = json!({"text": text});
    if signs_calls(model) {
        part["thoughtSignature"] = json!(TEXT_SIGNATURE);
    }
    part
}

/// The calls of a reply, the first signed when the model signs its calls.
fn weather_calls(model: &str, cities: &[&str]) -> Vec<Value> {
    let mut parts: Vec<Value> = cities.iter().map(|c| weather_call(c)).collect();
    if signs_calls(model)
        && let Some(first) = parts.first_mut()
    {
        first["thoughtSignature"] = json!(thought_signature(&first["functionCall"]));
    }
    parts
}

/// A coding agent's turn: a shell (or read) tool call reading [`super::AGENT_FILE`], signed as the
/// model signs its calls, or, once the tool answered, what it said.
fn agent_parts(model: &str, request: &Value) -> Vec<Value> {
    let last = request["contents"].as_array().and_then(|c| c.last());
    let answered = last
        .and_then(|c| c["parts"].as_array())
        .and_then(|parts| parts.iter().find_map(|p| p.get("functionResponse")));
    if let Some(answer) = answered {
        let said = match &answer["response"]["result"] {
            Value::String(s) => s.clone(),
            _ => answer["response"].to_string(),
        };
        return vec![signed_answer(
            model,
            &format!("The tool said: {}", said.trim()),
        )];
    }
    let offered: Vec<&str> = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
        .filter_map(|f| f["name"].as_str())
        .collect();
    let command = format!("cat {}", super::AGENT_FILE);
    let Some(name) = ["Bash", "exec_command", "shell", "Read", "read_file"]
        .into_iter()
        .find(|name| offered.contains(name))
    else {
        return vec![json!({"text": "No tool to call."})];
    };
    let args = match name {
        "Bash" => json!({"command": command, "description": "Read the note"}),
        "exec_command" => json!({"cmd": command}),
        "shell" => json!({"command": ["cat", super::AGENT_FILE]}),
        _ => json!({"file_path": super::AGENT_FILE}),
    };
    let mut call = json!({"functionCall": {"name": name, "args": args}});
    if signs_calls(model) {
        call["thoughtSignature"] = json!(thought_signature(&call["functionCall"]));
    }
    vec![call]
}

/// Gemini 3's refusal of a turn whose earlier function calls come back without their thought
/// signature (or with another one): the first function call part of each model turn must carry
/// the signature it was given.
fn unsigned_call(model: &str, request: &Value) -> Option<Response> {
    if !signs_calls(model) {
        return None;
    }
    let contents = request["contents"].as_array()?;
    let mut position = 0;
    for content in contents.iter().filter(|c| c["role"] == "model") {
        let parts = content["parts"].as_array().map_or(&[][..], Vec::as_slice);
        let Some(first) = parts.iter().find(|p| p.get("functionCall").is_some()) else {
            continue;
        };
        position += 1;
        let given = first["thoughtSignature"].as_str();
        // The value Google documents for a call whose signature is lost lets it through, except
        // on a `strict` model (which proves the real signature came back).
        let skipped =
            given == Some("skip_thought_signature_validator") && !model.contains("strict");
        if given != Some(&thought_signature(&first["functionCall"])) && !skipped {
            let name = first["functionCall"]["name"].as_str().unwrap_or("");
            return Some(error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
                ),
            ));
        }
    }
    None
}

/// A GenerateContentResponse with one candidate (`parts` None: no content).
pub fn response(
    model: &str,
    parts: Option<Vec<Value>>,
    finish: Option<&str>,
    usage: Option<Value>,
) -> Value {
    let mut candidate = json!({"index": 0});
    if let Some(parts) = parts {
        candidate["content"] = json!({"role": "model", "parts": parts});
    }
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
        if finish == "SAFETY" {
            candidate["safetyRatings"] = json!([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]);
        }
    }
    let mut reply = json!({"candidates": [candidate], "modelVersion": model, "responseId": "mock-gemini-response"});
    if let Some(usage) = usage {
        reply["usageMetadata"] = usage;
    }
    reply
}

pub fn blocked(model: &str, behaviour: Behaviour) -> Value {
    let mut reply = json!({"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": model, "responseId": "mock-gemini-response"});
    if let Some(usage) = usage(behaviour) {
        reply["usageMetadata"] = usage;
    }
    reply
}

/// The whole reply of `generateContent`.
pub fn reply(model: &str, behaviour: Behaviour) -> Value {
    let finish = Some(finish_reason(behaviour));
    let usage = usage(behaviour);
    let text = signed_answer(model, &REPLY_WORDS.concat());
    match behaviour {
        Behaviour::Blocked => blocked(model, behaviour),
        Behaviour::Malformed | Behaviour::Safety => response(model, None, finish, usage),
        Behaviour::Tools => response(
            model,
            Some(weather_calls(model, &["Paris", "Tokyo"])),
            finish,
            usage,
        ),
        Behaviour::Reasoning => {
            let thought = json!({"text": REASONING_TEXT, "thought": true});
            response(model, Some(vec![thought, text]), finish, usage)
        }
        _ => response(model, Some(vec![text]), finish, usage),
    }
}

/// The events of `streamGenerateContent`: one word each, finish reason and usage on the last.
pub fn events(model: &str, behaviour: Behaviour) -> Vec<Value> {
    let usage = usage(behaviour);
    let finish = finish_reason(behaviour);
    let words = |n: usize| -> Vec<Value> {
        REPLY_WORDS[..n]
            .iter()
            .map(|w| response(model, Some(vec![json!({"text": w})]), None, None))
            .collect()
    };
    match behaviour {
        Behaviour::Blocked => vec![blocked(model, behaviour)],
        Behaviour::Malformed => vec![response(model, None, Some(finish), usage)],
        Behaviour::Safety => {
            let mut events = words(2);
            events.push(response(model, None, Some(finish), usage));
            events
        }
        Behaviour::Tools => vec![
            response(model, Some(weather_calls(model, &["Paris"])), None, None),
            response(
                model,
                Some(vec![weather_call("Tokyo")]),
                Some(finish),
                usage,
            ),
        ],
        Behaviour::Cut => words(3),
        _ => {
            let mut events = Vec::with_capacity(REPLY_WORDS.len() + 1);
            if behaviour == Behaviour::Reasoning {
                events.push(response(
                    model,
                    Some(vec![json!({"text": REASONING_TEXT, "thought": true})]),
                    None,
                    None,
                ));
            }
            events.extend(words(REPLY_WORDS.len() - 1));
            let last = signed_answer(model, REPLY_WORDS[REPLY_WORDS.len() - 1]);
            events.push(response(model, Some(vec![last]), Some(finish), usage));
            events
        }
    }
}

/// SSE (`data: {json}\r\n\r\n` per event) or, without `alt=sse`, one JSON array streamed element by element.
/// `cut` ends the body with an error after three events: the connection is aborted mid-reply.
pub fn stream_response(model: &str, behaviour: Behaviour, sse: bool) -> Response {
    let events = events(model, behaviour);
    let count = events.len();
    let mut frames: Vec<Bytes> = Vec::with_capacity(count + 2);
    if !sse {
        frames.push(Bytes::from_static(b"["));
    }
    for (i, event) in events.into_iter().enumerate() {
        let frame = if sse {
            format!("data: {event}\r\n\r\n")
        } else if i + 1 < count {
            format!("{event},\r\n")
        } else {
            event.to_string()
        };
        frames.push(Bytes::from(frame));
    }
    let cut = behaviour == Behaviour::Cut;
    if !sse && !cut {
        frames.push(Bytes::from_static(b"]"));
    }
    let body = stream::iter(frames.into_iter().map(Ok::<Bytes, std::io::Error>));
    let body = if cut {
        // One yield first: hyper flushes the head and the events already given before the error aborts
        // the connection, so the client sees a reply that breaks off rather than a failed request.
        let abort = stream::once(async {
            tokio::task::yield_now().await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "mock upstream: cut mid-stream",
            ))
        });
        Body::from_stream(futures_util::StreamExt::chain(body, abort))
    } else {
        Body::from_stream(body)
    };
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/json; charset=UTF-8"
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("a valid response")
}

/// `batchEmbedContents`: one deterministic vector per request (8 dimensions unless `outputDimensionality` says otherwise).
pub fn embed(request: &Value) -> Response {
    let Some(requests) = request
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "* BatchEmbedContentsRequest.requests: requests is not specified",
        );
    };
    let mut embeddings = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let Some(parts) = r.pointer("/content/parts").and_then(Value::as_array) else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "* BatchEmbedContentsRequest.requests[{i}].content: content is not specified"
                ),
            );
        };
        let text: String = parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect();
        let dims = r
            .get("outputDimensionality")
            .and_then(Value::as_u64)
            .map_or(EMBEDDING_DIMS, |d| d.clamp(1, 3072) as usize);
        embeddings.push(json!({"values": vector(&text, dims)}));
    }
    json_response(StatusCode::OK, &json!({"embeddings": embeddings}))
}

/// `embedContent`: one content's vector.
pub fn embed_one(request: &Value) -> Response {
    let Some(parts) = request.pointer("/content/parts").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "* EmbedContentRequest.content: content is not specified",
        );
    };
    let text: String = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let dims = request
        .get("outputDimensionality")
        .and_then(Value::as_u64)
        .map_or(EMBEDDING_DIMS, |d| d.clamp(1, 3072) as usize);
    json_response(
        StatusCode::OK,
        &json!({"embedding": {"values": vector(&text, dims)}}),
    )
}

/// The tokens `countTokens` reports: one per word of the contents' text.
pub fn counted_tokens(request: &Value) -> u64 {
    let contents = request
        .get("contents")
        .or_else(|| request.pointer("/generateContentRequest/contents"));
    contents
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| c["parts"].as_array().into_iter().flatten())
        .filter_map(|p| p["text"].as_str())
        .map(|t| t.split_whitespace().count() as u64)
        .sum()
}

/// `countTokens`: [`counted_tokens`] as `totalTokens`.
pub fn count_tokens(request: &Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"totalTokens": counted_tokens(request)}),
    )
}

/// A deterministic vector in [-1, 1) from the text (FNV-1a seed, splitmix64 steps).
pub fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        seed ^= u64::from(b);
        seed = seed.wrapping_mul(0x0100_0000_01b3);
    }
    (0..dims)
        .map(|_| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
