//! The OpenAI dialect through the gateway over real HTTP: OpenAI, DeepSeek, Qwen, Moonshot and
//! custom servers, plus every error case of the API.

use crate::support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn non_stream_passes_through_byte_for_byte() {
    let gw = TestGateway::start().await;
    let mut body = hello("gpt-4o-mini");
    body["x_vendor_field"] = json!({"keep": [1, 2]});
    body["temperature"] = json!(0.2);
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-provider"], "openai");
    assert!(resp.headers().contains_key("x-request-id"));
    let overhead: f64 = resp.headers()["x-llm-bridge-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["content"],
        llm_bridge_mock::REPLY_WORDS.concat()
    );
    assert_eq!(
        reply["system_fingerprint"], "fp_mock",
        "upstream fields kept"
    );
    assert_eq!(reply["usage"]["prompt_tokens"], 12);

    let got = gw.mock.state.last();
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(
        got.body["x_vendor_field"],
        json!({"keep": [1, 2]}),
        "unknown fields passed through"
    );
    assert_eq!(got.body["temperature"], 0.2);
    assert_eq!(got.headers["authorization"], format!("Bearer {OPENAI_KEY}"));
}

#[tokio::test]
async fn request_id_is_echoed() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post("/v1/chat/completions")
        .header("x-request-id", "my-trace-42")
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "my-trace-42");
}

#[tokio::test]
async fn stream_without_usage_request_hides_the_usage_chunk_but_records_usage() {
    let gw = TestGateway::start().await;
    let mut body = hello("gpt-4o-mini");
    body["stream"] = json!(true);
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let chunks = sse_chunks(&text);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "{text}");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, llm_bridge_mock::REPLY_WORDS.concat());
    // The gateway asked the upstream for usage anyway.
    assert_eq!(
        gw.mock.state.last().body["stream_options"]["include_usage"],
        true
    );
    gw.state.stats.flush().await;
    let recent = gw.state.stats.recent(1, &Default::default()).await.unwrap();
    assert_eq!(
        (recent[0].prompt_tokens, recent[0].completion_tokens),
        (12, 20)
    );
    assert!(!recent[0].usage_estimated);
    assert!(recent[0].ttft_ms.is_some());
}

#[tokio::test]
async fn stream_with_usage_request_ends_with_the_usage_chunk() {
    let gw = TestGateway::start().await;
    let mut body = hello("gpt-4o-mini");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = gw.chat(body).await.text().await.unwrap();
    let chunks = sse_chunks(&text);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 32);
    let finishes = chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .count();
    assert_eq!(finishes, 1);
}

#[tokio::test]
async fn tool_calls_stream_through() {
    let body = json!({
        "model": "gpt-4o-mini-tools", "stream": true,
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto", "parallel_tool_calls": true
    });
    let toml = "[providers.openai]\nmodels = [\"gpt-4o-mini-tools\"]\n";
    let gw = TestGateway::start_with(toml, |_| {}).await;
    let text = gw.chat(body).await.text().await.unwrap();
    let chunks = sse_chunks(&text);
    let indices: Vec<u64> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["index"].as_u64())
        .collect();
    assert_eq!(indices, vec![0, 0, 1, 1]);
    assert_eq!(gw.mock.state.last().body["tool_choice"], "auto");
}

#[tokio::test]
async fn provider_prefix_and_alias_route_and_rename_the_model() {
    let gw = TestGateway::start_with(
        "[models.aliases]\nfast = \"deepseek/deepseek-chat\"\n",
        |_| {},
    )
    .await;
    let resp = gw.chat(hello("fast")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-provider"], "deepseek");
    let got = gw.mock.state.last();
    assert_eq!(got.path, "/chat/completions");
    assert_eq!(got.body["model"], "deepseek-chat");
    assert_eq!(
        got.headers["authorization"],
        format!("Bearer {DEEPSEEK_KEY}")
    );

    let resp = gw.chat(hello("openai/gpt-some-future-model")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(gw.mock.state.last().body["model"], "gpt-some-future-model");
}

#[tokio::test]
async fn catalogue_routes_each_family() {
    let gw = TestGateway::start().await;
    for (model, provider, path) in [
        ("gpt-4o-mini", "openai", "/v1/chat/completions"),
        ("deepseek-chat", "deepseek", "/chat/completions"),
        ("qwen-plus", "qwen", "/compatible-mode/v1/chat/completions"),
        ("kimi-k2-0905-preview", "moonshot", "/v1/chat/completions"),
        (
            "gemini-2.5-flash",
            "gemini",
            "/v1beta/models/gemini-2.5-flash:generateContent",
        ),
        ("claude-sonnet-4-5", "anthropic", "/v1/messages"),
    ] {
        let resp = gw.chat(hello(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-llm-bridge-provider"], provider, "{model}");
        assert_eq!(gw.mock.state.last().path, path, "{model}");
    }
}

#[tokio::test]
async fn deepseek_keeps_reasoning_content_and_gets_max_tokens() {
    let gw = TestGateway::start_with(
        "[providers.deepseek]\nmodels = [\"deepseek-reasoning\"]\n",
        |_| {},
    )
    .await;
    let body = json!({
        "model": "deepseek-reasoning", "max_completion_tokens": 64,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "reasoning_content": "I should call the tool.",
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ]
    });
    let reply: Value = gw.chat(body.clone()).await.json().await.unwrap();
    assert_eq!(
        reply["choices"][0]["message"]["reasoning_content"],
        llm_bridge_mock::REASONING_TEXT
    );
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["messages"][1]["reasoning_content"], "I should call the tool.",
        "history keeps reasoning_content"
    );
    assert_eq!(sent["max_tokens"], 64);
    assert!(sent.get("max_completion_tokens").is_none());

    let mut streamed = body;
    streamed["stream"] = json!(true);
    let text = gw.chat(streamed).await.text().await.unwrap();
    let reasoning: String = sse_chunks(&text)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, llm_bridge_mock::REASONING_TEXT);
}

#[tokio::test]
async fn openai_gets_reasoning_content_stripped_from_history() {
    let gw = TestGateway::start().await;
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "assistant", "content": "a", "reasoning_content": "thoughts"},
        {"role": "user", "content": "b"}
    ]});
    assert_eq!(gw.chat(body).await.status(), 200);
    assert!(
        gw.mock.state.last().body["messages"][0]
            .get("reasoning_content")
            .is_none()
    );
}

#[tokio::test]
async fn regions_choose_base_urls() {
    use llm_bridge::config::{CliOverrides, Config};
    let env: std::collections::HashMap<String, String> = [
        ("QWEN_API_KEY", "k"),
        ("QWEN_REGION", "intl"),
        ("MOONSHOT_API_KEY", "k"),
        ("MOONSHOT_REGION", "global"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let (config, _) = Config::load(&CliOverrides::default(), &env).unwrap();
    let providers = llm_bridge::routing::Providers::from_config(&config);
    assert_eq!(
        providers.get("qwen").unwrap().base_url,
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    );
    assert_eq!(
        providers.get("moonshot").unwrap().base_url,
        "https://api.moonshot.ai/v1"
    );
}

#[tokio::test]
async fn custom_openai_compatible_server() {
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let toml = format!(
        "[[providers.custom]]\nname = \"ollama\"\nbase_url = \"{}/v1\"\nmodels = [\"llama3.2\"]\n",
        mock.url()
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    for model in ["llama3.2", "ollama/llama3.2", "ollama/qwen2.5:7b"] {
        let resp = gw.chat(hello(model)).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["x-llm-bridge-provider"], "ollama");
    }
    let got = mock.state.last();
    assert_eq!(got.body["model"], "qwen2.5:7b");
    assert!(
        got.headers.get("authorization").is_none(),
        "no key configured, none sent"
    );
}

#[tokio::test]
async fn models_list_and_get() {
    let gw = TestGateway::start_with(
        "[models.aliases]\nfast = \"deepseek/deepseek-chat\"\n",
        |env| {
            env.remove("MOONSHOT_API_KEY");
        },
    )
    .await;
    let list: Value = gw
        .get("/v1/models")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    let owner = |id: &str| {
        data.iter()
            .find(|m| m["id"] == id)
            .map(|m| m["owned_by"].clone())
    };
    assert_eq!(owner("gpt-4o-mini"), Some(json!("openai")));
    assert_eq!(owner("gemini-2.5-flash"), Some(json!("gemini")));
    assert_eq!(owner("fast"), Some(json!("deepseek")));
    assert_eq!(
        owner("kimi-k2-0905-preview"),
        None,
        "disabled provider's models are not listed"
    );
    assert!(data.iter().all(|m| m["object"] == "model"));

    let one: Value = gw
        .get("/v1/models/claude-sonnet-4-5")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["owned_by"], "anthropic");
    let missing = gw.get("/v1/models/nope-model").send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn embeddings_pass_through() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post("/v1/embeddings")
        .json(&json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["data"].as_array().unwrap().len(), 2);
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    assert_eq!(gw.mock.state.last().path, "/v1/embeddings");
}

// ---------- errors ----------

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is JSON: {text}"));
    for field in ["message", "type", "param", "code"] {
        assert!(
            v["error"].get(field).is_some(),
            "error.{field} missing in {v}"
        );
    }
    (status, v["error"].clone())
}

#[tokio::test]
async fn malformed_json_is_400() {
    let gw = TestGateway::start().await;
    let resp = gw
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(
        e["message"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_named() {
    let gw = TestGateway::start().await;
    let (status, e) = error_of(gw.chat(json!({"model": "gpt-4o-mini"})).await).await;
    assert_eq!(status, 400);
    assert_eq!(e["param"], "messages");
    let (status, e) = error_of(gw.chat(json!({"messages": []})).await).await;
    assert_eq!(status, 400);
    assert_eq!(e["param"], "model");
    let (_, e) = error_of(
        gw.chat(json!({"model": "gpt-4o-mini", "messages": "hi"}))
            .await,
    )
    .await;
    assert_eq!(e["param"], "messages");
    let (_, e) = error_of(
        gw.chat(json!({"model": "gpt-4o-mini", "messages": []}))
            .await,
    )
    .await;
    assert_eq!(e["param"], "messages");
    // Translating providers check the messages themselves.
    let (status, e) = error_of(
        gw.chat(json!({"model": "gemini-2.5-flash", "messages": [{"content": "x"}]}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        e["param"].as_str().unwrap().starts_with("messages[0]"),
        "{e}"
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let gw = TestGateway::start_with("[server]\nmax_body_bytes = 1024\n", |_| {}).await;
    let big = "x".repeat(4096);
    let (status, e) = error_of(
        gw.chat(json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": big}]}))
            .await,
    )
    .await;
    assert_eq!(status, 413);
    assert!(e["message"].as_str().unwrap().contains("1024"));
}

#[tokio::test]
async fn unknown_model_is_404_and_unconfigured_provider_is_400() {
    let gw = TestGateway::start_with("", |env| {
        env.remove("MOONSHOT_API_KEY");
    })
    .await;
    let (status, e) = error_of(gw.chat(hello("no-such-model")).await).await;
    assert_eq!(status, 404);
    assert_eq!(e["code"], "model_not_found");
    let (status, e) = error_of(gw.chat(hello("kimi-k2-0905-preview")).await).await;
    assert_eq!(status, 400);
    assert!(
        e["message"].as_str().unwrap().contains("MOONSHOT_API_KEY"),
        "{e}"
    );
}

#[tokio::test]
async fn upstream_4xx_keeps_status_and_names_provider() {
    let gw = TestGateway::start_with(
        "[providers.openai]\nmodels = [\"m-fail400\", \"m-fail429\"]\n",
        |_| {},
    )
    .await;
    let (status, e) = error_of(gw.chat(hello("m-fail400")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        e["message"],
        "OpenAI: Invalid value for 'temperature': must be at most 2."
    );
    let (status, e) = error_of(gw.chat(hello("m-fail429")).await).await;
    assert_eq!(status, 429);
    assert_eq!(e["type"], "rate_limit_error");
}

#[tokio::test]
async fn one_upstream_500_is_retried() {
    let gw =
        TestGateway::start_with("[providers.openai]\nmodels = [\"m-fail500once\"]\n", |_| {}).await;
    let resp = gw.chat(hello("m-fail500once")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-llm-bridge-attempts"], "2");
    assert_eq!(gw.mock.state.received().len(), 2);
}

#[tokio::test]
async fn persistent_500_is_502_and_unreachable_is_502() {
    let gw =
        TestGateway::start_with("[providers.openai]\nmodels = [\"m-fail500\"]\n", |_| {}).await;
    let (status, e) = error_of(gw.chat(hello("m-fail500")).await).await;
    assert_eq!(status, 502);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("OpenAI: upstream returned 500"),
        "{e}"
    );

    let port = free_port();
    let gw = TestGateway::start_with("", |env| {
        env.insert(
            "OPENAI_BASE_URL".into(),
            format!("http://127.0.0.1:{port}/v1"),
        );
    })
    .await;
    let (status, e) = error_of(gw.chat(hello("gpt-4o-mini")).await).await;
    assert_eq!(status, 502);
    assert!(
        e["message"].as_str().unwrap().contains("cannot connect"),
        "{e}"
    );
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let gw = TestGateway::start_with(
        "[server]\nfirst_byte_timeout = \"300ms\"\n[providers.openai]\nmodels = [\"m-hang\"]\n",
        |_| {},
    )
    .await;
    let started = std::time::Instant::now();
    let (status, e) = error_of(gw.chat(hello("m-hang")).await).await;
    assert_eq!(status, 504);
    assert_eq!(e["code"], "timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_steady_stream_still_ends_at_the_total_timeout() {
    // Events 100 ms apart never trip the 1 s idle timeout; the 1 s total cuts the stream.
    let gw = TestGateway::start_with(
        "[server]\nidle_timeout = \"1s\"\n\
         [providers.openai]\nmodels = [\"m-drip\"]\ntotal_timeout = \"1s\"\n",
        |_| {},
    )
    .await;
    let mut body = hello("m-drip");
    body["stream"] = json!(true);
    let started = std::time::Instant::now();
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let elapsed = started.elapsed();
    let chunks = sse_chunks(&text);
    let (last, before) = chunks.split_last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("took longer than 1s"),
        "{text}"
    );
    let words = before
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .count();
    assert!(
        (3..llm_bridge_mock::REPLY_WORDS.len()).contains(&words),
        "{words} words before the cut: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(elapsed < std::time::Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn stream_cut_midway_ends_with_error_event_and_done() {
    let gw = TestGateway::start_with("[providers.openai]\nmodels = [\"m-cut\"]\n", |_| {}).await;
    let mut body = hello("m-cut");
    body["stream"] = json!(true);
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let chunks = sse_chunks(&text);
    let last = chunks.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broke off"),
        "{text}"
    );
    gw.state.stats.flush().await;
    let rec = &gw.state.stats.recent(1, &Default::default()).await.unwrap()[0];
    assert_eq!(rec.error_class.as_deref(), Some("upstream"));
}

#[tokio::test]
async fn malformed_stream_event_ends_with_error_event_and_done() {
    let gw =
        TestGateway::start_with("[providers.openai]\nmodels = [\"m-badjson\"]\n", |_| {}).await;
    let mut body = hello("m-badjson");
    body["stream"] = json!(true);
    let resp = gw.chat(body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(llm_bridge_mock::GARBLED),
        "the malformed event is not forwarded: {text}"
    );
    let chunks = sse_chunks(&text);
    let (last, before) = chunks.split_last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreadable stream event"),
        "{text}"
    );
    // The events before the malformed one were relayed; nothing after it was.
    let content: String = before
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, llm_bridge_mock::REPLY_WORDS[..2].concat());
    assert!(before.iter().all(|c| c.get("error").is_none()), "{text}");
    gw.state.stats.flush().await;
    let rec = &gw.state.stats.recent(1, &Default::default()).await.unwrap()[0];
    assert_eq!(rec.error_class.as_deref(), Some("upstream"));
}

#[tokio::test]
async fn missing_usage_is_estimated_and_marked() {
    let gw =
        TestGateway::start_with("[providers.openai]\nmodels = [\"m-nousage\"]\n", |_| {}).await;
    assert_eq!(gw.chat(hello("m-nousage")).await.status(), 200);
    gw.state.stats.flush().await;
    let rec = &gw.state.stats.recent(1, &Default::default()).await.unwrap()[0];
    assert!(rec.usage_estimated);
    assert!(rec.prompt_tokens > 0 && rec.completion_tokens > 0);
}

#[tokio::test]
async fn keys_never_leak_into_errors() {
    // Connection errors, health and the console mention providers, never their keys.
    let gw = TestGateway::start_with("", |env| {
        env.insert("OPENAI_BASE_URL".into(), "http://127.0.0.1:1/v1".into());
    })
    .await;
    let (_, e) = error_of(gw.chat(hello("gpt-4o-mini")).await).await;
    assert!(!e.to_string().contains(OPENAI_KEY));
    let health = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_secret(&health);
    let page = gw
        .get("/system")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_secret(&page);
}

#[tokio::test]
async fn openapi_document_is_generated() {
    let gw = TestGateway::start().await;
    let doc: Value = gw
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/models/{id}",
        "/health",
        "/api/stats/overview",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ChatRequest",
        "ChatCompletion",
        "ChatChunk",
        "Message",
        "Usage",
        "ErrorResponse",
    ] {
        assert!(schemas.get(schema).is_some(), "{schema} missing");
    }
    assert!(schemas["ChatRequest"]["properties"].get("extra").is_none());
}

#[tokio::test]
async fn prometheus_metrics_describe_requests_and_deployments() {
    let gw = TestGateway::start().await;
    for model in ["gpt-4o-mini", "claude-sonnet-4-5", "no-such-model"] {
        gw.chat(hello(model)).await.bytes().await.unwrap();
    }
    let resp = gw.get("/metrics").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert_no_secret(&text);
    for needle in [
        "llm_bridge_requests_total{",
        "provider=\"anthropic\"",
        "model=\"claude-sonnet-4-5\"",
        "llm_bridge_tokens_total{",
        "kind=\"cached\"",
        "llm_bridge_request_duration_seconds_bucket{",
        "llm_bridge_gateway_overhead_seconds_bucket",
        "llm_bridge_circuit_state{",
        "llm_bridge_upstream_attempts_total{",
        "llm_bridge_cost_usd_total{",
        "llm_bridge_store_up{backend=\"embedded\"} 1",
        "llm_bridge_stats_dropped_records",
        "model=\"unresolved\"",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from /metrics:\n{text}"
        );
    }
    assert!(
        !text.contains("no-such-model"),
        "client-chosen names stay out of the labels"
    );
}

#[tokio::test]
async fn a_reply_of_200_whose_json_breaks_off_is_a_502() {
    let gw = TestGateway::start().await;
    let resp = gw.chat(hello("openai/gpt-4o-mini-halfjson")).await;
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "upstream_error", "{body}");
    let log = poll_until("the failure recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 1).then_some(log)
    })
    .await;
    assert_eq!(log[0]["status"], 502);
}
