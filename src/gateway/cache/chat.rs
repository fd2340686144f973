//! Chat completions in both shapes: a whole reply replayed as a well-formed stream, and a stream
//! gathered into the whole reply it stands for, so that either serves the other.

use serde_json::{Map, Value, json};

use crate::providers::openai_types::Usage;
use crate::providers::sse;

/// A whole chat completion as the chunks of a stream: per choice its role, reasoning, content and
/// tool calls, then its finish reason; the usage chunk when the client asked for it; `[DONE]`.
pub fn whole_to_stream(whole: &[u8], include_usage: bool) -> Option<Vec<u8>> {
    let Value::Object(reply) = serde_json::from_slice::<Value>(whole).ok()? else {
        return None;
    };
    let mut head = head_of(&reply);
    head.insert("object".into(), "chat.completion.chunk".into());
    let mut out = Vec::with_capacity(whole.len() * 2);
    let mut chunk = |choices: Value, usage: Option<&Value>| {
        let mut c = head.clone();
        c.insert("choices".into(), choices);
        if let Some(u) = usage {
            c.insert("usage".into(), u.clone());
        }
        sse::write_raw(
            &mut out,
            &serde_json::to_vec(&c).expect("a chunk serialises"),
        );
    };
    for choice in reply.get("choices")?.as_array()? {
        let index = choice.get("index").cloned().unwrap_or(json!(0));
        let message = choice.get("message").and_then(Value::as_object);
        let delta = |d: Value| json!([{ "index": index, "delta": d, "logprobs": null, "finish_reason": null }]);
        chunk(delta(json!({ "role": "assistant", "content": "" })), None);
        let text = |field: &str| {
            message
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        for field in ["reasoning_content", "content", "refusal"] {
            if let Some(t) = text(field) {
                chunk(delta(json!({ field: t })), None);
            }
        }
        if let Some(blocks) = message
            .and_then(|m| m.get("thinking_blocks"))
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        {
            chunk(delta(json!({ "thinking_blocks": indexed(blocks) })), None);
        }
        if let Some(extra) = message.and_then(|m| m.get("extra_content")) {
            chunk(delta(json!({ "extra_content": extra })), None);
        }
        if let Some(calls) = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
        {
            let calls = indexed(calls);
            if !calls.is_empty() {
                chunk(delta(json!({ "tool_calls": calls })), None);
            }
        }
        let logprobs = choice.get("logprobs").cloned().unwrap_or(Value::Null);
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        chunk(
            json!([{ "index": index, "delta": {}, "logprobs": logprobs, "finish_reason": finish }]),
            None,
        );
    }
    if include_usage && let Some(usage) = reply.get("usage").filter(|u| !u.is_null()) {
        chunk(json!([]), Some(usage));
    }
    out.extend_from_slice(sse::DONE);
    Some(out)
}

/// A list's objects as stream pieces: each with its `index`.
fn indexed(list: &[Value]) -> Vec<Value> {
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let mut item = item.clone();
            if let Value::Object(o) = &mut item {
                o.insert("index".into(), json!(i));
            }
            item
        })
        .collect()
}

/// The fields a reply and each of its chunks share.
fn head_of(object: &Map<String, Value>) -> Map<String, Value> {
    [
        "id",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
    ]
    .into_iter()
    .filter_map(|field| {
        let v = object.get(field).filter(|v| !v.is_null())?;
        Some((field.to_string(), v.clone()))
    })
    .collect()
}

/// One choice, gathered from its deltas.
#[derive(Default)]
struct Gathered {
    role: Option<Value>,
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    thinking: Vec<Map<String, Value>>,
    extra_content: Option<Value>,
    calls: Vec<Map<String, Value>>,
    logprobs: Vec<Value>,
    finish: Value,
}

fn append(to: &mut Option<String>, piece: Option<&Value>) {
    if let Some(s) = piece.and_then(Value::as_str) {
        to.get_or_insert_with(String::new).push_str(s);
    }
}

/// A chat stream's bytes (as the client received them) gathered into the whole reply; `usage`
/// stands in when the stream carried no usage chunk. `None` for a stream that is not a complete,
/// error-free chat stream.
pub fn stream_to_whole(stream: &[u8], usage: &Usage) -> Option<Vec<u8>> {
    let mut decoder = sse::SseDecoder::default();
    decoder.push(stream);
    let mut head = Map::new();
    let mut choices: Vec<(u64, Gathered)> = Vec::new();
    let mut usage_seen = None;
    let mut done = false;
    while let Ok(Some(event)) = decoder.next_event() {
        if event.data.as_slice() == b"[DONE]" {
            done = true;
            continue;
        }
        let Value::Object(chunk) = serde_json::from_slice::<Value>(&event.data).ok()? else {
            return None;
        };
        if chunk.contains_key("error") {
            return None;
        }
        if head.is_empty() {
            head = head_of(&chunk);
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage_seen = Some(u.clone());
        }
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let at = match choices.iter().position(|(i, _)| *i == index) {
                Some(at) => at,
                None => {
                    choices.push((index, Gathered::default()));
                    choices.len() - 1
                }
            };
            let g = &mut choices[at].1;
            if let Some(delta) = choice.get("delta") {
                if let Some(role) = delta.get("role").filter(|r| !r.is_null()) {
                    g.role = Some(role.clone());
                }
                append(&mut g.content, delta.get("content"));
                append(&mut g.reasoning, delta.get("reasoning_content"));
                append(&mut g.refusal, delta.get("refusal"));
                if let Some(extra) = delta.get("extra_content").filter(|e| !e.is_null()) {
                    g.extra_content = Some(extra.clone());
                }
                for piece in delta
                    .get("thinking_blocks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    gather_thinking(&mut g.thinking, piece);
                }
                for call in delta
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    gather_call(&mut g.calls, call);
                }
            }
            if let Some(content) = choice
                .pointer("/logprobs/content")
                .and_then(Value::as_array)
            {
                g.logprobs.extend(content.iter().cloned());
            }
            if let Some(f) = choice.get("finish_reason").filter(|f| !f.is_null()) {
                g.finish = f.clone();
            }
        }
    }
    if !done || choices.is_empty() {
        return None;
    }
    let mut reply = head;
    reply.insert("object".into(), "chat.completion".into());
    let choices: Vec<Value> = choices
        .into_iter()
        .map(|(index, g)| {
            let mut message = Map::new();
            message.insert("role".into(), g.role.unwrap_or_else(|| "assistant".into()));
            message.insert("content".into(), g.content.map_or(Value::Null, Value::String));
            if let Some(r) = g.reasoning {
                message.insert("reasoning_content".into(), Value::String(r));
            }
            if let Some(r) = g.refusal {
                message.insert("refusal".into(), Value::String(r));
            }
            if !g.thinking.is_empty() {
                let blocks = g.thinking.into_iter().map(Value::Object).collect();
                message.insert("thinking_blocks".into(), Value::Array(blocks));
            }
            if let Some(extra) = g.extra_content {
                message.insert("extra_content".into(), extra);
            }
            if !g.calls.is_empty() {
                let calls = g.calls.into_iter().map(Value::Object).collect();
                message.insert("tool_calls".into(), Value::Array(calls));
            }
            let logprobs = if g.logprobs.is_empty() {
                Value::Null
            } else {
                json!({ "content": g.logprobs })
            };
            json!({ "index": index, "message": message, "logprobs": logprobs, "finish_reason": g.finish })
        })
        .collect();
    reply.insert("choices".into(), Value::Array(choices));
    let usage =
        usage_seen.unwrap_or_else(|| serde_json::to_value(usage).expect("usage serialises"));
    reply.insert("usage".into(), usage);
    Some(serde_json::to_vec(&reply).expect("a reply serialises"))
}

/// A thinking block's pieces (Anthropic's signed thinking): the first gives its type, the rest
/// add to its text, signature or data.
fn gather_thinking(blocks: &mut Vec<Map<String, Value>>, piece: &Value) {
    let Some(index) = piece.get("index").and_then(Value::as_u64) else {
        return;
    };
    let index = index as usize;
    if index > 1024 {
        return;
    }
    while blocks.len() <= index {
        blocks.push(Map::new());
    }
    let block = &mut blocks[index];
    if let Some(kind) = piece.get("type").filter(|t| t.is_string()) {
        block.insert("type".into(), kind.clone());
    }
    for field in ["thinking", "signature", "data"] {
        if let Some(s) = piece.get(field).and_then(Value::as_str) {
            match block.get_mut(field) {
                Some(Value::String(now)) => now.push_str(s),
                _ => {
                    block.insert(field.into(), Value::String(s.to_string()));
                }
            }
        }
    }
}

/// A tool call's pieces: the first names it, the rest add to its arguments.
fn gather_call(calls: &mut Vec<Map<String, Value>>, piece: &Value) {
    let index = piece
        .get("index")
        .and_then(Value::as_u64)
        .unwrap_or(calls.len() as u64) as usize;
    if index > 1024 {
        return;
    }
    while calls.len() <= index {
        calls.push(Map::new());
    }
    let call = &mut calls[index];
    for field in ["id", "type", "extra_content"] {
        if let Some(v) = piece.get(field).filter(|v| !v.is_null()) {
            call.insert(field.into(), v.clone());
        }
    }
    if let Some(f) = piece.get("function") {
        let function = call
            .entry("function")
            .or_insert_with(|| json!({ "name": "", "arguments": "" }));
        if let Value::Object(function) = function {
            for field in ["name", "arguments"] {
                if let Some(s) = f.get(field).and_then(Value::as_str) {
                    let mut now = function
                        .get(field)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    now.push_str(s);
                    function.insert(field.into(), Value::String(now));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":7,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there","thinking_blocks":[{"type":"thinking","thinking":"Hmm.","signature":"EqQB"},{"type":"redacted_thinking","data":"EmwK"}],"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"},"extra_content":{"google":{"thought_signature":"c2ln"}}}]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#;

    #[test]
    fn a_whole_reply_replays_as_a_stream_and_gathers_back_to_itself() {
        let stream = whole_to_stream(WHOLE.as_bytes(), true).unwrap();
        let text = String::from_utf8(stream.clone()).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(text.contains(r#""object":"chat.completion.chunk""#));
        assert!(
            text.contains(r#""choices":[],"#) && text.contains(r#""total_tokens":8"#),
            "usage chunk: {text}"
        );
        let back = stream_to_whole(&stream, &Usage::default()).unwrap();
        let (a, b): (Value, Value) = (
            serde_json::from_str(WHOLE).unwrap(),
            serde_json::from_slice(&back).unwrap(),
        );
        assert_eq!(a, b);
        let no_usage =
            String::from_utf8(whole_to_stream(WHOLE.as_bytes(), false).unwrap()).unwrap();
        assert!(
            !no_usage.contains("total_tokens"),
            "no usage chunk unless asked: {no_usage}"
        );
    }

    #[test]
    fn a_stream_gathers_tool_call_pieces_and_takes_the_given_usage_when_it_carried_none() {
        let stream = concat!(
            "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n",
            "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":2}\"}}]}}]}\n\n",
            "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let whole: Value = serde_json::from_slice(
            &stream_to_whole(stream.as_bytes(), &Usage::new(4, 2, 0, 0)).unwrap(),
        )
        .unwrap();
        assert_eq!(whole["choices"][0]["message"]["content"], "Hi");
        assert_eq!(
            whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"x\":2}"
        );
        assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(whole["usage"]["total_tokens"], 6);
        assert_eq!(whole["object"], "chat.completion");
    }

    #[test]
    fn a_stream_without_its_end_or_with_an_error_is_not_a_whole_reply() {
        let cut =
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
        assert!(stream_to_whole(cut.as_bytes(), &Usage::default()).is_none());
        let failed =
            format!("{cut}data: {{\"error\":{{\"message\":\"boom\"}}}}\n\ndata: [DONE]\n\n");
        assert!(stream_to_whole(failed.as_bytes(), &Usage::default()).is_none());
    }
}
