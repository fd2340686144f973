//! OpenTelemetry: spans with GenAI attributes reach an OTLP/HTTP receiver, and an incoming
//! `traceparent` is continued and propagated upstream. Runs the binary: tracing is process-wide.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::json;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test]
async fn spans_reach_the_collector_and_the_trace_continues_upstream() {
    // An OTLP/HTTP receiver that keeps every export it gets.
    let exports: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = exports.clone();
    let receiver = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mock = llm_bridge_mock::MockUpstream::start().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bridge"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LLM_BRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .env("LLM_BRIDGE_DATA_DIR", dir.path())
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", mock.url()))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{url}/health/live")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "gateway did not start");
    let resp = http
        .post(format!("{url}/v1/chat/completions"))
        .header("traceparent", format!("00-{TRACE_ID}-b7ad6b7169203331-01"))
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();

    // The upstream got the same trace, with the gateway's attempt as parent.
    let sent = mock.state.last();
    let traceparent = sent.headers["traceparent"].to_str().unwrap().to_string();
    assert!(
        traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "{traceparent}"
    );
    assert!(
        !traceparent.contains("b7ad6b7169203331"),
        "a new span id for the upstream call"
    );

    // SIGTERM flushes the last spans.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let exported: Vec<u8> = exports
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    assert!(!exported.is_empty(), "no span was exported");
    let contains = |needle: &[u8]| exported.windows(needle.len()).any(|w| w == needle);
    for attribute in [
        "gen_ai.request.model",
        "gen_ai.system",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gpt-4o-mini",
        "chat gpt-4o-mini",
    ] {
        assert!(contains(attribute.as_bytes()), "{attribute} not exported");
    }
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&TRACE_ID[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(contains(&trace_bytes), "the incoming trace id is continued");
    assert!(!contains(OPENAI_KEY.as_bytes()));
}
