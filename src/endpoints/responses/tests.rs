use serde_json::{Map, Value, json};

use super::request::{chat_body, dropped_tools, input_items};
use super::skeleton;
use super::stream::{ResponsesStream, whole};
use crate::providers::chunks::FromChunks;

fn request(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn chat(v: Value, history: &[Value]) -> Value {
    let mut r = request(v);
    let input = input_items(&mut r).unwrap();
    serde_json::from_slice(&chat_body(&r, history, &input, false).unwrap()).unwrap()
}

#[test]
fn a_conversation_becomes_chat_messages() {
    let c = chat(
        json!({
            "model": "m", "instructions": "Be brief.", "max_output_tokens": 50,
            "reasoning": {"effort": "low"}, "parallel_tool_calls": false,
            "input": [
                {"role": "developer", "content": "Use tools."},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Look:"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hmm."}]},
                {"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{\"d\":\"/\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "ls", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a b"},
                {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "c"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
            ],
            "tools": [{"type": "function", "name": "ls", "parameters": {"type": "object"}, "strict": true},
                      {"type": "web_search"}, {"type": "namespace", "name": "x", "tools": []}],
            "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}}},
        }),
        &[],
    );
    let m = &c["messages"];
    assert_eq!(m[0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(m[1], json!({"role": "system", "content": "Use tools."}));
    assert_eq!(
        m[2]["content"][1]["image_url"],
        json!({"url": "data:image/png;base64,AA", "detail": "low"})
    );
    assert_eq!(m[3]["role"], "assistant");
    assert_eq!(m[3]["reasoning_content"], "Hmm.");
    assert_eq!(m[3]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        m[3]["tool_calls"][0]["function"]["arguments"],
        "{\"d\":\"/\"}"
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "a b"})
    );
    assert_eq!(m[5]["content"], "c");
    assert_eq!(m[6], json!({"role": "assistant", "content": "Done."}));
    assert_eq!(c["max_completion_tokens"], 50);
    assert_eq!(c["reasoning_effort"], "low");
    assert_eq!(c["parallel_tool_calls"], false);
    assert_eq!(c["tools"].as_array().unwrap().len(), 1, "only functions go");
    assert_eq!(c["tools"][0]["function"]["strict"], true);
    assert_eq!(c["response_format"]["json_schema"]["name"], "s");
    let r = request(
        json!({"tools": [{"type": "web_search"}, {"type": "web_search"}, {"type": "na\nme"}]}),
    );
    assert_eq!(dropped_tools(&r).unwrap(), vec!["web_search", "na_me"]);
}

#[test]
fn history_comes_before_the_new_input() {
    let history = vec![
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}),
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]}),
    ];
    let c = chat(json!({"model": "m", "input": "Again"}), &history);
    let roles: Vec<&str> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(c["messages"][2]["content"][0]["text"], "Again");
}

#[test]
fn what_chat_cannot_express_is_refused_by_name() {
    let refused = |v: Value| {
        let mut r = request(v);
        let input = input_items(&mut r)?;
        chat_body(&r, &[], &input, false).map(|_| ())
    };
    let e = refused(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
        .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input[0]"));
    let e = refused(
        json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}],
        "tool_choice": {"type": "web_search"}}),
    )
    .unwrap_err();
    assert!(e.message.contains("does not have"), "{}", e.message);
    let e = refused(
        json!({"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "nope"}}),
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("tool_choice.name"));
    let e = refused(json!({"model": "m", "input": "x", "background": true})).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("background"));
    assert!(refused(json!({"model": "m", "input": []})).is_err());
    assert!(refused(json!({"model": "m"})).is_err());
}

/// The events of a stream, as (type, data) pairs.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8_lossy(out)
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap()
                .to_string();
            let data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect()
}

#[test]
fn chunks_become_the_exact_event_sequence() {
    let start = skeleton(
        &request(json!({"model": "m", "input": "x"})),
        "resp_abc",
        "m",
        1,
    );
    let mut s = ResponsesStream::new(start);
    let mut out = Vec::new();
    let frames = [
        json!({"choices": [{"delta": {"reasoning_content": "Think"}}]}),
        json!({"choices": [{"delta": {"content": "Hel"}}]}),
        json!({"choices": [{"delta": {"content": "lo"}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "ls", "arguments": "{\"a\""}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}}}),
    ];
    for f in frames {
        s.frames(format!("data: {f}\n\n").as_bytes(), &mut out)
            .unwrap();
    }
    s.finish(&mut out);
    let events = events(&out);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i as u64);
    }
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][1]["content"][0]["text"], "Hello");
    assert_eq!(done["output"][2]["call_id"], "call_9");
    assert_eq!(done["output"][2]["arguments"], "{\"a\":1}");
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 4);
    assert_eq!(
        done["usage"]["output_tokens_details"]["reasoning_tokens"],
        2
    );
    assert_eq!(done["usage"]["total_tokens"], 15);
    assert_eq!(events[10].1["item_id"], done["output"][1]["id"]);
    assert_eq!(events[10].1["output_index"], 1);
}

#[test]
fn a_whole_reply_is_the_same_response() {
    let chat = json!({"choices": [{"message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
    let start = skeleton(
        &request(json!({"model": "m", "input": "x", "store": false})),
        "resp_z",
        "m",
        1,
    );
    let (r, usage) = whole(chat.to_string().as_bytes(), start).unwrap();
    let r = r.response();
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
    assert_eq!(r["store"], false);
    assert_eq!(usage.unwrap().prompt_tokens, 3);
}
