//! Every provider that speaks OpenAI's dialect: requests pass through with only the edits the
//! gateway needs, replies are forwarded byte for byte except for the usage chunk the gateway asked for.

use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::FinderRev;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use super::json_edit;
use super::openai_types::Usage;
use super::spec::Quirks;
use super::sse;
use crate::error::ApiError;

pub fn chat_url(base_url: &str) -> String {
    format!("{base_url}/chat/completions")
}

pub fn responses_url(base_url: &str) -> String {
    format!("{base_url}/responses")
}

pub fn embeddings_url(base_url: &str) -> String {
    format!("{base_url}/embeddings")
}

/// What the gateway must change in a client's request before it goes upstream.
pub struct Edits<'a> {
    /// The upstream's own name of the model, when it differs from what the client sent.
    pub model: Option<&'a str>,
    /// The client streams without asking for usage: ask for it anyway, and hide it again on the way back.
    pub add_include_usage: bool,
    pub quirks: Quirks,
}

/// The body to send upstream: the client's bytes when nothing needs changing, otherwise the
/// client's JSON with only the needed fields edited and everything else untouched.
pub fn chat_body(raw: Bytes, edits: &Edits) -> Result<Bytes, ApiError> {
    let rename_max_tokens =
        !edits.quirks.accepts_max_completion_tokens && contains(&raw, b"\"max_completion_tokens\"");
    let strip_reasoning =
        !edits.quirks.accepts_reasoning_content && contains(&raw, b"\"reasoning_content\"");
    // Anthropic's signed thinking means nothing to any other provider.
    let strip_thinking = contains(&raw, b"\"thinking_blocks\"");
    let strip = strip_reasoning || strip_thinking;
    if edits.model.is_none() && !edits.add_include_usage && !rename_max_tokens && !strip {
        return Ok(raw);
    }
    if !rename_max_tokens
        && !strip
        && let Some(edited) = edit_in_place(&raw, edits)
    {
        return Ok(Bytes::from(edited));
    }
    let mut body: Map<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
    if let Some(model) = edits.model {
        body.insert("model".into(), Value::String(model.to_string()));
    }
    if edits.add_include_usage {
        let options = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(options) = options {
            options.insert("include_usage".into(), Value::Bool(true));
        }
    }
    if rename_max_tokens && let Some(v) = body.remove("max_completion_tokens") {
        body.entry("max_tokens").or_insert(v);
    }
    if strip && let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            if let Value::Object(m) = m {
                if strip_reasoning {
                    m.remove("reasoning_content");
                }
                m.remove("thinking_blocks");
            }
        }
    }
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("a JSON map serialises"),
    ))
}

/// The model renamed and usage asked for by editing the client's bytes, when that is safe: the
/// body has no `stream_options` of its own to merge with. Its JSON is checked first.
fn edit_in_place(raw: &[u8], edits: &Edits) -> Option<Vec<u8>> {
    if edits.add_include_usage && contains(raw, b"\"stream_options\"") {
        return None;
    }
    serde_json::from_slice::<IgnoredAny>(raw).ok()?;
    let mut body = None;
    if let Some(model) = edits.model {
        let name = serde_json::to_vec(model).expect("a string serialises");
        body = Some(json_edit::with_value(raw, "model", &name)?);
    }
    if edits.add_include_usage {
        let current = body.as_deref().unwrap_or(raw);
        body = Some(json_edit::with_first_member(
            current,
            "stream_options",
            br#"{"include_usage":true}"#,
        )?);
    }
    body
}

/// A request body with the model renamed when needed, everything else untouched.
pub fn with_model(raw: Bytes, model: Option<&str>) -> Result<Bytes, ApiError> {
    let Some(model) = model else { return Ok(raw) };
    let edits = Edits {
        model: Some(model),
        add_include_usage: false,
        quirks: Quirks::OPENAI,
    };
    if let Some(edited) = edit_in_place(&raw, &edits) {
        return Ok(Bytes::from(edited));
    }
    let mut body: Map<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
    body.insert("model".into(), Value::String(model.to_string()));
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("a JSON map serialises"),
    ))
}

const USAGE_NEEDLE: &[u8] = b"\"usage\"";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// `{"error":{"message":…}}`, `{"message":…}` or `{"error":"…"}`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msg = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("error").filter(|e| e.is_string()))?;
    msg.as_str().map(str::to_string)
}

/// The `usage` object of a non-stream reply, read from the reply's last bytes (OpenAI writes it last).
pub fn usage_from_tail(tail: &[u8]) -> Option<Usage> {
    last_usage(tail)
}

/// The last `"usage"` object in a JSON reply's bytes, in the shape `U` of the reply's API.
pub fn last_usage<U: serde::de::DeserializeOwned>(body: &[u8]) -> Option<U> {
    // Built once: building the searcher cost more than searching a usual reply.
    static USAGE_KEY_REV: LazyLock<FinderRev<'static>> =
        LazyLock::new(|| FinderRev::new(USAGE_NEEDLE));
    let at = USAGE_KEY_REV.rfind(body)?;
    let rest = &body[at + 7..];
    let start = rest.iter().position(|b| !b" \t\r\n:".contains(b))?;
    let mut values = serde_json::Deserializer::from_slice(&rest[start..]).into_iter::<U>();
    values.next()?.ok()
}

/// Forwards an OpenAI-dialect stream, picking up the usage and hiding the usage chunk when the
/// client did not ask for it.
pub struct PassthroughStream {
    client_wants_usage: bool,
    usage: Option<Usage>,
    saw_done: bool,
}

impl PassthroughStream {
    pub fn new(client_wants_usage: bool) -> Self {
        PassthroughStream {
            client_wants_usage,
            usage: None,
            saw_done: false,
        }
    }

    /// Forwards one event's payload. A payload that is not a JSON object (nor `[DONE]`) is an
    /// error and is not forwarded: the relay then ends the stream with an error event.
    pub fn event(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), ApiError> {
        if data.trim_ascii() == b"[DONE]" {
            self.saw_done = true;
            return Ok(());
        }
        // One structural pass over the top-level members: the chunk is one whole object, and
        // its usage is found without parsing the rest.
        let mut usage = None;
        let mut has_choices = false;
        let whole = json_edit::members(data, |key, value| match key {
            b"usage" => usage = Some(value),
            b"choices" => has_choices = value.first() == Some(&b'[') && !is_empty_array(value),
            _ => {}
        });
        if whole.is_none() {
            return Err(ApiError::bad_gateway(
                "the upstream sent an unreadable stream event (not one whole JSON object)",
            ));
        }
        let Some(usage) = usage else {
            sse::write_raw(out, data);
            return Ok(());
        };
        if usage != b"null"
            && let Ok(usage) = serde_json::from_slice::<Usage>(usage)
        {
            self.usage = Some(usage);
        }
        if self.client_wants_usage {
            sse::write_raw(out, data);
        } else if has_choices {
            match json_edit::without_member(data, "usage") {
                Some(rest) => sse::write_raw(out, &rest),
                None => sse::write_raw(out, data),
            }
        }
        Ok(())
    }

    pub fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), ApiError> {
        if self.saw_done {
            Ok(())
        } else {
            Err(ApiError::bad_gateway(
                "the upstream stream ended before it was complete",
            ))
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

fn is_empty_array(value: &[u8]) -> bool {
    value[1..].trim_ascii_start().first() == Some(&b']')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Quirks = Quirks::OPENAI;

    fn edits(model: Option<&str>, add_include_usage: bool, quirks: Quirks) -> Edits<'_> {
        Edits {
            model,
            add_include_usage,
            quirks,
        }
    }

    #[test]
    fn unchanged_request_is_forwarded_as_is() {
        let raw =
            Bytes::from_static(br#"{"model":"gpt-4o-mini","messages":[],"x_custom":{"a":1}}"#);
        let out = chat_body(raw.clone(), &edits(None, false, PLAIN)).unwrap();
        assert_eq!(out.as_ptr(), raw.as_ptr(), "no copy when nothing changes");
    }

    #[test]
    fn edits_keep_unknown_fields() {
        let raw = Bytes::from_static(
            br#"{"model":"deepseek/deepseek-chat","stream":true,"max_completion_tokens":5,"x_custom":{"a":1},"messages":[{"role":"assistant","content":"a","reasoning_content":"r"}]}"#,
        );
        let quirks = Quirks {
            accepts_reasoning_content: false,
            accepts_max_completion_tokens: false,
            speaks_responses: false,
        };
        let out: Value = serde_json::from_slice(
            &chat_body(raw, &edits(Some("deepseek-chat"), true, quirks)).unwrap(),
        )
        .unwrap();
        assert_eq!(out["model"], "deepseek-chat");
        assert_eq!(out["stream_options"]["include_usage"], true);
        assert_eq!(out["max_tokens"], 5);
        assert!(out.get("max_completion_tokens").is_none());
        assert!(out["messages"][0].get("reasoning_content").is_none());
        assert_eq!(out["x_custom"]["a"], 1);
    }

    #[test]
    fn reasoning_content_kept_for_deepseek() {
        let raw = Bytes::from_static(br#"{"model":"m","messages":[{"role":"assistant","content":"a","reasoning_content":"r"}]}"#);
        let out = chat_body(
            raw.clone(),
            &edits(None, false, crate::providers::deepseek::SPEC.quirks()),
        )
        .unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn usage_read_from_the_tail() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"the word \"usage\" in text"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}},"system_fingerprint":"fp"}"#;
        let u = usage_from_tail(body).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens()),
            (3, 4, 1)
        );
        assert!(usage_from_tail(br#"{"choices":[]}"#).is_none());
    }

    #[test]
    fn usage_chunk_hidden_unless_asked() {
        let usage_chunk = br#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let text_chunk =
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
        let mut hidden = PassthroughStream::new(false);
        let mut out = vec![];
        hidden.event(text_chunk, &mut out).unwrap();
        hidden.event(usage_chunk, &mut out).unwrap();
        hidden.event(b"[DONE]", &mut out).unwrap();
        hidden.finish(&mut out).unwrap();
        assert_eq!(out, [&b"data: "[..], text_chunk, b"\n\n"].concat());
        assert_eq!(hidden.usage().unwrap().total_tokens, 3);

        let mut shown = PassthroughStream::new(true);
        let mut out = vec![];
        shown.event(usage_chunk, &mut out).unwrap();
        assert_eq!(out, [&b"data: "[..], usage_chunk, b"\n\n"].concat());
    }

    #[test]
    fn malformed_events_are_errors_and_not_forwarded() {
        let text_chunk =
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;
        for bad in [
            &br#"{"id":"c","choices":[{"index":0,"delta":{"content":"cut"#[..],
            br#"{"id":"c"} trailing"#,
            br#"{"id":"c","usage":{"prompt_tokens":1,"#,
            br#"["not", "an", "object"]"#,
            b"\"text\"",
            b"hello",
            b"",
        ] {
            for wants_usage in [false, true] {
                let mut s = PassthroughStream::new(wants_usage);
                let mut out = vec![];
                s.event(text_chunk, &mut out).unwrap();
                let forwarded = out.clone();
                let err = s.event(bad, &mut out).unwrap_err();
                assert_eq!(err.status.as_u16(), 502, "{}", String::from_utf8_lossy(bad));
                assert!(
                    err.message.starts_with("the upstream sent "),
                    "{}",
                    err.message
                );
                assert_eq!(
                    out,
                    forwarded,
                    "nothing of {:?} forwarded",
                    String::from_utf8_lossy(bad)
                );
            }
        }
        let mut s = PassthroughStream::new(false);
        let mut out = vec![];
        s.event(b" {\"id\":\"c\",\"choices\":[]} ", &mut out)
            .unwrap();
        s.event(b"[DONE] ", &mut out).unwrap();
        s.finish(&mut out).unwrap();
    }

    #[test]
    fn stream_without_done_is_an_error() {
        let mut s = PassthroughStream::new(false);
        assert!(s.finish(&mut vec![]).is_err());
    }
}
