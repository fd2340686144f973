//! CORS (none unless configured, `/v1` only), header size limits, and upstreams only from the
//! configuration.
#![cfg(feature = "ssr")]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const MASTER: &str = "mk-test-master-key-0123456789";

fn hello() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]})
}

async fn preflight(gw: &TestGateway, path: &str, origin: &str) -> reqwest::Response {
    gw.http
        .request(Method::OPTIONS, format!("{}{path}", gw.url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-stainless-os",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn no_cross_origin_access_unless_configured() {
    let gw = TestGateway::start().await;
    let resp = preflight(&gw, "/v1/chat/completions", "https://evil.example").await;
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let resp = gw
        .post("/v1/chat/completions")
        .header("origin", "https://evil.example")
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn configured_origins_may_call_v1_but_not_the_console() {
    let gw = TestGateway::start_with(
        "[server]\ncors_origins = [\"https://app.example\"]\n",
        |env| {
            env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
        },
    )
    .await;
    // The preflight carries no key and still gets its answer.
    let resp = preflight(&gw, "/v1/chat/completions", "https://app.example").await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    let resp = gw
        .post("/v1/chat/completions")
        .header("origin", "https://app.example")
        .bearer_auth(MASTER)
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = resp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-ratelimit-remaining-requests") && exposed.contains("x-request-id"));

    // Still needs the key; other origins get nothing; the console and /api stay same-origin.
    let resp = gw
        .post("/v1/chat/completions")
        .header("origin", "https://app.example")
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let other = preflight(&gw, "/v1/chat/completions", "https://other.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    for path in ["/api/keys", "/login"] {
        let resp = preflight(&gw, path, "https://app.example").await;
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}

#[test]
fn bad_origins_are_configuration_errors() {
    let text = "[server]\ncors_origins = [\"app.example\"]\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let cli = llm_bridge::config::CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let err = llm_bridge::config::Config::load(&cli, &std::collections::HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.cors_origins") && err.contains("app.example"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_headers_get_431_in_openai_shape() {
    let gw = TestGateway::start_with("[server]\nmax_header_bytes = 4096\n", |_| {}).await;
    let resp = gw
        .post("/v1/chat/completions")
        .header("x-padding", "a".repeat(5000))
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 431);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "headers_too_large");
    assert!(gw.mock.state.received().is_empty());
    let ok = gw
        .post("/v1/chat/completions")
        .header("x-padding", "a".repeat(1000))
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_request_cannot_choose_the_upstream() {
    let gw = TestGateway::start().await;
    let mut body = hello();
    body["base_url"] = json!("http://127.0.0.1:9");
    body["api_base"] = json!("http://127.0.0.1:9");
    let resp = gw
        .post("/v1/chat/completions")
        .header("x-base-url", "http://127.0.0.1:9")
        .header("host", "127.0.0.1:9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        gw.mock.state.received().len(),
        1,
        "the configured upstream got it"
    );
}
