//! Chaos under load: the real binary on Redis, with traffic running for `LLM_BRIDGE_CHAOS_SECONDS`
//! (40 s when `CI=true`, 20 s otherwise) while the upstream resets connections, stalls past the
//! gateway's timeouts and sends malformed bodies, Redis is killed and restarted twice, and the
//! configuration is rewritten every second; then SIGTERM while the traffic still runs.
//!
//! Every request ends one way: answered (2xx), failed with an error in OpenAI's shape (a status
//! with `{"error": {"message", "type"}}`, or an error event in a stream), or no reply at all once
//! the gateway has stopped accepting. None hangs, none gets a malformed reply, the gateway exits
//! within its drain timeout, and the stats in Redis count every request that got a reply exactly
//! once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::soak::duration_from_env;
use crate::support::*;
use llm_bridge::stats::{RedisStore, Stats, Store, Window};
use llm_bridge_mock::MockUpstream;
use serde_json::{Value, json};

const CLIENTS: usize = 16;
/// A request still unanswered after this long is hung.
const HUNG_AFTER: Duration = Duration::from_secs(15);
const DRAIN: Duration = Duration::from_secs(6);

/// The configuration, with one of two aliases so that every rewrite really changes it.
fn config(alias: &str) -> String {
    format!(
        "[server]\nfirst_byte_timeout = \"1s\"\nidle_timeout = \"1s\"\ntotal_timeout = \"4s\"\n\
         drain_timeout = \"{}s\"\n\
         [routing]\nmax_attempts = 2\nretry_base_delay = \"10ms\"\ntotal_timeout = \"4s\"\n\
         [routing.circuit]\ncooldown = \"1s\"\n\
         [models.aliases]\n{alias} = \"gpt-4o-mini\"\n",
        DRAIN.as_secs()
    )
}

/// What a client asks for, and what the mock does with it.
#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    model: &'static str,
    stream: bool,
    embeddings: bool,
    /// The mock answers it properly.
    healthy: bool,
}

const fn chat(name: &'static str, model: &'static str, stream: bool) -> Kind {
    Kind {
        name,
        model,
        stream,
        embeddings: false,
        healthy: false,
    }
}

const fn healthy(kind: Kind) -> Kind {
    Kind {
        healthy: true,
        ..kind
    }
}

const MIX: [Kind; 14] = [
    healthy(chat("plain", "openai/gpt-4o-mini", false)),
    healthy(chat("stream", "openai/gpt-4o-mini", true)),
    // The alias exists in every other configuration: 200 or 404.
    chat("alias", "fast", false),
    healthy(chat("long_stream", "openai/gpt-4o-mini-chunks2000", true)),
    chat("reset", "openai/gpt-4o-mini-reset", false),
    chat("reset_stream", "openai/gpt-4o-mini-reset", true),
    chat("hang", "openai/gpt-4o-mini-hang", false),
    chat("stall_stream", "openai/gpt-4o-mini-stall", true),
    chat("garbage", "openai/gpt-4o-mini-garbage", false),
    chat("badjson_stream", "openai/gpt-4o-mini-badjson", true),
    chat("cut_stream", "openai/gpt-4o-mini-cut", true),
    chat("fail500", "openai/gpt-4o-mini-fail500", false),
    Kind {
        name: "embeddings",
        model: "openai/text-embedding-3-small",
        stream: false,
        embeddings: true,
        healthy: true,
    },
    healthy(chat("plain", "openai/gpt-4o-mini", false)),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// 2xx with a complete, well-formed reply.
    Answered,
    /// An error status with OpenAI's error body, or a stream that ends with an error event.
    Failed,
    /// Still unanswered after [`HUNG_AFTER`].
    Hung,
    /// No status at all (refused or closed connection).
    NoReply,
    /// A reply in no valid shape.
    Wrong,
}

/// Whether a JSON value is OpenAI's error object.
fn is_error(v: &Value) -> bool {
    v["error"]["message"].is_string() && v["error"]["type"].is_string()
}

/// What a reply was, and a note when it was wrong.
async fn classify(kind: Kind, resp: reqwest::Response) -> (Outcome, Option<String>) {
    let status = resp.status();
    let text = match resp.text().await {
        Ok(text) => text,
        // The status came, the rest broke off: the gateway's replies always end properly.
        Err(e) => {
            return (
                Outcome::Wrong,
                Some(format!("{status}, body broke off: {e}")),
            );
        }
    };
    let wrong = |why: &str| (Outcome::Wrong, Some(format!("{why}: {status} {text:.300}")));
    if !status.is_success() {
        return match serde_json::from_str::<Value>(&text) {
            Ok(v) if is_error(&v) && status.as_u16() >= 400 => (
                Outcome::Failed,
                Some(format!("{status} {}", v["error"]["message"])),
            ),
            _ => wrong("an error not in OpenAI's shape"),
        };
    }
    if !kind.stream {
        return match serde_json::from_str::<Value>(&text) {
            Ok(v) if v["choices"].is_array() || v["data"].is_array() => (Outcome::Answered, None),
            _ => wrong("a 2xx that is not a reply"),
        };
    }
    let payloads = sse_payloads(&text);
    if payloads.last().map(String::as_str) != Some("[DONE]") {
        return wrong("a stream without [DONE]");
    }
    let mut failed = None;
    for p in &payloads[..payloads.len() - 1] {
        match serde_json::from_str::<Value>(p) {
            Ok(v) if is_error(&v) => failed = Some(format!("event {}", v["error"]["message"])),
            Ok(v) if v["choices"].is_array() => {}
            _ => return wrong("a stream event that is neither a chunk nor an error"),
        }
    }
    match failed {
        Some(message) => (Outcome::Failed, Some(message)),
        None => (Outcome::Answered, None),
    }
}

#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<Outcome, u64>,
    by_kind: BTreeMap<(&'static str, Outcome), u64>,
    /// Requests without a reply before SIGTERM.
    no_reply_before_term: u64,
    wrong: Vec<String>,
    /// Why requests the upstream would have answered failed (a Redis outage or a reload must not
    /// be a reason).
    surprises: BTreeMap<String, u64>,
}

impl Tally {
    fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes.get(&outcome).copied().unwrap_or(0)
    }
}

async fn one(http: &reqwest::Client, url: &str, kind: Kind) -> (Outcome, Option<String>) {
    let request = if kind.embeddings {
        http.post(format!("{url}/v1/embeddings"))
            .json(&json!({"model": kind.model, "input": ["chaos"]}))
    } else {
        http.post(format!("{url}/v1/chat/completions"))
            .json(&json!({
                "model": kind.model,
                "stream": kind.stream,
                "messages": [{"role": "user", "content": "Hi"}],
            }))
    };
    let attempt = async {
        match request.bearer_auth(MASTER).send().await {
            Ok(resp) => classify(kind, resp).await,
            Err(e) => {
                let mut why = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    why.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                (Outcome::NoReply, Some(why))
            }
        }
    };
    match tokio::time::timeout(HUNG_AFTER, attempt).await {
        Ok(outcome) => outcome,
        Err(_) => (Outcome::Hung, Some(format!("{} hung", kind.name))),
    }
}

/// The gateway's `requests` total in Redis over the last day, read with the gateway's own store.
async fn redis_total(url: &str) -> u64 {
    let store = RedisStore::connect(url, 1000, Default::default())
        .await
        .expect("redis store");
    let stats = Stats::start(Store::Redis(store), Duration::from_millis(50));
    stats.overview(Window::Day).await.unwrap().requests
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_under_load_every_request_ends_once_and_is_counted_once() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let seconds = duration_from_env("LLM_BRIDGE_CHAOS_SECONDS", 40, 20);
    let mock = MockUpstream::start_on("127.0.0.1:0".parse().unwrap(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config("fast")).unwrap();
    let mut env: Vec<(&str, String)> = vec![
        ("LLM_BRIDGE_MASTER_KEY", MASTER.into()),
        ("REDIS_URL", redis.url()),
        ("LLM_BRIDGE_CONFIG", file.path().to_string_lossy().into()),
        ("RUST_LOG", "info".into()),
    ];
    let wiring = mock_env(&mock);
    env.extend(wiring.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let gw = Running::start(dir.path(), &env).await;
    let url = gw.url.clone();

    let tally = Arc::new(Mutex::new(Tally::default()));
    let terminated = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::new();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (tally, terminated, stop) = (tally.clone(), terminated.clone(), stop.clone());
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let kind = MIX[i % MIX.len()];
                    i += 1;
                    let (outcome, note) = one(&http, &url, kind).await;
                    // A request on a keep-alive connection the gateway closes as it stops gets no
                    // reply: only one that ended before SIGTERM must have had one.
                    let before_term = !terminated.load(Ordering::Relaxed);
                    {
                        let mut t = tally.lock().unwrap();
                        *t.outcomes.entry(outcome).or_default() += 1;
                        *t.by_kind.entry((kind.name, outcome)).or_default() += 1;
                        if outcome == Outcome::NoReply && before_term {
                            t.no_reply_before_term += 1;
                            t.wrong.extend(note.clone());
                        }
                        if outcome == Outcome::Failed && kind.healthy {
                            let why = note.clone().unwrap_or_default();
                            *t.surprises
                                .entry(format!("{}: {why:.160}", kind.name))
                                .or_default() += 1;
                        }
                        if matches!(outcome, Outcome::Wrong | Outcome::Hung) {
                            t.wrong.extend(note);
                        }
                    }
                    if outcome == Outcome::NoReply && !before_term {
                        // The gateway is going away: do not spin on refused connections.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();

    // The configuration, rewritten every second with the other alias.
    let reloader = {
        let (path, stop) = (file.path().to_path_buf(), stop.clone());
        tokio::spawn(async move {
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                writes += 1;
                let alias = if writes.is_multiple_of(2) {
                    "fast"
                } else {
                    "quick"
                };
                std::fs::write(&path, config(alias)).unwrap();
            }
            writes
        })
    };

    // Redis goes away twice for three seconds.
    let started = Instant::now();
    let mut redis_outages = 0;
    for at in [0.2, 0.55] {
        let when = seconds.mul_f64(at);
        tokio::time::sleep(when.saturating_sub(started.elapsed())).await;
        redis.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        redis.restart();
        redis_outages += 1;
    }
    tokio::time::sleep(seconds.saturating_sub(started.elapsed())).await;
    let scrape = http
        .get(format!("{url}/metrics"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped = crate::soak::gauge(&scrape, "llm_bridge_stats_dropped_records_total");

    // SIGTERM while the traffic runs; the clients go on for another second.
    let term_at = Instant::now();
    terminated.store(true, Ordering::Relaxed);
    gw.terminate();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let (status, log) = gw.wait_exit().await;
    let exit_after = term_at.elapsed();
    for c in clients {
        c.await.unwrap();
    }
    let rewrites = reloader.await.unwrap();
    let reloads = log.matches("configuration reloaded").count();
    let store_failures = log.matches("stats store write failed").count();

    let tally = Arc::into_inner(tally).unwrap().into_inner().unwrap();
    let replied = tally.count(Outcome::Answered) + tally.count(Outcome::Failed);
    let mut counted = 0;
    for _ in 0..40 {
        counted = redis_total(&redis.url()).await;
        if counted >= replied {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lost = replied.saturating_sub(counted);
    let double = counted.saturating_sub(replied);
    let kinds: Vec<String> = tally
        .by_kind
        .iter()
        .map(|((k, o), n)| format!("{k}/{o:?}={n}"))
        .collect();
    println!(
        "chaos: {}s, {CLIENTS} clients; answered {}, failed with a correct error {}, hung {}, \
         wrong {}, no reply {} ({} before SIGTERM); stats: replied {replied}, counted {counted}, \
         lost {lost}, double {double}, dropped {dropped:?}; config rewrites {rewrites}, reloads {reloads}; \
         Redis outages {redis_outages} ({store_failures} failed stats writes retried); exit {status} {:.1}s after SIGTERM (drain {}s)\n  {}",
        seconds.as_secs(),
        tally.count(Outcome::Answered),
        tally.count(Outcome::Failed),
        tally.count(Outcome::Hung),
        tally.count(Outcome::Wrong),
        tally.count(Outcome::NoReply),
        tally.no_reply_before_term,
        exit_after.as_secs_f64(),
        DRAIN.as_secs(),
        kinds.join(" "),
    );
    for (why, n) in &tally.surprises {
        println!("  failed although the upstream answers: {n} x {why}");
    }
    assert!(
        tally.wrong.is_empty(),
        "hung, malformed or unanswered before SIGTERM:\n{}",
        tally.wrong.join("\n")
    );
    assert_eq!(tally.count(Outcome::Hung), 0, "hung requests");
    assert_eq!(lost, 0, "replies missing from the stats");
    assert_eq!(double, 0, "requests counted twice");
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(
        exit_after < DRAIN + Duration::from_secs(2),
        "exited {exit_after:?} after SIGTERM"
    );
    assert!(tally.count(Outcome::Answered) > 0 && tally.count(Outcome::Failed) > 0);
    assert!(
        reloads as u64 >= rewrites / 2,
        "{reloads} reloads for {rewrites} rewrites"
    );
}
