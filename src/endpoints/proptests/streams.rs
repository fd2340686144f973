//! Upstream streams of every provider (Gemini, Anthropic, OpenAI's dialect), through the decoder
//! and the translators to every inbound API (chat completions, Messages, Responses): the client
//! gets the same text, tool calls, finish and usage however the upstream's bytes were cut, and
//! what the upstream meant; garbled, hostile and huge streams end in an error or a reply, never a
//! panic, in bounded time.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::{config, cut_points, decode, name, splits, text};
use crate::endpoints::messages::endpoint::MessagesOut;
use crate::endpoints::messages::passthrough::PassthroughStream as MessagesPassthrough;
use crate::endpoints::messages::stream::MessagesStream;
use crate::endpoints::responses::passthrough::PassthroughStream as ResponsesPassthrough;
use crate::endpoints::responses::stream::ResponsesStream;
use crate::endpoints::{messages, responses};
use crate::error::ApiError;
use crate::gateway::relay::{ChatTo, StreamOut};
use crate::providers::dialect::ChatTranslator;
use crate::providers::openai_compatible::PassthroughStream as OpenAiPassthrough;
use crate::providers::openai_types::Usage;
use crate::providers::sse::{SseDecoder, SseEvent};
use crate::providers::translate::ReplyContext;
use crate::providers::{anthropic, gemini};

// ---------- what the upstream means ----------

/// One piece of a reply, in the order the upstream streams it.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Thinking(String),
    /// A tool call; `cuts` are where its arguments' JSON text is cut into deltas (where the
    /// upstream streams it in pieces).
    Call {
        name: String,
        args: Value,
        cuts: Vec<Index>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    Normal,
    Length,
    Filter,
}

#[derive(Debug, Clone)]
struct Reply {
    pieces: Vec<Piece>,
    stop: Stop,
    prompt: u64,
    cached: u64,
    completion: u64,
    /// How the upstream ends its lines.
    eol: &'static str,
}

/// A JSON value as tool arguments hold them (numbers that read back exactly).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0.5, -1.25, 1e300, 3.0e-7]).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Tool arguments: a JSON object.
fn arguments() -> impl Strategy<Value = Value> {
    prop::collection::vec((text(), json_value()), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => text().prop_map(Piece::Text),
        1 => text().prop_map(Piece::Thinking),
        2 => (name(), arguments(), prop::collection::vec(any::<Index>(), 0..6))
            .prop_map(|(name, args, cuts)| Piece::Call { name, args, cuts }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        prop::collection::vec(piece(), 0..10),
        prop_oneof![Just(Stop::Normal), Just(Stop::Length), Just(Stop::Filter)],
        (0u64..1_000_000, 0u64..1_000_000, 0u64..1_000_000),
        prop::sample::select(vec!["\n", "\r\n", "\r"]),
    )
        .prop_map(|(pieces, stop, (prompt, cached, completion), eol)| Reply {
            pieces,
            stop,
            prompt,
            cached: cached.min(prompt),
            completion,
            eol,
        })
}

impl Reply {
    fn calls(&self) -> Vec<(String, Value)> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Call { name, args, .. } => Some((name.clone(), args.clone())),
                _ => None,
            })
            .collect()
    }

    fn joined(&self, thinking: bool) -> String {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) if !thinking => Some(t.as_str()),
                Piece::Thinking(t) if thinking => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The chat completions finish reason the client is owed.
    fn finish(&self) -> &'static str {
        if !self.calls().is_empty() {
            return "tool_calls";
        }
        match self.stop {
            Stop::Normal => "stop",
            Stop::Length => "length",
            Stop::Filter => "content_filter",
        }
    }
}

/// An argument's JSON text, cut at character boundaries.
fn cut_text(text: &str, cuts: &[Index]) -> Vec<String> {
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    let mut at: Vec<usize> = cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for end in at {
        out.push(text[start..end].to_string());
        start = end;
    }
    out.push(text[start..].to_string());
    out
}

// ---------- the upstreams' wire formats ----------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Upstream {
    Gemini,
    Anthropic,
    OpenAi,
}

const UPSTREAMS: [Upstream; 3] = [Upstream::Gemini, Upstream::Anthropic, Upstream::OpenAi];

fn frame(out: &mut Vec<u8>, eol: &str, name: Option<&str>, data: &Value) {
    if let Some(name) = name {
        out.extend_from_slice(format!("event: {name}{eol}").as_bytes());
    }
    out.extend_from_slice(format!("data: {data}{eol}{eol}").as_bytes());
}

/// The events (name, payload) `upstream` sends for `reply`.
fn events_of(upstream: Upstream, reply: &Reply) -> Vec<(Option<&'static str>, Value)> {
    match upstream {
        Upstream::Gemini => gemini_events(reply),
        Upstream::Anthropic => anthropic_events(reply),
        Upstream::OpenAi => openai_events(reply),
    }
}

fn encode(upstream: Upstream, reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in events_of(upstream, reply) {
        frame(&mut out, reply.eol, name, &data);
    }
    if upstream == Upstream::OpenAi {
        out.extend_from_slice(format!("data: [DONE]{0}{0}", reply.eol).as_bytes());
    }
    out
}

fn gemini_events(reply: &Reply) -> Vec<(Option<&'static str>, Value)> {
    let candidate = |parts: Value| json!({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]});
    let mut events: Vec<_> = reply
        .pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => candidate(json!([{"text": t}])),
            Piece::Thinking(t) => candidate(json!([{"text": t, "thought": true}])),
            Piece::Call { name, args, .. } => {
                candidate(json!([{"functionCall": {"name": name, "args": args}}]))
            }
        })
        .map(|v| (None, v))
        .collect();
    let reason = match reply.stop {
        Stop::Normal => "STOP",
        Stop::Length => "MAX_TOKENS",
        Stop::Filter => "SAFETY",
    };
    let end = json!({
        "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": reply.prompt,
            "candidatesTokenCount": reply.completion,
            "cachedContentTokenCount": reply.cached,
        },
    });
    events.push((None, end));
    events
}

fn anthropic_events(reply: &Reply) -> Vec<(Option<&'static str>, Value)> {
    let mut events = vec![(
        Some("message_start"),
        json!({"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": reply.prompt - reply.cached, "output_tokens": 1,
                "cache_read_input_tokens": reply.cached, "cache_creation_input_tokens": 0},
        }}),
    )];
    let mut index = 0;
    // The open block: 0 text, 1 thinking.
    let mut open: Option<u8> = None;
    let close = |events: &mut Vec<_>, open: &mut Option<u8>, index: &mut u32| {
        if let Some(kind) = open.take() {
            if kind == 1 {
                events.push((
                    Some("content_block_delta"),
                    json!({"type": "content_block_delta", "index": *index,
                        "delta": {"type": "signature_delta", "signature": "c2ln"}}),
                ));
            }
            events.push((
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": *index}),
            ));
            *index += 1;
        }
    };
    for piece in &reply.pieces {
        match piece {
            Piece::Text(t) | Piece::Thinking(t) => {
                let kind = u8::from(matches!(piece, Piece::Thinking(_)));
                if open != Some(kind) {
                    close(&mut events, &mut open, &mut index);
                    let block = if kind == 1 {
                        json!({"type": "thinking", "thinking": ""})
                    } else {
                        json!({"type": "text", "text": ""})
                    };
                    events.push((
                        Some("content_block_start"),
                        json!({"type": "content_block_start", "index": index, "content_block": block}),
                    ));
                    open = Some(kind);
                }
                let delta = if kind == 1 {
                    json!({"type": "thinking_delta", "thinking": t})
                } else {
                    json!({"type": "text_delta", "text": t})
                };
                events.push((
                    Some("content_block_delta"),
                    json!({"type": "content_block_delta", "index": index, "delta": delta}),
                ));
                events.push((Some("ping"), json!({"type": "ping"})));
            }
            Piece::Call { name, args, cuts } => {
                close(&mut events, &mut open, &mut index);
                events.push((
                    Some("content_block_start"),
                    json!({"type": "content_block_start", "index": index, "content_block":
                        {"type": "tool_use", "id": format!("toolu_{index}"), "name": name, "input": {}}}),
                ));
                // Anthropic streams an empty input as one empty delta.
                let text = if args.as_object().is_some_and(Map::is_empty) {
                    String::new()
                } else {
                    args.to_string()
                };
                for part in cut_text(&text, cuts) {
                    events.push((
                        Some("content_block_delta"),
                        json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": part}}),
                    ));
                }
                events.push((
                    Some("content_block_stop"),
                    json!({"type": "content_block_stop", "index": index}),
                ));
                index += 1;
            }
        }
    }
    close(&mut events, &mut open, &mut index);
    let stop = if !reply.calls().is_empty() {
        "tool_use"
    } else {
        match reply.stop {
            Stop::Normal => "end_turn",
            Stop::Length => "max_tokens",
            Stop::Filter => "refusal",
        }
    };
    events.push((
        Some("message_delta"),
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null},
            "usage": {"output_tokens": reply.completion}}),
    ));
    events.push((Some("message_stop"), json!({"type": "message_stop"})));
    events
}

fn openai_events(reply: &Reply) -> Vec<(Option<&'static str>, Value)> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![(
        None,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )];
    let mut call = 0;
    for piece in &reply.pieces {
        match piece {
            Piece::Text(t) => events.push((None, chunk(json!({"content": t}), Value::Null))),
            Piece::Thinking(t) => {
                events.push((None, chunk(json!({"reasoning_content": t}), Value::Null)))
            }
            Piece::Call { name, args, cuts } => {
                events.push((
                    None,
                    chunk(
                        json!({"tool_calls": [{"index": call, "id": format!("call_{call}"),
                            "type": "function", "function": {"name": name, "arguments": ""}}]}),
                        Value::Null,
                    ),
                ));
                for part in cut_text(&args.to_string(), cuts) {
                    events.push((
                        None,
                        chunk(
                            json!({"tool_calls": [{"index": call, "function": {"arguments": part}}]}),
                            Value::Null,
                        ),
                    ));
                }
                call += 1;
            }
        }
    }
    events.push((None, chunk(json!({}), reply.finish().into())));
    events.push((
        None,
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": reply.prompt, "completion_tokens": reply.completion,
            "total_tokens": reply.prompt + reply.completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached}}}),
    ));
    events
}

// ---------- the client's side ----------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Inbound {
    Chat,
    Messages,
    Responses,
}

const INBOUNDS: [Inbound; 3] = [Inbound::Chat, Inbound::Messages, Inbound::Responses];

/// What the relay drives: one upstream event at a time, then the end.
trait Relay {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError>;
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError>;
    fn usage(&self) -> Option<Usage>;
}

impl Relay for ChatTranslator {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        StreamOut::event(self, event, out)
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        StreamOut::finish(self, out)
    }
    fn usage(&self) -> Option<Usage> {
        StreamOut::usage(self)
    }
}

impl Relay for MessagesOut {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        StreamOut::event(self, event, out)
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        StreamOut::finish(self, out)
    }
    fn usage(&self) -> Option<Usage> {
        StreamOut::usage(self)
    }
}

impl Relay for ChatTo<ResponsesStream> {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        ChatTo::event(self, event, out)
    }
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        ChatTo::finish(self, out)
    }
    fn usage(&self) -> Option<Usage> {
        ChatTo::usage(self)
    }
}

impl Relay for ResponsesPassthrough {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        ResponsesPassthrough::event(self, event, out).map(|_| ())
    }
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), ApiError> {
        Ok(())
    }
    fn usage(&self) -> Option<Usage> {
        ResponsesPassthrough::usage(self)
    }
}

fn chat_translator(upstream: Upstream) -> ChatTranslator {
    let ctx = ReplyContext {
        id: "chatcmpl-prop".into(),
        created: 1,
        model: "m".into(),
        include_usage: true,
    };
    match upstream {
        Upstream::Gemini => ChatTranslator::Gemini(gemini::ChatStream::new(ctx)),
        Upstream::Anthropic => ChatTranslator::Anthropic(anthropic::ChatStream::new(ctx)),
        Upstream::OpenAi => ChatTranslator::OpenAi(OpenAiPassthrough::new(true)),
    }
}

/// The translators the gateway puts between `upstream` and an `inbound` client.
fn relay(upstream: Upstream, inbound: Inbound) -> Box<dyn Relay> {
    let chat = chat_translator(upstream);
    match inbound {
        Inbound::Chat => Box::new(chat),
        // Messages to Anthropic pass through untranslated.
        Inbound::Messages if upstream == Upstream::Anthropic => {
            Box::new(MessagesOut::Passthrough(MessagesPassthrough::default()))
        }
        Inbound::Messages => Box::new(MessagesOut::FromChat(Box::new(ChatTo::new(
            chat,
            MessagesStream::new("msg_prop".into(), "m".into()),
        )))),
        Inbound::Responses => {
            let skeleton = responses::skeleton(&Map::new(), "resp_prop", "m", 1);
            Box::new(ChatTo::new(chat, ResponsesStream::new(skeleton)))
        }
    }
}

/// What the client received, and the error that ended the stream, if any.
struct Outcome {
    out: Vec<u8>,
    error: Option<String>,
    usage: Option<Usage>,
}

/// Feeds `chunks` as the relay does: each chunk pushed, its complete events translated; at the
/// end what the decoder still holds, then the translator's end.
fn run<'a>(relay: &mut dyn Relay, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = SseDecoder::default();
    let mut out = Vec::new();
    let fail = |out: Vec<u8>, e: String, relay: &dyn Relay| Outcome {
        out,
        error: Some(e),
        usage: relay.usage(),
    };
    for chunk in chunks {
        decoder.push(chunk);
        loop {
            match decoder.next_event() {
                Ok(Some(event)) => {
                    if let Err(e) = relay.event(&event, &mut out) {
                        return fail(out, e.message, relay);
                    }
                }
                Ok(None) => break,
                Err(_) => return fail(out, "too large".into(), relay),
            }
        }
    }
    if let Some(event) = decoder.finish()
        && let Err(e) = relay.event(&event, &mut out)
    {
        return fail(out, e.message, relay);
    }
    if let Err(e) = relay.finish(&mut out) {
        return fail(out, e.message, relay);
    }
    Outcome {
        out,
        error: None,
        usage: relay.usage(),
    }
}

/// What a reply means to its client.
#[derive(Debug, Default, PartialEq)]
struct Meaning {
    text: String,
    reasoning: String,
    /// Each call's name and arguments (read as JSON; empty arguments are `{}`).
    calls: Vec<(String, Value)>,
    finish: String,
    /// Prompt and completion tokens.
    usage: Option<(u64, u64)>,
}

/// Arguments as JSON; `empty_is_object` where the API means `{}` by no text (Messages'
/// `input_json_delta`), while chat completions and Responses want JSON text.
fn arguments_value(text: &str, empty_is_object: bool) -> Value {
    if text.is_empty() && empty_is_object {
        return json!({});
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(format!("unreadable: {text:?}")))
}

fn client_events(out: &[u8]) -> Vec<SseEvent> {
    decode([out]).expect("the client's events are small")
}

fn data_json(event: &SseEvent) -> Value {
    serde_json::from_slice(&event.data).unwrap_or_else(|e| {
        panic!(
            "the client got an unreadable event ({e}): {}",
            String::from_utf8_lossy(&event.data)
        )
    })
}

fn chat_meaning(out: &[u8]) -> Meaning {
    let mut m = Meaning::default();
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut done = false;
    for event in client_events(out) {
        assert!(!done, "nothing after [DONE]");
        if event.data == b"[DONE]" {
            done = true;
            continue;
        }
        let chunk = data_json(&event);
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            m.usage = Some((
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            ));
        }
        for choice in chunk["choices"].as_array().unwrap() {
            let delta = &choice["delta"];
            m.text += delta["content"].as_str().unwrap_or_default();
            m.reasoning += delta["reasoning_content"].as_str().unwrap_or_default();
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let i = call["index"].as_u64().unwrap() as usize;
                if i == calls.len() {
                    calls.push(Default::default());
                }
                let f = &call["function"];
                calls[i].0 += f["name"].as_str().unwrap_or_default();
                calls[i].1 += f["arguments"].as_str().unwrap_or_default();
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                m.finish = reason.to_string();
            }
        }
    }
    assert!(done, "the stream ends with [DONE]");
    m.calls = calls
        .into_iter()
        .map(|(n, a)| (n, arguments_value(&a, false)))
        .collect();
    m
}

fn messages_meaning(out: &[u8]) -> Meaning {
    let mut m = Meaning::default();
    let mut calls: Vec<(u64, String, String)> = Vec::new();
    let (mut input, mut cache_read, mut cache_write, mut output) = (0, 0, 0, 0);
    let mut usage = |u: &Value| {
        let take = |field: &str, into: &mut u64| {
            if let Some(n) = u[field].as_u64() {
                *into = n;
            }
        };
        take("input_tokens", &mut input);
        take("cache_read_input_tokens", &mut cache_read);
        take("cache_creation_input_tokens", &mut cache_write);
        take("output_tokens", &mut output);
    };
    let mut stopped = false;
    for event in client_events(out) {
        let data = data_json(&event);
        assert_eq!(event.event.as_deref(), data["type"].as_str());
        match data["type"].as_str().unwrap() {
            "message_start" => usage(&data["message"]["usage"]),
            "content_block_start" if data["content_block"]["type"] == "tool_use" => {
                let name = data["content_block"]["name"].as_str().unwrap().to_string();
                calls.push((data["index"].as_u64().unwrap(), name, String::new()));
            }
            "content_block_delta" => {
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => m.text += delta["text"].as_str().unwrap(),
                    "thinking_delta" => m.reasoning += delta["thinking"].as_str().unwrap(),
                    "input_json_delta" => {
                        let index = data["index"].as_u64().unwrap();
                        let call = calls.iter_mut().find(|c| c.0 == index).unwrap();
                        call.2 += delta["partial_json"].as_str().unwrap();
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                m.finish = data["delta"]["stop_reason"].as_str().unwrap().to_string();
                usage(&data["usage"]);
            }
            "message_stop" => stopped = true,
            _ => {}
        }
    }
    assert!(stopped, "the stream ends with message_stop");
    m.calls = calls
        .into_iter()
        .map(|(_, n, a)| (n, arguments_value(&a, true)))
        .collect();
    m.usage = Some((input + cache_read + cache_write, output));
    m
}

fn responses_meaning(out: &[u8]) -> Meaning {
    let mut m = Meaning::default();
    let mut streamed = Meaning::default();
    let mut ended = None;
    for (sequence, event) in client_events(out).into_iter().enumerate() {
        let data = data_json(&event);
        assert_eq!(event.event.as_deref(), data["type"].as_str());
        assert_eq!(data["sequence_number"], sequence, "numbered in order");
        match data["type"].as_str().unwrap() {
            "response.output_text.delta" => streamed.text += data["delta"].as_str().unwrap(),
            "response.reasoning_summary_text.delta" => {
                streamed.reasoning += data["delta"].as_str().unwrap()
            }
            "response.completed" | "response.incomplete" => ended = Some(data),
            _ => {}
        }
    }
    let response = &ended.expect("the stream ends the response")["response"];
    for item in response["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                for part in item["content"].as_array().unwrap() {
                    m.text += part["text"].as_str().unwrap();
                }
            }
            "reasoning" => {
                for part in item["summary"].as_array().unwrap() {
                    m.reasoning += part["text"].as_str().unwrap();
                }
            }
            "function_call" => m.calls.push((
                item["name"].as_str().unwrap().to_string(),
                arguments_value(item["arguments"].as_str().unwrap(), false),
            )),
            other => panic!("unexpected output item {other}"),
        }
    }
    assert_eq!(
        (&streamed.text, &streamed.reasoning),
        (&m.text, &m.reasoning),
        "the deltas add up to the response"
    );
    m.finish = match response["incomplete_details"]["reason"].as_str() {
        Some(reason) => format!("incomplete: {reason}"),
        None => response["status"].as_str().unwrap().to_string(),
    };
    let u = &response["usage"];
    m.usage = Some((
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
    ));
    m
}

fn meaning(inbound: Inbound, out: &[u8]) -> Meaning {
    match inbound {
        Inbound::Chat => chat_meaning(out),
        Inbound::Messages => messages_meaning(out),
        Inbound::Responses => responses_meaning(out),
    }
}

/// What `reply`, sent by `upstream`, is to mean to an `inbound` client.
fn expected(upstream: Upstream, inbound: Inbound, reply: &Reply) -> Meaning {
    let finish = reply.finish();
    let finish = match inbound {
        Inbound::Chat => finish.to_string(),
        Inbound::Messages => messages::stop_reason(finish).to_string(),
        Inbound::Responses => match finish {
            "length" => "incomplete: max_output_tokens".into(),
            "content_filter" => "incomplete: content_filter".into(),
            _ => "completed".into(),
        },
    };
    let _ = upstream;
    Meaning {
        text: reply.joined(false),
        reasoning: reply.joined(true),
        calls: reply.calls(),
        finish,
        usage: Some((reply.prompt, reply.completion)),
    }
}

proptest! {
    #![proptest_config(config(24, 8))]

    /// Every upstream's stream reaches every inbound client with the same meaning however it
    /// was cut, and with the meaning the upstream sent; the usage recorded is the upstream's.
    #[test]
    fn streams_mean_the_same_however_cut(reply in reply(), points in cut_points()) {
        for upstream in UPSTREAMS {
            let bytes = encode(upstream, &reply);
            for inbound in INBOUNDS {
                let want = expected(upstream, inbound, &reply);
                let whole = run(&mut *relay(upstream, inbound), [&bytes[..]]);
                prop_assert_eq!(whole.error.as_deref(), None, "{:?} → {:?}", upstream, inbound);
                let got = meaning(inbound, &whole.out);
                prop_assert_eq!(&got, &want, "{:?} → {:?}", upstream, inbound);
                let usage = whole.usage.map(|u| (u.prompt_tokens, u.completion_tokens));
                prop_assert_eq!(usage, want.usage, "recorded usage, {:?} → {:?}", upstream, inbound);
                for chunks in splits(&bytes, &points) {
                    let cut = run(&mut *relay(upstream, inbound), chunks);
                    prop_assert_eq!(cut.error.as_deref(), None);
                    prop_assert_eq!(&cut.out, &whole.out, "{:?} → {:?}", upstream, inbound);
                }
            }
        }
    }
}

// ---------- garbled, hostile and huge streams ----------

/// Field names and values the translators look for, so garbage reaches past the first check.
const WORDS: &[&str] = &[
    "type",
    "message",
    "usage",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "content_block",
    "index",
    "delta",
    "text",
    "thinking",
    "partial_json",
    "stop_reason",
    "id",
    "name",
    "input",
    "candidates",
    "content",
    "parts",
    "functionCall",
    "args",
    "thought",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "choices",
    "tool_calls",
    "function",
    "arguments",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "response",
    "promptFeedback",
    "blockReason",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "text_delta",
    "thinking_delta",
    "input_json_delta",
    "tool_use",
    "STOP",
    "MAX_TOKENS",
    "MALFORMED_FUNCTION_CALL",
    "SAFETY",
    "response.completed",
    "[DONE]",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

/// Any JSON, made mostly of the words the translators look for.
fn garbled_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An event payload: garbled JSON, JSON cut short, or any bytes.
fn garbled_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => garbled_json().prop_map(|v| v.to_string().into_bytes()),
        1 => (garbled_json(), any::<Index>()).prop_map(|(v, i)| {
            let mut b = v.to_string().into_bytes();
            b.truncate(i.index(b.len() + 1));
            b
        }),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn garbled_event() -> impl Strategy<Value = (Option<String>, Vec<u8>)> {
    (prop::option::of(word()), garbled_data())
}

/// Every translator the relay may drive, the Responses passthrough included.
fn every_relay() -> Vec<Box<dyn Relay>> {
    let mut all: Vec<Box<dyn Relay>> = Vec::new();
    for upstream in UPSTREAMS {
        for inbound in INBOUNDS {
            all.push(relay(upstream, inbound));
        }
    }
    all.push(Box::new(ResponsesPassthrough::new(true)));
    all
}

fn frames(events: &[(Option<String>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in events {
        if let Some(name) = name {
            out.extend_from_slice(format!("event: {name}\n").as_bytes());
        }
        // A payload's own line endings would make other lines of it.
        for line in data.split(|b| *b == b'\n' || *b == b'\r') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// Runs `bytes` through every translator, whole and cut: no panic, and the same outcome.
fn survives(bytes: &[u8], points: &[Index]) -> Result<(), TestCaseError> {
    for (i, mut whole_relay) in every_relay().into_iter().enumerate() {
        let whole = run(&mut *whole_relay, [bytes]);
        let mut cut_relay = every_relay().swap_remove(i);
        let cut = run(&mut *cut_relay, super::cuts(bytes, points));
        prop_assert_eq!(&cut.out, &whole.out);
        prop_assert_eq!(&cut.error, &whole.error);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64, 2))]

    /// Garbled events: an error or a reply, never a panic, whatever the cuts.
    #[test]
    fn garbled_streams_never_panic(
        events in prop::collection::vec(garbled_event(), 0..12),
        points in cut_points(),
    ) {
        survives(&frames(&events), &points)?;
    }

    /// A real stream with garbled events slipped in, events dropped or repeated, bytes changed.
    #[test]
    fn damaged_streams_never_panic(
        reply in reply(),
        noise in prop::collection::vec((any::<Index>(), garbled_event()), 0..4),
        dropped in prop::collection::vec(any::<Index>(), 0..3),
        repeated in prop::option::of(any::<Index>()),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        points in cut_points(),
    ) {
        for upstream in UPSTREAMS {
            let mut events: Vec<(Option<String>, Vec<u8>)> = events_of(upstream, &reply)
                .into_iter()
                .map(|(n, d)| (n.map(str::to_string), d.to_string().into_bytes()))
                .collect();
            for i in &dropped {
                if !events.is_empty() {
                    events.remove(i.index(events.len()));
                }
            }
            if let Some(i) = repeated.filter(|_| !events.is_empty()) {
                let e = events[i.index(events.len())].clone();
                events.insert(i.index(events.len()), e);
            }
            for (at, e) in &noise {
                events.insert(at.index(events.len() + 1), e.clone());
            }
            let mut bytes = frames(&events);
            for (at, b) in &flips {
                if !bytes.is_empty() {
                    let at = at.index(bytes.len());
                    bytes[at] = *b;
                }
            }
            survives(&bytes, &points)?;
        }
    }
}

/// Runs `bytes` through every translator; the outcomes, for the checks that want them.
fn through_all(bytes: &[u8]) -> Vec<Outcome> {
    every_relay()
        .into_iter()
        .map(|mut r| run(&mut *r, [bytes]))
        .collect()
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let deep = |open: &str, close: &str, n: usize| {
        let mut s = open.repeat(n);
        s.push('1');
        s.push_str(&close.repeat(n));
        s
    };
    for payload in [
        "[".repeat(10_000),
        deep("[", "]", 10_000),
        deep("{\"a\":", "}", 10_000),
        format!(r#"{{"candidates":{}}}"#, deep("[", "]", 10_000)),
        format!(
            r#"{{"type":"content_block_delta","index":0,"delta":{}}}"#,
            deep("{\"delta\":", "}", 10_000)
        ),
        format!(
            r#"{{"choices":[{{"delta":{{"content":{}}}}}]}}"#,
            deep("[", "]", 10_000)
        ),
    ] {
        let mut bytes = Vec::new();
        for name in ["message_start", "response.completed"] {
            bytes.extend_from_slice(format!("event: {name}\ndata: {payload}\n\n").as_bytes());
        }
        for outcome in through_all(&bytes) {
            let _ = outcome;
        }
    }
}

/// Token counts past what fits: 2^70 and 1e400 are unreadable (an error or no usage), the
/// largest 64-bit counts add up without overflowing.
#[test]
fn huge_numbers_are_an_error_or_saturate() {
    for n in [
        "1180591620717411303424",
        "1e400",
        "-1",
        "18446744073709551615",
        "1.5",
    ] {
        let gemini = format!(
            r#"data: {{"candidates":[{{"content":{{"parts":[{{"text":"a"}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":{n},"candidatesTokenCount":{n},"thoughtsTokenCount":{n},"cachedContentTokenCount":{n}}}}}

"#
        );
        let anthropic = format!(
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"usage\":{{\"input_tokens\":{n},\"cache_read_input_tokens\":{n},\"cache_creation_input_tokens\":{n},\"output_tokens\":{n}}}}}}}\n\n\
             event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\"}},\"usage\":{{\"output_tokens\":{n}}}}}\n\n\
             event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
        );
        let openai = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"a\"}},\"finish_reason\":\"stop\"}}]}}\n\n\
             data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{n},\"completion_tokens\":{n},\"total_tokens\":{n},\"prompt_tokens_details\":{{\"cached_tokens\":{n}}}}}}}\n\n\
             data: [DONE]\n\n"
        );
        let responses = format!(
            "event: response.completed\ndata: {{\"type\":\"response.completed\",\"response\":{{\"usage\":{{\"input_tokens\":{n},\"output_tokens\":{n},\"input_tokens_details\":{{\"cached_tokens\":{n}}}}}}}}}\n\n"
        );
        for (upstream, bytes) in [
            (Upstream::Gemini, &gemini),
            (Upstream::Anthropic, &anthropic),
            (Upstream::OpenAi, &openai),
        ] {
            for inbound in INBOUNDS {
                let outcome = run(&mut *relay(upstream, inbound), [bytes.as_bytes()]);
                if n == "18446744073709551615" {
                    assert_eq!(outcome.error, None, "{upstream:?} → {inbound:?}");
                    let usage = outcome.usage.expect("usage");
                    assert_eq!(usage.prompt_tokens, u64::MAX, "{upstream:?} → {inbound:?}");
                    assert_eq!(usage.total_tokens, u64::MAX, "{upstream:?} → {inbound:?}");
                }
            }
        }
        let mut passthrough = ResponsesPassthrough::new(true);
        let outcome = run(&mut passthrough, [responses.as_bytes()]);
        if n == "18446744073709551615" {
            assert_eq!(outcome.usage.expect("usage").total_tokens, u64::MAX);
        }
    }
}

#[test]
fn invalid_utf8_inside_strings_is_an_error() {
    let bytes = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\xff\xfe\"}]},\"index\":0}]}\n\n\
        event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xc3\"}}\n\n\
        data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xed\xa0\x80\"}}]}\n\n";
    for outcome in through_all(bytes) {
        let _ = outcome;
    }
}

/// A reply with 10,000 tool calls reaches every client whole, in bounded time.
#[test]
fn ten_thousand_tool_calls() {
    let reply = Reply {
        pieces: (0..10_000)
            .map(|i| Piece::Call {
                name: format!("f{i}"),
                args: json!({"i": i}),
                cuts: Vec::new(),
            })
            .collect(),
        stop: Stop::Normal,
        prompt: 10,
        cached: 0,
        completion: 20,
        eol: "\n",
    };
    let started = std::time::Instant::now();
    for upstream in UPSTREAMS {
        let bytes = encode(upstream, &reply);
        for inbound in INBOUNDS {
            let outcome = run(&mut *relay(upstream, inbound), [&bytes[..]]);
            assert_eq!(outcome.error, None, "{upstream:?} → {inbound:?}");
            let got = meaning(inbound, &outcome.out);
            assert_eq!(got.calls.len(), 10_000, "{upstream:?} → {inbound:?}");
            assert_eq!(got.calls[9_999], ("f9999".to_string(), json!({"i": 9_999})));
        }
    }
    // Each of the nine runs is linear in the calls: seconds in a debug build, not minutes.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// Regression: a tool call without input (Anthropic streams no argument text for it) reached
/// chat clients with `""` as its arguments, which is not JSON; a whole reply said `{}`.
#[test]
fn an_anthropic_tool_call_without_input_has_empty_object_arguments() {
    let reply = Reply {
        pieces: vec![Piece::Call {
            name: "now".into(),
            args: json!({}),
            cuts: Vec::new(),
        }],
        stop: Stop::Normal,
        prompt: 1,
        cached: 0,
        completion: 1,
        eol: "\n",
    };
    let bytes = encode(Upstream::Anthropic, &reply);
    assert!(String::from_utf8_lossy(&bytes).contains(r#""partial_json":"""#));
    for inbound in INBOUNDS {
        let outcome = run(&mut *relay(Upstream::Anthropic, inbound), [&bytes[..]]);
        let got = meaning(inbound, &outcome.out);
        assert_eq!(got.calls, [("now".to_string(), json!({}))], "{inbound:?}");
    }
    let outcome = run(
        &mut *relay(Upstream::Anthropic, Inbound::Chat),
        [&bytes[..]],
    );
    let arguments: String = client_events(&outcome.out)
        .iter()
        .filter(|e| e.data != b"[DONE]")
        .filter_map(|e| {
            let chunk = data_json(e);
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(arguments, "{}");
}
