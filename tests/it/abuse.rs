//! Hostile clients while normal traffic runs, against the real binary: slow headers and stalled
//! bodies (slowloris), HTTP/2 rapid reset, and bodies over the limit cut off while they stream in.
//! Normal requests keep being answered, quickly, throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use llm_bridge_mock::MockUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn gateway(mock: &MockUpstream, extra: &[(&str, &str)]) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    (Running::start(dir.path(), &env).await, dir)
}

/// Latencies of `n` normal chat requests sent one after another, all of which must succeed.
async fn normal_requests(http: &reqwest::Client, url: &str, n: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let sent = Instant::now();
        let resp = http
            .post(format!("{url}/v1/chat/completions"))
            .json(&hello("gpt-4o-mini"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("a normal request is answered");
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        took.push(sent.elapsed());
    }
    took.sort();
    took
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_stalled_bodies_do_not_slow_normal_requests() {
    let mock = MockUpstream::start().await;
    let (gw, _dir) = gateway(
        &mock,
        &[
            ("LLM_BRIDGE_CLIENT_HEADER_TIMEOUT", "500ms"),
            ("LLM_BRIDGE_CLIENT_BODY_TIMEOUT", "500ms"),
            ("LLM_BRIDGE_MAX_CONNECTIONS", "1024"),
        ],
    )
    .await;
    // Normal requests are sent on fresh connections, as a pool under attack would have to.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let baseline = normal_requests(&http, &gw.url, 100).await;

    let stop = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // 300 connections sending their headers a byte every 100 ms; 100 sending a body that stalls.
    for i in 0..400 {
        let (target, stop, cut) = (addr(&gw.url), stop.clone(), cut.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = tokio::net::TcpStream::connect(&target).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let closed = if i < 300 {
                    let head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                    let mut closed = false;
                    for byte in head {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if s.write_all(&[*byte]).await.is_err() {
                            closed = true;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    closed
                } else {
                    let _ = s
                        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\":")
                        .await;
                    let mut buf = [0u8; 1024];
                    matches!(
                        tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await,
                        Ok(Ok(_))
                    )
                };
                if closed {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let attacked = normal_requests(&http, &gw.url, 300).await;
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.await.unwrap();
    }
    let cut = cut.load(Ordering::Relaxed);
    eprintln!(
        "slowloris: 400 hostile connections ({cut} cut by the gateway); normal requests p50 {:?} -> {:?}, \
         p99 {:?} -> {:?}, slowest {:?}",
        quantile(&baseline, 0.5),
        quantile(&attacked, 0.5),
        quantile(&baseline, 0.99),
        quantile(&attacked, 0.99),
        attacked.last().unwrap()
    );
    assert!(cut >= 100, "the gateway cut only {cut} hostile connections");
    // Generous bounds: an attack that worked would hold requests for the header timeout or longer.
    assert!(
        quantile(&attacked, 0.99) < quantile(&baseline, 0.99) + Duration::from_millis(250),
        "normal requests slowed down under the attack"
    );
    assert!(*attacked.last().unwrap() < Duration::from_millis(500));
}

/// Prior-knowledge HTTP/2 (h2c) spoken by hand: streams opened (HEADERS) and reset (RST_STREAM
/// CANCEL) 100 at a time, 50,000 at most. `accepted_first`: the requests are `POST`s whose body
/// never comes, reset only after the gateway has had time to start them; otherwise `GET`s reset
/// in the same write. Returns the streams sent before the gateway closed the connection.
async fn rapid_reset(url: String, accepted_first: bool) -> (u64, String) {
    let tcp = tokio::net::TcpStream::connect(addr(&url)).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
        }
    });
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    writer.write_all(&preface).await.unwrap();
    // :method, :scheme http, :path, :authority x: static table and literals, no dynamic table.
    let path: &[u8] = if accepted_first {
        b"/v1/chat/completions"
    } else {
        b"/v1/models"
    };
    let mut block = vec![if accepted_first { 0x83 } else { 0x82 }, 0x86, 0x04];
    block.push(path.len() as u8);
    block.extend_from_slice(path);
    block.extend_from_slice(&[0x01, 1, b'x']);
    // END_HEADERS, and END_STREAM for the GETs.
    let flags = if accepted_first { 0x4 } else { 0x5 };
    let mut sent = 0u64;
    let mut stream_id: u32 = 1;
    let outcome = loop {
        if sent >= 50_000 {
            break "all sent".to_string();
        }
        let mut opens = Vec::with_capacity(100 * 40);
        let mut resets = Vec::with_capacity(100 * 13);
        for _ in 0..100 {
            opens.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
            opens.extend_from_slice(&[0x1, flags]);
            opens.extend_from_slice(&stream_id.to_be_bytes());
            opens.extend_from_slice(&block);
            resets.extend_from_slice(&[0, 0, 4, 0x3, 0]);
            resets.extend_from_slice(&stream_id.to_be_bytes());
            resets.extend_from_slice(&8u32.to_be_bytes());
            stream_id += 2;
        }
        if accepted_first {
            if let Err(e) = writer.write_all(&opens).await {
                break format!("the gateway closed the connection: {e}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        } else {
            opens.extend_from_slice(&resets);
            resets = opens;
        }
        if let Err(e) = writer.write_all(&resets).await {
            break format!("the gateway closed the connection: {e}");
        }
        sent += 100;
        tokio::task::yield_now().await;
    };
    drop(writer);
    let _ = drain.await;
    (sent, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_is_cut_off_and_normal_requests_continue() {
    let mock = MockUpstream::start().await;
    let (gw, _dir) = gateway(&mock, &[]).await;
    let http = reqwest::Client::new();
    let baseline = normal_requests(&http, &gw.url, 50).await;
    for accepted_first in [false, true] {
        let attack = tokio::spawn(rapid_reset(gw.url.clone(), accepted_first));
        let during = normal_requests(&http, &gw.url, 100).await;
        let (sent, outcome) = tokio::time::timeout(Duration::from_secs(60), attack)
            .await
            .expect("the attack ends")
            .unwrap();
        eprintln!(
            "rapid reset ({}): {sent} streams opened and reset ({outcome}); \
             normal requests p50 {:?} -> {:?}, slowest {:?}",
            if accepted_first {
                "after the request started"
            } else {
                "at once"
            },
            quantile(&baseline, 0.5),
            quantile(&during, 0.5),
            during.last().unwrap()
        );
        assert!(
            sent < 50_000,
            "the gateway let 50,000 reset streams through on one connection"
        );
        assert!(*during.last().unwrap() < Duration::from_secs(1));
    }
    // Only the normal requests reached the upstream, and the gateway is still healthy.
    assert_eq!(mock.state.received().len(), 250);
    assert_eq!(normal_requests(&http, &gw.url, 5).await.len(), 5);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_while_it_streams_in() {
    let mock = MockUpstream::start().await;
    let (gw, _dir) = gateway(&mock, &[("LLM_BRIDGE_MAX_BODY_BYTES", "65536")]).await;
    let mut s = tokio::net::TcpStream::connect(addr(&gw.url)).await.unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let (mut reader, mut writer) = s.into_split();
    let reply = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    // 16 KiB every 20 ms, up to 10 MiB: the refusal must come long before the end.
    let chunk = format!("4000\r\n{}\r\n", "a".repeat(0x4000));
    let mut sent = 0usize;
    while sent < 10 << 20 && !reply.is_finished() {
        if writer.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
        sent += 0x4000;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = reply.await.unwrap();
    eprintln!("an endless body was refused after {sent} bytes had been sent");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"error\""), "{reply}");
    assert!(sent < 1 << 20, "{sent} bytes were sent before the refusal");
    assert!(mock.state.received().is_empty());
}

/// Malformed requests, each with the status and error `type` it gets; docs/api.md's table of
/// malformed inputs lists the same rows. What the gateway needs (JSON, the model, the messages, the
/// stream flag, sizes) it checks itself; the OpenAI dialect passes the rest through untouched for
/// the provider to judge (200 here: the mock does not validate), and a translated provider
/// (Gemini) gets the same body, which must be refused in OpenAI's shape or served.
#[tokio::test]
async fn malformed_input_gets_openai_errors() {
    let gw = TestGateway::start_with("[server]\nmax_body_bytes = 65536\n", |_| {}).await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let json = "application/json";
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        ("not JSON", "/v1/chat/completions", json, b"{".to_vec(), 400),
        ("empty body", "/v1/chat/completions", json, vec![], 400),
        ("a JSON array", "/v1/chat/completions", json, b"[]".to_vec(), 400),
        ("invalid UTF-8", "/v1/chat/completions", json, b"{\"model\":\"\xff\xfe\"}".to_vec(), 400),
        ("10,000 nested arrays", "/v1/chat/completions", json, nested.into_bytes(), 400),
        ("no model", "/v1/chat/completions", json, br#"{"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400),
        ("model is a number", "/v1/chat/completions", json, br#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400),
        ("no messages", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini"}"#.to_vec(), 400),
        ("messages is a string", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","messages":"hi"}"#.to_vec(), 400),
        ("unknown role", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","messages":[{"role":"wizard","content":"hi"}]}"#.to_vec(), 200),
        ("content is a number", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":5}]}"#.to_vec(), 200),
        ("max_tokens 1e400", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","max_tokens":1e400,"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400),
        ("temperature is a word", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","temperature":"hot","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 200),
        ("stream is a word", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","stream":"yes","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 400),
        ("tools is an object", "/v1/chat/completions", json, br#"{"model":"gpt-4o-mini","tools":{},"messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 200),
        ("unknown model", "/v1/chat/completions", json, br#"{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 404),
        ("model name of 10,000 characters", "/v1/chat/completions", json, format!(r#"{{"model":"{}","messages":[]}}"#, "m".repeat(10_000)).into_bytes(), 400),
        ("text/plain body", "/v1/chat/completions", "text/plain", br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.to_vec(), 200),
        ("body over the limit", "/v1/chat/completions", json, format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#, "a".repeat(70_000)).into_bytes(), 413),
        ("embeddings without input", "/v1/embeddings", json, br#"{"model":"text-embedding-3-small"}"#.to_vec(), 400),
        ("responses without input", "/v1/responses", json, br#"{"model":"gpt-4o-mini","input":5}"#.to_vec(), 400),
    ];
    let mut table =
        String::from("| input | status | error type | translated (Gemini) |\n|---|---|---|---|\n");
    let mut wrong = Vec::new();
    for (what, path, content_type, body, want) in cases {
        let resp = gw
            .post(path)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let e: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let kind = match e["error"]["type"].as_str() {
            Some(kind) => format!("`{kind}`"),
            None => "passed through".to_string(),
        };
        let shaped = ct.starts_with("application/json")
            && e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
            && e["error"]["type"].is_string();
        let mut translated = "-".to_string();
        if want == 200 {
            // The same body to a translated provider: refused in OpenAI's shape, or served.
            let body = String::from_utf8(body).unwrap();
            let resp = gw
                .post(path)
                .header("content-type", content_type)
                .body(body.replace("gpt-4o-mini", "gemini-2.5-flash"))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            let e: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            translated = match e["error"]["type"].as_str() {
                Some(kind) => format!("{status} `{kind}`"),
                None => status.to_string(),
            };
            if status >= 500 || (status >= 400 && e["error"]["message"].as_str().is_none()) {
                wrong.push(format!("{what} (Gemini): {status} {text}"));
            }
            assert_no_secret(&text);
        }
        table.push_str(&format!("| {what} | {status} | {kind} | {translated} |\n"));
        if status != want || (want != 200 && !shaped) {
            wrong.push(format!("{what}: {status} (wanted {want}) {text}"));
        }
        assert_no_secret(&text);
    }
    eprintln!("{table}");
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Only bodies passed through reached the upstream.
    assert!(gw.mock.state.received().len() <= 10);
}

/// The process's resident memory, from `/proc`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Conversations of 4 MB, made of many small items (each several times larger as parsed JSON than
/// as text), kept by any caller: what the process holds afterwards grows by the store's cap at
/// most, as the kernel counts it (not by the entries' count of serialised bytes).
#[tokio::test]
async fn large_conversations_kept_for_callers_stay_within_the_stores_memory() {
    const MAX_BYTES: u64 = 16 * 1024 * 1024;
    let mock = MockUpstream::start().await;
    let (gw, _dir) = gateway(
        &mock,
        &[
            ("DEEPSEEK_API_KEY", DEEPSEEK_KEY),
            ("DEEPSEEK_BASE_URL", &mock.url()),
            ("LLM_BRIDGE_RESPONSES_MAX_BYTES", &MAX_BYTES.to_string()),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let item = serde_json::json!({"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "a small item of a large conversation"}]});
    let input: Vec<_> = std::iter::repeat_n(item, 32_000).collect();
    let request = |store: bool| {
        let body = serde_json::to_vec(&serde_json::json!({
            "model": "deepseek/deepseek-chat", "input": input, "store": store,
        }))
        .unwrap();
        assert!(body.len() > 3_500_000, "{} bytes", body.len());
        let req = http
            .post(format!("{}/v1/responses", gw.url))
            .header("content-type", "application/json")
            .body(body)
            .send();
        async move {
            let resp = req.await.unwrap();
            assert_eq!(resp.status(), 200);
            let v: serde_json::Value = resp.json().await.unwrap();
            v["id"].as_str().unwrap().to_string()
        }
    };
    // The same requests, not kept: the memory one such request works in.
    for _ in 0..2 {
        request(false).await;
    }
    let pid = gw.child.id();
    let before = rss_bytes(pid);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(request(true).await);
    }
    // The allocator hands freed pages back after a short delay (longer on a busy machine): what
    // is held is read until it settles, for a few seconds at most.
    let mut grown = rss_bytes(pid).saturating_sub(before);
    for _ in 0..50 {
        if grown < 2 * MAX_BYTES {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        grown = rss_bytes(pid).saturating_sub(before);
    }
    // The newest are kept, the oldest went to stay under the cap.
    let status = |id: &String| {
        let req = http.get(format!("{}/v1/responses/{id}", gw.url)).send();
        async move { req.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(ids.last().unwrap()).await, 200);
    assert_eq!(status(&ids[0]).await, 404);
    assert!(grown < 2 * MAX_BYTES, "RSS grew by {} MiB", grown >> 20);
}
