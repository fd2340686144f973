use axum::http::{StatusCode, header};
use llm_bridge::providers::gemini as translate;
use llm_bridge::providers::openai_types::Usage;
use llm_bridge::providers::sse::SseDecoder;
use llm_bridge::providers::translate::ReplyContext;
use llm_bridge_mock::gemini::*;
use llm_bridge_mock::*;
use serde_json::{Value, json};

fn ctx() -> ReplyContext {
    ReplyContext {
        id: "chatcmpl-mock1".into(),
        created: 1,
        model: "m".into(),
        include_usage: true,
    }
}

fn chat_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})).unwrap()
}

async fn post(
    mock: &MockUpstream,
    model: &str,
    action: &str,
    query: &str,
    body: Vec<u8>,
    key: bool,
) -> reqwest::Response {
    let url = format!("{}/v1beta/models/{model}:{action}{query}", mock.url());
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if key {
        request = request.header("x-goog-api-key", "test-key");
    }
    request.send().await.unwrap()
}

/// A non-stream reply translated to OpenAI's shape.
async fn complete(
    mock: &MockUpstream,
    model: &str,
) -> Result<(Value, Usage), llm_bridge::error::ApiError> {
    let response = post(mock, model, "generateContent", "", chat_body(), true).await;
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.bytes().await.unwrap();
    translate::chat_response(&raw, &ctx())
        .map(|(bytes, usage)| (serde_json::from_slice(&bytes).unwrap(), usage))
}

/// A stream translated chunk by chunk: the OpenAI chunks, then the translator's verdict at the end.
async fn stream(
    mock: &MockUpstream,
    model: &str,
) -> (
    Vec<Value>,
    Result<Option<Usage>, llm_bridge::error::ApiError>,
) {
    let response = post(
        mock,
        model,
        "streamGenerateContent",
        "?alt=sse",
        chat_body(),
        true,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let raw = response.bytes().await.unwrap();
    let mut decoder = SseDecoder::default();
    decoder.push(&raw);
    let mut translator = translate::ChatStream::new(ctx());
    let mut out = Vec::new();
    let mut result = Ok(());
    while let Some(event) = decoder.next_event().unwrap() {
        result = translator.event(&event.data, &mut out);
        if result.is_err() {
            break;
        }
    }
    let result = result
        .and_then(|()| translator.finish(&mut out))
        .map(|()| translator.usage());
    let text = String::from_utf8(out).unwrap();
    let chunks = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    (chunks, result)
}

fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn finishes(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn text_reply_and_recording() {
    let mock = MockUpstream::start().await;
    let (reply, usage) = complete(&mock, "gemini-test").await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert_eq!(usage, Usage::new(PROMPT_TOKENS, 20, CACHED_TOKENS, 0));
    let last = mock.state.last();
    assert_eq!(last.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(last.query, None);
    assert_eq!(last.headers["x-goog-api-key"], "test-key");
    assert_eq!(last.body["contents"][0]["parts"][0]["text"], "Hi");
}

#[tokio::test]
async fn text_stream() {
    let mock = MockUpstream::start().await;
    let (chunks, result) = stream(&mock, "gemini-test").await;
    assert_eq!(
        result.unwrap(),
        Some(Usage::new(PROMPT_TOKENS, 20, CACHED_TOKENS, 0))
    );
    // One chunk per word, then the usage chunk.
    assert_eq!(chunks.len(), REPLY_WORDS.len() + 1);
    assert_eq!(streamed_text(&chunks), REPLY_WORDS.concat());
    assert_eq!(finishes(&chunks), vec!["stop"]);
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert_eq!(mock.state.last().query.as_deref(), Some("alt=sse"));
}

#[tokio::test]
async fn stream_without_sse_is_a_json_array() {
    let mock = MockUpstream::start().await;
    let response = post(
        &mock,
        "gemini-test",
        "streamGenerateContent",
        "",
        chat_body(),
        true,
    )
    .await;
    let events: Vec<Value> = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(events.len(), REPLY_WORDS.len());
    assert_eq!(
        events.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[tokio::test]
async fn tools() {
    let mock = MockUpstream::start().await;
    let (reply, _) = complete(&mock, "gemini-tools").await.unwrap();
    let calls = reply["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\":\"Tokyo\"}");
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");

    let (chunks, result) = stream(&mock, "gemini-tools").await;
    result.unwrap();
    let indices: Vec<u64> = chunks
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![0, 1]);
    assert_eq!(finishes(&chunks), vec!["tool_calls"]);
}

#[tokio::test]
async fn reasoning() {
    let mock = MockUpstream::start().await;
    let (reply, usage) = complete(&mock, "gemini-reasoning").await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["reasoning_content"],
        REASONING_TEXT
    );
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(
        usage,
        Usage::new(
            PROMPT_TOKENS,
            20 + REASONING_TOKENS,
            CACHED_TOKENS,
            REASONING_TOKENS
        )
    );

    let (chunks, result) = stream(&mock, "gemini-reasoning").await;
    assert_eq!(
        result.unwrap().unwrap().reasoning_tokens(),
        REASONING_TOKENS
    );
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["reasoning_content"],
        REASONING_TEXT
    );
    assert_eq!(streamed_text(&chunks), REPLY_WORDS.concat());
}

#[tokio::test]
async fn length_nousage_safety() {
    let mock = MockUpstream::start().await;
    let (reply, _) = complete(&mock, "gemini-length").await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "length");
    let (chunks, _) = stream(&mock, "gemini-length").await;
    assert_eq!(finishes(&chunks), vec!["length"]);

    let (reply, usage) = complete(&mock, "gemini-nousage").await.unwrap();
    assert!(reply.get("usage").is_none());
    assert_eq!(usage, Usage::default());
    let (chunks, result) = stream(&mock, "gemini-nousage").await;
    assert_eq!(result.unwrap(), None);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));

    let (reply, _) = complete(&mock, "gemini-safety").await.unwrap();
    assert_eq!(reply["choices"][0]["finish_reason"], "content_filter");
    let (chunks, _) = stream(&mock, "gemini-safety").await;
    assert_eq!(finishes(&chunks), vec!["content_filter"]);
}

#[tokio::test]
async fn blocked_and_malformed() {
    let mock = MockUpstream::start().await;
    let err = complete(&mock, "gemini-blocked").await.unwrap_err();
    assert_eq!(err.message, "Gemini blocked the prompt: SAFETY");
    let (_, result) = stream(&mock, "gemini-blocked").await;
    assert_eq!(result.unwrap_err().code.as_deref(), Some("content_filter"));

    let err = complete(&mock, "gemini-malformed").await.unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    let (_, result) = stream(&mock, "gemini-malformed").await;
    assert!(
        result
            .unwrap_err()
            .message
            .contains("MALFORMED_FUNCTION_CALL")
    );
}

#[tokio::test]
async fn cut_stream_breaks_the_connection() {
    let mock = MockUpstream::start().await;
    let response = post(
        &mock,
        "gemini-cut",
        "streamGenerateContent",
        "?alt=sse",
        chat_body(),
        true,
    )
    .await;
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let mut broke = false;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "the body must end with an error");
    let text = String::from_utf8(received).unwrap();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(!text.contains("finishReason"));
}

#[tokio::test]
async fn failures_in_gemini_shape() {
    let mock = MockUpstream::start().await;
    for (model, status, name) in [
        ("gemini-fail500", 500, "INTERNAL"),
        ("gemini-fail400", 400, "INVALID_ARGUMENT"),
        ("gemini-fail429", 429, "RESOURCE_EXHAUSTED"),
    ] {
        let response = post(&mock, model, "generateContent", "", chat_body(), true).await;
        assert_eq!(response.status().as_u16(), status);
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"]["code"], status);
        assert_eq!(body["error"]["status"], name);
        assert!(translate::error_message(body.to_string().as_bytes()).is_some());
    }
    let response = post(
        &mock,
        "gemini-fail500once",
        "generateContent",
        "",
        chat_body(),
        true,
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let response = post(
        &mock,
        "gemini-fail500once",
        "generateContent",
        "",
        chat_body(),
        true,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_key_and_bad_requests() {
    let mock = MockUpstream::start().await;
    let response = post(
        &mock,
        "gemini-test",
        "generateContent",
        "",
        chat_body(),
        false,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    // The request is recorded all the same.
    assert!(mock.state.last().headers.get("x-goog-api-key").is_none());

    let response = post(&mock, "gemini-test", "predict", "", chat_body(), true).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post(
        &mock,
        "gemini-test",
        "generateContent",
        "",
        b"{}".to_vec(),
        true,
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn embeddings() {
    let mock = MockUpstream::start().await;
    let request: llm_bridge::providers::openai_types::EmbeddingRequest =
        serde_json::from_value(json!({"model": "gemini-embedding-001", "input": ["a", "b", "a"]}))
            .unwrap();
    let body = translate::embeddings_request(&request, "gemini-embedding-001").unwrap();
    let response = post(
        &mock,
        "gemini-embedding-001",
        "batchEmbedContents",
        "",
        body,
        true,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.bytes().await.unwrap();
    let (json, _, estimated) =
        translate::embeddings_response(&raw, "gemini-embedding-001").unwrap();
    assert!(estimated);
    let list: Value = serde_json::from_slice(&json).unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        data[0]["embedding"].as_array().unwrap().len(),
        EMBEDDING_DIMS
    );
    assert_eq!(data[0]["embedding"], data[2]["embedding"], "deterministic");
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert!(
        data[0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_f64().unwrap().abs() <= 1.0)
    );
}
