//! One run of the tester: the reply as it arrives, timings, usage and errors. Pure logic shared by
//! the browser code and its tests.

use serde_json::Value;

/// How many stream chunks the raw view keeps.
const RAW_CHUNKS: usize = 400;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub cached: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunState {
    pub running: bool,
    pub started_ms: f64,
    pub status: Option<u16>,
    pub reply: String,
    pub reasoning: String,
    pub ttft_ms: Option<f64>,
    pub total_ms: Option<f64>,
    pub usage: Option<Usage>,
    pub chunks: u32,
    pub raw: Vec<String>,
    pub error: Option<String>,
    pub finish_reason: Option<String>,
    /// The model the reply names (the upstream's), for pricing aliases.
    pub response_model: Option<String>,
}

/// `{"error": {"message", "type", "code"}}` → "type (code): message".
pub fn error_message(v: &Value) -> Option<String> {
    let e = v.get("error").filter(|e| !e.is_null())?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string());
    let kind = e.get("type").and_then(Value::as_str);
    let code = e.get("code").and_then(Value::as_str);
    Some(match (kind, code) {
        (Some(k), Some(c)) => format!("{k} ({c}): {message}"),
        (Some(k), None) => format!("{k}: {message}"),
        (None, Some(c)) => format!("{c}: {message}"),
        (None, None) => message,
    })
}

/// Usage in any of the three APIs' shapes, as chat completions counts it (the prompt includes
/// cached tokens).
fn usage_of(v: &Value) -> Option<Usage> {
    let n = |x: &Value| x.as_u64().unwrap_or(0);
    if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
        // Gemini: candidates exclude the thoughts.
        return Some(Usage {
            prompt: n(&u["promptTokenCount"]),
            completion: n(&u["candidatesTokenCount"]) + n(&u["thoughtsTokenCount"]),
            cached: n(&u["cachedContentTokenCount"]),
        });
    }
    let u = v.get("usage").filter(|u| u.is_object())?;
    if u.get("prompt_tokens").is_some() {
        return Some(Usage {
            prompt: n(&u["prompt_tokens"]),
            completion: n(&u["completion_tokens"]),
            cached: n(&u["prompt_tokens_details"]["cached_tokens"]),
        });
    }
    if u.get("input_tokens_details").is_some() || u.get("total_tokens").is_some() {
        // Responses: input_tokens includes the cached ones.
        return Some(Usage {
            prompt: n(&u["input_tokens"]),
            completion: n(&u["output_tokens"]),
            cached: n(&u["input_tokens_details"]["cached_tokens"]),
        });
    }
    // Messages: input_tokens excludes cache reads and writes.
    let cached = n(&u["cache_read_input_tokens"]);
    Some(Usage {
        prompt: n(&u["input_tokens"]) + cached + n(&u["cache_creation_input_tokens"]),
        completion: n(&u["output_tokens"]),
        cached,
    })
}

/// The text and reasoning of a whole reply in any of the three APIs' shapes, and why it ended.
fn reply_of(v: &Value) -> (String, String, Option<String>) {
    let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
    if v.get("candidates").is_some() {
        let (text, thinking) = gemini_parts(v);
        let finish = v["candidates"][0]["finishReason"]
            .as_str()
            .map(str::to_string);
        return (text, thinking, finish);
    }
    if v["type"] == "message" {
        let blocks = v["content"].as_array().cloned().unwrap_or_default();
        let text = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
        let thinking = blocks
            .iter()
            .filter_map(|b| b["thinking"].as_str())
            .collect();
        return (
            text,
            thinking,
            v["stop_reason"].as_str().map(str::to_string),
        );
    }
    if v["object"] == "response" {
        let items = v["output"].as_array().cloned().unwrap_or_default();
        let mut text = String::new();
        let mut thinking = String::new();
        for item in &items {
            for part in item["content"].as_array().into_iter().flatten() {
                text.push_str(part["text"].as_str().unwrap_or_default());
            }
            for part in item["summary"].as_array().into_iter().flatten() {
                thinking.push_str(part["text"].as_str().unwrap_or_default());
            }
        }
        return (text, thinking, v["status"].as_str().map(str::to_string));
    }
    let message = &v["choices"][0]["message"];
    (
        s(&message["content"]),
        s(&message["reasoning_content"]),
        v["choices"][0]["finish_reason"]
            .as_str()
            .map(str::to_string),
    )
}

/// The text and the thoughts of a Gemini response's first candidate.
fn gemini_parts(v: &Value) -> (String, String) {
    let mut text = String::new();
    let mut thinking = String::new();
    for part in v["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let t = part["text"].as_str().unwrap_or_default();
        if part["thought"] == true {
            thinking.push_str(t);
        } else {
            text.push_str(t);
        }
    }
    (text, thinking)
}

impl RunState {
    pub fn start(now_ms: f64) -> RunState {
        RunState {
            running: true,
            started_ms: now_ms,
            ..RunState::default()
        }
    }

    fn elapsed(&self, now_ms: f64) -> f64 {
        (now_ms - self.started_ms).max(0.0)
    }

    pub fn finish(&mut self, now_ms: f64) {
        self.running = false;
        self.total_ms.get_or_insert(self.elapsed(now_ms));
    }

    pub fn fail(&mut self, message: String, now_ms: f64) {
        self.error = Some(message);
        self.finish(now_ms);
    }

    /// A whole (non-streamed or error) reply body.
    pub fn on_body(&mut self, status: u16, body: &str, now_ms: f64) {
        self.status = Some(status);
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        self.raw = vec![match &parsed {
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_else(|_| body.to_string()),
            None => body.to_string(),
        }];
        self.ttft_ms = Some(self.elapsed(now_ms));
        match parsed {
            Some(v)
                if (200..300).contains(&status) && v.get("error").is_none_or(Value::is_null) =>
            {
                (self.reply, self.reasoning, self.finish_reason) = reply_of(&v);
                self.response_model = v["model"].as_str().map(str::to_string);
                self.usage = usage_of(&v);
                self.finish(now_ms);
            }
            Some(v) => {
                let message = error_message(&v).unwrap_or_else(|| body.to_string());
                self.fail(format!("HTTP {status} — {message}"), now_ms);
            }
            None if (200..300).contains(&status) => {
                self.fail(format!("HTTP {status} — the reply is not JSON"), now_ms)
            }
            None => self.fail(format!("HTTP {status} — {}", body.trim()), now_ms),
        }
    }

    /// One `data:` payload of a stream.
    pub fn on_event(&mut self, data: &str, now_ms: f64) {
        if data == "[DONE]" {
            self.finish(now_ms);
            return;
        }
        self.chunks += 1;
        if self.raw.len() < RAW_CHUNKS {
            self.raw.push(data.to_string());
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if let Some(message) = error_message(&v) {
            self.error = Some(format!("stream error — {message}"));
            return;
        }
        if let Some(kind) = v["type"].as_str() {
            self.on_typed_event(kind, &v, now_ms);
            return;
        }
        if v.get("candidates").is_some() {
            let (text, thinking) = gemini_parts(&v);
            if (!text.is_empty() || !thinking.is_empty()) && self.ttft_ms.is_none() {
                self.ttft_ms = Some(self.elapsed(now_ms));
            }
            self.reply.push_str(&text);
            self.reasoning.push_str(&thinking);
            if let Some(model) = v["modelVersion"].as_str() {
                self.response_model.get_or_insert_with(|| model.to_string());
            }
            if let Some(reason) = v["candidates"][0]["finishReason"].as_str() {
                self.finish_reason = Some(reason.to_string());
            }
            if let Some(u) = usage_of(&v) {
                self.usage = Some(u);
            }
            return;
        }
        if let Some(model) = v["model"].as_str() {
            self.response_model.get_or_insert_with(|| model.to_string());
        }
        let choice = &v["choices"][0];
        let delta = &choice["delta"];
        let text = delta["content"].as_str().unwrap_or_default();
        let thinking = delta["reasoning_content"].as_str().unwrap_or_default();
        if (!text.is_empty() || !thinking.is_empty()) && self.ttft_ms.is_none() {
            self.ttft_ms = Some(self.elapsed(now_ms));
        }
        self.reply.push_str(text);
        self.reasoning.push_str(thinking);
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_string());
        }
        if let Some(u) = usage_of(&v) {
            self.usage = Some(u);
        }
    }

    /// An event of the Messages or Responses stream (each names its `type`).
    fn on_typed_event(&mut self, kind: &str, v: &Value, now_ms: f64) {
        let (text, thinking) = match kind {
            "content_block_delta" => (&v["delta"]["text"], &v["delta"]["thinking"]),
            "response.output_text.delta" => (&v["delta"], &Value::Null),
            "response.reasoning_summary_text.delta" => (&Value::Null, &v["delta"]),
            _ => (&Value::Null, &Value::Null),
        };
        let (text, thinking) = (text.as_str().unwrap_or(""), thinking.as_str().unwrap_or(""));
        if (!text.is_empty() || !thinking.is_empty()) && self.ttft_ms.is_none() {
            self.ttft_ms = Some(self.elapsed(now_ms));
        }
        self.reply.push_str(text);
        self.reasoning.push_str(thinking);
        match kind {
            "message_start" => {
                self.response_model = v["message"]["model"].as_str().map(str::to_string);
                self.usage = usage_of(&v["message"]);
            }
            "message_delta" => {
                self.finish_reason = v["delta"]["stop_reason"].as_str().map(str::to_string);
                // Each count is the latest one given (`message_start` may carry only some).
                if let Some(after) = usage_of(v) {
                    let before = self.usage.unwrap_or_default();
                    self.usage = Some(Usage {
                        prompt: after.prompt.max(before.prompt),
                        completion: after.completion,
                        cached: after.cached.max(before.cached),
                    });
                }
            }
            "message_stop" => self.finish(now_ms),
            "response.created" => {
                self.response_model = v["response"]["model"].as_str().map(str::to_string);
            }
            "response.completed" | "response.incomplete" => {
                self.finish_reason = v["response"]["status"].as_str().map(str::to_string);
                self.usage = usage_of(&v["response"]);
                self.finish(now_ms);
            }
            "error" => {
                let message = v["message"].as_str().unwrap_or("failed");
                self.error = Some(format!("stream error — {message}"));
            }
            "response.failed" => {
                let message = v["response"]["error"]["message"]
                    .as_str()
                    .unwrap_or("failed");
                self.error = Some(format!("stream error — {message}"));
            }
            _ => {}
        }
    }

    pub fn raw_text(&self) -> String {
        self.raw.join("\n")
    }
}

/// Splits a server-sent-event byte stream into `data:` payloads as lines complete.
#[derive(Debug, Default)]
pub struct SseDecoder {
    pending: Vec<u8>,
}

impl SseDecoder {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(data) = line.strip_prefix("data:") {
                out.push(data.trim_start().to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_joins_split_lines() {
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: {\"a\":").is_empty());
        assert_eq!(
            d.push(b"1}\r\n\r\ndata: [DONE]\n\n"),
            vec!["{\"a\":1}", "[DONE]"]
        );
        assert!(d.push(b": comment\nevent: x\n").is_empty());
    }

    #[test]
    fn gemini_events_and_replies_build_the_reply() {
        let mut run = RunState::start(0.0);
        for data in [
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hmm","thought":true}]},"index":0}],"modelVersion":"m"}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}]}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":1}}"#,
        ] {
            run.on_event(data, 1.0);
        }
        assert_eq!(run.reply, "Hello");
        assert_eq!(run.reasoning, "Hmm");
        assert_eq!(run.finish_reason.as_deref(), Some("STOP"));
        assert_eq!(run.usage.unwrap().completion, 3);
        assert_eq!(run.response_model.as_deref(), Some("m"));
        let mut whole = RunState::start(0.0);
        whole.on_body(200, r#"{"candidates":[{"content":{"parts":[{"text":"Yes"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}"#, 1.0);
        assert_eq!(whole.reply, "Yes");
        assert_eq!(whole.usage.unwrap().prompt, 1);
    }

    #[test]
    fn stream_events_build_the_reply() {
        let mut r = RunState::start(1000.0);
        r.on_event(
            r#"{"model":"m","choices":[{"delta":{"role":"assistant"}}]}"#,
            1005.0,
        );
        assert_eq!(r.ttft_ms, None);
        r.on_event(r#"{"choices":[{"delta":{"content":"Hello"}}]}"#, 1010.0);
        r.on_event(
            r#"{"choices":[{"delta":{"content":" there"},"finish_reason":"stop"}]}"#,
            1020.0,
        );
        r.on_event(r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}"#, 1021.0);
        r.on_event("[DONE]", 1030.0);
        assert_eq!(r.reply, "Hello there");
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.total_ms, Some(30.0));
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt: 12,
                completion: 2,
                cached: 4
            })
        );
        assert_eq!(r.chunks, 4);
        assert_eq!(r.response_model.as_deref(), Some("m"));
        assert!(!r.running);
    }

    #[test]
    fn messages_and_responses_streams_build_the_reply() {
        let mut m = RunState::start(0.0);
        for e in [
            r#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":8,"cache_read_input_tokens":4,"output_tokens":0}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Hmm"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            r#"{"type":"message_stop"}"#,
        ] {
            m.on_event(e, 5.0);
        }
        assert_eq!((m.reply.as_str(), m.reasoning.as_str()), ("Hi", "Hmm"));
        assert_eq!(
            m.usage,
            Some(Usage {
                prompt: 12,
                completion: 3,
                cached: 4
            })
        );
        assert_eq!(m.finish_reason.as_deref(), Some("end_turn"));
        assert!(!m.running);

        let mut r = RunState::start(0.0);
        for e in [
            r#"{"type":"response.created","response":{"model":"m"},"sequence_number":0}"#,
            r#"{"type":"response.output_text.delta","delta":"Hel","sequence_number":1}"#,
            r#"{"type":"response.output_text.delta","delta":"lo","sequence_number":2}"#,
            r#"{"type":"response.completed","response":{"status":"completed","error":null,"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":2,"total_tokens":14}}}"#,
        ] {
            r.on_event(e, 5.0);
        }
        assert_eq!(r.reply, "Hello");
        assert_eq!(
            r.usage,
            Some(Usage {
                prompt: 12,
                completion: 2,
                cached: 4
            })
        );
        assert_eq!(r.response_model.as_deref(), Some("m"));
        assert!(!r.running && r.error.is_none());

        let mut whole = RunState::start(0.0);
        whole.on_body(200, r#"{"object":"response","status":"completed","error":null,"model":"m","output":[{"type":"message","content":[{"type":"output_text","text":"Yes"}]}],"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}"#, 1.0);
        assert_eq!(whole.reply, "Yes");
        assert!(whole.error.is_none());
    }

    #[test]
    fn errors_say_what_went_wrong() {
        let mut r = RunState::start(0.0);
        r.on_body(404, r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#, 5.0);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "HTTP 404 — invalid_request_error (model_not_found): The model `x` does not exist"
            )
        );
        let mut s = RunState::start(0.0);
        s.on_event(r#"{"error":{"message":"upstream broke"}}"#, 1.0);
        assert_eq!(s.error.as_deref(), Some("stream error — upstream broke"));
    }
}
