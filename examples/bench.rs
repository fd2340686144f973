//! The benchmark: the gateway (pinned to core 0) in front of the mock upstream, measured side by
//! side with direct calls to the mock in the same run. Prints a report; asserts nothing.
//!
//! `make bench` builds the release binaries and runs this. Environment: `BENCH_SECONDS` (load
//! duration per scenario, default 5), `BENCH_SEQUENTIAL` (requests at concurrency 1, default 2000).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

const RELEASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release");

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pinned(core: &str, program: &str) -> Command {
    let mut cmd = if Command::new("taskset").arg("--version").output().is_ok() {
        let mut c = Command::new("taskset");
        c.args(["-c", core, program]);
        c
    } else {
        eprintln!("taskset not found: processes are not pinned");
        Command::new(program)
    };
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

async fn wait_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success() || r.status().as_u16() == 405)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not come up");
}

/// CPU seconds (user + system) and RSS in MiB of a process, from /proc.
fn cpu_and_rss(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let tick_hz = 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (ticks / tick_hz, rss_kib / 1024.0)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn one(client: &reqwest::Client, url: &str, body: &[u8]) -> f64 {
    let started = Instant::now();
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("request");
    assert!(resp.status().is_success(), "status {}", resp.status());
    let bytes = resp.bytes().await.expect("body");
    assert!(!bytes.is_empty());
    started.elapsed().as_secs_f64() * 1e3
}

async fn sequential(client: &reqwest::Client, url: &str, body: &[u8], n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(one(client, url, body).await);
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

struct Load {
    requests: usize,
    seconds: f64,
    p99_ms: f64,
}

async fn concurrent(
    client: &reqwest::Client,
    url: &str,
    body: &[u8],
    concurrency: usize,
    seconds: f64,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body, stop) =
            (client.clone(), url.to_string(), body.to_vec(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                latencies.push(one(&client, &url, &body).await);
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Load {
        requests: all.len(),
        seconds: elapsed,
        p99_ms: percentile(&all, 0.99),
    }
}

async fn run() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let sequential_n: usize = std::env::var("BENCH_SEQUENTIAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);

    let mock_port = free_port();
    let _mock = Proc(
        pinned("1", &format!("{RELEASE}/mock_upstream")).arg(format!("127.0.0.1:{mock_port}")).spawn().expect(
            "target/release/mock_upstream: build it with `cargo build --release -p llm-bridge-mock`",
        ),
    );
    let mock = format!("http://127.0.0.1:{mock_port}");
    wait_ready(&format!("{mock}/v1/models")).await;

    let gw_port = free_port();
    let data_dir = std::env::temp_dir().join(format!("llm-bridge-bench-{gw_port}"));
    std::fs::create_dir_all(&data_dir).unwrap();
    // Three deployments of `pool`, one of them failing, for the routing scenario.
    let config = data_dir.join("bench.toml");
    std::fs::write(
        &config,
        [("a", "gpt-4o-mini"), ("b", "gpt-4o-mini-b"), ("broken", "m-fail500")]
            .map(|(name, upstream)| {
                format!("[[deployments]]\nname = \"{name}\"\nmodel = \"pool\"\nprovider = \"openai\"\nupstream_model = \"{upstream}\"\n")
            })
            .concat(),
    )
    .unwrap();
    let gateway = Proc(
        pinned("0", &format!("{RELEASE}/llm-bridge"))
            .env("LLM_BRIDGE_LISTEN", format!("127.0.0.1:{gw_port}"))
            .env("LLM_BRIDGE_DATA_DIR", &data_dir)
            .env("LLM_BRIDGE_CONFIG", &config)
            .env("OPENAI_API_KEY", "sk-bench")
            .env("ANTHROPIC_API_KEY", "sk-ant-bench")
            .env("DEEPSEEK_API_KEY", "sk-bench-deepseek")
            .envs(llm_bridge_mock::wiring(&mock))
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .spawn()
            .expect(
                "target/release/llm-bridge: build it with `cargo build --release --features ssr`",
            ),
    );
    let gw = format!("http://127.0.0.1:{gw_port}");
    wait_ready(&format!("{gw}/health/live")).await;
    let pid = gateway.0.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, rss_idle) = cpu_and_rss(pid);

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let plain = serde_json::to_vec(
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .unwrap();
    let stream = serde_json::to_vec(
        &json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .unwrap();
    let direct_url = format!("{mock}/v1/chat/completions");
    let gateway_url = format!("{gw}/v1/chat/completions");

    println!("LLM Bridge benchmark — gateway pinned to core 0, mock upstream and client on core 1");
    println!("(sequential n = {sequential_n}, load {seconds} s per scenario at concurrency 64)\n");

    // Warm up both paths and the connection pools.
    sequential(&client, &direct_url, &plain, 200).await;
    sequential(&client, &gateway_url, &plain, 200).await;

    println!("(i) added latency at concurrency 1");
    for (name, body) in [("non-stream", &plain), ("stream (20 tokens)", &stream)] {
        let direct = sequential(&client, &direct_url, body, sequential_n).await;
        let via = sequential(&client, &gateway_url, body, sequential_n).await;
        let (d50, d99, g50, g99) = (
            percentile(&direct, 0.5),
            percentile(&direct, 0.99),
            percentile(&via, 0.5),
            percentile(&via, 0.99),
        );
        println!(
            "    {name:<20} direct p50 {d50:.3} ms p99 {d99:.3} ms | via gateway p50 {g50:.3} ms p99 {g99:.3} ms | added p50 {:.3} ms p99 {:.3} ms",
            g50 - d50,
            g99 - d99
        );
    }

    println!("\n(ii) throughput at concurrency 64   (iii) gateway CPU per request");
    for (name, body) in [("non-stream", &plain), ("stream (20 tokens)", &stream)] {
        let direct = concurrent(&client, &direct_url, body, 64, seconds).await;
        let (cpu_before, _) = cpu_and_rss(pid);
        let via = concurrent(&client, &gateway_url, body, 64, seconds).await;
        let (cpu_after, _) = cpu_and_rss(pid);
        let cpu_us = (cpu_after - cpu_before) * 1e6 / via.requests as f64;
        println!(
            "    {name:<20} direct {:>8.0} req/s p99 {:.2} ms | via gateway {:>8.0} req/s p99 {:.2} ms | gateway CPU {cpu_us:.1} µs/request",
            direct.requests as f64 / direct.seconds,
            direct.p99_ms,
            via.requests as f64 / via.seconds,
            via.p99_ms,
        );
    }

    println!(
        "\n(v) three deployments of one model, one failing (its circuit opens after 5 failures)"
    );
    let pool = serde_json::to_vec(
        &json!({"model": "pool", "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .unwrap();
    sequential(&client, &gateway_url, &pool, 50).await;
    let direct = sequential(&client, &direct_url, &plain, sequential_n).await;
    let via = sequential(&client, &gateway_url, &pool, sequential_n).await;
    println!(
        "    non-stream           added p50 {:.3} ms p99 {:.3} ms at concurrency 1",
        percentile(&via, 0.5) - percentile(&direct, 0.5),
        percentile(&via, 0.99) - percentile(&direct, 0.99)
    );
    let (cpu_before, _) = cpu_and_rss(pid);
    let load = concurrent(&client, &gateway_url, &pool, 64, seconds).await;
    let (cpu_after, _) = cpu_and_rss(pid);
    println!(
        "    non-stream           via gateway {:>8.0} req/s p99 {:.2} ms | gateway CPU {:.1} µs/request",
        load.requests as f64 / load.seconds,
        load.p99_ms,
        (cpu_after - cpu_before) * 1e6 / load.requests as f64
    );

    // Direct calls to the mock's Messages API carry a key and a version, as the gateway's do.
    let anthropic = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .default_headers(reqwest::header::HeaderMap::from_iter([
            (
                reqwest::header::HeaderName::from_static("x-api-key"),
                reqwest::header::HeaderValue::from_static("sk-ant-bench"),
            ),
            (
                reqwest::header::HeaderName::from_static("anthropic-version"),
                reqwest::header::HeaderValue::from_static("2023-06-01"),
            ),
        ]))
        .build()
        .unwrap();
    println!(
        "\n(viii) coding-agent APIs: added latency at concurrency 1, gateway CPU at concurrency 64"
    );
    for stream in [false, true] {
        let ask = |model: &str, api: &str| {
            let mut body = match api {
                "messages" => json!({"model": model, "max_tokens": 256,
                    "messages": [{"role": "user", "content": "Hello"}]}),
                // As Codex sends it: nothing kept.
                "responses" => json!({"model": model, "input": "Hello", "store": false}),
                _ => json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]}),
            };
            if stream {
                body["stream"] = json!(true);
            }
            serde_json::to_vec(&body).unwrap()
        };
        let cases = [
            (
                "messages → Anthropic",
                "messages",
                "claude-sonnet-4-5",
                "/v1/messages",
                "messages",
                "/v1/messages",
            ),
            (
                "messages → OpenAI",
                "messages",
                "gpt-4o-mini",
                "/v1/chat/completions",
                "chat",
                "/v1/messages",
            ),
            (
                "responses → DeepSeek",
                "responses",
                "deepseek-chat",
                "/chat/completions",
                "chat",
                "/v1/responses",
            ),
        ];
        for (name, api, model, direct_path, direct_api, via_path) in cases {
            let (direct_url, via_url) = (format!("{mock}{direct_path}"), format!("{gw}{via_path}"));
            let (direct_body, via_body) = (ask(model, direct_api), ask(model, api));
            sequential(&client, &via_url, &via_body, 100).await;
            let direct_client = if direct_api == "messages" {
                &anthropic
            } else {
                &client
            };
            let direct = sequential(direct_client, &direct_url, &direct_body, sequential_n).await;
            let via = sequential(&client, &via_url, &via_body, sequential_n).await;
            let (cpu_before, _) = cpu_and_rss(pid);
            let load = concurrent(&client, &via_url, &via_body, 64, seconds).await;
            let (cpu_after, _) = cpu_and_rss(pid);
            let kind = if stream { "stream" } else { "non-stream" };
            println!(
                "    {name:<22} {kind:<10} added p50 {:.3} ms | {:>8.0} req/s | gateway CPU {:.1} µs/request",
                percentile(&via, 0.5) - percentile(&direct, 0.5),
                load.requests as f64 / load.seconds,
                (cpu_after - cpu_before) * 1e6 / load.requests as f64
            );
        }
    }

    let (_, rss_loaded) = cpu_and_rss(pid);

    println!("\n(vi) a virtual key with rpm and tpm limits (none reached), embedded buckets");
    let keyed = keyed_client(&gw).await;
    let g = Limited {
        client: &keyed,
        gateway_url: &gateway_url,
        pid,
    };
    g.report(&client, &direct_url, &plain, sequential_n, seconds)
        .await;

    match start_redis() {
        Some((redis, redis_url)) => {
            println!(
                "\n(vii) the same with Redis: keys and limits shared, one EVALSHA per request"
            );
            let port = free_port();
            let redis_gateway = Proc(
                pinned("0", &format!("{RELEASE}/llm-bridge"))
                    .env("LLM_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
                    .env("LLM_BRIDGE_DATA_DIR", &data_dir)
                    .env("REDIS_URL", &redis_url)
                    .env("OPENAI_API_KEY", "sk-bench")
                    .envs(llm_bridge_mock::wiring(&mock))
                    .env("RUST_LOG", "warn")
                    .spawn()
                    .expect("llm-bridge"),
            );
            let url = format!("http://127.0.0.1:{port}");
            wait_ready(&format!("{url}/health/live")).await;
            let keyed = keyed_client(&url).await;
            let chat_url = format!("{url}/v1/chat/completions");
            sequential(&keyed, &chat_url, &plain, 200).await;
            let g = Limited {
                client: &keyed,
                gateway_url: &chat_url,
                pid: redis_gateway.0.id(),
            };
            g.report(&client, &direct_url, &plain, sequential_n, seconds)
                .await;
            drop(redis_gateway);
            drop(redis);
        }
        None => println!("\n(vii) skipped: redis-server is not installed"),
    }

    println!("\n(ix) the response cache, embedded store: hits over HTTP (after one miss)");
    let port = free_port();
    let cache_gateway = Proc(
        pinned("0", &format!("{RELEASE}/llm-bridge"))
            .env("LLM_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LLM_BRIDGE_DATA_DIR", &data_dir)
            .env("LLM_BRIDGE_CACHE", "on")
            .env("OPENAI_API_KEY", "sk-bench")
            .envs(llm_bridge_mock::wiring(&mock))
            .env("RUST_LOG", "warn")
            .env_remove("REDIS_URL")
            .spawn()
            .expect("llm-bridge"),
    );
    let cache_base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{cache_base}/health/live")).await;
    let cache_url = format!("{cache_base}/v1/chat/completions");
    for (name, body) in [("non-stream", &plain), ("as a stream", &stream)] {
        sequential(&client, &cache_url, body, 200).await;
        let direct = sequential(&client, &direct_url, body, sequential_n).await;
        let via = sequential(&client, &cache_url, body, sequential_n).await;
        let (cpu_before, _) = cpu_and_rss(cache_gateway.0.id());
        let load = concurrent(&client, &cache_url, body, 64, seconds).await;
        let (cpu_after, _) = cpu_and_rss(cache_gateway.0.id());
        println!(
            "    hit, {name:<14} p50 {:.3} ms (the upstream direct: {:.3} ms) | {:>8.0} hits/s at concurrency 64 | gateway CPU {:.1} µs/hit",
            percentile(&via, 0.5),
            percentile(&direct, 0.5),
            load.requests as f64 / load.seconds,
            (cpu_after - cpu_before) * 1e6 / load.requests as f64
        );
    }
    drop(cache_gateway);
    println!(
        "    lookup on a miss (key, memory, coalescing), in-process: {:.2} µs",
        miss_lookup_us().await
    );

    println!("\n(iv) gateway RSS: idle {rss_idle:.1} MiB, after load {rss_loaded:.1} MiB");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A client that sends a new virtual key with limits far above the load.
async fn keyed_client(gw: &str) -> reqwest::Client {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{gw}/api/keys"))
        .json(&json!({"name": "bench", "rpm": 1_000_000_000u64, "tpm": 1_000_000_000_000u64}))
        .send()
        .await
        .expect("create a key")
        .json()
        .await
        .expect("key JSON");
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", created["key"].as_str().expect("key"));
    headers.insert("authorization", bearer.parse().unwrap());
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .default_headers(headers)
        .build()
        .unwrap()
}

struct Limited<'a> {
    client: &'a reqwest::Client,
    gateway_url: &'a str,
    pid: u32,
}

impl Limited<'_> {
    async fn report(
        &self,
        plain_client: &reqwest::Client,
        direct_url: &str,
        body: &[u8],
        n: usize,
        seconds: f64,
    ) {
        let direct = sequential(plain_client, direct_url, body, n).await;
        let via = sequential(self.client, self.gateway_url, body, n).await;
        println!(
            "    non-stream           added p50 {:.3} ms p99 {:.3} ms at concurrency 1",
            percentile(&via, 0.5) - percentile(&direct, 0.5),
            percentile(&via, 0.99) - percentile(&direct, 0.99)
        );
        let (cpu_before, _) = cpu_and_rss(self.pid);
        let load = concurrent(self.client, self.gateway_url, body, 64, seconds).await;
        let (cpu_after, _) = cpu_and_rss(self.pid);
        println!(
            "    non-stream           via gateway {:>8.0} req/s p99 {:.2} ms | gateway CPU {:.1} µs/request",
            load.requests as f64 / load.seconds,
            load.p99_ms,
            (cpu_after - cpu_before) * 1e6 / load.requests as f64
        );
    }
}

/// A private redis-server on a free port (pinned to core 1 with the mock and the client).
fn start_redis() -> Option<(Proc, String)> {
    let port = free_port();
    let child = pinned("1", "redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((Proc(child), format!("redis://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The cache's work for a request it does not hold: the canonical key, the memory lookup, and
/// joining (then leaving) the requests in flight. Bodies as the benchmark sends them, each new.
async fn miss_lookup_us() -> f64 {
    use llm_bridge::gateway::cache::{Cache, Caching};
    let config = llm_bridge::config::CacheConfig {
        enabled: true,
        ..Default::default()
    };
    let cache = std::sync::Arc::new(Cache::new(&config, None, Duration::from_secs(1)));
    let bodies: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("Hello {i}")}]}))
                .unwrap()
        })
        .collect();
    let headers = axum::http::HeaderMap::new();
    let rounds = 100;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        for body in &bodies {
            let consulted = cache
                .consult(
                    Caching::Chat,
                    "chat",
                    "gpt-4o-mini",
                    "master",
                    &headers,
                    body,
                    (false, false, ""),
                )
                .await;
            std::hint::black_box(consulted.is_ok());
        }
    }
    started.elapsed().as_secs_f64() * 1e6 / (rounds * bodies.len()) as f64
}
