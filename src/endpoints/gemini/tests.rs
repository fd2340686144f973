use serde_json::{Value, json};

use super::reply::generate_content;
use super::request::chat_body;

fn chat(body: Value) -> Value {
    let body = body.as_object().unwrap().clone();
    serde_json::from_slice(&chat_body(&body, "m", false).unwrap()).unwrap()
}

fn refused(body: Value) -> String {
    let body = body.as_object().unwrap().clone();
    let e = chat_body(&body, "m", false).unwrap_err();
    assert_eq!(e.status, 400);
    format!("{} ({:?})", e.message, e.param)
}

#[test]
fn openapi_schemas_become_json_schema() {
    let sent = chat(json!({
        "contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "OBJECT", "propertyOrdering": ["a"],
            "properties": {"a": {"type": "STRING", "nullable": true},
                           "b": {"type": "ARRAY", "items": {"type": "INTEGER"}}}}},
            {"name": "g", "parametersJsonSchema": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}}}]}],
    }));
    let f = &sent["tools"][0]["function"]["parameters"];
    assert_eq!(
        f,
        &json!({"type": "object", "properties": {"a": {"type": ["string", "null"]},
            "b": {"type": "array", "items": {"type": "integer"}}}})
    );
    let g = &sent["tools"][1]["function"]["parameters"];
    assert_eq!(
        g["properties"]["x"]["type"],
        json!(["string", "null"]),
        "JSON Schema as it is"
    );
}

#[test]
fn tool_config_and_generation_config_map_to_chat_settings() {
    let base = json!({"contents": [{"parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}]});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let mode = |mode: &str, names: Value| {
        chat(with(
            "toolConfig",
            json!({"functionCallingConfig": {"mode": mode, "allowedFunctionNames": names}}),
        ))["tool_choice"]
            .clone()
    };
    assert_eq!(mode("AUTO", json!([])), "auto");
    assert_eq!(mode("NONE", json!([])), "none");
    assert_eq!(mode("ANY", json!([])), "required");
    assert_eq!(
        mode("ANY", json!(["g"])),
        json!({"type": "function", "function": {"name": "g"}})
    );
    assert!(
        refused(with(
            "toolConfig",
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f", "g"]}})
        ))
        .contains("allowedFunctionNames")
    );

    let sent = chat(with(
        "generationConfig",
        json!({"topP": 0.9, "topK": 3, "candidateCount": 2, "seed": 7,
        "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}},
        "thinkingConfig": {"thinkingBudget": 0}}),
    ));
    assert_eq!(sent["top_p"], 0.9);
    assert_eq!(sent["top_k"], 3);
    assert_eq!(sent["n"], 2);
    assert_eq!(sent["seed"], 7);
    assert_eq!(
        sent["reasoning_effort"], "none",
        "a budget of 0 turns thinking off"
    );
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(
        sent["response_format"]["json_schema"]["schema"]["properties"]["n"]["type"],
        "number"
    );
    let sent = chat(with(
        "generationConfig",
        json!({"responseMimeType": "application/json", "thinkingConfig": {"thinkingLevel": "HIGH"}}),
    ));
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert_eq!(sent["reasoning_effort"], "high");
    assert!(
        refused(with(
            "generationConfig",
            json!({"responseMimeType": "text/x.enum"})
        ))
        .contains("responseMimeType")
    );
    assert!(
        refused(with(
            "generationConfig",
            json!({"responseModalities": ["IMAGE"]})
        ))
        .contains("responseModalities")
    );
}

#[test]
fn parts_become_messages_and_what_cannot_be_expressed_is_refused() {
    let sent = chat(json!({
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "What is this?"}, {"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]},
            {"role": "model", "parts": [{"text": "Let me see.", "thought": true}, {"text": "A dot."},
                {"functionCall": {"name": "zoom", "args": {"x": 1}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "zoom", "response": {"ok": true}}}, {"text": "And?"}]},
        ],
    }));
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        json!({"role": "system", "content": "Be brief."}),
        "snake_case read too"
    );
    assert_eq!(
        messages[1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(messages[2]["reasoning_content"], "Let me see.");
    assert_eq!(messages[2]["content"], "A dot.");
    let id = messages[2]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": id, "content": "{\"ok\":true}"}),
        "answered by name"
    );
    assert_eq!(messages[4], json!({"role": "user", "content": "And?"}));

    let audio =
        json!({"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AA"}}]}]});
    assert!(refused(audio).contains("audio/wav"));
    let code = json!({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]});
    assert!(refused(code).contains("executableCode"));
    let orphan =
        json!({"contents": [{"parts": [{"functionResponse": {"name": "zoom", "response": {}}}]}]});
    assert!(refused(orphan).contains("answers no functionCall"));
    assert!(refused(json!({"contents": []})).contains("contents"));
    assert!(
        refused(json!({"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": "c/1"}))
            .contains("cachedContent")
    );
}

#[test]
fn claudes_signed_thinking_survives_a_round_trip_through_geminis_shape() {
    let reply = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": null, "reasoning_content": "Think.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Think.", "signature": "sig-anthropic"},
                            {"type": "redacted_thinking", "data": "opaque"}],
        "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                  "completion_tokens_details": {"reasoning_tokens": 2}}});
    let (json, _) = generate_content(&serde_json::to_vec(&reply).unwrap(), "r1", "claude").unwrap();
    let gemini: Value = serde_json::from_slice(&json).unwrap();
    let parts = gemini["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parts[0], json!({"text": "Think.", "thought": true}));
    assert_eq!(
        parts[1]["functionCall"],
        json!({"id": "toolu_1", "name": "f", "args": {"a": 1}})
    );
    assert!(
        parts[1]["thoughtSignature"]
            .as_str()
            .unwrap()
            .starts_with("llmb1.")
    );
    assert_eq!(gemini["candidates"][0]["finishReason"], "STOP");
    assert_eq!(gemini["usageMetadata"]["candidatesTokenCount"], 3);
    assert_eq!(gemini["usageMetadata"]["thoughtsTokenCount"], 2);
    assert_eq!(gemini["usageMetadata"]["totalTokenCount"], 15);

    // The client sends the turn back as it got it: the blocks go back to Claude signed.
    let sent = chat(json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": parts},
        {"role": "user", "parts": [{"functionResponse": {"id": "toolu_1", "name": "f", "response": {"r": 2}}}]},
    ]}));
    let assistant = &sent["messages"][1];
    assert_eq!(assistant["tool_calls"][0]["id"], "toolu_1");
    assert_eq!(
        assistant["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Think.", "signature": "sig-anthropic"},
               {"type": "redacted_thinking", "data": "opaque"}])
    );
}

#[test]
fn a_stream_gathers_calls_by_the_upstreams_index_without_allocating_up_to_it() {
    use crate::providers::chunks::FromChunks;
    let mut stream =
        super::stream::GeminiStream::new("r".into(), "m".into(), super::stream::Framing::Sse);
    let frames = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"thinking_blocks":[{"index":4000000000,"type":"thinking","thinking":"t","signature":"s"}],"tool_calls":[{"index":4000000000,"id":"c1","function":{"name":"f","arguments":"{\"a\""}}]}}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":4000000000,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
        "\n\n",
    );
    let mut out = Vec::new();
    stream.frames(frames.as_bytes(), &mut out).unwrap();
    assert!(out.is_empty(), "calls go out whole, at the end");
    stream.finish(&mut out);
    let text = String::from_utf8(out).unwrap();
    let event: Value = serde_json::from_str(text.trim().strip_prefix("data: ").unwrap()).unwrap();
    let part = &event["candidates"][0]["content"]["parts"][0];
    assert_eq!(
        part["functionCall"],
        json!({"id": "c1", "name": "f", "args": {"a": 1}})
    );
    assert!(
        part["thoughtSignature"]
            .as_str()
            .unwrap()
            .starts_with("llmb1.")
    );
    assert_eq!(event["candidates"][0]["finishReason"], "STOP");
}
