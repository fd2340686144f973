//! The mock's Anthropic Messages API: `POST /v1/messages`, plain and streamed.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use super::{
    Behaviour, CACHED_TOKENS, MockState, PROMPT_TOKENS, REASONING_TEXT, REASONING_TOKENS,
    REPLY_WORDS,
};

const MESSAGE_ID: &str = "msg_01MockUpstreamReply0001";
const TOOL_CALLS: [(&str, &str); 2] = [
    ("toolu_01MockWeatherParis", "Paris"),
    ("toolu_01MockWeatherTokyo", "Tokyo"),
];
const SIGNATURE: &str = "mock-thinking-signature";

/// `{"type":"error","error":{"type":…,"message":…}}` with the given status.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn output_tokens(b: Behaviour) -> u64 {
    let words = REPLY_WORDS.len() as u64;
    if b == Behaviour::Reasoning {
        words + REASONING_TOKENS
    } else {
        words
    }
}

fn stop_reason(b: Behaviour) -> &'static str {
    match b {
        Behaviour::Tools => "tool_use",
        Behaviour::Length => "max_tokens",
        Behaviour::Safety => "refusal",
        _ => "end_turn",
    }
}

fn usage(output_tokens: u64) -> Value {
    json!({
        "input_tokens": PROMPT_TOKENS - CACHED_TOKENS,
        "cache_creation_input_tokens": 0,
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

fn reply(model: &str, b: Behaviour) -> Response {
    let body = reply_body(model, b);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn reply_body(model: &str, b: Behaviour) -> Value {
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
        "usage": usage(output_tokens(b)),
    })
}

/// `event: <type>\ndata: <json>\n\n`
fn frame(event: &Value) -> Bytes {
    let kind = event["type"].as_str().unwrap_or("message");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

/// The events of a streamed reply, in order. For `Cut`, only the ones sent before the connection drops.
fn stream_events(model: &str, b: Behaviour) -> Vec<Value> {
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": MESSAGE_ID, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": usage(1),
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
        let words = if b == Behaviour::Cut {
            &REPLY_WORDS[..2]
        } else {
            &REPLY_WORDS[..]
        };
        for word in words {
            events.push(json!({"type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": word}}));
        }
        if b == Behaviour::Cut {
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

fn stream_reply(model: &str, b: Behaviour) -> Response {
    let frames: Vec<Result<Bytes, std::io::Error>> = stream_events(model, b)
        .iter()
        .map(|e| Ok(frame(e)))
        .collect();
    let frames = stream::iter(frames);
    let body = if b == Behaviour::Cut {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::anthropic::ChatStream;
    use crate::providers::sse::SseDecoder;
    use crate::providers::translate::ReplyContext;

    fn ctx() -> ReplyContext {
        ReplyContext {
            id: "chatcmpl-mock".into(),
            created: 1,
            model: "m".into(),
            include_usage: true,
        }
    }

    /// Runs the mock's stream events through the provider's translation.
    fn translate(b: Behaviour) -> (String, Result<(), crate::error::ApiError>, ChatStream) {
        let mut decoder = SseDecoder::default();
        for e in stream_events("claude-mock", b) {
            decoder.push(&frame(&e));
        }
        let mut s = ChatStream::new(ctx());
        let mut out = Vec::new();
        while let Some(event) = decoder.next_event().unwrap() {
            assert_eq!(
                event.event.as_deref(),
                serde_json::from_slice::<Value>(&event.data).unwrap()["type"].as_str(),
                "event name matches the payload type"
            );
            s.event(&event.data, &mut out).unwrap();
        }
        let end = s.finish(&mut out);
        (String::from_utf8(out).unwrap(), end, s)
    }

    #[test]
    fn text_stream_translates() {
        let (out, end, s) = translate(Behaviour::Text);
        end.unwrap();
        assert_eq!(out.matches("\"finish_reason\":\"stop\"").count(), 1);
        assert_eq!(out.matches("\"content\":").count(), REPLY_WORDS.len() + 1);
        let u = s.usage().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens(), u.completion_tokens),
            (PROMPT_TOKENS, CACHED_TOKENS, 20)
        );
        assert!(out.contains("\"choices\":[]"));
    }

    #[test]
    fn tool_and_reasoning_streams_translate() {
        let (out, end, _) = translate(Behaviour::Tools);
        end.unwrap();
        assert_eq!(out.matches("\"finish_reason\":\"tool_calls\"").count(), 1);
        assert!(out.contains("toolu_01MockWeatherTokyo"));
        let (out, end, s) = translate(Behaviour::Reasoning);
        end.unwrap();
        assert!(out.contains(&format!("\"reasoning_content\":\"{REASONING_TEXT}\"")));
        assert_eq!(s.usage().unwrap().completion_tokens, 20 + REASONING_TOKENS);
        let (out, end, _) = translate(Behaviour::Safety);
        end.unwrap();
        assert!(out.contains("\"finish_reason\":\"content_filter\""));
    }

    #[test]
    fn cut_stream_has_no_message_stop() {
        let (_, end, _) = translate(Behaviour::Cut);
        assert!(end.is_err());
    }

    #[test]
    fn non_stream_replies_translate() {
        for (b, finish) in [
            (Behaviour::Text, "stop"),
            (Behaviour::Tools, "tool_calls"),
            (Behaviour::Length, "length"),
            (Behaviour::Safety, "content_filter"),
            (Behaviour::Reasoning, "stop"),
        ] {
            let body = reply_body("claude-mock", b).to_string();
            let (bytes, usage) =
                crate::providers::anthropic::chat_response(body.as_bytes(), &ctx()).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            let choice = &v["choices"][0];
            assert_eq!(choice["finish_reason"], finish, "{b:?}");
            assert_eq!(
                (usage.prompt_tokens, usage.cached_tokens()),
                (PROMPT_TOKENS, CACHED_TOKENS)
            );
            match b {
                Behaviour::Tools => {
                    assert_eq!(choice["message"]["tool_calls"][1]["id"], TOOL_CALLS[1].0);
                    assert_eq!(
                        choice["message"]["tool_calls"][1]["function"]["arguments"],
                        r#"{"city":"Tokyo"}"#
                    );
                }
                Behaviour::Reasoning => {
                    assert_eq!(choice["message"]["reasoning_content"], REASONING_TEXT);
                    assert_eq!(usage.completion_tokens, 20 + REASONING_TOKENS);
                }
                _ => assert_eq!(choice["message"]["content"], REPLY_WORDS.concat()),
            }
        }
    }

    #[tokio::test]
    async fn served_over_http() {
        let mock = crate::mock_upstream::MockUpstream::start().await;
        let url = format!("{}/v1/messages", mock.url());
        let client = reqwest::Client::new();
        let body = json!({"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});

        let r = client
            .post(&url)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = client
            .post(&url)
            .header("x-api-key", "k")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(
            crate::providers::anthropic::error_message(text.as_bytes())
                .unwrap()
                .contains("anthropic-version")
        );

        let send = |model: &str, stream: bool| {
            let mut body = body.clone();
            body["model"] = json!(model);
            body["stream"] = json!(stream);
            client
                .post(&url)
                .header("x-api-key", "k")
                .header(
                    "anthropic-version",
                    crate::providers::anthropic::API_VERSION,
                )
                .body(body.to_string())
                .send()
        };
        let r = send("claude-x", false).await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["content"][0]["text"], REPLY_WORDS.concat());
        assert_eq!(mock.state.last().path, "/v1/messages");
        assert_eq!(mock.state.last().headers["x-api-key"], "k");

        let r = send("claude-fail429", false).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        let r = send("claude-fail500", false).await.unwrap();
        assert_eq!(r.status(), 500);
        let r = send("claude-fail400", true).await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(crate::providers::anthropic::error_message(&r.bytes().await.unwrap()).is_some());

        let r = send("claude-x", true).await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let text = r.text().await.unwrap();
        assert!(text.starts_with("event: message_start\ndata: {"));
        assert!(text.contains("event: ping\n"));
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

        let mut r = send("claude-cut", true).await.unwrap();
        assert_eq!(r.status(), 200);
        let mut got = Vec::new();
        let end = loop {
            match r.chunk().await {
                Ok(Some(bytes)) => got.extend_from_slice(&bytes),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        assert!(end.is_err(), "the body is aborted");
        let got = String::from_utf8(got).unwrap();
        assert!(got.starts_with("event: message_start\n"), "{got}");
        assert_eq!(got.matches("text_delta").count(), 2, "{got}");
        assert!(!got.contains("message_stop"));
    }
}
