//! Anthropic's Messages API inbound (`/v1/messages`) over real HTTP: passed through to Anthropic
//! (bytes and headers), translated to an OpenAI-dialect and a Gemini upstream, streams, tools,
//! `count_tokens`, and errors in Anthropic's shape.

use crate::support::*;
use llm_bridge_mock::{CACHED_TOKENS, PROMPT_TOKENS, REPLY_WORDS};
use serde_json::{Value, json};

const VERSION: &str = "2023-06-01";
const BETA: &str = "interleaved-thinking-2025-05-14";

fn ask(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}],
    })
}

async fn post(gw: &TestGateway, body: &[u8]) -> reqwest::Response {
    gw.post("/v1/messages?beta=true")
        .header("content-type", "application/json")
        .header("anthropic-version", VERSION)
        .header("anthropic-beta", BETA)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, e)| e.pointer("/delta/text").and_then(Value::as_str))
        .collect()
}

#[tokio::test]
async fn anthropic_gets_the_clients_bytes_and_headers_and_the_reply_comes_back_untouched() {
    let gw = TestGateway::start().await;
    // Unusual spacing and a field the gateway does not know: both must reach Anthropic as sent.
    let body = br#"{"model":"claude-sonnet-4-5",  "max_tokens":64,"context_management":{"edits":[]},
        "messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral"}}]}]}"#;
    let resp = post(&gw, body).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].clone();
    assert_eq!(resp.headers()["request-id"], request_id);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["content"][0]["text"], REPLY_WORDS.concat());
    assert_eq!(reply["usage"]["cache_read_input_tokens"], CACHED_TOKENS);

    let received = gw.mock.state.last();
    assert_eq!(received.path, "/v1/messages");
    assert_eq!(received.raw, body.to_vec(), "the client's bytes, untouched");
    assert_eq!(received.headers["anthropic-version"], VERSION);
    assert_eq!(received.headers["anthropic-beta"], BETA);
    assert_eq!(received.headers["x-api-key"], ANTHROPIC_KEY);

    let log = poll_until("the request recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log[0]["request_id"] == request_id.to_str().unwrap()).then_some(log)
    })
    .await;
    assert_eq!(log[0]["provider"], "anthropic");
    assert_eq!(log[0]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(log[0]["cached_tokens"], CACHED_TOKENS);
    assert_eq!(log[0]["completion_tokens"], REPLY_WORDS.len());
    assert!(log[0]["cost_usd"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn an_anthropic_stream_passes_through_byte_for_byte() {
    let gw = TestGateway::start().await;
    let mut body = ask("claude-sonnet-4-5");
    body["stream"] = json!(true);
    let body = serde_json::to_vec(&body).unwrap();
    let through = post(&gw, &body).await;
    assert_eq!(through.status(), 200);
    assert_eq!(through.headers()["content-type"], "text/event-stream");
    let through = through.text().await.unwrap();
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/messages", gw.mock.url()))
        .header("x-api-key", "k")
        .header("anthropic-version", VERSION)
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(through, direct);
    let events = sse_events(&through);
    assert_eq!(streamed_text(&events), REPLY_WORDS.concat());
}

#[tokio::test]
async fn openai_upstreams_answer_as_a_message() {
    let gw = TestGateway::start().await;
    let resp = post(&gw, &serde_json::to_vec(&ask("gpt-4o-mini")).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["role"], "assistant");
    assert!(reply["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(reply["content"][0]["type"], "text");
    assert_eq!(reply["content"][0]["text"], REPLY_WORDS.concat());
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(
        reply["usage"]["input_tokens"],
        PROMPT_TOKENS - CACHED_TOKENS
    );
    assert_eq!(reply["usage"]["cache_read_input_tokens"], CACHED_TOKENS);
    assert_eq!(reply["usage"]["output_tokens"], REPLY_WORDS.len());

    let received = gw.mock.state.last();
    assert_eq!(received.path, "/v1/chat/completions");
    assert_eq!(
        received.body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(received.body["max_completion_tokens"], 256);
    assert!(received.headers.get("anthropic-version").is_none());
}

#[tokio::test]
async fn openai_and_gemini_streams_become_messages_events() {
    let gw = TestGateway::start().await;
    for model in ["gpt-4o-mini", "gemini-2.5-flash"] {
        let mut body = ask(model);
        body["stream"] = json!(true);
        let resp = post(&gw, &serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(resp.status(), 200, "{model}");
        let events = sse_events(&resp.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{model}: {names:?}");
        assert_eq!(names[1], "content_block_start", "{model}");
        assert_eq!(
            &names[names.len() - 3..],
            ["content_block_stop", "message_delta", "message_stop"]
        );
        assert_eq!(streamed_text(&events), REPLY_WORDS.concat(), "{model}");
        let delta = &events[events.len() - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(
            delta["usage"]["output_tokens"],
            REPLY_WORDS.len(),
            "{model}"
        );
    }
}

#[tokio::test]
async fn tool_use_round_trips_through_an_openai_upstream() {
    let gw = TestGateway::start().await;
    let tools = json!([{"name": "get_weather", "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": "openai/mock-tools", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
        "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}]});
    let resp = post(&gw, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["stop_reason"], "tool_use");
    let calls: Vec<&Value> = reply["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["name"], "get_weather");
    assert_eq!(calls[0]["input"]["city"], "Paris");
    let sent = gw.mock.state.last().body;
    assert_eq!(sent["tools"][0]["function"]["parameters"]["type"], "object");
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["parallel_tool_calls"], true);

    // The results go back as tool messages, right after the assistant's calls.
    let id = calls[0]["id"].clone();
    let follow = json!({"model": "gpt-4o-mini", "max_tokens": 100, "tools": tools,
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "18 °C"}]},
            {"type": "text", "text": "And so?"}]},
    ]});
    let resp = post(&gw, &serde_json::to_vec(&follow).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let sent = gw.mock.state.last().body;
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], id);
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": id, "content": "18 °C"})
    );
    assert_eq!(messages[3]["role"], "user");
}

#[tokio::test]
async fn errors_come_in_anthropics_shape() {
    let gw = TestGateway::start().await;
    let check = |resp: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(resp.status(), status);
        assert!(resp.headers().contains_key("request-id"));
        let retry = resp.headers().get("retry-after").cloned();
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["error"]["type"], kind, "{e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
        retry
    };
    let no_messages = json!({"model": "gpt-4o-mini", "max_tokens": 5, "messages": []});
    let resp = post(&gw, &serde_json::to_vec(&no_messages).unwrap()).await;
    check(resp, 400, "invalid_request_error").await;
    let resp = post(&gw, b"{not json").await;
    check(resp, 400, "invalid_request_error").await;
    let resp = post(&gw, &serde_json::to_vec(&ask("no-such-model")).unwrap()).await;
    check(resp, 404, "not_found_error").await;
    let resp = post(&gw, &serde_json::to_vec(&ask("openai/m-fail429")).unwrap()).await;
    assert!(
        check(resp, 429, "rate_limit_error").await.is_some(),
        "retry-after kept"
    );
    // A server tool cannot go to an OpenAI-dialect upstream: refused, not dropped.
    let mut body = ask("gpt-4o-mini");
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let resp = post(&gw, &serde_json::to_vec(&body).unwrap()).await;
    check(resp, 400, "invalid_request_error").await;

    let locked = TestGateway::start_locked("").await;
    let resp = locked
        .post("/v1/messages")
        .header("x-api-key", "wrong")
        .header("anthropic-version", VERSION)
        .json(&ask("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    check(resp, 401, "authentication_error").await;
    let resp = locked
        .post("/v1/messages")
        .header("x-api-key", MASTER)
        .header("anthropic-version", VERSION)
        .json(&ask("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "x-api-key carries the master key");
}

#[tokio::test]
async fn count_tokens_asks_anthropic_and_estimates_elsewhere() {
    let gw = TestGateway::start().await;
    let count = |model: &'static str| {
        let gw = &gw;
        async move {
            let resp = gw
                .post("/v1/messages/count_tokens")
                .header("anthropic-version", VERSION)
                .json(
                    &json!({"model": model, "messages": [{"role": "user", "content": "Hi there"}]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let estimated = resp.headers().contains_key("x-llm-bridge-estimated");
            let v: Value = resp.json().await.unwrap();
            (v["input_tokens"].as_u64().unwrap(), estimated)
        }
    };
    assert_eq!(count("claude-sonnet-4-5").await, (PROMPT_TOKENS, false));
    assert_eq!(gw.mock.state.last().path, "/v1/messages/count_tokens");
    let (tokens, estimated) = count("gpt-4o-mini").await;
    assert!(estimated && tokens > 0);
    // Through the journey: both counts are in the request log, spending nothing.
    gw.state.stats.flush().await;
    let log: Value = gw.get_json("/api/requests?limit=10").await;
    let counts: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["api"] == "count_tokens")
        .collect();
    assert_eq!(counts.len(), 2, "{log}");
    assert!(
        counts
            .iter()
            .all(|r| r["status"] == 200 && r["cost_usd"] == 0.0)
    );
}

#[tokio::test]
async fn models_are_listed_in_anthropics_shape_for_anthropic_clients() {
    let gw = TestGateway::start().await;
    let list: Value = gw
        .get("/v1/models")
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = list["data"].as_array().unwrap();
    assert!(
        models
            .iter()
            .any(|m| m["id"] == "claude-sonnet-4-5" && m["type"] == "model")
    );
    assert!(models.iter().any(|m| m["id"] == "gpt-4o-mini"));
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], models[0]["id"]);
    let openai: Value = gw.get_json("/v1/models").await;
    assert_eq!(openai["object"], "list", "OpenAI's shape otherwise");
}

#[tokio::test]
async fn the_request_log_keeps_the_inbound_api_and_claude_codes_session() {
    let gw = TestGateway::start().await;
    let send = |session: &'static str| {
        gw.post("/v1/messages")
            .header("anthropic-version", VERSION)
            .header("x-claude-code-session-id", session)
            .json(&ask("gpt-4o-mini"))
            .send()
    };
    assert_eq!(send("sess-1").await.unwrap().status(), 200);
    assert_eq!(send("sess-2").await.unwrap().status(), 200);
    // Not a sane id: the request is served, the id not kept.
    assert_eq!(send("bad id with spaces").await.unwrap().status(), 200);
    let log = poll_until("three requests recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 3).then_some(log)
    })
    .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|r| r["api"] == "messages")
    );
    assert!(log[0].get("session_id").is_none(), "{}", log[0]);
    let one = gw.get_json("/api/requests?session=sess-1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["session_id"], "sess-1");
    assert_eq!(gw.chat(hello("gpt-4o-mini")).await.status(), 200);
    let chat = poll_until("the chat request recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 4).then_some(log)
    })
    .await;
    assert_eq!(chat[0]["api"], "chat");
}

#[tokio::test]
async fn cache_writes_are_recorded_and_priced_at_the_cache_write_price() {
    let gw = TestGateway::start_with(
        "[pricing.claude-cachewrite]\nprovider = \"anthropic\"\ninput = 3.0\ncached_input = 0.3\ncache_write = 3.75\noutput = 15.0\n",
        |_| {},
    )
    .await;
    for stream in [false, true] {
        let mut body = ask("claude-cachewrite");
        body["stream"] = json!(stream);
        let resp = post(&gw, &serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(resp.status(), 200);
        let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        resp.text().await.unwrap();
        let log = poll_until("the request recorded", || async {
            let log = gw.get_json("/api/requests").await;
            (log[0]["request_id"] == request_id.as_str()).then_some(log)
        })
        .await;
        let r = &log[0];
        assert_eq!(r["prompt_tokens"], PROMPT_TOKENS, "stream: {stream}");
        assert_eq!(r["cached_tokens"], CACHED_TOKENS);
        assert_eq!(r["cache_write_tokens"], llm_bridge_mock::CACHE_WRITE_TOKENS);
        let (read, written) = (
            CACHED_TOKENS as f64,
            llm_bridge_mock::CACHE_WRITE_TOKENS as f64,
        );
        let plain = PROMPT_TOKENS as f64 - read - written;
        let expected =
            (plain * 3.0 + read * 0.3 + written * 3.75 + REPLY_WORDS.len() as f64 * 15.0) / 1e6;
        let cost = r["cost_usd"].as_f64().unwrap();
        assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
    }
}

#[tokio::test]
async fn count_tokens_is_admitted_as_any_request() {
    let gw = TestGateway::start_locked("[[teams]]\nname = \"gone\"\n").await;
    let count = |key: String, model: &'static str| {
        let gw = &gw;
        async move {
            let resp = gw
                .post("/v1/messages/count_tokens")
                .bearer_auth(key)
                .header("anthropic-version", VERSION)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap();
            (
                status,
                v["error"]["type"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let counted = |gw: &TestGateway| {
        gw.mock
            .state
            .received()
            .iter()
            .filter(|r| r.path.ends_with("/count_tokens"))
            .count()
    };
    let (_, limited) = create_key(
        &gw.http,
        &gw.url,
        json!({"name": "limited", "models": ["claude-sonnet-4-5"]}),
    )
    .await;
    // A model the key may not use: refused before Anthropic is asked.
    let (status, kind) = count(limited.clone(), "claude-opus-4-5").await;
    assert_eq!(status, 403, "{kind}");
    assert_eq!(counted(&gw), 0);
    assert_eq!(count(limited, "claude-sonnet-4-5").await.0, 200);
    assert_eq!(counted(&gw), 1);
    // The key's rate limit counts these too.
    let (_, slow) = create_key(&gw.http, &gw.url, json!({"name": "slow", "rpm": 2})).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(count(slow.clone(), "claude-sonnet-4-5").await.0);
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(counted(&gw), 3);
    // A key whose team was removed since.
    let (_, orphan) = create_key(&gw.http, &gw.url, json!({"name": "o", "team": "gone"})).await;
    gw.state.governance.set_teams(&[]);
    let (status, _) = count(orphan, "claude-sonnet-4-5").await;
    assert_eq!(status, 403);
    assert_eq!(counted(&gw), 3);
}

#[tokio::test]
async fn a_broken_anthropic_stream_is_a_failure_and_never_cached() {
    let mut toml = String::from("[cache]\nenabled = true\n");
    for model in ["claude-errormidway", "claude-truncated"] {
        toml +=
            &format!("[pricing.{model}]\nprovider = \"anthropic\"\ninput = 3.0\noutput = 15.0\n");
    }
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    for model in ["claude-errormidway", "claude-truncated"] {
        let mut body = ask(model);
        body["stream"] = json!(true);
        let body = serde_json::to_vec(&body).unwrap();
        for round in 0..2 {
            let resp = post(&gw, &body).await;
            assert_eq!(resp.status(), 200);
            assert_ne!(
                resp.headers()
                    .get("x-llm-bridge-cache")
                    .map(|v| v.to_str().unwrap()),
                Some("hit"),
                "{model}: round {round}"
            );
            let events = sse_events(&resp.text().await.unwrap());
            let errors: Vec<_> = events.iter().filter(|(name, _)| name == "error").collect();
            assert_eq!(errors.len(), 1, "{model}: {events:?}");
            assert!(!events.iter().any(|(name, _)| name == "message_stop"));
            if model.ends_with("errormidway") {
                assert_eq!(
                    errors[0].1["error"]["type"], "overloaded_error",
                    "as Anthropic sent it"
                );
            }
        }
    }
    let log = poll_until("four requests recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 4).then_some(log)
    })
    .await;
    for record in log.as_array().unwrap() {
        assert_eq!(record["error_class"], "upstream", "a failure: {record}");
    }
    let calls = gw
        .mock
        .state
        .received()
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .count();
    assert_eq!(calls, 4, "each request reached Anthropic");
}

#[tokio::test]
async fn the_messages_cache_keeps_apart_what_anthropic_headers_change() {
    let gw = TestGateway::start_with("[cache]\nenabled = true\n", |_| {}).await;
    let body = serde_json::to_vec(&ask("claude-sonnet-4-5")).unwrap();
    let send = |beta: &'static str| {
        gw.post("/v1/messages")
            .header("content-type", "application/json")
            .header("anthropic-version", VERSION)
            .header("anthropic-beta", beta)
            .body(body.clone())
            .send()
    };
    let outcome = |r: &reqwest::Response| {
        r.headers()
            .get("x-llm-bridge-cache")
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(outcome(&send(BETA).await.unwrap()).as_deref(), Some("miss"));
    assert_eq!(outcome(&send(BETA).await.unwrap()).as_deref(), Some("hit"));
    let other = send("context-1m-2025-08-07").await.unwrap();
    assert_eq!(
        outcome(&other).as_deref(),
        Some("miss"),
        "another beta, another reply"
    );
}

/// Through Messages to Gemini 3: a signed call's signature rides to the client in a thinking block
/// before its tool_use (whole and streamed), and the client sending the blocks back as it got them
/// is what lets Gemini take the next turn.
#[tokio::test]
async fn gemini_thought_signatures_ride_in_thinking_blocks() {
    let gw = TestGateway::start_with(
        "[providers.gemini]\nmodels = [\"gemini-3-pro-tools\"]\n",
        |_| {},
    )
    .await;
    let mut first = ask("gemini-3-pro-tools");
    first["tools"] = json!([{"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let whole: Value = post(&gw, &serde_json::to_vec(&first).unwrap())
        .await
        .json()
        .await
        .unwrap();
    let content = whole["content"].as_array().unwrap().clone();
    let kinds: Vec<&str> = content
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "tool_use", "tool_use"], "{whole}");
    let signature = content[0]["signature"].as_str().unwrap().to_string();

    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let events = sse_events(
        &post(&gw, &serde_json::to_vec(&streamed).unwrap())
            .await
            .text()
            .await
            .unwrap(),
    );
    let blocks: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| e.pointer("/content_block/type").and_then(Value::as_str))
        .collect();
    assert_eq!(blocks, ["thinking", "tool_use", "tool_use"], "{events:?}");
    let signatures: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| e.pointer("/delta/signature").and_then(Value::as_str))
        .collect();
    assert_eq!(signatures.len(), 1, "{events:?}");
    assert!(signatures[0].starts_with("llmb1.") && signature.starts_with("llmb1."));

    let next_turn = |assistant: Vec<Value>| {
        let mut body = first.clone();
        let results: Vec<Value> = assistant
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| json!({"type": "tool_result", "tool_use_id": b["id"], "content": "sunny"}))
            .collect();
        let messages = body["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": assistant}));
        messages.push(json!({"role": "user", "content": results}));
        serde_json::to_vec(&body).unwrap()
    };
    let resp = post(&gw, &next_turn(content.clone())).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "sig/get_weather/{\"city\":\"Paris\"}"
    );
    // A client that drops the thinking block: the call goes with the value Google documents for a
    // lost signature rather than failing.
    let resp = post(&gw, &next_turn(content[1..].to_vec())).await;
    assert_eq!(resp.status(), 200);
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
}
