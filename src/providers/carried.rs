//! Reasoning state kept through an inbound API that has no field for it: what a chat tool call
//! carries for its provider beside the call (`extra_content`: Gemini's thought signature), and
//! Anthropic's signed thinking (`thinking_blocks`) in Responses. Every client sends reasoning
//! state back exactly as it got it (the providers require that), so it rides there: in Messages,
//! a thinking block's `signature` before the tool call; in Responses, a reasoning item's
//! `encrypted_content`. Either holds `llmb1.` and base64url JSON: the call's id and extra content
//! (given back to the tool call on the way back), or the thinking blocks (given back to the
//! assistant message).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::providers::openai_types::ThinkingBlock;

const PREFIX: &str = "llmb1.";

/// The id a carrier holds for what the message itself needs back (not one of its tool calls).
pub const MESSAGE: &str = "";

/// The thinking block that carries `extra_content` for the tool call `id`.
pub fn block(id: &str, extra_content: &Value) -> Value {
    json!({"type": "thinking", "thinking": "", "signature": signature(id, extra_content)})
}

pub fn signature(id: &str, extra_content: &Value) -> String {
    encode(&json!({"id": id, "extra_content": extra_content}))
}

/// `llmb1.` and `carried` as base64url JSON.
fn encode(carried: &Value) -> String {
    let json = serde_json::to_vec(carried).expect("a JSON value serialises");
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

/// What a carrier holds, if `signature` is one.
fn decode<T: serde::de::DeserializeOwned>(signature: &str) -> Option<T> {
    let json = URL_SAFE_NO_PAD
        .decode(signature.strip_prefix(PREFIX)?)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// The tool call id and extra content a thinking block's signature carries, if it is one of these.
pub fn read(signature: &str) -> Option<(String, Value)> {
    let mut carried: Value = decode(signature)?;
    let id = carried.get("id")?.as_str()?.to_string();
    let extra = carried.get_mut("extra_content")?.take();
    extra.is_object().then_some((id, extra))
}

/// The `encrypted_content` that carries Anthropic's thinking blocks through Responses.
pub fn thinking_signature(blocks: &[ThinkingBlock]) -> String {
    encode(&json!({"thinking_blocks": blocks}))
}

/// The thinking blocks an `encrypted_content` carries, if it is one of these.
pub fn read_thinking(signature: &str) -> Option<Vec<ThinkingBlock>> {
    #[derive(serde::Deserialize)]
    struct Carried {
        thinking_blocks: Vec<ThinkingBlock>,
    }
    let carried: Carried = decode(signature)?;
    Some(carried.thinking_blocks)
}

/// A Messages body for Anthropic without the thinking blocks the gateway made to carry another
/// provider's state (a conversation that moved to Claude from another model): Anthropic would
/// refuse their signatures. A body without any is passed on as it is, after one byte search.
pub fn for_anthropic(body: Bytes) -> Result<Bytes, crate::error::ApiError> {
    if memchr::memmem::find(&body, PREFIX.as_bytes()).is_none() {
        return Ok(body);
    }
    let mut request: serde_json::Map<String, Value> = crate::error::parse_json(&body)?;
    let carrier = |block: &Value| {
        block["type"] == "thinking"
            && block["signature"]
                .as_str()
                .is_some_and(|s| read(s).is_some())
    };
    if let Some(Value::Array(messages)) = request.get_mut("messages") {
        for message in messages.iter_mut().filter(|m| m["role"] == "assistant") {
            if let Some(Value::Array(blocks)) = message.get_mut("content") {
                blocks.retain(|b| !carrier(b));
            }
        }
    }
    Ok(Bytes::from(
        serde_json::to_vec(&request).expect("a JSON map serialises"),
    ))
}

/// A Responses body for OpenAI without the reasoning items the gateway made to carry another
/// provider's state (a conversation that moved to OpenAI from another model): OpenAI would refuse
/// their `encrypted_content`. A body without any is passed on as it is, after one byte search.
pub fn for_openai(body: Bytes) -> Result<Bytes, crate::error::ApiError> {
    if memchr::memmem::find(&body, PREFIX.as_bytes()).is_none() {
        return Ok(body);
    }
    let mut request: serde_json::Map<String, Value> = crate::error::parse_json(&body)?;
    let carrier = |item: &Value| {
        item["type"] == "reasoning"
            && item["encrypted_content"]
                .as_str()
                .is_some_and(|s| s.starts_with(PREFIX))
    };
    match request.get_mut("input") {
        Some(Value::Array(items)) if items.iter().any(carrier) => items.retain(|i| !carrier(i)),
        _ => return Ok(body),
    }
    Ok(Bytes::from(
        serde_json::to_vec(&request).expect("a JSON map serialises"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_carried_signature_reads_back_and_others_do_not() {
        let extra = json!({"google": {"thought_signature": "c2lnbmF0dXJl/+="}});
        let signed = signature("call_1", &extra);
        assert!(signed.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(read(&signed), Some(("call_1".to_string(), extra)));
        for other in ["", "EqQBCkYIBxgCKkA", "llmb1.", "llmb1.!!", "llmb1.e30"] {
            assert_eq!(read(other), None, "{other}");
        }
    }

    #[test]
    fn carried_thinking_reads_back_and_is_not_a_tool_call() {
        let blocks = vec![
            ThinkingBlock::Thinking {
                thinking: "Let me see.".into(),
                signature: "EqQBCkYIBxgCKkA".into(),
            },
            ThinkingBlock::RedactedThinking {
                data: "EmwKAhgBEgy3va".into(),
            },
        ];
        let carried = thinking_signature(&blocks);
        assert_eq!(read_thinking(&carried), Some(blocks));
        assert_eq!(read(&carried), None);
        let call = signature("call_1", &json!({"google": {}}));
        assert_eq!(read_thinking(&call), None);
        assert_eq!(read_thinking("EqQBCkYIBxgCKkA"), None);
    }

    #[test]
    fn openai_gets_its_own_reasoning_items_only() {
        let own = json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAAAABo"});
        let carrier = json!({"type": "reasoning", "summary": [],
            "encrypted_content": signature("call_1", &json!({"google": {}}))});
        let call =
            json!({"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"});
        let body = json!({"model": "o4-mini", "input": [own, carrier, call]});
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
        let out: Value = serde_json::from_slice(&for_openai(bytes).unwrap()).unwrap();
        assert_eq!(out["input"], json!([own, call]));
        let text = Bytes::from_static(br#"{"model":"o4-mini","input":"say llmb1. please"}"#);
        assert_eq!(for_openai(text.clone()).unwrap(), text, "untouched");
    }

    #[test]
    fn anthropic_gets_its_own_thinking_blocks_only() {
        let own = json!({"type": "thinking", "thinking": "hmm", "signature": "EqQBCkYIBxgCKkA"});
        let carrier = block("call_1", &json!({"google": {"thought_signature": "s"}}));
        let body = json!({"model": "claude", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [own, carrier, {"type": "tool_use", "id": "call_1"}]},
        ]});
        let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
        let out: Value = serde_json::from_slice(&for_anthropic(bytes).unwrap()).unwrap();
        let kinds: Vec<_> = out["messages"][1]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["signature"].as_str().unwrap_or("tool_use").to_string())
            .collect();
        assert_eq!(kinds, ["EqQBCkYIBxgCKkA", "tool_use"]);
        let plain = Bytes::from_static(br#"{"model":"claude","messages":[]}"#);
        assert_eq!(for_anthropic(plain.clone()).unwrap(), plain, "untouched");
    }
}
