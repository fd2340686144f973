use llm_bridge::providers::anthropic::ChatStream;
use llm_bridge::providers::sse::SseDecoder;
use llm_bridge::providers::translate::ReplyContext;
use llm_bridge_mock::anthropic::*;
use llm_bridge_mock::*;
use serde_json::{Value, json};

fn ctx() -> ReplyContext {
    ReplyContext {
        id: "chatcmpl-mock".into(),
        created: 1,
        model: "m".into(),
        include_usage: true,
    }
}

/// Runs the mock's stream events through the provider's translation.
fn translate(b: Behaviour) -> (String, Result<(), llm_bridge::error::ApiError>, ChatStream) {
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
            llm_bridge::providers::anthropic::chat_response(body.as_bytes(), &ctx()).unwrap();
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
    let mock = llm_bridge_mock::MockUpstream::start().await;
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
        llm_bridge::providers::anthropic::error_message(text.as_bytes())
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
                llm_bridge::providers::anthropic::API_VERSION,
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
    assert!(llm_bridge::providers::anthropic::error_message(&r.bytes().await.unwrap()).is_some());

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
