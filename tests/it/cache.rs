//! The response cache over real HTTP: hits, misses and bypasses with their headers, a stream and a
//! whole reply serving each other, the client's cache directives, TTL, size limits, per-key
//! isolation, errors and cut streams never cached, identical requests coalesced into one upstream
//! call, and entries shared by two gateways on one Redis (bypassed when Redis is down).

use std::time::Duration;

use crate::support::*;
use llm_bridge_mock::{PROMPT_TOKENS, REPLY_WORDS};
use serde_json::{Value, json};

const ON: &str = "[cache]\nenabled = true\n";

/// How many chat requests the mock received.
fn upstream_calls(gw: &TestGateway) -> usize {
    gw.mock
        .state
        .received()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .count()
}

fn cache_header(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-llm-bridge-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// The text a chat stream carried, and its usage chunk if any.
fn stream_text(body: &str) -> (String, Option<Value>) {
    let chunks = sse_chunks(body);
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let usage = chunks
        .iter()
        .find(|c| c["usage"].is_object())
        .map(|c| c["usage"].clone());
    (text, usage)
}

async fn raw_chat(gw: &TestGateway, body: &str) -> reqwest::Response {
    gw.post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_whole_reply_is_cached_and_serves_the_same_request_whole_and_streamed() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let first = raw_chat(
        &gw,
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Cache me"}],"temperature":0}"#,
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_eq!(cache_header(&first), "miss");
    let first: Value = first.json().await.unwrap();

    // Key order, whitespace and `user` do not matter.
    let again = raw_chat(
        &gw,
        r#"{ "temperature": 0, "user": "someone",
             "messages": [ { "content": "Cache me", "role": "user" } ], "model": "gpt-4o-mini" }"#,
    )
    .await;
    assert_eq!(again.status(), 200);
    assert_eq!(cache_header(&again), "hit");
    assert!(again.headers().contains_key("age"));
    assert_eq!(again.headers()["x-llm-bridge-provider"], "openai");
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        again, first,
        "the client sees what it saw the first time, usage included"
    );
    assert_eq!(again["usage"]["prompt_tokens"], PROMPT_TOKENS);

    // The same request streamed: served from the whole reply as a well-formed stream.
    let streamed = gw
        .chat(
            json!({"model": "gpt-4o-mini", "temperature": 0, "stream": true,
                     "stream_options": {"include_usage": true},
                     "messages": [{"role": "user", "content": "Cache me"}]}),
        )
        .await;
    assert_eq!(cache_header(&streamed), "hit");
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let (text, usage) = stream_text(&streamed.text().await.unwrap());
    assert_eq!(
        text,
        first["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(usage.expect("the usage chunk asked for"), first["usage"]);
    assert_eq!(
        upstream_calls(&gw),
        1,
        "one upstream call for three requests"
    );

    // A different prompt is a miss.
    let other = gw.chat(hello("gpt-4o-mini")).await;
    assert_eq!(cache_header(&other), "miss");
    assert_eq!(upstream_calls(&gw), 2);

    // Recorded: the hits cost nothing and say what they saved.
    let log = poll_until("the hits recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() >= 4).then_some(log)
    })
    .await;
    let hits: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["cache"] == "hit")
        .collect();
    assert_eq!(hits.len(), 2, "{log}");
    for hit in &hits {
        assert_eq!(hit["cost_usd"], 0.0);
        assert!(hit["saved_usd"].as_f64().unwrap() > 0.0, "{hit}");
        assert_eq!(hit["prompt_tokens"], PROMPT_TOKENS);
        assert_eq!(hit["attempts"], 0);
    }
    let overview = poll_until("the overview counts the cache", || async {
        let o = gw.get_json("/api/stats/overview?window=1h").await;
        (o["cache_hits"] == 2).then_some(o)
    })
    .await;
    assert_eq!(overview["cache_misses"], 2);
    assert!(overview["saved_usd"].as_f64().unwrap() > 0.0);
    let metrics = gw
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("llm_bridge_cache_requests_total{model=\"gpt-4o-mini\",result=\"hit\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_streamed_reply_is_cached_once_complete_and_serves_a_whole_request() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Stream me"}]});
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let first = gw.chat(streamed.clone()).await;
    assert_eq!(cache_header(&first), "miss");
    let (text, usage) = stream_text(&first.text().await.unwrap());
    assert_eq!(text, REPLY_WORDS.concat());
    assert!(usage.is_none(), "usage was not asked for");

    let whole = gw.chat(body).await;
    assert_eq!(cache_header(&whole), "hit");
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        REPLY_WORDS.concat()
    );
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        whole["usage"]["prompt_tokens"], PROMPT_TOKENS,
        "the usage the gateway counted"
    );
    assert_eq!(whole["usage"]["completion_tokens"], REPLY_WORDS.len());

    let replay = gw.chat(streamed).await;
    assert_eq!(cache_header(&replay), "hit");
    let (text, usage) = stream_text(&replay.text().await.unwrap());
    assert_eq!(text, REPLY_WORDS.concat());
    assert!(usage.is_none());
    assert_eq!(upstream_calls(&gw), 1);
}

#[tokio::test]
async fn the_clients_directives_no_store_no_cache_and_ttl() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let body = hello("gpt-4o-mini");
    let send = |cache_control: Option<&'static str>, ttl: Option<&'static str>| {
        let mut req = gw.post("/v1/chat/completions").json(&body);
        if let Some(v) = cache_control {
            req = req.header("cache-control", v);
        }
        if let Some(v) = ttl {
            req = req.header("x-llm-bridge-cache-ttl", v);
        }
        req.send()
    };
    let r = send(Some("no-store"), None).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), cache_header(&r)),
        (200, "miss".into())
    );
    let r = send(None, Some("1")).await.unwrap();
    assert_eq!(cache_header(&r), "miss", "no-store wrote nothing");
    let r = send(None, None).await.unwrap();
    assert_eq!(cache_header(&r), "hit");
    let r = send(Some("no-cache"), Some("60")).await.unwrap();
    assert_eq!(cache_header(&r), "bypass", "no-cache skips the lookup");
    assert_eq!(upstream_calls(&gw), 3);
    // no-cache refreshed the entry with a TTL of 60 s: it outlives the first entry's 1 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = send(None, None).await.unwrap();
    assert_eq!(cache_header(&r), "hit");

    let other = hello("gpt-4o");
    let r = gw
        .post("/v1/chat/completions")
        .header("x-llm-bridge-cache-ttl", "1")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(cache_header(&r), "miss");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = gw.chat(other).await;
    assert_eq!(cache_header(&r), "miss", "expired after its TTL");

    let bad = send(None, Some("forever")).await.unwrap();
    assert_eq!(bad.status(), 400);
    let err: Value = bad.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-llm-bridge-cache-ttl"),
        "{err}"
    );
}

#[tokio::test]
async fn errors_cut_streams_oversized_and_sampled_replies_are_never_cached() {
    let gw = TestGateway::start_with(
        "[cache]\nenabled = true\nonly_deterministic = true\nmax_entry_bytes = 1024\n",
        |_| {},
    )
    .await;
    let cold = |model: &str| json!({"model": model, "temperature": 0, "messages": [{"role": "user", "content": "Hi"}]});
    for _ in 0..2 {
        let r = gw.chat(cold("openai/gpt-4o-fail400")).await;
        assert_eq!(r.status(), 400);
        assert_eq!(cache_header(&r), "miss");
    }
    let mut cut = cold("openai/gpt-4o-cut");
    cut["stream"] = json!(true);
    for _ in 0..2 {
        let r = gw.chat(cut.clone()).await;
        assert_eq!(cache_header(&r), "miss");
        let _ = r.text().await;
    }
    let sampled = json!({"model": "gpt-4o-mini", "temperature": 0.7, "messages": [{"role": "user", "content": "Hi"}]});
    for _ in 0..2 {
        let r = gw.chat(sampled.clone()).await;
        assert_eq!(cache_header(&r), "bypass", "only deterministic requests");
    }
    for n in [json!(2), json!(2.0)] {
        let several = json!({"model": "gpt-4o-mini", "n": n, "seed": 1, "messages": [{"role": "user", "content": "Hi"}]});
        assert_eq!(cache_header(&gw.chat(several).await), "bypass", "n = {n}");
    }
    assert_eq!(upstream_calls(&gw), 8);

    // Embeddings larger than max_entry_bytes are not kept; small ones are.
    let inputs: Vec<String> = (0..64).map(|i| format!("text {i}")).collect();
    let embed = |input: Value| {
        let req = gw
            .post("/v1/embeddings")
            .json(&json!({"model": "text-embedding-3-small", "input": input}))
            .send();
        async move {
            let r = req.await.unwrap();
            let seen = (r.status().as_u16(), cache_header(&r));
            let _ = r.bytes().await;
            seen
        }
    };
    for expected in ["miss", "miss"] {
        assert_eq!(embed(json!(inputs)).await, (200, expected.into()));
    }
    for expected in ["miss", "hit"] {
        assert_eq!(embed(json!("one")).await, (200, expected.into()));
    }
}

#[tokio::test]
async fn per_key_scope_keeps_each_keys_entries_to_itself() {
    let gw = TestGateway::start_with("[cache]\nenabled = true\nscope = \"per-key\"\n", |env| {
        env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
    })
    .await;
    let mut secrets = Vec::new();
    for name in ["team-a", "team-b"] {
        let resp = gw
            .post("/api/keys")
            .bearer_auth(MASTER)
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        secrets.push(created["key"].as_str().unwrap().to_string());
    }
    let ask = |key: &str| {
        gw.post("/v1/chat/completions")
            .bearer_auth(key.to_string())
            .json(&hello("gpt-4o-mini"))
            .send()
    };
    assert_eq!(cache_header(&ask(&secrets[0]).await.unwrap()), "miss");
    assert_eq!(cache_header(&ask(&secrets[0]).await.unwrap()), "hit");
    assert_eq!(
        cache_header(&ask(&secrets[1]).await.unwrap()),
        "miss",
        "another key's entry"
    );
    assert_eq!(cache_header(&ask(&secrets[1]).await.unwrap()), "hit");
    assert_eq!(upstream_calls(&gw), 2);
}

#[tokio::test]
async fn a_hundred_identical_concurrent_requests_make_one_upstream_call() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    // The mock takes 300 ms for a `slow` model: every request arrives while the first is in flight.
    let body = hello("openai/gpt-4o-mini-slow");
    let replies = futures_util::future::join_all((0..100).map(|i| {
        let mut body = body.clone();
        if i % 2 == 1 {
            body["stream"] = json!(true);
        }
        let req = gw.post("/v1/chat/completions").json(&body).send();
        async move {
            let r = req.await.unwrap();
            assert_eq!(r.status(), 200);
            let outcome = cache_header(&r);
            let text = if i % 2 == 1 {
                stream_text(&r.text().await.unwrap()).0
            } else {
                let v: Value = r.json().await.unwrap();
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            (outcome, text)
        }
    }))
    .await;
    assert_eq!(upstream_calls(&gw), 1, "one upstream call");
    assert!(
        replies
            .iter()
            .all(|(_, text)| text == &REPLY_WORDS.concat())
    );
    assert_eq!(replies.iter().filter(|(o, _)| o == "miss").count(), 1);
    assert_eq!(replies.iter().filter(|(o, _)| o == "hit").count(), 99);
}

#[tokio::test]
async fn messages_are_cached_per_mode_and_replayed_as_they_were() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "Hi"}]});
    let send = || {
        gw.post("/v1/messages")
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), cache_header(&first)),
        (200, "miss".into())
    );
    let first = first.text().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(cache_header(&again), "hit");
    assert_eq!(
        again.text().await.unwrap(),
        first,
        "the stream replayed byte for byte"
    );
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_entries_and_bypass_it_when_it_is_down() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let with_redis = |env: &mut std::collections::HashMap<String, String>| {
        env.insert("REDIS_URL".into(), url.clone());
    };
    let a = TestGateway::start_with(ON, with_redis).await;
    let b = TestGateway::start_with(ON, with_redis).await;
    let body = hello("gpt-4o-mini");
    let first = a.chat(body.clone()).await;
    assert_eq!(cache_header(&first), "miss");
    let first: Value = first.json().await.unwrap();
    // The write to Redis happens off the request path, within a few milliseconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hit = b.chat(body.clone()).await;
    assert_eq!(cache_header(&hit), "hit");
    assert_eq!(hit.json::<Value>().await.unwrap(), first);
    assert_eq!(upstream_calls(&b), 0, "B never called its upstream");

    redis.stop();
    let fresh = hello("gpt-4o");
    for gw in [&a, &b] {
        let r = gw.chat(fresh.clone()).await;
        assert_eq!(r.status(), 200, "requests succeed without Redis");
        assert_eq!(cache_header(&r), "bypass");
    }
}

/// Sends the leader's request, then, while the mock holds it (300 ms), `followers` identical ones.
async fn leader_and_followers(
    gw: &TestGateway,
    body: &Value,
    followers: usize,
) -> Vec<(String, String)> {
    let send = |body: Value| {
        let req = gw.post("/v1/chat/completions").json(&body).send();
        async move {
            let r = req.await.unwrap();
            assert_eq!(r.status(), 200);
            (cache_header(&r), r.text().await.unwrap())
        }
    };
    let leader = send(body.clone());
    let rest = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        futures_util::future::join_all((0..followers).map(|_| send(body.clone()))).await
    };
    let (leader, rest) = tokio::join!(leader, rest);
    std::iter::once(leader).chain(rest).collect()
}

#[tokio::test]
async fn identical_streams_in_flight_follow_the_first_as_it_arrives() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let body = json!({"model": "openai/gpt-4o-mini-slow", "stream": true,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Follow me"}]});
    let replies = leader_and_followers(&gw, &body, 5).await;
    assert_eq!(upstream_calls(&gw), 1);
    assert_eq!(replies[0].0, "miss");
    let (text, usage) = stream_text(&replies[0].1);
    assert_eq!(text, REPLY_WORDS.concat());
    assert!(usage.is_some());
    for (outcome, stream) in &replies[1..] {
        assert_eq!(outcome, "hit");
        // Byte for byte the leader's stream (a replay from the whole reply is chunked otherwise).
        assert_eq!(stream, &replies[0].1);
    }
    let log = poll_until("all six recorded", || async {
        let log = gw.get_json("/api/requests").await;
        (log.as_array().unwrap().len() == 6).then_some(log)
    })
    .await;
    let hits = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["cache"] == "hit" && r["status"] == 200);
    assert_eq!(hits.count(), 5, "{log}");

    // A leader's stream that breaks off: its followers see what it saw, nothing is cached.
    let cut = json!({"model": "openai/gpt-4o-mini-slow-cut", "stream": true,
                     "messages": [{"role": "user", "content": "Follow me"}]});
    let replies = leader_and_followers(&gw, &cut, 3).await;
    assert_eq!(upstream_calls(&gw), 2);
    for (_, stream) in &replies {
        let chunks = sse_chunks(stream);
        assert!(
            chunks.last().unwrap()["error"].is_object(),
            "ends with the error: {stream}"
        );
    }
    let again = gw.chat(cut).await;
    assert_eq!(
        cache_header(&again),
        "miss",
        "a stream that broke off is not cached"
    );
    let _ = again.text().await;
}

#[tokio::test]
async fn responses_are_not_cached() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    let body = json!({"model": "deepseek/deepseek-chat", "input": "Hi", "store": false});
    for _ in 0..2 {
        let r = gw.post("/v1/responses").json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("x-llm-bridge-cache").is_none());
        let _ = r.bytes().await;
    }
    assert_eq!(upstream_calls(&gw), 2);
}

#[tokio::test]
async fn a_follower_outlives_the_client_of_the_reply_it_follows() {
    let gw = TestGateway::start_with(ON, |_| {}).await;
    // Events 100 ms apart: the reply lasts about two seconds.
    let body = json!({"model": "openai/gpt-4o-mini-drip", "stream": true,
                      "messages": [{"role": "user", "content": "Follow me"}]});
    let mut leader = gw.chat(body.clone()).await;
    assert_eq!(cache_header(&leader), "miss");
    // The leader's reply has started: an identical request now follows it.
    leader.chunk().await.unwrap().expect("a first chunk");
    let follower = gw.chat(body.clone()).await;
    assert_eq!(cache_header(&follower), "hit");
    // The leader's client goes away.
    drop(leader);
    let stream = follower.text().await.unwrap();
    let chunks = sse_chunks(&stream);
    assert!(
        chunks.iter().all(|c| c["error"].is_null()),
        "the follower's stream broke: {stream}"
    );
    assert_eq!(stream_text(&stream).0, REPLY_WORDS.concat());
    assert_eq!(upstream_calls(&gw), 1);
    // The reply ended well: it was written for the next request.
    let again = gw.chat(body).await;
    assert_eq!(cache_header(&again), "hit");
    assert_eq!(
        stream_text(&again.text().await.unwrap()).0,
        REPLY_WORDS.concat()
    );
    assert_eq!(upstream_calls(&gw), 1);
}

#[tokio::test]
async fn replies_gathered_for_the_cache_stay_within_its_budget() {
    const MAX_BYTES: usize = 2 * 1024 * 1024;
    let gw = TestGateway::start_with(
        &format!("[cache]\nenabled = true\nmax_bytes = {MAX_BYTES}\n"),
        |_| {},
    )
    .await;
    let cache = gw.state.gateway().cache.clone().unwrap();
    // Eight different large streams (about 750 kB each), whose clients do not read at first.
    let replies = futures_util::future::join_all((0..8).map(|i| {
        gw.chat(
            json!({"model": "openai/gpt-4o-mini-chunks5000", "stream": true,
                       "messages": [{"role": "user", "content": format!("large {i}")}]}),
        )
    }))
    .await;
    let mut most = 0;
    for _ in 0..40 {
        most = most.max(cache.gathering_bytes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let texts = futures_util::future::join_all(replies.into_iter().map(|r| r.text())).await;
    for text in texts {
        assert!(
            text.unwrap().ends_with("data: [DONE]\n\n"),
            "every client gets its reply"
        );
    }
    most = most.max(cache.gathering_bytes());
    assert!(most > 0, "replies were gathered");
    assert!(most <= MAX_BYTES / 4, "{most} bytes gathered at once");
    poll_until("the gathered bytes given back", || async {
        (cache.gathering_bytes() == 0).then_some(())
    })
    .await;
    assert!(cache.size().1 <= MAX_BYTES);
}
