//! What a chat tool call carries for its provider beside the call (`extra_content`: Gemini's
//! thought signature), kept through an inbound API that has no field for it. Every client sends
//! reasoning state back exactly as it got it (the providers require that), so it rides there:
//! in Messages, a thinking block's `signature` before the tool call; in Responses, a reasoning
//! item's `encrypted_content` before the function call. Either holds `llmb1.` and the call's id
//! and extra content as base64url JSON; on the way back it gives the tool call its extra content
//! again.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const PREFIX: &str = "llmb1.";

/// The thinking block that carries `extra_content` for the tool call `id`.
pub fn block(id: &str, extra_content: &Value) -> Value {
    json!({"type": "thinking", "thinking": "", "signature": signature(id, extra_content)})
}

pub fn signature(id: &str, extra_content: &Value) -> String {
    let carried = json!({"id": id, "extra_content": extra_content});
    let json = serde_json::to_vec(&carried).expect("a JSON value serialises");
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
}

/// The tool call id and extra content a thinking block's signature carries, if it is one of these.
pub fn read(signature: &str) -> Option<(String, Value)> {
    let json = URL_SAFE_NO_PAD
        .decode(signature.strip_prefix(PREFIX)?)
        .ok()?;
    let mut carried: Value = serde_json::from_slice(&json).ok()?;
    let id = carried.get("id")?.as_str()?.to_string();
    let extra = carried.get_mut("extra_content")?.take();
    extra.is_object().then_some((id, extra))
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
}
