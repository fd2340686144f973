//! CORS (none unless configured, `/v1` only), header size limits, and upstreams only from the
//! configuration.

use std::time::{Duration, Instant};

use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

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
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn configured_origins_may_call_v1_but_not_the_console() {
    let gw =
        TestGateway::start_locked("[server]\ncors_origins = [\"https://app.example\"]\n").await;
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
        .json(&hello("gpt-4o-mini"))
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
        .json(&hello("gpt-4o-mini"))
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
    let err = config_error(text);
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
        .json(&hello("gpt-4o-mini"))
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
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_request_cannot_choose_the_upstream() {
    let gw = TestGateway::start().await;
    let mut body = hello("gpt-4o-mini");
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

// ---- What an adversarial pass found ----

async fn metrics_text(gw: &TestGateway) -> String {
    gw.get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn client_chosen_model_names_never_grow_stats_metrics_or_routes() {
    let gw = TestGateway::start().await;
    // Long names are refused before anything is recorded under them.
    for i in 0..50 {
        let model = format!("openai/{i}-{}", "x".repeat(20_000));
        let resp = gw
            .chat(json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
            .await;
        assert_eq!(resp.status(), 400);
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_model");
        assert!(e["error"]["message"].as_str().unwrap().len() < 300);
    }
    // Short, distinct names the upstream answers: only the first ones get series of their own.
    let names = 400;
    for i in 0..names {
        let resp = gw
            .chat(json!({"model": format!("openai/bounded-{i:04}"), "messages": [{"role": "user", "content": "Hi"}]}))
            .await;
        assert_eq!(resp.status(), 200);
        let deployment = resp.headers()["x-llm-bridge-deployment"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(deployment, format!("openai/bounded-{i:04}"));
    }
    // Unknown names that get 404 are all counted under one bucket.
    for i in 0..100 {
        let resp = gw
            .chat(json!({"model": format!("no-such-model-{i}"), "messages": [{"role": "user", "content": "Hi"}]}))
            .await;
        assert_eq!(resp.status(), 404);
    }
    gw.state.stats.flush().await;
    let models = gw
        .state
        .stats
        .breakdown(llm_bridge::stats::Window::Day, "model")
        .await
        .unwrap();
    let other = models
        .iter()
        .find(|r| r.name == "(other)")
        .expect("(other) bucket");
    assert_eq!(other.requests, 50 + (names - 256) + 100, "{models:?}");
    assert_eq!(models.len(), 256 + 1, "{models:?}");
    let deployments = gw
        .state
        .stats
        .breakdown(llm_bridge::stats::Window::Day, "deployment")
        .await
        .unwrap();
    assert!(deployments.len() <= 256 + 2, "{}", deployments.len());
    // Metrics are process-wide (other tests add theirs): count this test's names.
    let metrics = metrics_text(&gw).await;
    let named: std::collections::HashSet<&str> = metrics
        .lines()
        .flat_map(|l| l.split('"'))
        .filter(|v| v.contains("bounded-"))
        .collect();
    assert!(named.len() <= 256, "{} names in metrics", named.len());
    assert!(!metrics.contains("no-such-model"));
    assert!(!metrics.contains("bounded-0399"));
    // The request log holds bounded names too.
    let log = gw
        .state
        .stats
        .recent(1000, &Default::default())
        .await
        .unwrap();
    assert!(log.iter().all(|r| r.model.len() <= 256));
}

#[tokio::test]
async fn model_names_cannot_change_the_upstream_url() {
    let gw = TestGateway::start().await;
    for model in [
        "gemini/../../x:foo?alt=1",
        "gemini/a/../b",
        "gemini/a b",
        "gemini/x#frag",
        "gemini/%2e%2e",
        "",
    ] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]});
        let resp = gw.chat(body).await;
        assert_eq!(resp.status(), 400, "{model}");
        let resp = gw
            .post("/v1/embeddings")
            .json(&json!({"model": model, "input": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{model}");
    }
    assert!(
        gw.mock.state.received().is_empty(),
        "nothing reached the upstream"
    );
    // A 100,000-character name neither reaches the upstream nor opens a circuit.
    let huge = format!("gemini-2.5-flash{}", "a".repeat(100_000));
    for _ in 0..5 {
        let resp = gw
            .chat(json!({"model": huge, "messages": [{"role": "user", "content": "Hi"}]}))
            .await;
        assert_eq!(resp.status(), 400);
    }
    let health: Value = gw.get_json("/health").await;
    assert!(
        health["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["circuit"]["state"] == "closed"),
        "{health}"
    );
    // A valid name with `/` stays one path segment (percent-encoded) for Gemini.
    let resp = gw.chat(hello("gemini/tunedModels/t-1")).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(
        gw.mock.state.last().path,
        "/v1beta/models/tunedModels/t-1:generateContent"
    );
    let resp = gw.chat(hello("gemini-2.5-flash")).await;
    assert_eq!(resp.status(), 200);
}

async fn raw_connect(gw: &TestGateway) -> tokio::net::TcpStream {
    let addr = gw.url.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection; the bytes read and when it closed.
async fn until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Option<Duration>) {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

/// Sends `request` as it is on a new connection; the reply's status, head and body.
async fn raw_reply(gw: &TestGateway, request: &[u8]) -> (u16, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut stream = raw_connect(gw).await;
    stream.write_all(request).await.unwrap();
    let (reply, closed) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the connection is closed after: {reply}");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_openai_json_errors() {
    let gw = TestGateway::start().await;
    let many: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let good = "GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n";
    let cases = [
        (
            format!("GET /v1/models HTTP/1.1\r\nhost: x\r\n{many}\r\n"),
            431,
            "headers_too_large",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000)),
            414,
            "uri_too_long",
        ),
        (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n".to_string(),
            400,
            "invalid_request",
        ),
        (
            "GET /v1/models HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_string(),
            400,
            "invalid_request",
        ),
        // After a request served on the same connection.
        (
            format!("{good}GET /v1/models HTTP/1.1\r\nhost: x\r\n{many}\r\n"),
            431,
            "headers_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let (got, head, body) = raw_reply(&gw, request.as_bytes()).await;
        let body = if request.starts_with(good) {
            assert_eq!(got, 200, "{head}");
            let second = body.find("HTTP/1.1 ").expect("a second reply");
            let reply = &body[second..];
            let (head, body) = reply.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{head}"
            );
            body.to_string()
        } else {
            assert_eq!(got, status, "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            body
        };
        let e: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON: {body}"));
        assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
        assert_eq!(e["error"]["code"], code, "{e}");
        assert!(e["error"]["param"].is_null(), "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{e}"
        );
    }
    assert!(gw.mock.state.received().is_empty());
}

#[tokio::test]
async fn a_viewer_gets_403_from_admin_pages_and_functions_however_the_path_is_spelled() {
    use llm_bridge::governance::Role;
    let gw =
        TestGateway::start_locked("[[teams]]\nname = \"research\"\nbudget_usd = 100.0\n").await;
    let viewer = format!("llmb_session={}", gw.state.auth.new_session(Role::Viewer));
    let admin = format!("llmb_session={}", gw.state.auth.new_session(Role::Admin));
    let page = |path: &str, cookie: &str| {
        format!("GET {path} HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\nconnection: close\r\n\r\n")
    };
    let (status, _, _) = raw_reply(&gw, page("/requests", &viewer).as_bytes()).await;
    assert_eq!(status, 200);
    for path in ["/keys", "/teams", "/system", "/tester", "/keys/", "/%6beys"] {
        let (status, _, body) = raw_reply(&gw, page(path, &viewer).as_bytes()).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("your role is viewer"), "{path}: {body}");
    }
    // A path with `.`, `..` or empty segments is refused for anyone, before it is matched.
    for path in [
        "/./keys",
        "/foo/../keys",
        "/x/%2e%2e/keys",
        "/.%2E/teams",
        "//keys",
        "/login/../keys",
        "/pkg/../system",
    ] {
        for cookie in [&viewer, &admin] {
            let (status, head, body) = raw_reply(&gw, page(path, cookie).as_bytes()).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(head.contains("content-type: application/json"), "{head}");
            let e: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(e["error"]["code"], "invalid_path", "{e}");
        }
    }
    // The admin pages' server functions answer a viewer 403, the teams' too.
    let call = |name: &str, cookie: &str| {
        gw.post(&format!("/console/fn/{name}"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
    };
    for name in ["get_teams", "get_keys"] {
        let resp = call(name, &viewer).await.unwrap();
        assert_eq!(resp.status(), 403, "{name}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("viewer") && !text.contains("research"),
            "{name}: {text}"
        );
    }
    let resp = call("get_teams", &admin).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("research"));
}

const SLOW_CLIENTS: &str = "[server]\nclient_header_timeout = \"400ms\"\nclient_body_timeout = \"400ms\"\nclient_idle_timeout = \"600ms\"\n";

#[tokio::test]
async fn slow_headers_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start_with(SLOW_CLIENTS, |_| {}).await;
    // Many connections sending their headers a byte at a time.
    let mut slow = Vec::new();
    for _ in 0..50 {
        slow.push(raw_connect(&gw).await);
    }
    let started = Instant::now();
    let head =
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let writer = tokio::spawn(async move {
        for byte in head {
            for s in slow.iter_mut() {
                if s.write_all(&[*byte]).await.is_err() {
                    return slow;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slow
    });
    let mut slow = writer.await.unwrap();
    let mut closed = Vec::new();
    for s in slow.iter_mut() {
        let (_, at) = until_closed(s, Duration::from_secs(5)).await;
        closed.push(at.expect("the server closed the slow connection"));
    }
    let last = started.elapsed();
    eprintln!("50 slow-header connections closed within {last:?} of their first byte");
    assert!(last < Duration::from_secs(3), "{last:?}");
    // A connection that sends nothing at all is closed too.
    let mut silent = raw_connect(&gw).await;
    let (_, at) = until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(
        at.is_some_and(|t| t >= Duration::from_millis(350)),
        "{at:?}"
    );
    // Normal requests are unaffected.
    let resp = gw.chat(hello("gpt-4o-mini")).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start_with(SLOW_CLIENTS, |_| {}).await;
    let mut s = raw_connect(&gw).await;
    s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (reply, at) = until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let at = at.expect("closed when idle");
    eprintln!("idle keep-alive connection closed after {at:?}");
    assert!(
        at >= Duration::from_millis(550) && started.elapsed() < Duration::from_secs(2),
        "{at:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_gets_408() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start_with(SLOW_CLIENTS, |_| {}).await;
    let mut s = raw_connect(&gw).await;
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"model\":",
    )
    .await
    .unwrap();
    let (reply, at) = until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"code\":\"request_timeout\""), "{reply}");
    assert!(at.is_some(), "closed after the 408");
    assert!(gw.mock.state.received().is_empty());
}

#[tokio::test]
async fn connections_are_capped() {
    let gw = TestGateway::start_with(
        "[server]\nmax_connections = 4\nclient_header_timeout = \"5s\"\n",
        |_| {},
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(raw_connect(&gw).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::new();
    let waiting = client
        .get(format!("{}/health/live", gw.url))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a fifth connection waits while four are open"
    );
    held.pop();
    let resp = client
        .get(format!("{}/health/live", gw.url))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn login(gw: &TestGateway, key: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", gw.url))
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_session_cookie_does_not_work_cross_site() {
    let gw = TestGateway::start_locked("").await;
    let resp = login(&gw, MASTER).await;
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let forged = |path: &str| {
        gw.post(path)
            .header("cookie", &cookie)
            .header("origin", "http://evil.example")
            .header("sec-fetch-site", "cross-site")
            .header("content-type", "text/plain")
            .body(r#"{"name":"stolen"}"#)
    };
    for path in [
        "/api/keys",
        "/api/keys/key_x/rotate",
        "/v1/chat/completions",
    ] {
        let resp = forged(path).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["code"], "cross_site_request");
    }
    let resp = gw
        .http
        .delete(format!("{}/api/keys/key_x", gw.url))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(gw.state.governance.keys.is_empty());
    // The console's own page may use it.
    let resp = gw
        .post("/api/keys")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"name": "mine"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    // Reading stays possible (GET is not state-changing).
    let resp = gw
        .get("/api/keys")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn login_attempts_are_rate_limited() {
    let gw = TestGateway::start_locked("").await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(login(&gw, &format!("wrong-{i}")).await.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    let locked = login(&gw, MASTER).await;
    assert_eq!(
        locked.status(),
        429,
        "no more guesses until the window ends"
    );
    assert!(locked.headers().contains_key("retry-after"));
}

async fn login_from(gw: &TestGateway, client: &reqwest::Client, ip: &str, key: &str) -> u16 {
    client
        .post(format!("{}/login", gw.url))
        .header("x-forwarded-for", ip)
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn wrong_logins_from_many_addresses_do_not_lock_out_the_master_key() {
    let gw = TestGateway::start_locked("[limits]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // More distinct addresses than the throttle tracks, each with a wrong key.
    let gw = std::sync::Arc::new(gw);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16u32 {
        let (gw, client) = (gw.clone(), client.clone());
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for i in (worker..4400).step_by(16) {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
                statuses.push(login_from(&gw, &client, &ip, "wrong-key").await);
            }
            statuses
        });
    }
    let statuses: Vec<u16> = tasks.join_all().await.into_iter().flatten().collect();
    assert!(
        statuses.iter().all(|s| *s == 401),
        "each address's first wrong key is a 401"
    );

    // The right key from an address that sent no wrong key signs in.
    assert_eq!(login_from(&gw, &client, "192.0.2.1", MASTER).await, 303);
    assert_eq!(login_from(&gw, &client, "2001:db8:1::1", MASTER).await, 303);
    // Meanwhile, with that many wrong keys about, an address is locked after its first one.
    assert_eq!(
        login_from(&gw, &client, "192.0.2.2", "wrong-key").await,
        401
    );
    assert_eq!(login_from(&gw, &client, "192.0.2.2", MASTER).await, 429);
    // An IPv6 /64 is one address.
    assert_eq!(
        login_from(&gw, &client, "2001:db8:2::1", "wrong-key").await,
        401
    );
    assert_eq!(
        login_from(&gw, &client, "2001:db8:2::ffff", MASTER).await,
        429
    );
    assert_eq!(login_from(&gw, &client, "2001:db8:3::1", MASTER).await, 303);
}

#[tokio::test]
async fn health_details_need_the_key() {
    let gw = TestGateway::start_locked("").await;
    let resp = gw.chat(hello("gpt-4o-mini")).await;
    assert_eq!(resp.status(), 401);
    let open: Value = gw.get_json("/health").await;
    assert_eq!(open["status"], "ok");
    assert!(open["version"].is_string());
    assert_eq!(open.as_object().unwrap().len(), 2, "{open}");
    let full: Value = gw.master_json("/health").await;
    assert!(
        full["deployments"].is_array() && full["providers"].is_array(),
        "{full}"
    );
    for path in ["/health/live", "/health/ready"] {
        assert_eq!(gw.get(path).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn one_failing_request_does_not_take_a_model_down() {
    let toml = "[routing]\nmax_attempts = 2\nretry_base_delay = \"1ms\"\n[routing.circuit]\nconsecutive_failures = 3\ncooldown = \"30s\"\n\
        [[deployments]]\nname = \"only\"\nmodel = \"solo\"\nprovider = \"openai\"\nupstream_model = \"m-fail500x6\"\n\
        [[deployments]]\nname = \"limited\"\nmodel = \"busy\"\nprovider = \"openai\"\nupstream_model = \"m-fail429\"\n";
    let gw = TestGateway::start_with(toml, |_| {}).await;
    let state = |gw: &TestGateway, id: &str| {
        let now = std::time::Instant::now();
        gw.state
            .gateway()
            .routing
            .reports(now)
            .into_iter()
            .find(|d| d.id == id)
            .unwrap()
            .circuit
    };
    // Two requests, each retried once: two failures, not four; the circuit stays closed.
    for _ in 0..2 {
        let resp = gw.chat(hello("solo")).await;
        assert_eq!(resp.status(), 502);
        assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
    }
    assert_eq!(gw.mock.state.received().len(), 4);
    assert_eq!(state(&gw, "only").consecutive_failures, 2);
    assert_eq!(format!("{:?}", state(&gw, "only").state), "Closed");
    // The third opens it; the next request is still tried (the only deployment), not refused.
    assert_eq!(gw.chat(hello("solo")).await.status(), 502);
    assert_eq!(format!("{:?}", state(&gw, "only").state), "Open");
    let before = gw.mock.state.received().len();
    let resp = gw.chat(hello("solo")).await;
    assert_ne!(resp.status(), 503);
    assert_eq!(gw.mock.state.received().len(), before + 1, "tried anyway");
    // The upstream recovers (it fails six times): the next request succeeds and closes the circuit.
    let resp = gw.chat(hello("solo")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(format!("{:?}", state(&gw, "only").state), "Closed");

    // A 429 with Retry-After: the client is told 429 with Retry-After, not 503.
    let resp = gw.chat(hello("busy")).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let hits = gw.mock.state.received().len();
    let resp = gw.chat(hello("busy")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "upstream_rate_limited");
    assert_eq!(
        gw.mock.state.received().len(),
        hits,
        "not sent while rate-limited"
    );
}

#[tokio::test]
async fn reply_headers_are_bounded_ascii() {
    let toml = "[[deployments]]\nname = \"東京-primary\\u0001\"\nmodel = \"tokyo\"\nprovider = \"openai\"\nupstream_model = \"gpt-4o-mini\"\n";
    let gw = TestGateway::start_with(toml, |_| {}).await;
    let resp = gw.chat(hello("tokyo")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-deployment"], "__-primary_");
    let long = format!("openai/{}", "m".repeat(240));
    let resp = gw.chat(hello(&long)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["x-llm-bridge-deployment"].len() <= 256);
}

#[tokio::test]
async fn every_api_error_is_openai_json() {
    let gw = TestGateway::start_with("[server]\nmax_body_bytes = 2048\n", |_| {}).await;
    let check = |status: u16, resp: reqwest::Response| async move {
        assert_eq!(resp.status().as_u16(), status, "{:?}", resp.url().path());
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        let e: Value = resp.json().await.unwrap();
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{e}"
        );
        assert!(e["error"]["type"].is_string(), "{e}");
        e
    };
    let e = check(405, gw.get("/v1/chat/completions").send().await.unwrap()).await;
    assert_eq!(e["error"]["code"], "method_not_allowed");
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..101 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(),
            "1".parse().unwrap(),
        );
    }
    let e = check(
        431,
        gw.post("/v1/chat/completions")
            .headers(many)
            .json(&hello("gpt-4o-mini"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(e["error"]["code"], "headers_too_large");
    let big = json!({"name": "x".repeat(4000)});
    check(413, gw.post("/api/keys").json(&big).send().await.unwrap()).await;
    check(400, gw.get("/api/requests?limit=-1").send().await.unwrap()).await;
    for path in ["/v1/completions", "/v1/x/y/z", "/api/nothing"] {
        let e = check(
            404,
            gw.post(path)
                .json(&hello("gpt-4o-mini"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(e["error"]["code"], "unknown_route");
    }
}

#[tokio::test]
async fn keys_in_upstream_errors_are_masked_in_any_form() {
    let gw = TestGateway::start().await;
    let resp = gw.chat(hello("openai/m-leakkey")).await;
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(text.contains("Incorrect API key provided"), "{text}");
    assert_no_secret(&text);
    let encoded: String = OPENAI_KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    assert!(!text.contains(&encoded), "{text}");
    assert!(
        !text.contains(&OPENAI_KEY[..OPENAI_KEY.len() - 1]),
        "{text}"
    );
    assert!(text.contains("********"), "{text}");
}

#[test]
fn limits_that_would_refuse_everything_are_configuration_errors() {
    for (text, key) in [
        ("[server]\nmax_body_bytes = 0\n", "server.max_body_bytes"),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        (
            "[server]\nclient_header_timeout = \"0s\"\n",
            "server.client_header_timeout",
        ),
    ] {
        let err = config_error(text);
        assert!(err.contains(key), "{err}");
    }
}

#[tokio::test]
async fn a_missing_site_root_is_reported() {
    let data = tempfile::tempdir().unwrap();
    let gw = Running::start(
        data.path(),
        &[(
            "LLM_BRIDGE_SITE_ROOT",
            data.path().join("nowhere").display().to_string(),
        )],
    )
    .await;
    wait_until("the warning", || {
        gw.log().contains("console's assets are missing")
    })
    .await;
}

#[tokio::test]
async fn pages_and_static_files_answer_get_and_head_only() {
    use tokio::io::AsyncWriteExt;
    let gw = TestGateway::start().await;
    for method in ["TRACE", "PATCH", "DELETE", "PUT", "POST"] {
        let resp = gw
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/favicon.svg", gw.url),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "GET, HEAD");
    }
    let mut s = raw_connect(&gw).await;
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .unwrap();
    let (reply, _) = until_closed(&mut s, Duration::from_secs(2)).await;
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
}
