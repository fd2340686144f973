//! Virtual keys (create, list, rotate, revoke, models, expiry, budgets) and rate limits per key and
//! per client address, on the embedded store.

use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

/// Creates a key with the master key; returns (id, secret).
async fn create_key(gw: &TestGateway, settings: Value) -> (String, String) {
    let resp = gw
        .post("/api/keys")
        .bearer_auth(MASTER)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let created: Value = resp.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_string(),
        created["key"].as_str().unwrap().to_string(),
    )
}

async fn chat_as(gw: &TestGateway, key: &str, model: &str) -> reqwest::Response {
    gw.post("/v1/chat/completions")
        .bearer_auth(key)
        .json(&hello(model))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_are_created_listed_used_rotated_and_revoked() {
    let gw = TestGateway::start_locked("").await;
    let resp = gw
        .post("/api/keys")
        .bearer_auth(MASTER)
        .json(&json!({"name": "team-a", "models": ["gpt-4o-mini"], "rpm": 100, "budget_usd": 5.0, "budget_period": "day"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sk-llmb-") && secret.len() > 40);
    assert_eq!(created["name"], "team-a");
    assert_eq!(created["budget_period"], "day");

    // Listed and fetched without the secret; stored only as a hash.
    let list = gw.master_text("/api/keys").await;
    assert!(list.contains(&id) && !list.contains(&secret), "{list}");
    let one: Value = gw.master_json(&format!("/api/keys/{id}")).await;
    assert_eq!(one["name"], "team-a");
    assert!(one.get("key").is_none());
    let file = std::fs::read_to_string(gw.data_dir.path().join("keys.json")).unwrap();
    assert!(file.contains(&id) && !file.contains(&secret), "{file}");
    assert!(file.contains(&blake3::hash(secret.as_bytes()).to_hex().to_string()));

    // The key works on /v1 and its requests are recorded under its id.
    let ok = chat_as(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-ratelimit-limit-requests"], "100");
    assert_eq!(ok.headers()["x-ratelimit-remaining-requests"], "99");
    ok.bytes().await.unwrap();
    poll_until("the request recorded with the key id", || async {
        let log: Value = gw.master_json("/api/requests").await;
        (log[0]["client_key"] == id.as_str()).then_some(())
    })
    .await;
    let spend: Value = gw.master_json(&format!("/api/keys/{id}")).await;
    assert!(spend["spend_today_usd"].as_f64().unwrap() > 0.0, "{spend}");

    // A virtual key is for /v1 only.
    let api = gw
        .get("/api/keys")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    let metrics = gw
        .get("/metrics")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 403);

    // The key sees only its models.
    let ids = gw.model_ids(&secret).await;
    assert_eq!(ids, ["gpt-4o-mini"]);
    let hidden = gw
        .get("/v1/models/gpt-4o")
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 404);

    // Models outside the list are refused before anything is sent upstream.
    let upstream_before = gw.mock.state.received().len();
    let denied = chat_as(&gw, &secret, "gpt-4o").await;
    assert_eq!(denied.status(), 403);
    let e: Value = denied.json().await.unwrap();
    assert_eq!(e["error"]["code"], "model_not_allowed");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o-mini")
    );
    assert_eq!(gw.mock.state.received().len(), upstream_before);

    // Rotation: the old secret stops working, the new one works, the id stays.
    let rotated: Value = gw
        .post(&format!("/api/keys/{id}/rotate"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["id"], id.as_str());
    let new_secret = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini").await.status(), 401);
    assert_eq!(chat_as(&gw, &new_secret, "gpt-4o-mini").await.status(), 200);

    // Revocation.
    let gone = gw
        .http
        .delete(format!("{}/api/keys/{id}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    let revoked = chat_as(&gw, &new_secret, "gpt-4o-mini").await;
    assert_eq!(revoked.status(), 401);
    let e: Value = revoked.json().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_api_key");
    let again = gw
        .http
        .delete(format!("{}/api/keys/{id}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn keys_survive_a_restart_of_the_embedded_store() {
    let gw = TestGateway::start_locked("").await;
    let (id, secret) = create_key(&gw, json!({"name": "persisted"})).await;
    // A second gateway on the same data directory reads the key file when it starts.
    let dir = gw.data_dir.path().to_string_lossy().to_string();
    let restarted = TestGateway::start_with("", |env| {
        env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
        env.insert("LLM_BRIDGE_DATA_DIR".into(), dir);
    })
    .await;
    assert_eq!(
        chat_as(&restarted, &secret, "gpt-4o-mini").await.status(),
        200
    );
    assert!(restarted.state.governance.keys.get(&id).is_some());
}

#[tokio::test]
async fn bad_key_settings_get_clear_errors() {
    let gw = TestGateway::start_locked("").await;
    for (body, needle) in [
        (json!({"models": []}), "name"),
        (json!({"name": "x", "rpm": 0}), "rpm"),
        (json!({"name": "x", "budget_usd": -1}), "budget_usd"),
        (
            json!({"name": "x", "expires_at": "yesterday"}),
            "expires_at",
        ),
        (json!({"name": "x", "expires_at": 1000}), "expires_at"),
        (
            json!({"name": "x", "budget_period": "week"}),
            "budget_period",
        ),
    ] {
        let resp = gw
            .post("/api/keys")
            .bearer_auth(MASTER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let e: Value = resp.json().await.unwrap();
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    // Only the master key manages keys.
    let anonymous = gw
        .post("/api/keys")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let gw = TestGateway::start_locked("").await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let (_, secret) = create_key(&gw, json!({"name": "short-lived", "expires_at": soon})).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(resp.status(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "key_expired");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("short-lived")
    );
}

#[tokio::test]
async fn over_budget_keys_get_429_saying_why() {
    let gw = TestGateway::start_locked("").await;
    // One gpt-4o-mini request costs a few millionths of a dollar; the budget is smaller.
    let (_, secret) = create_key(
        &gw,
        json!({"name": "frugal", "budget_usd": 0.000001, "budget_period": "day"}),
    )
    .await;
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini").await.status(), 200);
    let mut refused = None;
    for _ in 0..50 {
        let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
        if resp.status() == 429 {
            refused = Some(resp);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = refused.expect("the key runs out of budget");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "budget_exceeded");
    assert_eq!(e["error"]["type"], "insufficient_quota");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("daily budget") && message.contains("frugal"),
        "{message}"
    );
    // The master key is not limited by a virtual key's budget.
    assert_eq!(chat_as(&gw, MASTER, "gpt-4o-mini").await.status(), 200);
}

#[tokio::test]
async fn requests_per_minute_per_key() {
    let gw = TestGateway::start_locked("").await;
    let (id, secret) = create_key(&gw, json!({"name": "limited", "rpm": 3})).await;
    for left in [2, 1, 0] {
        let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-ratelimit-remaining-requests"],
            left.to_string().as_str()
        );
    }
    let upstream_before = gw.mock.state.received().len();
    let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(resp.status(), 429);
    let h = resp.headers();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (19..=20).contains(&retry),
        "one request refills in 20 s, got {retry}"
    );
    assert_eq!(h["x-ratelimit-limit-requests"], "3");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    assert!(
        h["x-ratelimit-reset-requests"]
            .to_str()
            .unwrap()
            .ends_with('s')
    );
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 requests per minute")
    );
    assert_eq!(
        gw.mock.state.received().len(),
        upstream_before,
        "refused before the upstream"
    );
    let metrics = gw.master_text("/metrics").await;
    assert!(
        metrics.contains("llm_bridge_refused_total{reason=\"rate_limit_key\"}"),
        "{metrics}"
    );
    // The refusal is in the request log, under the key.
    let mut logged = false;
    for _ in 0..100 {
        let log: Value = gw.master_json("/api/requests?status=429").await;
        if log.as_array().is_some_and(|l| !l.is_empty()) {
            assert_eq!(log[0]["client_key"], id.as_str());
            assert_eq!(log[0]["error_class"], "rate_limited");
            logged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(logged, "the 429 is in the request log");
    // Another key has its own allowance.
    let (_, other) = create_key(&gw, json!({"name": "other", "rpm": 3})).await;
    assert_eq!(chat_as(&gw, &other, "gpt-4o-mini").await.status(), 200);
}

#[tokio::test]
async fn tokens_per_minute_count_what_requests_used() {
    let gw = TestGateway::start_locked("").await;
    // Each mock reply uses 12 prompt + 20 completion tokens.
    let (_, secret) = create_key(&gw, json!({"name": "wordy", "tpm": 64})).await;
    for _ in 0..2 {
        let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        // The tokens are taken once the reply has been sent.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resp = chat_as(&gw, &secret, "gpt-4o-mini").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["x-ratelimit-limit-tokens"], "64");
    assert_eq!(resp.headers()["x-ratelimit-remaining-tokens"], "0");
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64 tokens per minute")
    );
}

#[tokio::test]
async fn streams_count_their_tokens_too() {
    let gw = TestGateway::start_locked("").await;
    let (_, secret) = create_key(&gw, json!({"name": "streamer", "tpm": 40})).await;
    let body = json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let resp = gw
        .post("/v1/chat/completions")
        .bearer_auth(&secret)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sse_chunks(&resp.text().await.unwrap());
    let mut status = 0;
    for _ in 0..50 {
        status = chat_as(&gw, &secret, "gpt-4o-mini").await.status().as_u16();
        if status == 429 {
            break;
        }
    }
    assert_eq!(status, 429, "the stream's 32 tokens used most of the 40");
}

#[tokio::test]
async fn per_address_limits_believe_forwarded_for_only_from_trusted_proxies() {
    let toml = "[limits]\nip_rpm = 2\ntrusted_proxies = [\"127.0.0.1/32\"]\n";
    let gw = TestGateway::start_with(toml, |_| {}).await;
    let from = |ip: &'static str| {
        gw.post("/v1/chat/completions")
            .header("x-forwarded-for", ip)
            .json(&hello("gpt-4o-mini"))
            .send()
    };
    assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
    assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
    let refused = from("203.0.113.1").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("your address"));
    assert_eq!(from("203.0.113.2").await.unwrap().status(), 200);

    // Without trusted proxies the header is ignored: everyone here is 127.0.0.1.
    let gw = TestGateway::start_with("[limits]\nip_rpm = 2\n", |_| {}).await;
    for (ip, status) in [
        ("203.0.113.1", 200),
        ("203.0.113.2", 200),
        ("203.0.113.3", 429),
    ] {
        let resp = gw
            .post("/v1/chat/completions")
            .header("x-forwarded-for", ip)
            .json(&hello("gpt-4o-mini"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{ip}");
    }
}

#[tokio::test]
async fn an_open_gateway_refuses_unknown_virtual_keys_but_not_placeholders() {
    let gw = TestGateway::start().await;
    assert_eq!(
        chat_as(&gw, "sk-placeholder", "gpt-4o-mini").await.status(),
        200
    );
    let unknown = chat_as(&gw, "sk-llmb-0000000000000000000000000000", "gpt-4o-mini").await;
    assert_eq!(unknown.status(), 401);
    // Keys still apply their limits on an open gateway.
    let resp = gw
        .post("/api/keys")
        .json(&json!({"name": "open", "rpm": 1}))
        .send()
        .await
        .unwrap();
    let secret = resp.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini").await.status(), 200);
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini").await.status(), 429);
}

#[tokio::test]
async fn a_key_may_name_only_a_team_that_exists() {
    let gw = TestGateway::start_locked("[[teams]]\nname = \"research\"\n").await;
    let create = |settings: Value| {
        gw.post("/api/keys")
            .bearer_auth(MASTER)
            .json(&settings)
            .send()
    };
    let resp = create(json!({"name": "early", "team": "later"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert_eq!(e["error"]["param"], "team", "{e}");
    assert_eq!(e["error"]["code"], "team_not_found", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`later`"),
        "{e}"
    );
    assert!(gw.state.governance.keys.is_empty(), "no key was made");

    // The console refuses it too.
    let admin = format!(
        "llmb_session={}",
        gw.state
            .auth
            .new_session(llm_bridge::governance::Role::Admin)
    );
    let resp = gw
        .post("/console/fn/create_key")
        .header("cookie", &admin)
        .json(&json!({"settings": {"name": "early", "team": "later"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("`later`"));
    assert!(gw.state.governance.keys.is_empty(), "no key was made");

    // A configured team, and one made with the API, may be named.
    create_key(&gw, json!({"name": "r", "team": "research"})).await;
    let resp = gw
        .post("/api/teams")
        .bearer_auth(MASTER)
        .json(&json!({"name": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    create_key(&gw, json!({"name": "early", "team": "later"})).await;
    let resp = gw
        .post("/console/fn/create_key")
        .header("cookie", &admin)
        .json(&json!({"settings": {"name": "console", "team": "later"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}
