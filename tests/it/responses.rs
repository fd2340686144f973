//! OpenAI's Responses API inbound (`/v1/responses`) over real HTTP: passed through to OpenAI
//! (bytes), translated to an OpenAI-dialect (DeepSeek) and a Gemini upstream, streams with their
//! exact event sequence, a function-call round trip through `previous_response_id`, the kept
//! responses (`GET`/`DELETE`, per key), and errors.

use crate::support::*;
use llm_bridge_mock::{CACHED_TOKENS, PROMPT_TOKENS, REPLY_WORDS};
use serde_json::{Value, json};

async fn post(gw: &TestGateway, body: &Value) -> reqwest::Response {
    gw.post("/v1/responses").json(body).send().await.unwrap()
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().unwrap().iter())
        .filter_map(|part| part["text"].as_str())
        .collect()
}

#[tokio::test]
async fn openai_gets_the_clients_bytes_and_the_stream_comes_back_untouched() {
    let gw = TestGateway::start().await;
    let body =
        br#"{"model":"gpt-4o-mini",  "input":"Hi","prompt_cache_key":"k1","x_unknown":{"a":1}}"#;
    let resp = gw
        .post("/v1/responses")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(output_text(&reply), REPLY_WORDS.concat());
    let received = gw.mock.state.last();
    assert_eq!(received.path, "/v1/responses");
    assert_eq!(received.raw, body.to_vec(), "the client's bytes, untouched");

    let log = poll_until("the request recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log[0]["request_id"] == request_id.as_str()).then_some(log)
    })
    .await;
    assert_eq!(log[0]["api"], "responses");
    assert_eq!(log[0]["provider"], "openai");
    assert_eq!(log[0]["prompt_tokens"], PROMPT_TOKENS);
    assert_eq!(log[0]["cached_tokens"], CACHED_TOKENS);
    assert_eq!(log[0]["completion_tokens"], REPLY_WORDS.len());

    let stream = json!({"model": "gpt-4o-mini", "input": "Hi", "stream": true});
    let through = post(&gw, &stream).await;
    assert_eq!(through.headers()["content-type"], "text/event-stream");
    let through = through.text().await.unwrap();
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/responses", gw.mock.url()))
        .json(&stream)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(through, direct, "the stream, byte for byte");
}

#[tokio::test]
async fn deepseek_and_gemini_replies_become_response_objects() {
    let gw = TestGateway::start().await;
    for model in ["deepseek/deepseek-chat", "gemini/gemini-2.5-flash"] {
        let body = json!({"model": model, "instructions": "Be brief.", "input": "Hi",
            "max_output_tokens": 64, "metadata": {"run": "1"}});
        let resp = post(&gw, &body).await;
        assert_eq!(resp.status(), 200, "{model}");
        let r: Value = resp.json().await.unwrap();
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert!(r["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(r["instructions"], "Be brief.");
        assert_eq!(r["metadata"]["run"], "1");
        assert_eq!(output_text(&r), REPLY_WORDS.concat(), "{model}");
        assert_eq!(r["usage"]["output_tokens"], REPLY_WORDS.len(), "{model}");
        assert_eq!(r["usage"]["input_tokens"], PROMPT_TOKENS, "{model}");
        let sent = gw.mock.state.last();
        if model.starts_with("deepseek") {
            assert_eq!(sent.path, "/chat/completions");
            assert_eq!(
                sent.body["messages"][0],
                json!({"role": "system", "content": "Be brief."})
            );
            assert_eq!(sent.body["messages"][1]["role"], "user");
            assert_eq!(
                sent.body["max_tokens"], 64,
                "DeepSeek's quirk still applies"
            );
        } else {
            assert!(sent.path.ends_with(":generateContent"), "{}", sent.path);
        }
        // Kept by default: readable, then deleted.
        let id = r["id"].as_str().unwrap();
        let kept = gw.get_json(&format!("/v1/responses/{id}")).await;
        assert_eq!(kept, r);
        let deleted: Value = gw
            .http
            .delete(format!("{}/v1/responses/{id}", gw.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(deleted["deleted"], true);
        let gone = gw.get(&format!("/v1/responses/{id}")).send().await.unwrap();
        assert_eq!(gone.status(), 404);
    }
}

#[tokio::test]
async fn translated_streams_have_the_exact_event_sequence() {
    let gw = TestGateway::start().await;
    for model in [
        "deepseek/deepseek-chat",
        "gemini/gemini-2.5-flash",
        "deepseek/mock-reasoning",
    ] {
        let resp = post(&gw, &json!({"model": model, "input": "Hi", "stream": true})).await;
        assert_eq!(resp.status(), 200, "{model}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let events = sse_events(&resp.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..2],
            ["response.created", "response.in_progress"],
            "{model}"
        );
        assert_eq!(names.last(), Some(&"response.completed"), "{model}");
        for (i, (_, e)) in events.iter().enumerate() {
            assert_eq!(e["sequence_number"], i, "{model}");
        }
        let text: String = events
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, e)| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, REPLY_WORDS.concat(), "{model}");
        let done = &events.last().unwrap().1["response"];
        assert_eq!(output_text(done), REPLY_WORDS.concat());
        assert_eq!(
            done["usage"]["input_tokens_details"]["cached_tokens"],
            CACHED_TOKENS
        );
        if model.contains("reasoning") {
            assert!(names.contains(&"response.reasoning_summary_text.delta"));
            assert_eq!(done["output"][0]["type"], "reasoning");
            assert!(
                done["usage"]["output_tokens_details"]["reasoning_tokens"]
                    .as_u64()
                    .unwrap()
                    > 0
            );
        }
        let added = events
            .iter()
            .filter(|(n, _)| n == "response.output_item.added")
            .count();
        let finished = events
            .iter()
            .filter(|(n, _)| n == "response.output_item.done")
            .count();
        assert_eq!(added, finished, "{model}");
    }
}

#[tokio::test]
async fn a_function_call_round_trip_continues_with_previous_response_id() {
    let gw = TestGateway::start().await;
    let tools = json!([
        {"type": "function", "name": "get_weather", "description": "Weather of a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
        {"type": "web_search"}
    ]);
    let first = post(
        &gw,
        &json!({"model": "deepseek/mock-tools", "input": "Weather?",
        "tools": tools, "stream": true}),
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-llm-bridge-dropped-tools"], "web_search");
    let events = sse_events(&first.text().await.unwrap());
    let done = &events.last().unwrap().1["response"];
    let calls: Vec<&Value> = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["name"], "get_weather");
    assert_eq!(calls[0]["arguments"], "{\"city\":\"Paris\"}");
    let sent = gw.mock.state.last();
    assert_eq!(
        sent.body["tools"].as_array().unwrap().len(),
        1,
        "web_search dropped"
    );

    // The next turn names only the previous response and brings the results; it goes to another
    // provider, which gets the whole conversation.
    let outputs: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"type": "function_call_output",
        "call_id": c["call_id"], "output": format!("sunny in {}", c["arguments"])})
        })
        .collect();
    let second = post(
        &gw,
        &json!({"model": "gemini/gemini-2.5-flash",
        "previous_response_id": done["id"], "input": outputs, "tools": tools}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let r: Value = second.json().await.unwrap();
    assert_eq!(r["previous_response_id"], done["id"]);
    assert_eq!(output_text(&r), REPLY_WORDS.concat());
    let sent = gw.mock.state.last();
    let contents = sent.body["contents"].as_array().unwrap();
    let roles: Vec<&str> = contents
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"], "{contents:?}");
    assert!(contents[1]["parts"][0].get("functionCall").is_some());
    assert!(contents[2]["parts"][0].get("functionResponse").is_some());

    // An id the gateway never gave out: OpenAI's 404, and nothing sent.
    let before = gw.mock.state.received().len();
    let missing = post(
        &gw,
        &json!({"model": "deepseek/deepseek-chat",
        "previous_response_id": "resp_0123", "input": "x"}),
    )
    .await;
    assert_eq!(missing.status(), 404);
    let e: Value = missing.json().await.unwrap();
    assert_eq!(e["error"]["param"], "previous_response_id");
    assert_eq!(gw.mock.state.received().len(), before);
}

#[tokio::test]
async fn kept_responses_belong_to_the_key_that_made_them() {
    let gw = TestGateway::start_locked("").await;
    let make_key = |name: &str| {
        let gw = &gw;
        let name = name.to_string();
        async move {
            let created: Value = gw
                .post("/api/keys")
                .bearer_auth(MASTER)
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            created["key"].as_str().unwrap().to_string()
        }
    };
    let (alice, bob) = (make_key("alice").await, make_key("bob").await);
    let r: Value = gw
        .post("/v1/responses")
        .bearer_auth(&alice)
        .json(&json!({"model": "deepseek/deepseek-chat", "input": "Hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap();
    let read = |key: String| {
        let gw = &gw;
        let path = format!("/v1/responses/{id}");
        async move {
            gw.get(&path)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(read(alice.clone()).await, 200);
    assert_eq!(read(bob.clone()).await, 404, "another key does not see it");
    assert_eq!(
        read(MASTER.to_string()).await,
        200,
        "the master key sees all"
    );
    let follow = gw
        .post("/v1/responses")
        .bearer_auth(&bob)
        .json(&json!({"model": "deepseek/deepseek-chat", "previous_response_id": id, "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(follow.status(), 404, "nor continues it");
    let not_stored: Value = gw
        .post("/v1/responses")
        .bearer_auth(&alice)
        .json(&json!({"model": "deepseek/deepseek-chat", "input": "Hi", "store": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        read_status(&gw, &alice, not_stored["id"].as_str().unwrap()).await,
        404
    );
}

async fn read_status(gw: &TestGateway, key: &str, id: &str) -> u16 {
    gw.get(&format!("/v1/responses/{id}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn bad_requests_and_upstream_failures_have_openais_shape() {
    let gw = TestGateway::start().await;
    for (body, param) in [
        (json!({"model": "deepseek/deepseek-chat"}), "input"),
        (json!({"input": "x"}), "model"),
        (
            json!({"model": "deepseek/deepseek-chat", "input": [{"type": "item_reference", "id": "x"}]}),
            "input[0]",
        ),
        (
            json!({"model": "deepseek/deepseek-chat", "input": "x", "tools": [{"type": "web_search"}],
            "tool_choice": {"type": "web_search"}}),
            "tool_choice",
        ),
    ] {
        let resp = post(&gw, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["param"], param, "{body}");
    }
    let resp = post(&gw, &json!({"model": "deepseek/m-fail429", "input": "x"})).await;
    assert_eq!(resp.status(), 429);
    let resp = post(&gw, &json!({"model": "openai/m-fail400", "input": "x"})).await;
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("temperature")
    );
    let unknown = gw.get("/v1/responses/resp_nothing").send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let e: Value = unknown.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");

    // A stream that breaks off midway ends with `response.failed`.
    let resp = post(
        &gw,
        &json!({"model": "deepseek/m-cut", "input": "x", "stream": true}),
    )
    .await;
    let events = sse_events(&resp.text().await.unwrap());
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "response.failed");
    assert_eq!(last["response"]["status"], "failed");
}

#[tokio::test]
async fn with_redis_a_conversation_continues_on_another_replica() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let with_redis = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), url.clone());
    };
    let a = TestGateway::start_with("", with_redis).await;
    let b = TestGateway::start_with("", with_redis).await;
    let first: Value = post(
        &a,
        &json!({"model": "deepseek/deepseek-chat", "input": "Hi"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = first["id"].as_str().unwrap().to_string();
    // Replica A continues at once (its write to Redis may still be on its way).
    let on_a = post(
        &a,
        &json!({"model": "deepseek/deepseek-chat", "previous_response_id": id, "input": "Again"}),
    )
    .await;
    assert_eq!(on_a.status(), 200);
    // Replica B reads it from Redis and continues it with the whole conversation.
    let path = format!("/v1/responses/{id}");
    let kept = poll_until("replica B reads the response", || async {
        let resp = b.get(&path).send().await.unwrap();
        (resp.status() == 200).then_some(resp)
    })
    .await;
    assert_eq!(kept.json::<Value>().await.unwrap(), first);
    let on_b = post(
        &b,
        &json!({"model": "gemini/gemini-2.5-flash", "previous_response_id": id, "input": "Again"}),
    )
    .await;
    assert_eq!(on_b.status(), 200);
    let sent = b.mock.state.last();
    assert_eq!(
        sent.body["contents"].as_array().unwrap().len(),
        3,
        "user, model, user"
    );
    // Deleted on B: gone on A too.
    let deleted = b
        .http
        .delete(format!("{}{path}", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(a.get(&path).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_response_from_openai_is_kept_too_and_continues_elsewhere() {
    let gw = TestGateway::start().await;
    for stream in [false, true] {
        let first = post(
            &gw,
            &json!({"model": "gpt-4o-mini", "input": "Hi", "stream": stream}),
        )
        .await;
        assert_eq!(first.status(), 200);
        first.text().await.unwrap();
        // The mock names every response `resp_mock`.
        let kept = gw.get_json("/v1/responses/resp_mock").await;
        assert_eq!(output_text(&kept), REPLY_WORDS.concat(), "stream: {stream}");
        let next = post(
            &gw,
            &json!({"model": "deepseek/deepseek-chat",
            "previous_response_id": "resp_mock", "input": "Again"}),
        )
        .await;
        assert_eq!(next.status(), 200);
        let sent = gw.mock.state.last();
        let messages = sent.body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[1]["content"], REPLY_WORDS.concat());
        let deleted = gw
            .http
            .delete(format!("{}/v1/responses/resp_mock", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 200);
    }
    // Not kept when asked not to: the reply streams through.
    let resp = post(
        &gw,
        &json!({"model": "gpt-4o-mini", "input": "Hi", "store": false}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap();
    assert_eq!(
        gw.get("/v1/responses/resp_mock")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// Through Responses to Gemini 3, as Codex uses it (`store: false`, the whole conversation sent
/// each turn): a signed call's signature rides in a reasoning item's `encrypted_content` before
/// its function call, whole and streamed, and comes back with the items; with
/// `previous_response_id` the kept conversation carries it.
#[tokio::test]
async fn gemini_thought_signatures_ride_in_reasoning_items() {
    let gw = TestGateway::start_with(
        "[providers.gemini]\nmodels = [\"gemini-3-pro-tools\"]\n",
        |_| {},
    )
    .await;
    let user = json!({"type": "message", "role": "user", "content": "Weather in Paris and Tokyo?"});
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first = json!({"model": "gemini-3-pro-tools", "input": [user], "tools": tools,
        "store": false, "include": ["reasoning.encrypted_content"]});
    let reply: Value = post(&gw, &first).await.json().await.unwrap();
    let output = reply["output"].as_array().unwrap().clone();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "function_call", "function_call"],
        "{reply}"
    );
    assert!(
        output[0]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("llmb1.")
    );

    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let text = post(&gw, &streamed).await.text().await.unwrap();
    let added: Vec<String> = sse_events(&text)
        .iter()
        .filter(|(name, _)| name == "response.output_item.added")
        .map(|(_, e)| e["item"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        added,
        ["reasoning", "function_call", "function_call"],
        "{text}"
    );

    let next_turn = |items: &[Value]| {
        let mut input = vec![user.clone()];
        input.extend_from_slice(items);
        for item in items.iter().filter(|i| i["type"] == "function_call") {
            input.push(json!({"type": "function_call_output", "call_id": item["call_id"], "output": "sunny"}));
        }
        json!({"model": "gemini-3-pro-tools", "input": input, "tools": tools, "store": false})
    };
    let resp = post(&gw, &next_turn(&output)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "sig/get_weather/{\"city\":\"Paris\"}"
    );
    // Without the reasoning item the call goes with the value Google documents for a lost signature.
    let resp = post(&gw, &next_turn(&output[1..])).await;
    assert_eq!(resp.status(), 200);
    let sent = gw.mock.state.last().body;
    assert_eq!(
        sent["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );

    // Kept by the gateway: the next turn needs only the tool results.
    let mut kept = first.clone();
    kept["store"] = json!(true);
    let reply: Value = post(&gw, &kept).await.json().await.unwrap();
    let results: Vec<Value> = reply["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .map(
            |i| json!({"type": "function_call_output", "call_id": i["call_id"], "output": "sunny"}),
        )
        .collect();
    let resp = post(
        &gw,
        &json!({"model": "gemini-3-pro-tools", "previous_response_id": reply["id"],
                "input": results, "tools": tools}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Through Responses to Claude with thinking on, as Codex at high effort uses it: the signed
/// thinking rides in the reasoning item's `encrypted_content` (beside its summary), whole and
/// streamed, and goes back to Anthropic first in the assistant turn; without it the turn goes
/// with thinking off instead of failing.
#[tokio::test]
async fn anthropic_thinking_rides_in_reasoning_items() {
    use llm_bridge_mock::REASONING_TEXT;
    use llm_bridge_mock::anthropic::{REDACTED_DATA, SIGNATURE};
    let gw = TestGateway::start_with(
        "[providers.anthropic]\nmodels = [\"a-tools-redacted\"]\n",
        |_| {},
    )
    .await;
    let user = json!({"type": "message", "role": "user", "content": "Weather in Paris and Tokyo?"});
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first = json!({"model": "a-tools-redacted", "input": [user], "tools": tools,
        "reasoning": {"effort": "high"}, "store": false,
        "include": ["reasoning.encrypted_content"]});
    let reply: Value = post(&gw, &first).await.json().await.unwrap();
    let output = reply["output"].as_array().unwrap().clone();
    let kinds: Vec<&str> = output.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["reasoning", "function_call", "function_call"],
        "{reply}"
    );
    assert_eq!(output[0]["summary"][0]["text"], REASONING_TEXT);
    let carried = output[0]["encrypted_content"].as_str().unwrap().to_string();
    assert!(carried.starts_with("llmb1."), "{carried}");

    let mut streamed = first.clone();
    streamed["stream"] = json!(true);
    let text = post(&gw, &streamed).await.text().await.unwrap();
    let done: Vec<Value> = sse_events(&text)
        .into_iter()
        .filter(|(name, _)| name == "response.output_item.done")
        .map(|(_, e)| e["item"].clone())
        .collect();
    assert_eq!(done[0]["type"], "reasoning", "{text}");
    assert_eq!(done[0]["encrypted_content"], carried.as_str(), "{text}");

    let next_turn = |items: &[Value]| {
        let mut input = vec![user.clone()];
        input.extend_from_slice(items);
        for item in items.iter().filter(|i| i["type"] == "function_call") {
            input.push(json!({"type": "function_call_output", "call_id": item["call_id"], "output": "sunny"}));
        }
        json!({"model": "a-tools-redacted", "input": input, "tools": tools,
            "reasoning": {"effort": "high"}, "store": false})
    };
    let resp = post(&gw, &next_turn(&done)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(sent["thinking"]["type"], "enabled");
    let turn = &sent["messages"][1]["content"];
    assert_eq!(turn[0]["thinking"], REASONING_TEXT, "{sent}");
    assert_eq!(turn[0]["signature"], SIGNATURE);
    assert_eq!(turn[1]["data"], REDACTED_DATA);
    assert_eq!(turn[2]["type"], "tool_use");

    // Without the reasoning item, thinking is off for the turn (Anthropic would refuse it).
    let resp = post(&gw, &next_turn(&output[1..])).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert!(gw.mock.state.last().body.get("thinking").is_none());

    // Kept by the gateway: the next turn needs only the tool results, thinking stays on.
    let mut kept = first.clone();
    kept["store"] = json!(true);
    let reply: Value = post(&gw, &kept).await.json().await.unwrap();
    let results: Vec<Value> = reply["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .map(
            |i| json!({"type": "function_call_output", "call_id": i["call_id"], "output": "sunny"}),
        )
        .collect();
    let resp = post(
        &gw,
        &json!({"model": "a-tools-redacted", "previous_response_id": reply["id"],
                "input": results, "tools": tools, "reasoning": {"effort": "high"}}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last().body;
    assert_eq!(sent["thinking"]["type"], "enabled");
    assert_eq!(sent["messages"][1]["content"][0]["signature"], SIGNATURE);
}

/// Through Responses to an OpenAI reasoning model, as Codex uses it (`store: false`): the
/// reasoning item with its `encrypted_content` passes through both ways untouched, a turn without
/// it is refused by OpenAI (and that refusal reaches the client in OpenAI's shape), and a
/// reasoning item the gateway made to carry another provider's state is not sent to OpenAI.
#[tokio::test]
async fn openai_reasoning_items_pass_through_and_carriers_stay_behind() {
    use llm_bridge_mock::responses::ENCRYPTED;
    let gw = TestGateway::start_with(
        "[providers.openai]\nmodels = [\"o4-reasoning-tools\"]\n",
        |_| {},
    )
    .await;
    let user = json!({"type": "message", "role": "user", "content": "Weather in Paris?"});
    let first = json!({"model": "o4-reasoning-tools", "input": [user], "store": false,
        "reasoning": {"effort": "high"}, "include": ["reasoning.encrypted_content"]});
    let reply: Value = post(&gw, &first).await.json().await.unwrap();
    let output = reply["output"].as_array().unwrap().clone();
    assert_eq!(output[0]["encrypted_content"], ENCRYPTED, "{reply}");
    assert_eq!(output[1]["type"], "function_call");
    let next_turn = |items: &[Value]| {
        let mut input = vec![user.clone()];
        input.extend_from_slice(items);
        input.push(json!({"type": "function_call_output", "call_id": "call_mock_paris", "output": "sunny"}));
        json!({"model": "o4-reasoning-tools", "input": input, "store": false})
    };
    let resp = post(&gw, &next_turn(&output)).await;
    assert_eq!(resp.status(), 200);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(
        done["output"][0]["content"][0]["text"],
        "The tool said: sunny"
    );

    let resp = post(&gw, &next_turn(&output[1..])).await;
    assert_eq!(resp.status(), 400);
    let refused: Value = resp.json().await.unwrap();
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without its required 'reasoning' item"),
        "{refused}"
    );

    // A conversation that moved here from Gemini: its carrier reasoning item stays behind.
    let carrier = llm_bridge::providers::carried::signature(
        "call_gemini",
        &json!({"google": {"thought_signature": "c2ln"}}),
    );
    let mut moved = vec![json!({"type": "reasoning", "summary": [], "encrypted_content": carrier})];
    moved.extend_from_slice(&output);
    let resp = post(&gw, &next_turn(&moved)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = gw.mock.state.last();
    assert!(!String::from_utf8_lossy(&sent.raw).contains("llmb1."));
    assert_eq!(sent.body["input"][1]["encrypted_content"], ENCRYPTED);
}
