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
pub const SIGNATURE: &str = "mock-thinking-signature";

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

    if streaming {
        stream_reply(&model, b)
    } else {
        reply(&model, b)
    }
}

pub fn reply(model: &str, b: Behaviour) -> Response {
    let body = reply_body(model, b);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub fn reply_body(model: &str, b: Behaviour) -> Value {
    let mut content = Vec::new();
    if b == Behaviour::Reasoning {
        content
            .push(json!({"type": "thinking", "thinking": REASONING_TEXT, "signature": SIGNATURE}));
    }
    if b == Behaviour::Tools {
        for (id, city) in TOOL_CALLS {
            content.push(json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": city}}));
        }
    } else {
        content.push(json!({"type": "text", "text": REPLY_WORDS.concat()}));
    }
    json!({
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(b),
        "stop_sequence": null,
        "usage": usage(output_tokens(b), model),
    })
}

/// `event: <type>\ndata: <json>\n\n`
pub fn frame(event: &Value) -> Bytes {
    let kind = event["type"].as_str().unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// The events of a streamed reply, in order. For `Cut`, only the ones sent before the connection drops.
pub fn stream_events(model: &str, b: Behaviour) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(1, model),
        }}),
        json!({"type": "ping"}),
    ];
    let mut index = 0;
    if b == Behaviour::Reasoning {
        events.push(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
        events.push(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "thinking_delta", "thinking": REASONING_TEXT}}));
        events.push(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "signature_delta", "signature": SIGNATURE}}));
        events.push(json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    if b == Behaviour::Tools {
        for (id, city) in TOOL_CALLS {
            events.push(json!({"type": "content_block_start", "index": index,
                "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}));
            for piece in ["{\"city\": ".to_string(), format!("\"{city}\"}}")] {
                events.push(json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}));
            }
            events.push(json!({"type": "content_block_stop", "index": index}));
            index += 1;
        }
    } else {
        events.push(json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}}));
        let broken = matches!(
            b,
            Behaviour::Cut | Behaviour::ErrorMidway | Behaviour::Truncated
        );
        let words = if broken {
            &REPLY_WORDS[..2]
        } else {
            &REPLY_WORDS[..]
        };
        for word in words {
            events.push(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": word}}));
        }
        if b == Behaviour::ErrorMidway {
            events.push(json!({"type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"}}));
        }
        if broken {
            return events;
        }
        events.push(json!({"type": "content_block_stop", "index": index}));
    }
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason(b), "stop_sequence": null},
        "usage": {"output_tokens": output_tokens(b)}}));
    events.push(json!({"type": "message_stop"}));
    events
}

pub fn stream_reply(model: &str, b: Behaviour) -> Response {
    let mut frames: Vec<Result<Bytes, std::io::Error>> = stream_events(model, b)
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
