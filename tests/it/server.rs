//! The `llm-bridge` binary itself: CLI, configuration check, health, console pages, graceful
//! shutdown and the embedded store across a restart.

use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

#[test]
fn help_and_version() {
    let out = bare_command().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for needle in [
        "check-config",
        "--config",
        "--listen",
        "--data-dir",
        "--redis-url",
    ] {
        assert!(
            help.contains(needle),
            "{needle} missing from --help:\n{help}"
        );
    }
    let out = bare_command().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("llm-bridge {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_prints_masked_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bridge.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:4321\"\n[models.aliases]\nfast = \"deepseek/deepseek-chat\"\n").unwrap();
    let out = bare_command()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("OPENAI_API_KEY", "sk-very-secret-value")
        .env("REDIS_URL", "redis://:hunter2@127.0.0.1:6379")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("127.0.0.1:4321") && stdout.contains("fast = \"deepseek/deepseek-chat\""),
        "{stdout}"
    );
    assert!(
        !stdout.contains("sk-very-secret-value") && !stdout.contains("hunter2"),
        "{stdout}"
    );
    assert!(stdout.contains("********"));

    // --listen beats the environment, which beats the file.
    let out = bare_command()
        .args(["check-config", "--listen", "127.0.0.1:9999", "--config"])
        .arg(&file)
        .env("LLM_BRIDGE_LISTEN", "127.0.0.1:8888")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("listen = \"127.0.0.1:9999\""));
}

#[test]
fn base_urls_with_credentials_or_a_query_are_refused_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let check = |toml: &str, env: &[(&str, &str)]| {
        let file = dir.path().join("bridge.toml");
        std::fs::write(&file, toml).unwrap();
        let mut cmd = bare_command();
        cmd.args(["check-config", "--config"]).arg(&file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("pa55word") && !text.contains("s3cret-key"),
            "{text}"
        );
        (out.status.code(), text)
    };
    let custom = |url: &str| {
        format!("[[providers.custom]]\nname = \"vllm\"\nbase_url = \"{url}\"\nmodels = [\"m\"]\n")
    };

    let (code, text) = check(&custom("https://llm.example.com/v1"), &[]);
    assert_eq!(code, Some(0), "{text}");
    for (url, says) in [
        ("https://admin:pa55word@llm.example.com/v1", "credentials"),
        ("https://llm.example.com/v1?api-key=s3cret-key", "query"),
        ("https://llm.example.com/v1#s3cret-key", "fragment"),
    ] {
        let (code, text) = check(&custom(url), &[]);
        assert_eq!(code, Some(2), "{url}: {text}");
        assert!(
            text.contains("providers.custom[0].base_url") && text.contains(says),
            "{text}"
        );
        assert!(
            text.contains("llm.example.com"),
            "the host is still named: {text}"
        );
    }
    let (code, text) = check(
        "",
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "https://u:pa55word@api.example.com/v1"),
        ],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("providers.openai.base_url"), "{text}");
    let (code, text) = check(
        &format!(
            "{}[[deployments]]\nmodel = \"m\"\nprovider = \"vllm\"\nbase_url = \"https://other.example.com/v1?key=s3cret-key\"\n",
            custom("https://llm.example.com/v1")
        ),
        &[],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("deployments[0].base_url"), "{text}");
}

#[test]
fn check_config_rejects_bad_input_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[store]\nflush_interval = \"0s\"\n").unwrap();
    let out = bare_command()
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(file.to_str().unwrap())
            && stderr.contains("store.flush_interval")
            && stderr.contains("greater than zero"),
        "{stderr}"
    );

    let out = bare_command()
        .args(["check-config", "--config", "/nonexistent/bridge.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/bridge.toml: cannot read"));

    let out = bare_command()
        .arg("check-config")
        .env("LLM_BRIDGE_LISTEN", "localhost")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LLM_BRIDGE_LISTEN"));
}

#[tokio::test]
async fn health_and_console_without_redis_or_keys() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/health/ready", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let health: Value = http
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["store"]["backend"], "embedded");
    assert_eq!(health["store"]["reachable"], true);
    assert!(health["uptime_seconds"].is_u64());
    let openai = health["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(openai["enabled"], false);
    assert_eq!(openai["enable_with"], "OPENAI_API_KEY");
    let live = http
        .get(format!("{}/health/live", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);

    let page = http.get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Dashboard") && html.contains("data-metric=\"requests\""),
        "SSR includes the data:\n{html}"
    );
    let missing = http
        .get(format!("{}/no-such-page", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn ready_is_503_when_the_store_is_unusable() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(
        dir.path(),
        &[("REDIS_URL", format!("redis://127.0.0.1:{port}"))],
    )
    .await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/health/ready", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(body["reason"].as_str().unwrap().contains("redis"), "{body}");
    let health: Value = http
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["store"]["reachable"], false);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
        ("LLM_BRIDGE_CONFIG", {
            let f = dir.path().join("c.toml");
            std::fs::write(&f, "[providers.openai]\nmodels = [\"m-slow\"]\n").unwrap();
            f.to_string_lossy().into_owned()
        }),
    ];
    let gw = Running::start(dir.path(), &env).await;
    let url = gw.url.clone();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "m-slow", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    wait_until("the request to reach the mock", || {
        !mock.state.received().is_empty()
    })
    .await;
    gw.terminate();
    let body = in_flight.await.unwrap();
    let chunks = sse_chunks(&body);
    assert!(chunks.len() > 20, "the stream completed: {body}");
    let (status, log) = gw.wait_exit().await;
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(!log.contains(OPENAI_KEY));
}

#[tokio::test]
async fn embedded_store_keeps_totals_across_a_restart() {
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
    ];
    let http = reqwest::Client::new();
    let gw = Running::start(dir.path(), &env).await;
    for _ in 0..3 {
        let r = http
            .post(format!("{}/v1/chat/completions", gw.url))
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    gw.terminate();
    assert!(gw.wait_exit().await.0.success());

    let gw = Running::start(dir.path(), &env).await;
    let overview: Value = http
        .get(format!("{}/api/stats/overview?window=1h", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["requests"], 3, "{overview}");
    assert_eq!(overview["prompt_tokens"], 36);
    assert_eq!(overview["completion_tokens"], 60);
    // gpt-4o-mini: 8 uncached + 4 cached prompt tokens and 20 output tokens, three times.
    let expected = 3.0 * (8.0 * 0.15 + 4.0 * 0.075 + 20.0 * 0.60) / 1e6;
    assert!(
        (overview["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{overview}"
    );
}

#[tokio::test]
async fn embedded_store_survives_a_crash() {
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
    ];
    let http = reqwest::Client::new();
    let mut gw = Running::start(dir.path(), &env).await;
    for _ in 0..2 {
        let r = http
            .post(format!("{}/v1/chat/completions", gw.url))
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap();
    }
    // The file is written within a few seconds without any shutdown; then the process is killed.
    let file = dir.path().join("stats.json");
    wait_until_secs("the stats file", 10, || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains("gpt-4o-mini"))
    })
    .await;
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    let gw = Running::start(dir.path(), &env).await;
    let overview: Value = http
        .get(format!("{}/api/stats/overview?window=1h", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["requests"], 2, "{overview}");
}

async fn wait_until_secs(what: &str, secs: u64, f: impl Fn() -> bool) {
    for _ in 0..secs * 20 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
