use super::schema::reduce_root;
use super::*;
use crate::error::ApiError;
use crate::providers::openai_types::*;
use crate::providers::translate::ReplyContext;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn request(v: Value) -> ChatRequest {
    let mut v = v;
    v.as_object_mut()
        .unwrap()
        .entry("model")
        .or_insert(json!("gemini-2.5-flash"));
    serde_json::from_value(v).unwrap()
}

fn encode(v: Value) -> Value {
    serde_json::from_slice(&chat_request(&request(v)).unwrap()).unwrap()
}

fn encode_err(v: Value) -> ApiError {
    chat_request(&request(v)).unwrap_err()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn ctx(include_usage: bool) -> ReplyContext {
    ReplyContext {
        id: "chatcmpl-abc123".into(),
        created: 1_700_000_000,
        model: "gemini-2.5-flash".into(),
        include_usage,
    }
}

fn decode(body: Value) -> Result<(Value, Usage), ApiError> {
    chat_response(body.to_string().as_bytes(), &ctx(false))
        .map(|(bytes, usage)| (serde_json::from_slice(&bytes).unwrap(), usage))
}

/// Feeds events to a stream and returns the chunks written (finish included) and the stream.
fn run_stream(events: &[Value], include_usage: bool) -> (Vec<Value>, ChatStream) {
    let mut stream = ChatStream::new(ctx(include_usage));
    let mut out = Vec::new();
    for e in events {
        stream.event(e.to_string().as_bytes(), &mut out).unwrap();
    }
    stream.finish(&mut out).unwrap();
    (frames(&out), stream)
}

fn frames(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"));
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").expect("a data frame")).unwrap())
        .collect()
}

fn text_event(text: &str, finish: Option<&str>) -> Value {
    let mut c = json!({"content": {"role": "model", "parts": [{"text": text}]}, "index": 0});
    if let Some(f) = finish {
        c["finishReason"] = json!(f);
    }
    json!({"candidates": [c]})
}

fn usage_meta() -> Value {
    json!({"promptTokenCount": 12, "candidatesTokenCount": 20, "thoughtsTokenCount": 7, "cachedContentTokenCount": 4, "totalTokenCount": 39})
}

// ---------- urls and spec ----------

#[test]
fn spec_and_urls() {
    assert_eq!(SPEC.id, "gemini");
    assert!(matches!(SPEC.wire, Wire::Gemini));
    assert_eq!(SPEC.key_env, &["GEMINI_API_KEY"]);
    assert_eq!(
        chat_url(
            "https://generativelanguage.googleapis.com/v1beta/",
            "gemini-2.5-flash",
            false
        ),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        chat_url("http://127.0.0.1:9/v1beta", "gemini-2.5-pro", true),
        "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        chat_url("http://h/v1beta", "models/x", false),
        "http://h/v1beta/models/x:generateContent"
    );
    assert_eq!(
        embeddings_url("http://h/v1beta/", "gemini-embedding-001"),
        "http://h/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    // Whatever a model name holds stays inside its path segment.
    assert_eq!(
        chat_url("http://h/v1beta", "../../x:foo?alt=1#f%2F", false),
        "http://h/v1beta/models/..%2F..%2Fx%3Afoo%3Falt%3D1%23f%252F:generateContent"
    );
    assert_eq!(
        embeddings_url("http://h/v1beta", "a/b:c"),
        "http://h/v1beta/models/a%2Fb%3Ac:batchEmbedContents"
    );
}

// ---------- requests ----------

#[test]
fn roles_and_system_instruction() {
    let body = encode(json!({"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer "}, {"type": "text", "text": "in French."}]},
        user("Hi"),
        {"role": "assistant", "content": "Salut", "reasoning_content": "secret thoughts"},
        user("Again"),
    ]}));
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Salut"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ])
    );
    assert!(
        !body.to_string().contains("secret thoughts"),
        "reasoning_content is dropped"
    );
    assert!(body.get("generationConfig").is_none());
    assert!(body.get("tools").is_none());
    assert!(body.get("toolConfig").is_none());
}

#[test]
fn tool_round_trip_by_id() {
    let body = encode(json!({"messages": [
        user("Weather in Paris and Tokyo?"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call_a", "content": "{\"temp\": 21}"},
        user("Thanks"),
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": "[1,2]"}]},
    ]}));
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 5);
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ]})
    );
    assert_eq!(
        contents[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        ]})
    );
    assert_eq!(
        contents[3],
        json!({"role": "user", "parts": [{"text": "Thanks"}]})
    );
    // Not consecutive with the earlier tool messages: a new content; a JSON array is not an object.
    assert_eq!(
        contents[4],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "[1,2]"}}}]})
    );
}

#[test]
fn assistant_text_and_calls_share_one_turn() {
    let body = encode(json!({"messages": [
        user("q"),
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]}));
    assert_eq!(
        body["contents"][1]["parts"],
        json!([{"text": "Let me look."}, {"functionCall": {"name": "f", "args": {}}}])
    );
    assert_eq!(body["contents"][2]["role"], "user");
}

#[test]
fn unknown_tool_call_id_is_rejected() {
    let err = encode_err(
        json!({"messages": [user("q"), {"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
    );
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.param.as_deref(), Some("messages[1]"));
    assert!(err.message.contains("nope"));
    let err = encode_err(json!({"messages": [user("q"), {"role": "tool", "content": "x"}]}));
    assert_eq!(err.param.as_deref(), Some("messages[1]"));
}

#[test]
fn bad_tool_arguments_are_rejected() {
    let err = encode_err(
        json!({"messages": [user("q"), {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
    );
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        err.param.as_deref(),
        Some("messages[1].tool_calls[0].function.arguments")
    );
}

#[test]
fn images() {
    let body = encode(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?size=large", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/picture"}},
        {"type": "image_url", "image_url": {"url": "http://example.com/a/scan.PDF"}},
    ]}]}));
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?size=large"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/picture"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "http://example.com/a/scan.PDF"}},
        ])
    );
}

#[test]
fn unsupported_content_is_rejected() {
    for url in [
        "ftp://example.com/a.png",
        "data:image/png,rawbytes",
        "file:///etc/passwd",
    ] {
        let err = encode_err(json!({"messages": [user("a"), {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]}));
        assert_eq!(err.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(err.param.as_deref(), Some("messages[1]"), "{url}");
    }
    let err = encode_err(json!({"messages": [{"role": "system", "content": [
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, user("a")]}));
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
    let err = encode_err(json!({"messages": [{"role": "user", "content": null}]}));
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
    let err = encode_err(json!({"messages": [{"role": "user", "content": []}]}));
    assert_eq!(err.param.as_deref(), Some("messages[0]"));
}

#[test]
fn empty_messages_are_rejected() {
    let err = encode_err(json!({"messages": []}));
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.kind, "invalid_request_error");
    assert_eq!(err.param.as_deref(), Some("messages"));
    let err =
        encode_err(json!({"messages": [{"role": "system", "content": "only a system prompt"}]}));
    assert_eq!(err.param.as_deref(), Some("messages"));
}

#[test]
fn tools_and_schema_reduction() {
    let body = encode(json!({"messages": [user("q")], "tools": [
        {"type": "function", "function": {"name": "search", "description": "Search things", "strict": true, "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "Args",
            "additionalProperties": false,
            "properties": {
                "query": {"type": "string", "description": "What", "default": "x", "examples": ["a"], "minLength": 1},
                "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 50, "format": "int32"},
                "when": {"type": "string", "format": "date-time"},
                "email": {"type": "string", "format": "email"},
                "mode": {"type": "string", "enum": ["fast", "slow"]},
                "tags": {"type": "array", "items": {"type": "string", "title": "Tag"}, "minItems": 1, "maxItems": 5},
                "filter": {"anyOf": [{"type": "object", "properties": {"k": {"type": "string"}}, "additionalProperties": false}, {"type": "null"}]},
                "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "level": {"type": "integer", "enum": [1, 2, 3]},
                "opt": {"type": "string", "nullable": true},
            },
            "required": ["query", "ghost"],
        }}},
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "noargs"}},
    ]}));
    let decls = body["tools"][0]["functionDeclarations"].as_array().unwrap();
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
    assert_eq!(decls.len(), 3);
    assert_eq!(decls[0]["name"], "search");
    assert_eq!(decls[0]["description"], "Search things");
    assert_eq!(
        decls[0]["parameters"],
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What"},
                "limit": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 50, "format": "int32"},
                "when": {"type": "string", "format": "date-time"},
                "email": {"type": "string"},
                "mode": {"type": "string", "enum": ["fast", "slow"]},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
                "filter": {"type": "object", "properties": {"k": {"type": "string"}}, "nullable": true},
                "either": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                "level": {"type": "integer"},
                "opt": {"type": "string", "nullable": true},
            },
            "required": ["query"],
        })
    );
    assert_eq!(
        decls[1],
        json!({"name": "ping"}),
        "an object without properties is left out"
    );
    assert_eq!(decls[2], json!({"name": "noargs"}));
    for banned in [
        "additionalProperties",
        "$schema",
        "strict",
        "default",
        "examples",
        "title",
        "minLength",
    ] {
        assert!(
            !body["tools"].to_string().contains(banned),
            "{banned} must be dropped"
        );
    }
}

#[test]
fn schema_refs_are_inlined_or_dropped() {
    let schema = json!({
        "type": "object",
        "$defs": {
            "Address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "Node": {"type": "object", "properties": {"value": {"type": "string"}, "next": {"$ref": "#/$defs/Node"}}},
        },
        "definitions": {"Color": {"type": "string", "enum": ["red", "blue"]}},
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where I live"},
            "color": {"allOf": [{"$ref": "#/definitions/Color"}], "description": "Pick one"},
            "list": {"$ref": "#/$defs/Node"},
            "remote": {"$ref": "https://example.com/schema.json", "description": "External"},
        },
    });
    let reduced = Value::Object(reduce_root(&schema));
    assert!(reduced.get("$defs").is_none() && reduced.get("definitions").is_none());
    assert_eq!(
        reduced["properties"]["home"],
        json!({"type": "object", "description": "Where I live", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    );
    assert_eq!(
        reduced["properties"]["color"],
        json!({"type": "string", "enum": ["red", "blue"], "description": "Pick one"})
    );
    // The recursive reference is inlined once, then dropped.
    assert_eq!(
        reduced["properties"]["list"],
        json!({"type": "object", "properties": {"value": {"type": "string"}, "next": {}}})
    );
    assert_eq!(
        reduced["properties"]["remote"],
        json!({"description": "External"})
    );
    assert!(!reduced.to_string().contains("$ref"));
}

#[test]
fn schema_type_shorthands() {
    let r = |v: Value| Value::Object(reduce_root(&v));
    assert_eq!(
        r(json!({"type": ["string", "null"]})),
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(
        r(json!({"type": ["string", "integer"]})),
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    );
    assert_eq!(
        r(json!({"enum": ["a", "b", null]})),
        json!({"type": "string", "enum": ["a", "b"], "nullable": true})
    );
    assert_eq!(
        r(json!({"type": "string", "const": "only"})),
        json!({"type": "string", "enum": ["only"]})
    );
    assert_eq!(
        r(json!({"type": "string", "enum": [1, "b"]})),
        json!({"type": "string", "enum": ["1", "b"]})
    );
    assert_eq!(
        r(json!({"oneOf": [{"type": "string"}, {"type": "null"}]})),
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(
        r(json!({"properties": {"a": {"type": "number", "format": "double"}}})),
        json!({"type": "object", "properties": {"a": {"type": "number", "format": "double"}}})
    );
    assert_eq!(
        r(json!({"items": {"type": "boolean"}})),
        json!({"type": "array", "items": {"type": "boolean"}})
    );
    assert_eq!(r(json!(true)), json!({}));
}

#[test]
fn non_function_tools_are_rejected() {
    let err = encode_err(
        json!({"messages": [user("q")], "tools": [{"type": "code_interpreter", "function": {"name": "x"}}]}),
    );
    assert_eq!(err.param.as_deref(), Some("tools[0]"));
}

#[test]
fn tool_choice_modes() {
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let mode = |choice: Value| {
        encode(json!({"messages": [user("q")], "tools": tools, "tool_choice": choice}))["toolConfig"].clone()
    };
    assert_eq!(
        mode(json!("none")),
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
    assert_eq!(
        mode(json!("auto")),
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    assert_eq!(
        mode(json!("required")),
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );
    assert_eq!(
        mode(json!({"type": "function", "function": {"name": "get_weather"}})),
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    let err =
        encode_err(json!({"messages": [user("q")], "tools": tools, "tool_choice": "sometimes"}));
    assert_eq!(err.param.as_deref(), Some("tool_choice"));
}

#[test]
fn response_formats() {
    let config = |model: &str, format: Value| {
        encode(json!({"model": model, "messages": [user("q")], "response_format": format}))
                ["generationConfig"]
                .clone()
    };
    let person = json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
            "type": "object", "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
            "required": ["name", "age"]}}});
    for model in ["gemini-2.5-flash", "gemini-2.0-flash"] {
        assert_eq!(
            config(model, json!({"type": "json_object"})),
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(
            config(
                model,
                json!({"type": "json_schema", "json_schema": {"name": "free"}})
            ),
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(
            config(
                model,
                json!({"type": "json_schema", "json_schema": {"name": "free", "schema": {}}})
            ),
            json!({"responseMimeType": "application/json"})
        );
        assert_eq!(config(model, json!({"type": "text"})), Value::Null);
    }
    assert_eq!(
        config("gemini-2.0-flash", person.clone()),
        json!({"responseMimeType": "application/json", "responseSchema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "nullable": true}},
                "required": ["name", "age"]}})
    );
    assert_eq!(
        config("gemini-2.5-flash", person.clone()),
        json!({"responseMimeType": "application/json",
                "responseJsonSchema": person["json_schema"]["schema"]})
    );
}

#[test]
fn full_json_schema_reaches_the_models_that_take_it() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "additionalProperties": false,
        "$defs": {"city": {"type": "string", "minLength": 1}},
        "properties": {
            "cities": {"type": "array", "items": {"$ref": "#/$defs/city"}, "minItems": 1},
            "unit": {"anyOf": [{"const": "C"}, {"const": "F"}]}
        },
        "required": ["cities", "unit"]
    });
    let format = json!({"type": "json_schema", "json_schema": {"name": "w", "strict": true, "schema": schema}});
    for model in [
        "gemini-2.5-pro",
        "models/gemini-2.5-flash-lite",
        "gemini-3-pro-preview",
        "gemini-flash-latest",
    ] {
        let config = encode(
            json!({"model": model, "messages": [user("q")], "response_format": format}),
        )["generationConfig"]
            .clone();
        assert_eq!(config["responseJsonSchema"], schema, "{model}");
        assert!(config.get("responseSchema").is_none(), "{model}: {config}");
    }
    for model in [
        "gemini-2.0-flash",
        "models/gemini-2.0-flash-lite",
        "gemini-1.5-pro",
    ] {
        let config = encode(
            json!({"model": model, "messages": [user("q")], "response_format": format}),
        )["generationConfig"]
            .clone();
        assert!(
            config.get("responseJsonSchema").is_none(),
            "{model}: {config}"
        );
        let reduced = &config["responseSchema"];
        assert!(
            reduced.get("additionalProperties").is_none(),
            "{model}: {reduced}"
        );
        assert_eq!(
            reduced["properties"]["cities"]["items"]["type"], "string",
            "{model}"
        );
        assert_eq!(config["responseMimeType"], "application/json");
    }
}

#[test]
fn generation_config() {
    let body = encode(json!({"messages": [user("q")],
            "temperature": 0.5, "top_p": 0.9, "max_tokens": 100, "max_completion_tokens": 200, "n": 2,
            "stop": ["END", "STOP"], "seed": 42, "presence_penalty": 0.1, "frequency_penalty": 0.2,
            "logprobs": true, "top_logprobs": 3, "parallel_tool_calls": false, "user": "u1"}));
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 200, "candidateCount": 2,
                "stopSequences": ["END", "STOP"], "seed": 42, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
                "responseLogprobs": true, "logprobs": 3})
    );
    let body = encode(
        json!({"messages": [user("q")], "max_tokens": 100, "stop": "END", "logprobs": false}),
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 100, "stopSequences": ["END"]})
    );
}

#[test]
fn reasoning_effort() {
    let thinking = |effort: &str| {
        encode(json!({"messages": [user("q")], "reasoning_effort": effort}))["generationConfig"]
                ["thinkingConfig"]
                .clone()
    };
    assert_eq!(thinking("none"), json!({"thinkingBudget": 0}));
    assert_eq!(thinking("minimal"), json!({"thinkingBudget": 0}));
    assert_eq!(
        thinking("low"),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(
        thinking("medium"),
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );
    assert_eq!(
        thinking("high"),
        json!({"thinkingBudget": 24576, "includeThoughts": true})
    );
    let err = encode_err(json!({"messages": [user("q")], "reasoning_effort": "extreme"}));
    assert_eq!(err.param.as_deref(), Some("reasoning_effort"));
}

// ---------- replies ----------

#[test]
fn text_reply_with_thoughts_and_usage() {
    let (reply, usage) = decode(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Thinking...", "thought": true},
            {"text": "Hello"}, {"text": " world", "thoughtSignature": "abc"},
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage_meta(),
        "modelVersion": "gemini-2.5-flash-001",
    }))
    .unwrap();
    assert_eq!(reply["id"], "chatcmpl-abc123");
    assert_eq!(reply["object"], "chat.completion");
    assert_eq!(reply["created"], 1_700_000_000);
    assert_eq!(reply["model"], "gemini-2.5-flash");
    assert_eq!(
        reply["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello world", "reasoning_content": "Thinking...",
                    "extra_content": {"google": {"thought_signature": "abc"}}},
                "finish_reason": "stop", "logprobs": null}])
    );
    assert_eq!(usage, Usage::new(12, 27, 4, 7));
    assert_eq!(
        reply["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 27, "total_tokens": 39,
                "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 7}})
    );
}

#[test]
fn function_calls_become_tool_calls() {
    let (reply, _) = decode(
        json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
            {"functionCall": {"name": "now"}},
        ]}, "finishReason": "STOP"}]}),
    )
    .unwrap();
    let message = &reply["choices"][0]["message"];
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(
        calls[0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\":\"Tokyo\"}");
    assert_eq!(calls[2]["function"]["arguments"], "{}");
    let ids: std::collections::HashSet<&str> =
        calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| id.starts_with("call_abc123_")));
    assert!(reply.get("usage").is_none(), "no usageMetadata, no usage");
}

#[test]
fn tool_call_ids_round_trip_into_a_request() {
    let (reply, _) = decode(json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}]}))
        .unwrap();
    let assistant = reply["choices"][0]["message"].clone();
    let id = assistant["tool_calls"][0]["id"].clone();
    let body = encode(
        json!({"messages": [user("q"), assistant, {"role": "tool", "tool_call_id": id, "content": "sunny"}]}),
    );
    assert_eq!(
        body["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
    );
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}})
    );
}

#[test]
fn finish_reasons() {
    let cases = [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
    ];
    for (gemini, openai) in cases {
        let (reply, _) = decode(text_event("x", Some(gemini))).unwrap();
        assert_eq!(reply["choices"][0]["finish_reason"], openai, "{gemini}");
    }
    // A safety stop with no content still answers a (empty) message.
    let (reply, _) =
        decode(json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]})).unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "");
    assert_eq!(reply["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn malformed_function_call_is_an_error() {
    let err = decode(json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}], "usageMetadata": usage_meta()}))
            .unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        err.message,
        "Gemini: the model produced a malformed function call (MALFORMED_FUNCTION_CALL)"
    );
}

#[test]
fn blocked_prompt_is_a_400() {
    let err = decode(json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 12}})).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.message, "Gemini blocked the prompt: SAFETY");
    assert_eq!(err.code.as_deref(), Some("content_filter"));
    let err = decode(json!({"candidates": []})).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[test]
fn bad_bodies_are_bad_gateway() {
    assert_eq!(
        chat_response(b"not json", &ctx(false)).unwrap_err().status,
        StatusCode::BAD_GATEWAY
    );
    let err = decode(json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})).unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    assert!(err.message.contains("overloaded"));
}

#[test]
fn several_candidates() {
    let (reply, usage) = decode(json!({"candidates": [
            {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP", "index": 1},
            {"content": {"parts": [{"text": "C"}]}, "finishReason": "MAX_TOKENS", "index": 2},
        ], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 9}}))
        .unwrap();
    let choices = reply["choices"].as_array().unwrap();
    assert_eq!(
        choices
            .iter()
            .map(|c| c["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(choices[0]["finish_reason"], "stop");
    assert_eq!(choices[1]["finish_reason"], "tool_calls");
    assert_eq!(choices[2]["finish_reason"], "length");
    assert_eq!(usage, Usage::new(3, 9, 0, 0));
}

// ---------- streams ----------

#[test]
fn stream_text_without_usage_chunk() {
    let mut last = text_event(" world", Some("STOP"));
    last["usageMetadata"] =
        json!({"promptTokenCount": 12, "candidatesTokenCount": 2, "totalTokenCount": 14});
    let (chunks, stream) = run_stream(
        &[
            text_event("Hello", None),
            json!({"usageMetadata": usage_meta()}),
            last,
        ],
        false,
    );
    assert_eq!(chunks.len(), 2);
    for c in &chunks {
        assert_eq!(c["id"], "chatcmpl-abc123");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["created"], 1_700_000_000);
        assert_eq!(c["model"], "gemini-2.5-flash");
        assert!(c.get("usage").is_none());
    }
    assert_eq!(
        chunks[0]["choices"],
        json!([{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": null}])
    );
    assert_eq!(
        chunks[1]["choices"],
        json!([{"index": 0, "delta": {"content": " world"}, "finish_reason": "stop"}])
    );
    // The latest usageMetadata wins.
    assert_eq!(stream.usage(), Some(Usage::new(12, 2, 0, 0)));
}

#[test]
fn stream_usage_chunk_when_asked() {
    let mut last = text_event("!", Some("STOP"));
    last["usageMetadata"] = usage_meta();
    let (chunks, stream) = run_stream(&[text_event("Hi", None), last], true);
    assert_eq!(chunks.len(), 3);
    assert!(chunks[..2].iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[2]["choices"], json!([]));
    assert_eq!(chunks[2]["object"], "chat.completion.chunk");
    assert_eq!(
        chunks[2]["usage"],
        serde_json::to_value(Usage::new(12, 27, 4, 7)).unwrap()
    );
    assert_eq!(stream.usage(), Some(Usage::new(12, 27, 4, 7)));
}

#[test]
fn stream_without_usage_metadata_writes_no_usage_chunk() {
    let (chunks, stream) = run_stream(&[text_event("Hi", Some("STOP"))], true);
    assert_eq!(chunks.len(), 1);
    assert_eq!(stream.usage(), None);
}

#[test]
fn stream_reasoning() {
    let thought = json!({"candidates": [{"content": {"parts": [{"text": "Hmm.", "thought": true}]}, "index": 0}]});
    let (chunks, _) = run_stream(&[thought, text_event("Answer", Some("STOP"))], false);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "reasoning_content": "Hmm."})
    );
    assert_eq!(
        chunks[1]["choices"][0]["delta"],
        json!({"content": "Answer"})
    );
}

#[test]
fn stream_tool_calls() {
    let call =
        |city: &str| json!({"functionCall": {"name": "get_weather", "args": {"city": city}}});
    let events = [
        json!({"candidates": [{"content": {"role": "model", "parts": [call("Paris")]}, "index": 0}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [call("Tokyo"), call("Oslo")]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": usage_meta()}),
    ];
    let (chunks, _) = run_stream(&events, true);
    assert_eq!(chunks.len(), 3);
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"]["role"], "assistant");
    assert_eq!(first["finish_reason"], Value::Null);
    let deltas: Vec<&Value> = chunks[..2]
        .iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .unwrap()
                .iter()
        })
        .collect();
    assert_eq!(
        deltas
            .iter()
            .map(|d| d["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(
        deltas
            .iter()
            .all(|d| d["type"] == "function" && d["function"]["name"] == "get_weather")
    );
    assert_eq!(deltas[1]["function"]["arguments"], "{\"city\":\"Tokyo\"}");
    let ids: std::collections::HashSet<&str> =
        deltas.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[2]["choices"], json!([]));
}

#[test]
fn stream_several_choices_finish_exactly_once() {
    let events = [
        json!({"candidates": [
            {"content": {"parts": [{"text": "A1"}]}, "index": 0},
            {"content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]}, "index": 1},
        ]}),
        json!({"candidates": [
            {"content": {"parts": [{"text": "A2"}]}, "finishReason": "MAX_TOKENS", "index": 0},
            {"content": {"parts": [{"functionCall": {"name": "g", "args": {}}}]}, "index": 1},
        ]}),
        // Choice 0 already finished: anything more for it is ignored.
        json!({"candidates": [
            {"content": {"parts": [{"text": "late"}]}, "finishReason": "STOP", "index": 0},
            {"finishReason": "STOP", "index": 1},
        ]}),
    ];
    let (chunks, _) = run_stream(&events, false);
    let mut finishes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut roles: BTreeMap<u64, usize> = BTreeMap::new();
    let mut call_indices = Vec::new();
    for chunk in &chunks {
        for choice in chunk["choices"].as_array().unwrap() {
            let index = choice["index"].as_u64().unwrap();
            if let Some(f) = choice["finish_reason"].as_str() {
                finishes.entry(index).or_default().push(f.into());
            }
            if choice["delta"].get("role").is_some() {
                *roles.entry(index).or_default() += 1;
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                call_indices.push(call["index"].as_u64().unwrap());
            }
            assert_ne!(choice["delta"]["content"], "late");
        }
    }
    assert_eq!(finishes[&0], vec!["length"]);
    assert_eq!(finishes[&1], vec!["tool_calls"]);
    assert_eq!(roles, BTreeMap::from([(0, 1), (1, 1)]));
    assert_eq!(call_indices, vec![0, 1]);
    // The finish-only delta carries no content.
    assert_eq!(
        chunks[2]["choices"],
        json!([{"index": 1, "delta": {}, "finish_reason": "tool_calls"}])
    );
}

#[test]
fn stream_safety_and_length() {
    let events = [
        text_event("Some", None),
        json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]}),
    ];
    let (chunks, _) = run_stream(&events, false);
    assert_eq!(
        chunks[1]["choices"],
        json!([{"index": 0, "delta": {}, "finish_reason": "content_filter"}])
    );
    let (chunks, _) = run_stream(&[text_event("Cut", Some("MAX_TOKENS"))], false);
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
}

#[test]
fn stream_errors() {
    let mut stream = ChatStream::new(ctx(true));
    let mut out = Vec::new();
    stream
        .event(text_event("a", None).to_string().as_bytes(), &mut out)
        .unwrap();
    let malformed =
        json!({"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "index": 0}]});
    let err = stream
        .event(malformed.to_string().as_bytes(), &mut out)
        .unwrap_err();
    assert_eq!(err, malformed_call());

    let mut stream = ChatStream::new(ctx(true));
    let blocked = json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}});
    let err = stream
        .event(blocked.to_string().as_bytes(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.message, "Gemini blocked the prompt: PROHIBITED_CONTENT");
    assert_eq!(err.code.as_deref(), Some("content_filter"));

    let mut stream = ChatStream::new(ctx(false));
    assert_eq!(
        stream
            .event(b"{not json", &mut Vec::new())
            .unwrap_err()
            .status,
        StatusCode::BAD_GATEWAY
    );
    let error = json!({"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}});
    assert_eq!(
        stream
            .event(error.to_string().as_bytes(), &mut Vec::new())
            .unwrap_err()
            .status,
        StatusCode::BAD_GATEWAY
    );
}

#[test]
fn stream_ending_without_finish_reason_is_an_error() {
    let mut stream = ChatStream::new(ctx(true));
    let mut out = Vec::new();
    stream
        .event(text_event("a", None).to_string().as_bytes(), &mut out)
        .unwrap();
    out.clear();
    assert_eq!(
        stream.finish(&mut out).unwrap_err().status,
        StatusCode::BAD_GATEWAY
    );
    assert!(out.is_empty());
    let mut empty = ChatStream::new(ctx(true));
    assert!(empty.finish(&mut out).is_err());
}

#[test]
fn stream_ignores_blank_and_usage_only_events() {
    let mut stream = ChatStream::new(ctx(true));
    let mut out = Vec::new();
    stream.event(b"  ", &mut out).unwrap();
    stream
        .event(
            json!({"usageMetadata": usage_meta()})
                .to_string()
                .as_bytes(),
            &mut out,
        )
        .unwrap();
    stream
        .event(
            json!({"candidates": [{"content": {"parts": [{"text": ""}]}, "index": 0}]})
                .to_string()
                .as_bytes(),
            &mut out,
        )
        .unwrap();
    // The empty text still opens the choice with its role.
    let chunks = frames(&out);
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant"})
    );
    assert_eq!(stream.usage(), Some(Usage::new(12, 27, 4, 7)));
}

// ---------- errors and embeddings ----------

#[test]
fn error_messages() {
    let body = json!({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}});
    assert_eq!(
        error_message(body.to_string().as_bytes()).as_deref(),
        Some("API key not valid.")
    );
    let array = json!([{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}]);
    assert_eq!(
        error_message(array.to_string().as_bytes()).as_deref(),
        Some("Quota exceeded")
    );
    let status_only = json!({"error": {"code": 500, "status": "INTERNAL"}});
    assert_eq!(
        error_message(status_only.to_string().as_bytes()).as_deref(),
        Some("INTERNAL")
    );
    assert_eq!(error_message(b"<html>oops</html>"), None);
    assert_eq!(error_message(b"{\"candidates\":[]}"), None);
}

#[test]
fn embeddings() {
    let req: EmbeddingRequest =
            serde_json::from_value(json!({"model": "gemini/gemini-embedding-001", "input": ["hello", "world!"], "dimensions": 8})).unwrap();
    let body: Value =
        serde_json::from_slice(&embeddings_request(&req, "gemini-embedding-001").unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "world!"}]}, "outputDimensionality": 8},
        ]})
    );
    assert_eq!(estimate_embedding_tokens(&req), 3); // ceil(11 / 4)

    let one: EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": "hi"})).unwrap();
    let body: Value = serde_json::from_slice(&embeddings_request(&one, "m").unwrap()).unwrap();
    assert!(body["requests"][0].get("outputDimensionality").is_none());
    let none: EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": []})).unwrap();
    assert_eq!(
        embeddings_request(&none, "m").unwrap_err().param.as_deref(),
        Some("input")
    );

    let reply = json!({"embeddings": [{"values": [0.5, -0.25]}, {"values": [1.0, 0.0]}]});
    let (bytes, usage, estimated) =
        embeddings_response(reply.to_string().as_bytes(), "gemini-embedding-001").unwrap();
    let list: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        list,
        json!({"object": "list", "model": "gemini-embedding-001",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}, {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]}],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    );
    assert_eq!(usage.prompt_tokens, 0);
    assert!(estimated);
    assert_eq!(
        embeddings_response(b"{}", "m").unwrap_err().status,
        StatusCode::BAD_GATEWAY
    );
}
