use serde_json::{Map, Value, json};

use super::reply::message;
use super::request::chat_body;
use super::stream::MessagesStream;
use crate::providers::chunks::FromChunks;

fn chat(body: Value, stream: bool) -> Value {
    let body: Map<String, Value> = serde_json::from_value(body).unwrap();
    serde_json::from_slice(&chat_body(&body, stream).unwrap()).unwrap()
}

fn refused(body: Value) -> (String, Option<String>) {
    let body: Map<String, Value> = serde_json::from_value(body).unwrap();
    let e = chat_body(&body, false).unwrap_err();
    assert_eq!(e.status, 400);
    (e.message, e.param)
}

#[test]
fn a_whole_conversation_becomes_chat_messages() {
    let c = chat(
        json!({
            "model": "m", "max_tokens": 50, "stop_sequences": ["END"], "temperature": 0.2,
            "metadata": {"user_id": "u-1"},
            "system": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Hmm.", "signature": "s"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ]},
                {"role": "user", "content": [
                    {"type": "text", "text": "Here:"},
                    {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                    {"type": "tool_result", "tool_use_id": "t2", "is_error": true,
                     "content": [{"type": "text", "text": "boom"}]},
                ]},
                {"role": "system", "content": "Late system note."},
            ],
        }),
        true,
    );
    assert_eq!(c["max_completion_tokens"], 50);
    assert_eq!(c["stop"], json!(["END"]));
    assert_eq!(c["temperature"], 0.2);
    assert_eq!(c["user"], "u-1");
    assert_eq!(c["stream"], true);
    assert_eq!(c["stream_options"]["include_usage"], true);
    let m = c["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "One.\n\nTwo."}));
    let parts = m[1]["content"].as_array().unwrap();
    assert_eq!(parts[1]["image_url"]["url"], "data:image/jpeg;base64,QUJD");
    assert_eq!(parts[2]["image_url"]["url"], "https://x.test/a.png");
    assert_eq!(parts[3], json!({"type": "text", "text": "notes"}));
    assert_eq!(m[2]["content"], "Calling.");
    assert_eq!(m[2]["reasoning_content"], "Hmm.");
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
    // Tool results first, right after the calls; the user's own text after them.
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "t1", "content": "ok"})
    );
    assert_eq!(m[4]["content"], "Error: boom");
    assert_eq!(m[5]["role"], "user");
    assert_eq!(
        m[6],
        json!({"role": "system", "content": "Late system note."})
    );
}

#[test]
fn tools_choice_and_thinking_translate() {
    let c = chat(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 20000}}),
        false,
    );
    assert_eq!(
        c["tools"][0],
        json!({"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}})
    );
    assert_eq!(c["tool_choice"], "required");
    assert_eq!(c["parallel_tool_calls"], false);
    assert_eq!(c["reasoning_effort"], "high");
    assert!(c.get("stream").is_none());
    let named = chat(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tool_choice": {"type": "tool", "name": "f"}, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
        false,
    );
    assert_eq!(named["tool_choice"]["function"]["name"], "f");
    assert_eq!(named["reasoning_effort"], "low");
}

#[test]
fn what_chat_completions_cannot_carry_is_refused_by_name() {
    let (_, param) = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    );
    assert_eq!(param.as_deref(), Some("tools[0]"));
    let (_, param) = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]}),
    );
    assert_eq!(param.as_deref(), Some("messages[0].content[0].source"));
    let (_, param) = refused(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(param.as_deref(), Some("messages[0].role"));
    let (_, param) = refused(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}),
    );
    assert_eq!(param.as_deref(), Some("messages[0].content[0]"));
}

fn frames(chunks: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(format!("data: {c}\n\n").as_bytes());
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn events(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, data) = f.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(name.strip_prefix("event: ").unwrap(), data["type"]);
            data
        })
        .collect()
}

#[test]
fn chunks_become_blocks_in_order_with_the_stop_reason_and_usage() {
    let delta = |d: Value| json!({"choices": [{"index": 0, "delta": d, "finish_reason": null}]});
    let chunks = [
        delta(json!({"role": "assistant", "reasoning_content": "Think"})),
        delta(json!({"content": "Hel"})),
        delta(json!({"content": "lo"})),
        delta(
            json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}),
        ),
        delta(json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})),
        delta(
            json!({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}),
        ),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 4}}}),
    ];
    let mut s = MessagesStream::new("msg_1".into(), "m".into());
    let mut out = Vec::new();
    s.frames(&frames(&chunks), &mut out).unwrap();
    s.finish(&mut out);
    let e = events(&out);
    let kinds: Vec<&str> = e.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "message_start");
    assert_eq!(e[1]["content_block"]["type"], "thinking");
    let starts: Vec<(u64, &str)> = e
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["content_block"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        starts,
        [
            (0, "thinking"),
            (1, "text"),
            (2, "tool_use"),
            (3, "tool_use")
        ]
    );
    let stops = kinds.iter().filter(|k| **k == "content_block_stop").count();
    assert_eq!(stops, 4, "every block closed");
    let json: String = e
        .iter()
        .filter(|e| e["index"] == 2)
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(json, "{\"a\":1}");
    let last = &e[e.len() - 2];
    assert_eq!(last["delta"]["stop_reason"], "tool_use");
    assert_eq!(last["usage"]["input_tokens"], 6);
    assert_eq!(last["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(last["usage"]["output_tokens"], 7);
    assert_eq!(kinds[kinds.len() - 1], "message_stop");
}

#[test]
fn a_completion_becomes_a_message() {
    let completion = json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": null, "reasoning_content": "R",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}});
    let (json, usage) = message(&serde_json::to_vec(&completion).unwrap(), "msg_1", "m").unwrap();
    let m: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(m["content"][0]["type"], "thinking");
    assert_eq!(
        m["content"][1],
        json!({"type": "tool_use", "id": "c", "name": "f", "input": {}})
    );
    assert_eq!(m["stop_reason"], "max_tokens");
    assert_eq!(m["usage"]["input_tokens"], 3);
    assert_eq!(usage.unwrap().completion_tokens, 2);
}
