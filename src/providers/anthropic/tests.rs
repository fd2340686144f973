use super::*;
use crate::providers::openai_types::*;
use crate::providers::translate::ReplyContext;
use axum::http::StatusCode;
use serde_json::Value;
use serde_json::json;

fn request(v: Value) -> ChatRequest {
    serde_json::from_value(v).expect("a valid OpenAI request")
}

fn encode(v: Value) -> Value {
    serde_json::from_slice(&chat_request(&request(v)).expect("encodes")).unwrap()
}

fn encode_err(v: Value) -> ApiError {
    chat_request(&request(v)).expect_err("must be rejected")
}

fn ctx(include_usage: bool) -> ReplyContext {
    ReplyContext {
        id: "chatcmpl-test".to_string(),
        created: 1_700_000_000,
        model: "claude-test".to_string(),
        include_usage,
    }
}

// ---------- requests ----------

#[test]
fn cache_control_breakpoints_reach_anthropic_on_system_and_content_blocks() {
    let eph = json!({"type": "ephemeral"});
    let body = encode(json!({"model": "claude-test", "messages": [
        {"role": "system", "content": [
            {"type": "text", "text": "A long, stable preamble.", "cache_control": eph},
        ]},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "A long document.", "cache_control": eph},
            {"type": "text", "text": "The question."},
        ]},
    ]}));
    assert_eq!(
        body["system"],
        json!([
            {"type": "text", "text": "A long, stable preamble.", "cache_control": eph},
            {"type": "text", "text": "Be brief."},
        ])
    );
    assert_eq!(body["messages"][0]["content"][0]["cache_control"], eph);
    assert!(
        body["messages"][0]["content"][1]
            .get("cache_control")
            .is_none()
    );
    // Without breakpoints the system prompt stays one string.
    let plain = encode(json!({"model": "claude-test", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}));
    assert_eq!(plain["system"], "Be brief.");
}

#[test]
fn spec_and_url() {
    assert_eq!(SPEC.id, "anthropic");
    assert!(matches!(SPEC.wire, Wire::Anthropic));
    assert_eq!(API_VERSION, "2023-06-01");
    assert_eq!(
        chat_url("https://api.anthropic.com"),
        "https://api.anthropic.com/v1/messages"
    );
    assert_eq!(
        chat_url("http://127.0.0.1:9/"),
        "http://127.0.0.1:9/v1/messages"
    );
}

#[test]
fn basic_request_fields() {
    let body = encode(json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Again"}
        ],
        "temperature": 0.5, "top_p": 0.9, "stop": "END", "seed": 42, "user": "u-1",
        "presence_penalty": 0.3
    }));
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["system"], "Be brief.\n\nUse French.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], false);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"], json!({"user_id": "u-1"}));
    assert!(body.get("seed").is_none());
    assert!(body.get("presence_penalty").is_none());
    assert!(body.get("thinking").is_none());
    assert!(body.get("tools").is_none());
    assert!(body.get("tool_choice").is_none());
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]},
            {"role": "user", "content": [{"type": "text", "text": "Again"}]}
        ])
    );
}

#[test]
fn stream_flag_and_max_tokens() {
    let body = encode(json!({"model": "m", "stream": true, "max_tokens": 100,
            "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]}));
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["stop_sequences"], json!(["a", "b"]));
    assert!(body.get("system").is_none());
    let body = encode(
        json!({"model": "m", "max_tokens": 100, "max_completion_tokens": 200,
            "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(body["max_tokens"], 200);
}

#[test]
fn consecutive_roles_are_merged() {
    let body = encode(json!({"model": "m", "messages": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "three"}
    ]}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": [{"type": "text", "text": "three"}]}
        ])
    );
}

#[test]
fn tool_calls_round_trip_by_id() {
    let body = encode(json!({"model": "m", "messages": [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {"role": "assistant", "content": null, "reasoning_content": "thinking...", "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "25C"}]},
        {"role": "user", "content": "Thanks"}
    ]}));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Tokyo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "25C"},
                {"type": "text", "text": "Thanks"}
            ]}
        ])
    );
    assert!(
        !body.to_string().contains("thinking..."),
        "reasoning_content is dropped"
    );
}

#[test]
fn assistant_text_and_tool_calls_and_empty_arguments() {
    let body = encode(json!({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "noon"}
    ]}));
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "now", "input": {}}
        ])
    );
}

#[test]
fn invalid_tool_arguments_name_the_field() {
    let err = encode_err(json!({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
        ]}
    ]}));
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.kind, "invalid_request_error");
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].tool_calls[1].function.arguments")
    );
    let err = encode_err(json!({"model": "m", "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}
    ]}));
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
}

#[test]
fn message_without_content_is_rejected() {
    let err = encode_err(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null}
    ]}));
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.param.as_deref(), Some("messages[1].content"));
    let err = encode_err(json!({"model": "m", "messages": [{"role": "user"}]}));
    assert_eq!(err.param.as_deref(), Some("messages[0].content"));
    let err = encode_err(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(err.param.as_deref(), Some("messages[0].tool_call_id"));
    let err = encode_err(
        json!({"model": "m", "messages": [{"role": "system", "content": "only system"}]}),
    );
    assert_eq!(err.param.as_deref(), Some("messages"));
}

#[test]
fn images() {
    let body = encode(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}
        ]}]}),
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
        ])
    );
    let err = encode_err(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "x"},
            {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}
        ]}]}),
    );
    assert_eq!(
        err.param.as_deref(),
        Some("messages[0].content[1].image_url.url")
    );
    let err = encode_err(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png,rawdata"}}
        ]}]}),
    );
    assert_eq!(
        err.param.as_deref(),
        Some("messages[0].content[0].image_url.url")
    );
}

fn with_tools(extra: Value) -> Value {
    let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "now"}}
    ]});
    for (k, v) in extra.as_object().unwrap() {
        req[k] = v.clone();
    }
    encode(req)
}

#[test]
fn tools_are_translated() {
    let body = with_tools(json!({}));
    assert_eq!(
        body["tools"],
        json!([
            {"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "now", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert!(!body["tools"].to_string().contains("strict"));
    assert!(body.get("tool_choice").is_none());
}

#[test]
fn tool_choice_mapping() {
    assert_eq!(
        with_tools(json!({"tool_choice": "auto"}))["tool_choice"],
        json!({"type": "auto"})
    );
    assert_eq!(
        with_tools(json!({"tool_choice": "required"}))["tool_choice"],
        json!({"type": "any"})
    );
    assert_eq!(
        with_tools(json!({"tool_choice": "none"}))["tool_choice"],
        json!({"type": "none"})
    );
    assert_eq!(
        with_tools(
            json!({"tool_choice": {"type": "function", "function": {"name": "get_weather"}}})
        )["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );
    assert_eq!(
        with_tools(json!({"parallel_tool_calls": false}))["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        with_tools(json!({"parallel_tool_calls": false, "tool_choice": "required"}))["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        with_tools(
            json!({"parallel_tool_calls": false, "tool_choice": {"type": "function", "function": {"name": "now"}}})
        )["tool_choice"],
        json!({"type": "tool", "name": "now", "disable_parallel_tool_use": true})
    );
    assert!(
        with_tools(json!({"parallel_tool_calls": true}))
            .get("tool_choice")
            .is_none()
    );
    let err = encode_err(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}),
    );
    assert_eq!(err.param.as_deref(), Some("tool_choice"));
}

/// A tool-using assistant turn, its tool's result, and thinking on.
fn tool_turn(assistant: Value) -> Value {
    json!({"model": "m", "reasoning_effort": "high", "messages": [
        {"role": "user", "content": "Weather?"},
        assistant,
        {"role": "tool", "tool_call_id": "toolu_01", "content": "sunny"},
    ]})
}

#[test]
fn signed_thinking_opens_the_assistant_turn_and_unsigned_turns_go_without_thinking() {
    let call = json!([{"id": "toolu_01", "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"}}]);
    let blocks = json!([{"type": "thinking", "thinking": "Hmm.", "signature": "EqQB"},
        {"type": "redacted_thinking", "data": "EmwK"},
        {"type": "thinking", "thinking": "unsigned"}]);
    let body = encode(tool_turn(
        json!({"role": "assistant", "content": "Checking.", "tool_calls": call, "thinking_blocks": blocks}),
    ));
    assert_eq!(body["thinking"]["type"], "enabled");
    let kinds: Vec<&str> = body["messages"][1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["thinking", "redacted_thinking", "text", "tool_use"],
        "a block without its signature is left out"
    );
    assert_eq!(body["messages"][1]["content"][0]["signature"], "EqQB");

    // The client kept no thinking: Anthropic would refuse the turn with thinking on.
    let body = encode(tool_turn(
        json!({"role": "assistant", "content": null, "tool_calls": call}),
    ));
    assert!(body.get("thinking").is_none(), "{body}");
    // Thinking off from the client: its blocks are not sent.
    let mut off = tool_turn(
        json!({"role": "assistant", "content": null, "tool_calls": call, "thinking_blocks": blocks}),
    );
    off.as_object_mut().unwrap().remove("reasoning_effort");
    let body = encode(off);
    assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
    // A new user turn after a finished tool loop needs no thinking from before.
    let mut later = tool_turn(json!({"role": "assistant", "content": "Done."}));
    later["messages"][2] = json!({"role": "user", "content": "Thanks"});
    assert_eq!(encode(later)["thinking"]["type"], "enabled");
}

#[test]
fn reasoning_effort_enables_thinking() {
    for (effort, budget) in [("low", 1024), ("medium", 4096), ("high", 16384)] {
        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": effort, "temperature": 0.2, "top_p": 0.5}),
        );
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": budget})
        );
        assert_eq!(body["max_tokens"], budget + 4096);
        assert!(body.get("temperature").is_none());
        assert!(body.get("top_p").is_none());
    }
    let body = encode(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "medium", "max_completion_tokens": 500}),
    );
    assert_eq!(body["max_tokens"], 4096 + 500);
    for effort in ["none", "minimal"] {
        let body = encode(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                "reasoning_effort": effort, "temperature": 0.2}),
        );
        assert!(body.get("thinking").is_none());
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["max_tokens"], 4096);
    }
    let err = encode_err(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "max"}),
    );
    assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
}

#[test]
fn n_above_one_is_rejected() {
    let err =
        encode_err(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}));
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.message, "Anthropic does not support n > 1");
    assert_eq!(err.param.as_deref(), Some("n"));
    encode(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1}));
}

#[test]
fn response_format_becomes_a_system_instruction() {
    let body = encode(
        json!({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
    );
    let system = body["system"].as_str().unwrap();
    assert!(system.starts_with("Be brief.\n\n"), "{system}");
    assert!(system.contains("JSON"), "{system}");

    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let body = encode(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}}),
    );
    let system = body["system"].as_str().unwrap();
    assert!(system.contains("JSON"), "{system}");
    assert!(system.contains("reply"), "{system}");
    assert!(
        system.contains(&serde_json::to_string(&schema).unwrap()),
        "{system}"
    );

    let body = encode(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "text"}}),
    );
    assert!(body.get("system").is_none());
}

// ---------- replies ----------

fn decode(reply: Value) -> (Value, Usage) {
    let (bytes, usage) = chat_response(reply.to_string().as_bytes(), &ctx(false)).expect("decodes");
    (serde_json::from_slice(&bytes).unwrap(), usage)
}

#[test]
fn text_reply_with_cached_usage() {
    let (body, usage) = decode(json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 8, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 4, "output_tokens": 20}
    }));
    assert_eq!(
        body,
        json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000u64, "model": "claude-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world"},
                         "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 14, "completion_tokens": 20, "total_tokens": 34,
                      "prompt_tokens_details": {"cached_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 0}}
        })
    );
    // The 2 tokens written to the cache are counted for pricing, never shown to the client.
    assert_eq!(usage, Usage::new(14, 20, 4, 0).with_cache_writes(2));
}

#[test]
fn usage_without_cache_fields() {
    let (_, usage) = decode(
        json!({"content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": null}}),
    );
    assert_eq!(usage, Usage::new(5, 3, 0, 0));
}

#[test]
fn thinking_and_tool_use_reply() {
    let (body, _) = decode(json!({
        "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xxx"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01P", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_01T", "name": "get_weather", "input": {"city": "Tokyo"}}
        ],
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 2}
    }));
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Checking.");
    assert_eq!(choice["message"]["reasoning_content"], "Two cities.");
    assert_eq!(
        choice["message"]["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Two cities.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xxx"}])
    );
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "toolu_01P");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Tokyo"}));
}

#[test]
fn tool_only_reply_has_null_content() {
    let (body, _) = decode(json!({
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "now", "input": {}}],
        "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}
    }));
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    assert_eq!(
        body["choices"][0]["finish_reason"], "tool_calls",
        "any tool_use block means tool_calls"
    );
    assert!(
        body["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
}

#[test]
fn finish_reasons() {
    for (stop, expected) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("tool_use", "tool_calls"),
    ] {
        let (body, _) = decode(
            json!({"content": [{"type": "text", "text": "x"}], "stop_reason": stop,
                "usage": {"input_tokens": 1, "output_tokens": 1}}),
        );
        assert_eq!(body["choices"][0]["finish_reason"], expected, "{stop}");
    }
}

#[test]
fn errors_and_garbage() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(error_message(body).as_deref(), Some("Overloaded"));
    assert_eq!(error_message(b"not json"), None);
    assert_eq!(error_message(br#"{"content":[]}"#), None);
    let err = chat_response(body, &ctx(false)).unwrap_err();
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.message, "Anthropic: Overloaded");
    let err = chat_response(b"<html>", &ctx(false)).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

// ---------- streams ----------

/// Feeds events through a ChatStream and returns every chunk written, `finish` included.
fn run(events: &[Value], include_usage: bool) -> (Vec<Value>, Result<(), ApiError>, Option<Usage>) {
    let mut stream = ChatStream::new(ctx(include_usage));
    let mut out = Vec::new();
    for e in events {
        stream
            .event(e.to_string().as_bytes(), &mut out)
            .expect("event translates");
    }
    let end = stream.finish(&mut out);
    (frames(&out), end, stream.usage())
}

fn frames(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"));
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let payload = f.strip_prefix("data: ").expect("a data frame");
            assert_ne!(payload, "[DONE]", "the caller writes [DONE]");
            serde_json::from_str(payload).unwrap()
        })
        .collect()
}

fn message_start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
            "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4, "output_tokens": 1}}})
}

fn message_end(stop_reason: &str, output_tokens: u64) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_tokens}}),
        json!({"type": "message_stop"}),
    ]
}

fn text_stream() -> Vec<Value> {
    let mut events = vec![
        message_start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}}),
        json!({"type": "content_block_stop", "index": 0}),
    ];
    events.extend(message_end("end_turn", 20));
    events
}

fn finish_reasons_of(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap().iter())
        .map(|c| c["finish_reason"].clone())
        .filter(|r| !r.is_null())
        .collect()
}

#[test]
fn text_stream_without_usage() {
    let (chunks, end, usage) = run(&text_stream(), false);
    end.unwrap();
    for c in &chunks {
        assert_eq!(c["id"], "chatcmpl-test");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["created"], 1_700_000_000u64);
        assert_eq!(c["model"], "claude-test");
        assert!(
            c.get("usage").is_none(),
            "no usage without include_usage: {c}"
        );
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
        assert_eq!(c["choices"][0]["index"], 0);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], Value::Null);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(text, "Hello world");
    assert_eq!(chunks.len(), 4, "role, two words, finish: {chunks:?}");
    assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(usage, Some(Usage::new(12, 20, 4, 0)));
}

#[test]
fn text_stream_with_usage_ends_with_usage_chunk() {
    let (chunks, end, _) = run(&text_stream(), true);
    end.unwrap();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["object"], "chat.completion.chunk");
    assert_eq!(last["id"], "chatcmpl-test");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32,
                   "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert_eq!(
        chunks.iter().filter(|c| c.get("usage").is_some()).count(),
        1
    );
    assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
}

#[test]
fn tool_stream_indices_and_argument_pieces() {
    let mut events = vec![message_start()];
    for (block, (id, city)) in [("toolu_01P", "Paris"), ("toolu_01T", "Tokyo")]
        .into_iter()
        .enumerate()
    {
        let block = block + 1; // a text block comes first
        events.push(json!({"type": "content_block_start", "index": block,
                "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}));
        events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": ""}}));
        events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}));
        events.push(json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": format!("\"{city}\"}}")}}));
        events.push(json!({"type": "content_block_stop", "index": block}));
    }
    events.insert(
            1,
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
    events.insert(
            2,
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        );
    events.insert(3, json!({"type": "content_block_stop", "index": 0}));
    events.extend(message_end("tool_use", 30));
    let (chunks, end, usage) = run(&events, false);
    end.unwrap();

    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .map(|t| {
            assert_eq!(t.as_array().unwrap().len(), 1);
            &t[0]
        })
        .collect();
    assert_eq!(
        calls.len(),
        6,
        "a header and two argument pieces per call: {calls:?}"
    );
    assert_eq!(
        calls[0],
        &json!({"index": 0, "id": "toolu_01P", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
    );
    assert_eq!(
        calls[1],
        &json!({"index": 0, "function": {"arguments": "{\"city\": "}})
    );
    assert_eq!(
        calls[2],
        &json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})
    );
    assert_eq!(calls[3]["index"], 1);
    assert_eq!(calls[3]["id"], "toolu_01T");
    for n in [0, 1] {
        let args: String = calls
            .iter()
            .filter(|c| c["index"] == n)
            .filter_map(|c| c["function"]["arguments"].as_str())
            .collect::<Vec<_>>()
            .concat();
        let args: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(args["city"], if n == 0 { "Paris" } else { "Tokyo" });
    }
    assert_eq!(finish_reasons_of(&chunks), vec![json!("tool_calls")]);
    assert_eq!(usage.unwrap().completion_tokens, 30);
}

#[test]
fn tool_use_block_means_tool_calls_even_with_end_turn() {
    let mut events = vec![
        message_start(),
        json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": "now", "input": {}}}),
        json!({"type": "content_block_stop", "index": 0}),
    ];
    events.extend(message_end("end_turn", 5));
    let (chunks, end, _) = run(&events, false);
    end.unwrap();
    assert_eq!(finish_reasons_of(&chunks), vec![json!("tool_calls")]);
}

#[test]
fn reasoning_stream() {
    let mut events = vec![
        message_start(),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Answer."}}),
        json!({"type": "content_block_stop", "index": 1}),
    ];
    events.extend(message_end("end_turn", 27));
    let (chunks, end, usage) = run(&events, false);
    end.unwrap();
    let deltas: Vec<&Value> = chunks.iter().map(|c| &c["choices"][0]["delta"]).collect();
    let piece = |thinking: &str| json!([{"index": 0, "type": "thinking", "thinking": thinking}]);
    assert_eq!(
        deltas[1],
        &json!({"reasoning_content": "Let me ", "thinking_blocks": piece("Let me ")})
    );
    assert_eq!(
        deltas[2],
        &json!({"reasoning_content": "think.", "thinking_blocks": piece("think.")})
    );
    assert_eq!(
        deltas[3],
        &json!({"thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "EqQBCgIYAhIM"}]}),
        "the signature closes the block"
    );
    assert_eq!(deltas[4], &json!({"content": "Answer."}));
    assert_eq!(
        chunks.len(),
        6,
        "role, 2 thinking, signature, 1 text, finish"
    );
    assert_eq!(usage, Some(Usage::new(12, 27, 4, 0)));
}

#[test]
fn max_tokens_and_refusal_in_streams() {
    for (stop, expected) in [
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("stop_sequence", "stop"),
    ] {
        let mut events = text_stream();
        events.truncate(events.len() - 2);
        events.extend(message_end(stop, 3));
        let (chunks, end, _) = run(&events, true);
        end.unwrap();
        assert_eq!(finish_reasons_of(&chunks), vec![json!(expected)], "{stop}");
    }
}

#[test]
fn message_stop_without_message_delta_still_finishes_once() {
    let mut events = text_stream();
    events.remove(events.len() - 2);
    let (chunks, end, _) = run(&events, false);
    end.unwrap();
    assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
}

#[test]
fn truncated_stream_is_a_bad_gateway() {
    let events = text_stream();
    let mut stream = ChatStream::new(ctx(true));
    let mut out = Vec::new();
    for e in &events[..5] {
        stream.event(e.to_string().as_bytes(), &mut out).unwrap();
    }
    let mut tail = Vec::new();
    let err = stream.finish(&mut tail).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert!(tail.is_empty(), "no usage chunk after a truncated stream");
    assert!(finish_reasons_of(&frames(&out)).is_empty());
    assert_eq!(stream.usage().map(|u| u.prompt_tokens), Some(12));
}

#[test]
fn error_events() {
    let mut stream = ChatStream::new(ctx(false));
    let mut out = Vec::new();
    stream
        .event(message_start().to_string().as_bytes(), &mut out)
        .unwrap();
    let err = stream
        .event(
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.message, "Anthropic: Overloaded");

    let mut stream = ChatStream::new(ctx(false));
    let err = stream
        .event(
            br#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert_eq!(err.message, "Anthropic: Internal server error");

    let err = ChatStream::new(ctx(false))
        .event(b"{not json", &mut out)
        .unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[test]
fn server_tool_blocks_are_not_forwarded() {
    let mut events = vec![
        message_start(),
        json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"x\"}"}}),
        json!({"type": "content_block_stop", "index": 0}),
    ];
    events.extend(message_end("end_turn", 5));
    let (chunks, end, _) = run(&events, false);
    end.unwrap();
    assert_eq!(chunks.len(), 2, "role and finish only: {chunks:?}");
    assert_eq!(finish_reasons_of(&chunks), vec![json!("stop")]);
}

#[test]
fn ping_and_unknown_events_write_nothing() {
    let mut stream = ChatStream::new(ctx(false));
    let mut out = Vec::new();
    stream.event(br#"{"type":"ping"}"#, &mut out).unwrap();
    stream
        .event(br#"{"type":"something_new","x":1}"#, &mut out)
        .unwrap();
    assert!(out.is_empty());
    assert_eq!(stream.usage(), None);
}
