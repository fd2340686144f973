//! Routing and resilience over real HTTP, with faults injected through the mock upstream:
//! failing, hanging, rate-limited and slow deployments, circuits, fallbacks and limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

fn deployment(name: &str, model: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[deployments]]\nname = \"{name}\"\nmodel = \"{model}\"\nprovider = \"openai\"\nupstream_model = \"{upstream}\"\n{extra}\n"
    )
}

fn served_by(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-llm-bridge-deployment")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn health_of(gw: &TestGateway, id: &str) -> Value {
    let health: Value = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_survive_a_failing_and_a_hanging_deployment() {
    let toml = format!(
        "[server]\nfirst_byte_timeout = \"6s\"\n[routing]\nmax_attempts = 3\n[routing.circuit]\nconsecutive_failures = 3\ncooldown = \"30s\"\n{}{}{}",
        deployment("bad", "pool", "m-fail500", ""),
        deployment("hanging", "pool", "m-hang", ""),
        deployment("good", "pool", "m-good", ""),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .build()
        .unwrap();
    let url = format!("{}/v1/chat/completions", gw.url);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let resp = client.post(&url).json(&hello("pool")).send().await.unwrap();
                let status = resp.status().as_u16();
                let deployment = served_by(&resp);
                let body: Value = resp.json().await.unwrap();
                (i, status, deployment, body)
            })
        })
        .collect();
    let mut by_deployment: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let (i, status, deployment, body) = task.await.unwrap();
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(
            body["object"], "chat.completion",
            "exactly one completion per request"
        );
        *by_deployment.entry(deployment).or_default() += 1;
    }
    assert_eq!(by_deployment.get("good"), Some(&1000), "{by_deployment:?}");
    assert_eq!(health_of(&gw, "bad").await["circuit"]["state"], "open");
    assert_eq!(health_of(&gw, "hanging").await["circuit"]["state"], "open");
    assert_eq!(health_of(&gw, "good").await["circuit"]["state"], "closed");
}

#[tokio::test]
async fn retry_after_skips_the_deployment_for_that_long() {
    let toml = format!(
        "[routing]\nstrategy = \"round-robin\"\n{}{}",
        deployment("limited", "pool", "m-fail429", ""),
        deployment("spare", "pool", "m-good", ""),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let mut limited_hits = 0;
    for _ in 0..6 {
        let resp = gw.chat(hello("pool")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(served_by(&resp), "spare");
        limited_hits = gw
            .mock
            .state
            .received()
            .iter()
            .filter(|r| r.body["model"] == "m-fail429")
            .count();
    }
    assert_eq!(
        limited_hits, 1,
        "after its 429 the deployment is skipped for Retry-After (1 s)"
    );
    let h = health_of(&gw, "limited").await;
    assert_eq!(h["circuit"]["state"], "open");
    assert!(h["circuit"]["retry_in_seconds"].as_f64().unwrap() <= 1.0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        gw.chat(hello("pool")).await.bytes().await.unwrap();
    }
    let after = gw
        .mock
        .state
        .received()
        .iter()
        .filter(|r| r.body["model"] == "m-fail429")
        .count();
    assert_eq!(after, 2, "one trial after Retry-After elapsed");
}

#[tokio::test]
async fn circuit_opens_half_opens_and_closes() {
    let toml = format!(
        "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 2\ncooldown = \"300ms\"\n{}",
        deployment("flaky", "pool", "m-fail500x3", ""),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    for _ in 0..2 {
        assert_eq!(gw.chat(hello("pool")).await.status(), 502);
    }
    assert_eq!(health_of(&gw, "flaky").await["circuit"]["state"], "open");
    // Every deployment's circuit is open: the one that reopens first is tried anyway rather than
    // refusing the client (here it fails a third time and stays open).
    assert_eq!(gw.chat(hello("pool")).await.status(), 502);
    assert_eq!(gw.mock.state.received().len(), 3);
    assert_eq!(health_of(&gw, "flaky").await["circuit"]["state"], "open");

    tokio::time::sleep(Duration::from_millis(350)).await;
    // Half-open: one trial, which succeeds and closes the circuit.
    let resp = gw.chat(hello("pool")).await;
    let status = resp.status();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap());
    assert_eq!(health_of(&gw, "flaky").await["circuit"]["state"], "closed");
    assert_eq!(gw.chat(hello("pool")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_routing_follows_the_weights() {
    let toml = format!(
        "[routing.models.pool]\nstrategy = \"weighted\"\n{}{}",
        deployment("one", "pool", "m-one", "weight = 1"),
        deployment("three", "pool", "m-three", "weight = 3"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let n = 10_000;
    let counts = std::sync::Arc::new(std::sync::Mutex::new(HashMap::<String, usize>::new()));
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, counts, sem) = (
            gw.http.clone(),
            format!("{}/v1/chat/completions", gw.url),
            counts.clone(),
            sem.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let resp = http.post(url).json(&hello("pool")).send().await.unwrap();
            let who = served_by(&resp);
            resp.bytes().await.unwrap();
            *counts.lock().unwrap().entry(who).or_default() += 1;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    let share = counts["three"] as f64 / n as f64;
    assert!((share - 0.75).abs() <= 0.05 * 0.75, "{counts:?}");
}

#[tokio::test]
async fn least_latency_moves_traffic_away_from_a_slow_deployment() {
    let toml = format!(
        "[routing.models.pool]\nstrategy = \"least-latency\"\n{}{}",
        deployment("fast", "pool", "m-fast", ""),
        deployment("slow", "pool", "m-slow", ""),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..40 {
        let resp = gw.chat(hello("pool")).await;
        *counts.entry(served_by(&resp)).or_default() += 1;
        resp.bytes().await.unwrap();
    }
    assert!(counts.get("slow").copied().unwrap_or(0) <= 3, "{counts:?}");
}

#[tokio::test]
async fn stalled_stream_ends_with_error_and_done_within_the_idle_timeout() {
    let toml = format!(
        "[server]\nidle_timeout = \"300ms\"\n{}",
        deployment("staller", "pool", "m-stall", "")
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let started = Instant::now();
    let resp = gw.chat(json!({"model": "pool", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let chunks = sse_chunks(&text);
    assert_eq!(chunks.last().unwrap()["error"]["code"], "timeout", "{text}");
}

#[tokio::test]
async fn slow_first_token_fails_over_to_the_next_deployment() {
    let toml = format!(
        "[server]\nfirst_byte_timeout = \"200ms\"\n{}{}",
        deployment("sluggish", "pool", "m-slowfirst", "priority = 0"),
        deployment("quick", "pool", "m-good", "priority = 1"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let resp = gw.chat(json!({"model": "pool", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "quick");
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
    let content: String = sse_chunks(&resp.text().await.unwrap())
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content, llm_bridge_mock::REPLY_WORDS.concat());
}

#[tokio::test]
async fn fallback_chain_crosses_providers() {
    let toml = format!(
        "[routing.models.pool]\nfallbacks = [\"deepseek/deepseek-chat\", \"gemini/gemini-2.5-flash\"]\n{}",
        deployment("broken", "pool", "m-fail500", ""),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let resp = gw.chat(hello("pool")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-provider"], "deepseek");
    assert_eq!(gw.mock.state.last().body["model"], "deepseek-chat");
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    let toml = format!(
        "{}{}",
        deployment("picky", "pool", "m-fail400", "priority = 0"),
        deployment("other", "pool", "m-good", "priority = 1"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let resp = gw.chat(hello("pool")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "1");
    assert_eq!(gw.mock.state.received().len(), 1);
    assert_eq!(health_of(&gw, "picky").await["circuit"]["state"], "closed");
}

#[tokio::test]
async fn deployment_limits_spread_the_load() {
    let toml = format!(
        "{}{}",
        deployment("small", "pool", "m-good", "priority = 0\nrpm = 2"),
        deployment("overflow", "pool", "m-good", "priority = 1"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    let mut served = Vec::new();
    for _ in 0..4 {
        let resp = gw.chat(hello("pool")).await;
        served.push(served_by(&resp));
        resp.bytes().await.unwrap();
    }
    assert_eq!(served, ["small", "small", "overflow", "overflow"]);
}

#[tokio::test]
async fn several_keys_are_separate_deployments() {
    let gw = TestGateway::start_with("[providers.openai]\nmodels = [\"m-fail429\"]\n", |env| {
        env.insert(
            "OPENAI_API_KEY".into(),
            "sk-key-one-0000,sk-key-two-0000".into(),
        );
    })
    .await;
    for _ in 0..4 {
        let resp = gw.chat(hello("gpt-4o-mini")).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let used: std::collections::HashSet<String> = gw
        .mock
        .state
        .received()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(used.len(), 2, "both keys are used in turn: {used:?}");
    // A 429 on one key moves the request to the other.
    let resp = gw.chat(hello("m-fail429")).await;
    assert_eq!(resp.status(), 429, "both keys answer 429 here");
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
    let h: Value = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = h.to_string();
    assert!(!text.contains("sk-key-one") && !text.contains("sk-key-two"));
    assert!(
        text.contains("openai#1") && text.contains("openai#2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failed_trial_after_a_rate_limit_pause_still_retries_on_the_only_deployment() {
    let gw = TestGateway::start_with(
        "[providers.openai]\nmodels = [\"m-pausethen500\", \"m-fail500once\"]\n",
        |_| {},
    )
    .await;
    // A 429 with Retry-After: 1 pauses the one deployment.
    let paused = gw.chat(hello("m-pausethen500")).await;
    assert_eq!(paused.status(), 429);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The first request after the pause meets one 500 (the trial fails) and is retried there.
    let resp = gw.chat(hello("m-pausethen500")).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
    // As it is on a deployment that was never paused.
    let resp = gw.chat(hello("m-fail500once")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
}
