//! A mock upstream for tests, the benchmark and the console's end2end tests (a development crate:
//! the gateway's build never contains it). It speaks OpenAI's,
//! Gemini's and Anthropic's wire formats, streaming included, and records every request it receives.
//!
//! Behaviour is chosen by words in the requested model name, the same for every wire format:
//! - `fail500once`: the first request for that model gets a 500, the next ones succeed;
//! - `fail500x<N>`: the first N requests for that model get a 500;
//! - `fail500`: always 500; `fail400`: a 400 with the provider's error body; `fail429`: 429 with `Retry-After: 1`;
//! - `hang`: never answers; `slow`: waits 300 ms before answering;
//! - OpenAI dialect only: `slowfirst` (a stream whose first event comes after 500 ms), `stall`
//!   (a stream that stops sending after three events but stays open), `badjson` (a stream whose
//!   fourth event, 200 ms after the first three, is a truncated JSON object holding [`GARBLED`],
//!   followed by the rest of the reply and `[DONE]`);
//! - OpenAI dialect, Gemini and Anthropic: `agent` (a coding agent's turn: a call to the first shell or file
//!   tool the request offers (`Bash`, `exec_command`, `shell`, `Read`, `read_file`) reading [`AGENT_FILE`], or,
//!   once the request carries that call's result, an answer quoting it);
//! - Gemini: `gemini-3` (the first function call of a reply carries a `thoughtSignature`, and a
//!   request whose earlier calls come back without it, or with another, is refused with 400;
//!   `skip_thought_signature_validator` passes, as at Google, except on a `strict` model);
//! - OpenAI dialect: `halfjson` (a non-stream 200 whose JSON breaks off), `pausethen500` (429 with
//!   `Retry-After: 1`, then one 500, then replies); Anthropic: `errormidway` (an `error` event
//!   after a few words), `truncated` (a stream that ends without `message_stop`);
//! - `tools`: two parallel tool calls (`get_weather` for Paris and Tokyo);
//! - `reasoning`: thinking text before the answer, with reasoning tokens in usage;
//! - `cut`: a stream that stops after three chunks without finishing (connection closed);
//! - OpenAI dialect only: `reset` (the connection closes before any byte of the reply), `garbage`
//!   (a 200 whose body is an HTML page instead of JSON; streams answer as usual), `chunks<N>`
//!   (a reply of N words: N content chunks when streamed, usage N completion tokens), `drip`
//!   (a stream whose events come 100 ms apart);
//! - OpenAI dialect only: `leakkey` (a 401 quoting the caller's key percent-encoded and cut short);
//! - Anthropic only: `cachewrite` (the usage reports [`CACHE_WRITE_TOKENS`] written to the cache);
//! - Anthropic: with thinking on, every reply starts with a signed thinking block (and a redacted
//!   one for `redacted`), and a tool turn whose thinking block does not come back first, or comes
//!   back altered, is refused with 400 as Anthropic refuses it; a `strict` model refuses tool
//!   results with thinking off (which proves the block came back); `agent` as for OpenAI;
//! - `length`: the answer is cut by the token limit; `nousage`: the reply reports no usage;
//! - Gemini only: `blocked` (prompt blocked), `malformed` (`MALFORMED_FUNCTION_CALL`), `safety` (`SAFETY`).
//!
//! Otherwise it answers [`REPLY_WORDS`] as text: one word per stream chunk, usage
//! `PROMPT_TOKENS` in and `REPLY_WORDS.len()` out (plus `CACHED_TOKENS` cached).

#![forbid(unsafe_code)]

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod responses;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};

pub const REPLY_WORDS: [&str; 20] = [
    "Hello",
    " from",
    " the",
    " mock",
    " upstream",
    ",",
    " a",
    " reply",
    " of",
    " exactly",
    " twenty",
    " tokens",
    " for",
    " tests",
    " and",
    " the",
    " gateway",
    " bench",
    "mark",
    ".",
];
pub const PROMPT_TOKENS: u64 = 12;
/// The file an `agent` model asks the client to read, relative to the client's working directory.
pub const AGENT_FILE: &str = "bridge-note.txt";
pub const CACHED_TOKENS: u64 = 4;
/// Prompt tokens an Anthropic reply reports written to the cache when the model name says
/// `cachewrite`.
pub const CACHE_WRITE_TOKENS: u64 = 5;
pub const REASONING_TOKENS: u64 = 7;
pub const REASONING_TEXT: &str = "Let me think about this step by step.";
/// The text inside the malformed event of the `badjson` stream.
pub const GARBLED: &str = "garbled";

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    /// The body's bytes as they arrived.
    pub raw: Vec<u8>,
}

/// A request's path, query and bytes.
type LastRaw = (String, Option<String>, Vec<u8>);

#[derive(Default)]
pub struct MockState {
    received: Mutex<Vec<Received>>,
    hits: Mutex<HashMap<String, u32>>,
    /// When false the mock keeps no copy of requests (the benchmark).
    pub record: bool,
    /// The last request's path, query and bytes, always kept (one at most): `GET /mock/last`.
    last_raw: Mutex<Option<LastRaw>>,
}

impl MockState {
    fn record(&self, path: &str, query: Option<String>, headers: &HeaderMap, raw: &[u8]) {
        *self.last_raw.lock().unwrap() = Some((path.to_string(), query.clone(), raw.to_vec()));
        if self.record {
            let body = serde_json::from_slice(raw).unwrap_or(serde_json::Value::Null);
            let received = Received {
                path: path.to_string(),
                query,
                headers: headers.clone(),
                body,
                raw: raw.to_vec(),
            };
            self.received.lock().unwrap().push(received);
        }
    }

    /// How many times this model was requested before, this one included.
    fn hit(&self, model: &str) -> u32 {
        let mut hits = self.hits.lock().unwrap();
        let n = hits.entry(model.to_string()).or_default();
        *n += 1;
        *n
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the mock received no request")
    }
}

/// What the model name asks the mock to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Text,
    Fail500,
    Fail400,
    Fail429,
    Hang,
    Tools,
    Reasoning,
    Cut,
    Length,
    NoUsage,
    Blocked,
    Malformed,
    Safety,
    SlowFirst,
    Stall,
    /// A stream whose events come 100 ms apart.
    Drip,
    BadJson,
    Reset,
    Garbage,
    /// OpenAI: a non-stream reply of 200 whose JSON breaks off.
    HalfJson,
    /// Anthropic: an `error` event (overloaded) after a few words, then the stream ends.
    ErrorMidway,
    /// Anthropic: a few words, then the stream ends cleanly without `message_stop`.
    Truncated,
}

/// The N of `chunks<N>` in a model name.
pub fn chunk_count(model: &str) -> Option<usize> {
    let rest = model.split("chunks").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl MockState {
    /// Decides the behaviour for a request and applies the delays (`slow`, `hang`).
    async fn behaviour(&self, model: &str) -> Behaviour {
        if model.contains("slow") && !model.contains("slowfirst") {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let failing_first = model
            .split("fail500x")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .and_then(|n| n.parse::<u32>().ok());
        let b = if model.contains("pausethen500") {
            // 429 (Retry-After: 1) first, then one 500, then replies.
            match self.hit(model) {
                1 => Behaviour::Fail429,
                2 => Behaviour::Fail500,
                _ => Behaviour::Text,
            }
        } else if model.contains("halfjson") {
            Behaviour::HalfJson
        } else if model.contains("fail500once") {
            if self.hit(model) == 1 {
                Behaviour::Fail500
            } else {
                Behaviour::Text
            }
        } else if let Some(n) = failing_first {
            if self.hit(model) <= n {
                Behaviour::Fail500
            } else {
                Behaviour::Text
            }
        } else if model.contains("fail500") {
            Behaviour::Fail500
        } else if model.contains("fail400") {
            Behaviour::Fail400
        } else if model.contains("fail429") {
            Behaviour::Fail429
        } else if model.contains("slowfirst") {
            Behaviour::SlowFirst
        } else if model.contains("stall") {
            Behaviour::Stall
        } else if model.contains("drip") {
            Behaviour::Drip
        } else if model.contains("badjson") {
            Behaviour::BadJson
        } else if model.contains("reset") {
            Behaviour::Reset
        } else if model.contains("garbage") {
            Behaviour::Garbage
        } else if model.contains("hang") {
            Behaviour::Hang
        } else if model.contains("tools") {
            Behaviour::Tools
        } else if model.contains("reasoning") {
            Behaviour::Reasoning
        } else if model.contains("errormidway") {
            Behaviour::ErrorMidway
        } else if model.contains("truncated") {
            Behaviour::Truncated
        } else if model.contains("cut") {
            Behaviour::Cut
        } else if model.contains("length") {
            Behaviour::Length
        } else if model.contains("nousage") {
            Behaviour::NoUsage
        } else if model.contains("blocked") {
            Behaviour::Blocked
        } else if model.contains("malformed") {
            Behaviour::Malformed
        } else if model.contains("safety") {
            Behaviour::Safety
        } else {
            Behaviour::Text
        };
        if b == Behaviour::Hang {
            std::future::pending::<()>().await;
        }
        b
    }
}

pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/chat/completions", post(openai::chat))
        .route("/compatible-mode/v1/chat/completions", post(openai::chat))
        .route("/v1/responses", post(responses::create))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1beta/models/{model_action}", post(gemini::dispatch))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/mock/last", get(last_request))
        // Providers take requests of many megabytes (long conversations).
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(state)
}

/// `GET /mock/last`: the bytes of the last request the mock received, its path and query in
/// `x-mock-path` and `x-mock-query` (for clients in other languages that check what arrived).
async fn last_request(
    axum::extract::State(state): axum::extract::State<Arc<MockState>>,
) -> axum::response::Response {
    let last = state.last_raw.lock().unwrap().clone();
    let Some((path, query, raw)) = last else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let mut response = raw.into_response();
    let headers = response.headers_mut();
    if let Ok(path) = path.parse() {
        headers.insert("x-mock-path", path);
    }
    if let Some(Ok(query)) = query.map(|q| q.parse()) {
        headers.insert("x-mock-query", query);
    }
    response
}

/// A running mock on an ephemeral loopback port.
pub struct MockUpstream {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    pub async fn start() -> MockUpstream {
        Self::start_on("127.0.0.1:0".parse().unwrap(), true).await
    }

    pub async fn start_on(addr: SocketAddr, record: bool) -> MockUpstream {
        let state = Arc::new(MockState {
            record,
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the mock upstream");
        let addr = listener.local_addr().unwrap();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.unwrap();
        });
        MockUpstream { addr, state, task }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where each provider's base URL points on a mock at `mock_url` (`http://host:port`): the
/// `(variable, URL)` pairs of `wiring.txt`, which `scripts/e2e.sh` reads too.
pub fn wiring(mock_url: &str) -> Vec<(&'static str, String)> {
    include_str!("../wiring.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?, fields.next()?.replace("{mock}", mock_url)))
        })
        .collect()
}

/// A deterministic 8-dimensional embedding of a text.
pub fn vector_for(text: &str) -> Vec<f32> {
    let mut v = [0f32; 8];
    for (i, b) in text.bytes().enumerate() {
        v[i % 8] += b as f32 / 255.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}
