//! Every provider that speaks OpenAI's dialect: requests pass through with only the edits the
//! gateway needs, replies are forwarded byte for byte except for the usage chunk the gateway asked for.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

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
    if edits.model.is_none() && !edits.add_include_usage && !rename_max_tokens && !strip_reasoning {
        return Ok(raw);
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
    if strip_reasoning && let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages {
            if let Value::Object(m) = m {
                m.remove("reasoning_content");
            }
        }
    }
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("a JSON map serialises"),
    ))
}

/// A request body with the model renamed when needed, everything else untouched.
pub fn with_model(raw: Bytes, model: Option<&str>) -> Result<Bytes, ApiError> {
    let Some(model) = model else { return Ok(raw) };
    let mut body: Map<String, Value> = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
    body.insert("model".into(), Value::String(model.to_string()));
    Ok(Bytes::from(
        serde_json::to_vec(&body).expect("a JSON map serialises"),
    ))
}

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
    let at = memchr::memmem::rfind(body, b"\"usage\"")?;
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
        if !contains(data, b"\"usage\"") {
            check_object(data)?;
            sse::write_raw(out, data);
            return Ok(());
        }
        let mut chunk: Map<String, Value> = serde_json::from_slice(data).map_err(unreadable)?;
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null())
            && let Ok(usage) = Usage::deserialize_value(usage)
        {
            self.usage = Some(usage);
        }
        if self.client_wants_usage {
            sse::write_raw(out, data);
        } else {
            let no_choices = chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            if !no_choices {
                chunk.remove("usage");
                sse::write_json(out, &chunk);
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

/// Checks that a payload is one JSON object: a syntax check that builds nothing.
fn check_object(data: &[u8]) -> Result<(), ApiError> {
    if data.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_gateway(
            "the upstream sent a stream event that is not a JSON object",
        ));
    }
    serde_json::from_slice::<IgnoredAny>(data)
        .map(|_| ())
        .map_err(unreadable)
}

fn unreadable(e: serde_json::Error) -> ApiError {
    ApiError::bad_gateway(format!("the upstream sent an unreadable stream event: {e}"))
}

impl Usage {
    fn deserialize_value(v: &Value) -> Result<Usage, serde_json::Error> {
        serde::Deserialize::deserialize(v)
    }
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
