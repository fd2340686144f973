//! Soak: the real binary under a steady mix of traffic for `LLM_BRIDGE_SOAK_SECONDS` (120 s when
//! `CI=true`, 20 s otherwise; `make soak` runs it for an hour): plain replies, 10,000-chunk streams,
//! slow readers that stop reading, clients that leave mid-stream, embeddings, refusals by a key's
//! rate limit and invalid requests. Resident memory, sampled every second, stays flat after the
//! warm-up (the slope is printed); open file descriptors and runtime tasks come back to their idle
//! count; every request that reached the gateway's handlers is in the stats exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use llm_bridge_mock::{MockUpstream, REPLY_WORDS};
use serde_json::{Value, json};

/// Client connections driving the load (the other tests share the machine).
const CONNECTIONS: usize = 16;
/// A stream of 10,000 content chunks.
const LONG: &str = "openai/gpt-4o-mini-chunks10000";
/// A stream longer than the largest socket send buffer Linux gives by default (4 MiB), so that a
/// reader who stops really makes the gateway wait.
const LONGER: &str = "openai/gpt-4o-mini-chunks40000";
/// Allowed RSS growth after the warm-up, in MiB per minute, over a window of ten minutes or more.
const MAX_SLOPE_MIB_PER_MIN: f64 = 1.0;
/// The same over a shorter window: the heap still settles during the first two minutes or so (by
/// steps of about 1 MiB, and one step in a 45-second window alone reads as 2 MiB per minute).
const MAX_SHORT_SLOPE_MIB_PER_MIN: f64 = 4.0;

/// How long a scenario runs: `var` in seconds, else `ci` seconds when `CI=true`, else `local`.
pub(crate) fn duration_from_env(var: &str, ci: u64, local: u64) -> Duration {
    let secs = std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("CI").is_ok_and(|v| v == "true") {
            ci
        } else {
            local
        });
    Duration::from_secs(secs)
}

/// Resident memory of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process, and how many of them are connections to `port` (the
/// upstream's idle keep-alive pool, which the gateway keeps for a while on purpose).
pub(crate) fn fds(pid: u32, port: u16) -> (usize, usize) {
    let mut to_port = std::collections::HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let remote = f.get(2).and_then(|a| a.rsplit(':').next());
            if remote.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                && let Some(inode) = f.get(9)
            {
                to_port.insert(format!("socket:[{inode}]"));
            }
        }
    }
    let mut open = 0;
    let mut upstream = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        open += 1;
        if let Ok(target) = std::fs::read_link(entry.path())
            && to_port.contains(target.to_string_lossy().as_ref())
        {
            upstream += 1;
        }
    }
    (open, upstream)
}

/// A gauge's value in a Prometheus scrape.
pub(crate) fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `GET /metrics` with the master key.
pub(crate) async fn scrape(http: &reqwest::Client, url: &str) -> String {
    http.get(format!("{url}/metrics"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Tasks alive in the gateway's runtime (`llm_bridge_runtime_alive_tasks`).
pub(crate) async fn alive_tasks(http: &reqwest::Client, url: &str) -> u64 {
    let scrape = scrape(http, url).await;
    gauge(&scrape, "llm_bridge_runtime_alive_tasks").expect("the task gauge is exported") as u64
}

/// The sum of a counter family's series whose labels contain `label`.
pub(crate) fn counter_sum(scrape: &str, family: &str, label: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Least-squares slope of `(seconds, KiB)` samples, in MiB per minute.
pub(crate) fn slope_mib_per_min(samples: &[(f64, u64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in samples {
        sxy += (x - mx) * (y as f64 - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx == 0.0 {
        return 0.0;
    }
    sxy / sxx * 60.0 / 1024.0
}

/// The `requests` total of the stats over the last 24 hours.
pub(crate) async fn recorded_total(http: &reqwest::Client, url: &str) -> Option<u64> {
    let overview: Value = http
        .get(format!("{url}/api/stats/overview?window=24h"))
        .bearer_auth(MASTER)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    overview["requests"].as_u64()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Stream,
    SlowReader,
    Leaver,
    Embedding,
    Refused,
    NoMessages,
    BadJson,
}

/// The mix, one entry per request in turn.
const MIX: [Kind; 12] = [
    Kind::Plain,
    Kind::Stream,
    Kind::Embedding,
    Kind::Plain,
    Kind::SlowReader,
    Kind::Refused,
    Kind::Plain,
    Kind::Leaver,
    Kind::NoMessages,
    Kind::Embedding,
    Kind::BadJson,
    Kind::Stream,
];

const KINDS: [Kind; 8] = [
    Kind::Plain,
    Kind::Stream,
    Kind::SlowReader,
    Kind::Leaver,
    Kind::Embedding,
    Kind::Refused,
    Kind::NoMessages,
    Kind::BadJson,
];

impl Kind {
    fn index(self) -> usize {
        KINDS.iter().position(|k| *k == self).unwrap()
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Stream => "stream10k",
            Kind::SlowReader => "slow_reader",
            Kind::Leaver => "leaver",
            Kind::Embedding => "embedding",
            Kind::Refused => "refused",
            Kind::NoMessages => "no_messages",
            Kind::BadJson => "bad_json",
        }
    }

    /// Whether the gateway records it: everything that reaches the handlers, except a body that is
    /// not a request at all (no model to record it under).
    fn recorded(self) -> bool {
        self != Kind::BadJson
    }
}

struct Load {
    url: String,
    http: reqwest::Client,
    /// A key limited to one request a minute: its requests are refused with 429.
    limited: String,
    sent: [AtomicU64; KINDS.len()],
    /// Replies by status class: 2xx, 4xx (the refusals and invalid requests).
    ok: AtomicU64,
    refused: AtomicU64,
}

impl Load {
    fn chat(&self, key: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(body)
    }

    /// One request of `kind`, its reply checked.
    async fn one(&self, kind: Kind) {
        let stream = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
        let status = match kind {
            Kind::Plain => {
                let resp = self
                    .chat(MASTER, &hello("openai/gpt-4o-mini"))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let reply: Value = resp.json().await.unwrap();
                assert_eq!(status, 200, "{reply}");
                assert_eq!(
                    reply["choices"][0]["message"]["content"],
                    REPLY_WORDS.concat()
                );
                status
            }
            Kind::Stream => {
                let resp = self.chat(MASTER, &stream(LONG)).send().await.unwrap();
                let status = resp.status();
                let text = resp.text().await.unwrap();
                assert_eq!(status, 200, "{text}");
                assert!(text.ends_with("data: [DONE]\n\n"), "the stream ends");
                assert!(!text.contains("\"error\""), "no error event");
                let chunks = text.matches("\"content\":").count();
                assert!(chunks >= 10_000, "{chunks} content chunks");
                status
            }
            Kind::SlowReader => self.slow_reader(&stream(LONGER)).await,
            Kind::Leaver => {
                let mut resp = self.chat(MASTER, &stream(LONG)).send().await.unwrap();
                let status = resp.status();
                assert_eq!(status, 200);
                assert!(resp.chunk().await.unwrap().is_some(), "the stream starts");
                drop(resp);
                status
            }
            Kind::Embedding => {
                let resp = self
                    .http
                    .post(format!("{}/v1/embeddings", self.url))
                    .bearer_auth(MASTER)
                    .json(&json!({"model": "openai/text-embedding-3-small", "input": ["a b", "c"]}))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let reply: Value = resp.json().await.unwrap();
                assert_eq!(status, 200, "{reply}");
                assert_eq!(reply["data"].as_array().unwrap().len(), 2);
                status
            }
            Kind::Refused => {
                let resp = self
                    .chat(&self.limited, &hello("openai/gpt-4o-mini"))
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let reply: Value = resp.json().await.unwrap();
                // The key's one request a minute may go through; the others are refused.
                assert!(status == 200 || status == 429, "{status} {reply}");
                if status == 429 {
                    assert_eq!(reply["error"]["code"], "rate_limit_exceeded");
                }
                status
            }
            Kind::NoMessages => {
                let resp = self
                    .chat(
                        MASTER,
                        &json!({"model": "openai/gpt-4o-mini", "messages": []}),
                    )
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let reply: Value = resp.json().await.unwrap();
                assert_eq!(status, 400, "{reply}");
                assert_eq!(reply["error"]["param"], "messages");
                status
            }
            Kind::BadJson => {
                let resp = self
                    .http
                    .post(format!("{}/v1/chat/completions", self.url))
                    .bearer_auth(MASTER)
                    .header("content-type", "application/json")
                    .body("{\"model\": \"openai/gpt-4o-mini\", \"messages\": [")
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                let reply: Value = resp.json().await.unwrap();
                assert_eq!(status, 400, "{reply}");
                assert!(reply["error"]["message"].is_string(), "{reply}");
                status
            }
        };
        self.sent[kind.index()].fetch_add(1, Ordering::Relaxed);
        if status.is_success() {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client with a small receive window that reads the start of a long stream, then stops
    /// reading for two seconds (the gateway must wait on a full socket) and goes away.
    async fn slow_reader(&self, body: &Value) -> reqwest::StatusCode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr: std::net::SocketAddr = self.url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(8 * 1024).unwrap();
        let mut tcp = socket.connect(addr).await.unwrap();
        let body = body.to_string();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {MASTER}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        while head.len() < 64 * 1024 {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the stream ended after {} bytes", head.len());
            head.extend_from_slice(&buf[..n]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head[..200])
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(tcp);
        reqwest::StatusCode::OK
    }

    fn recorded(&self) -> u64 {
        KINDS
            .iter()
            .filter(|k| k.recorded())
            .map(|k| self.sent[k.index()].load(Ordering::Relaxed))
            .sum()
    }

    fn by_kind(&self) -> String {
        KINDS
            .iter()
            .map(|k| {
                format!(
                    "{}={}",
                    k.name(),
                    self.sent[k.index()].load(Ordering::Relaxed)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Fds and tasks once the load is over, leaving out the upstream's idle keep-alive connections
/// (each holds a socket and its connection task until the pool lets it go).
async fn idle_counts(
    probe: &reqwest::Client,
    url: &str,
    pid: u32,
    port: u16,
) -> (usize, u64, usize) {
    let (open, pooled) = fds(pid, port);
    let tasks = alive_tasks(probe, url).await;
    (open - pooled, tasks.saturating_sub(pooled as u64), pooled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_memory_stays_flat_and_every_request_is_recorded_once() {
    let seconds = duration_from_env("LLM_BRIDGE_SOAK_SECONDS", 120, 20);
    let mock = MockUpstream::start_on("127.0.0.1:0".parse().unwrap(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = vec![("LLM_BRIDGE_MASTER_KEY", MASTER.into())];
    let wiring = mock_env(&mock);
    env.extend(wiring.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let gw = Running::start(dir.path(), &env).await;
    let pid = gw.child.id();
    let port = mock.addr.port();
    let probe = reqwest::Client::new();

    let created: Value = probe
        .post(format!("{}/api/keys", gw.url))
        .bearer_auth(MASTER)
        .json(&json!({"name": "limited", "rpm": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let load = Arc::new(Load {
        url: gw.url.clone(),
        http: reqwest::Client::new(),
        limited: created["key"].as_str().unwrap().to_string(),
        sent: Default::default(),
        ok: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });

    // Warm-up: every kind once, then the idle counts.
    for kind in KINDS {
        load.one(kind).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_fds, idle_tasks, idle_pooled) = idle_counts(&probe, &gw.url, pid, port).await;

    // Memory, every second while the load runs.
    let started = Instant::now();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while running.load(Ordering::Relaxed) {
                tick.tick().await;
                samples.push((started.elapsed().as_secs_f64(), rss_kib(pid)));
            }
            samples
        })
    };
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|w| {
            let load = load.clone();
            tokio::spawn(async move {
                let mut i = w;
                while started.elapsed() < seconds {
                    load.one(MIX[i % MIX.len()]).await;
                    i += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    running.store(false, Ordering::Relaxed);
    let samples = sampler.await.unwrap();
    let load = Arc::into_inner(load).expect("the workers are done");
    let summary_counts = load.by_kind();
    let expected = load.recorded();
    let total: u64 = load.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let (ok, refused) = (load.ok.into_inner(), load.refused.into_inner());
    let load_slow_readers = load.sent[Kind::SlowReader.index()].load(Ordering::Relaxed);
    // The clients' connections close with their pool.
    drop(load.http);

    // Back to idle.
    let mut end = (usize::MAX, u64::MAX, 0);
    for _ in 0..100 {
        end = idle_counts(&probe, &gw.url, pid, port).await;
        if end.0 <= idle_fds + 2 && end.1 <= idle_tasks + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every request recorded once.
    let mut got = None;
    for _ in 0..200 {
        got = recorded_total(&probe, &gw.url).await;
        if got.is_some_and(|g| g >= expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything still on its way would show now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = recorded_total(&probe, &gw.url).await.or(got).unwrap_or(0);
    let lost = expected.saturating_sub(got);
    let double = got.saturating_sub(expected);
    let metrics = scrape(&probe, &gw.url).await;
    let client_closed = counter_sum(&metrics, "llm_bridge_requests_total", "status=\"499\"");

    let half = &samples[samples.len() / 2..];
    let slope = slope_mib_per_min(half);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let rss_start = samples.first().map_or(0, |s| s.1);
    let rss_peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let rss_end = samples.last().map_or(0, |s| s.1);
    let step = samples.len().div_ceil(20).max(1);
    let trace: Vec<String> = samples
        .iter()
        .step_by(step)
        .map(|(t, kib)| format!("{t:.0}s:{:.1}", mib(*kib)))
        .collect();
    println!(
        "soak: {}s, {CONNECTIONS} connections; requests {total} ({summary_counts}); replies 2xx={} 4xx={}; \
         RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB, slope {slope:+.3} MiB/min over the last {} samples; \
         fds idle {idle_fds} -> end {}; tasks idle {idle_tasks} -> end {} (idle upstream connections \
         left out: {idle_pooled} -> {}); stats: expected {expected}, counted {got}, lost {lost}, \
         double {double}, recorded as client-closed {client_closed}\n  RSS MiB: {}",
        seconds.as_secs(),
        ok,
        refused,
        mib(rss_start),
        mib(rss_peak),
        mib(rss_end),
        half.len(),
        end.0,
        end.1,
        end.2,
        trace.join(" "),
    );
    assert!(
        client_closed >= load_slow_readers as f64,
        "every slow reader is recorded as client-closed (the gateway was waiting on it)"
    );
    assert_eq!(lost, 0, "records lost from the stats");
    assert_eq!(double, 0, "records counted twice");
    assert!(
        end.0 <= idle_fds + 2,
        "open file descriptors: {} after the load, {idle_fds} idle",
        end.0
    );
    assert!(
        end.1 <= idle_tasks + 2,
        "runtime tasks: {} after the load, {idle_tasks} idle",
        end.1
    );
    // A slope needs a while to mean anything: shorter runs only print it.
    let window = half.last().map_or(0.0, |s| s.0) - half.first().map_or(0.0, |s| s.0);
    let bound = if window >= 600.0 {
        MAX_SLOPE_MIB_PER_MIN
    } else {
        MAX_SHORT_SLOPE_MIB_PER_MIN
    };
    if seconds >= Duration::from_secs(60) {
        assert!(
            slope < bound,
            "RSS grows by {slope:.3} MiB/min after the warm-up (bound {bound})"
        );
    }
}
