//! Keys and limits shared through Redis: three gateway processes hold one global rate limit, see
//! each other's keys, revocations and spend, and keep serving while Redis is away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use llm_bridge_mock::MockUpstream;
use serde_json::{Value, json};

async fn replicas(
    redis: &RedisServer,
    mock: &MockUpstream,
    n: usize,
) -> Vec<(Running, tempfile::TempDir)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("REDIS_URL", redis.url()),
            ("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()),
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
        ];
        let gw = Running::start(dir.path(), &env).await;
        out.push((gw, dir));
    }
    out
}

async fn chat(http: &reqwest::Client, url: &str, key: &str) -> u16 {
    http.post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&hello("gpt-4o-mini"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_hold_one_global_limit_within_one_percent() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let gws = replicas(&redis, &mock, 3).await;
    let urls: Vec<String> = gws.iter().map(|(g, _)| g.url.clone()).collect();
    let http = reqwest::Client::new();
    const LIMIT: u64 = 600;
    let (_, secret) = create_key(&http, &urls[0], json!({"name": "shared", "rpm": LIMIT})).await;
    until_all(&http, &urls, &secret, 200).await;

    // Twice the limit, spread evenly over the three replicas, 16 at a time on each.
    let ok = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for url in &urls {
        for _ in 0..16 {
            let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
            let (ok, limited) = (ok.clone(), limited.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..(2 * LIMIT / 48) {
                    match chat(&http, &url, &secret).await {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected status {other}"),
                    };
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let limited = limited.load(Ordering::Relaxed);
    // The bucket holds LIMIT and refills LIMIT per minute while the test runs.
    let allowed = LIMIT as f64 * (1.0 + elapsed / 60.0);
    eprintln!("{ok} admitted, {limited} refused in {elapsed:.2} s; the limit allowed {allowed:.1}");
    assert_eq!(ok + limited, 2 * LIMIT / 48 * 48);
    assert!(
        ok as f64 >= LIMIT as f64 * 0.99,
        "{ok} admitted: the limit was not used up"
    );
    assert!(
        ok as f64 <= allowed * 1.01,
        "{ok} admitted, more than 1 % over the {allowed:.1} the limit allowed"
    );
    drop(gws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_revocations_and_spend_reach_every_replica() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let gws = replicas(&redis, &mock, 2).await;
    let urls: Vec<String> = gws.iter().map(|(g, _)| g.url.clone()).collect();
    let http = reqwest::Client::new();

    // Created on one, usable on the other; revoked on the other, refused on the first.
    let (id, secret) = create_key(&http, &urls[0], json!({"name": "roaming"})).await;
    until_all(&http, &urls, &secret, 200).await;
    assert_eq!(chat(&http, &urls[1], &secret).await, 200);
    let revoked = http
        .delete(format!("{}/api/keys/{id}", urls[1]))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    until_all(&http, &urls, &secret, 401).await;

    // Spend on one replica counts against the budget on the other.
    let (id, secret) = create_key(
        &http,
        &urls[0],
        json!({"name": "budgeted", "budget_usd": 0.000001, "budget_period": "month"}),
    )
    .await;
    until_all(&http, &urls, &secret, 200).await;
    assert_eq!(chat(&http, &urls[0], &secret).await, 200);
    let mut status = 0;
    for _ in 0..60 {
        status = chat(&http, &urls[1], &secret).await;
        if status == 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 429, "the other replica saw the spend");
    let info: Value = http
        .get(format!("{}/api/keys/{id}", urls[1]))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["spend_month_usd"].as_f64().unwrap() > 0.0, "{info}");
}

/// Status of `GET /v1/models` with `key`.
async fn models(http: &reqwest::Client, url: &str, key: &str) -> u16 {
    http.get(format!("{url}/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A secret shaped like a virtual key's that no key has.
fn stranger_secret() -> String {
    format!(
        "sk-llmb-{:032x}{:016x}",
        fastrand::u128(..),
        fastrand::u64(..)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_works_on_every_replica_at_once_and_a_revocation_arrives_within_a_second() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let gws = replicas(&redis, &mock, 3).await;
    let urls: Vec<String> = gws.iter().map(|(g, _)| g.url.clone()).collect();
    let http = reqwest::Client::new();

    // Created on the first replica, then used round-robin on all three straight away.
    let mut last = None;
    for round in 0..3 {
        let (id, secret) =
            create_key(&http, &urls[0], json!({"name": format!("fresh-{round}")})).await;
        let mut statuses = Vec::new();
        let mut first_ms = [0.0; 3];
        for i in 0..12 {
            let replica = i % 3;
            let sent = Instant::now();
            let status = chat(&http, &urls[replica], &secret).await;
            if i < 3 {
                first_ms[replica] = sent.elapsed().as_secs_f64() * 1e3;
            }
            statuses.push((replica, status));
        }
        eprintln!(
            "round {round}: first request on each replica answered in {:.1} / {:.1} / {:.1} ms",
            first_ms[0], first_ms[1], first_ms[2]
        );
        let refused: Vec<_> = statuses.iter().filter(|(_, s)| *s != 200).collect();
        assert!(
            refused.is_empty(),
            "round {round}: (replica, status) not 200: {refused:?}"
        );
        last = Some((id, secret));
    }

    // Revoked on the first replica: refused everywhere within a second.
    let (id, secret) = last.unwrap();
    let sent = Instant::now();
    let revoked = http
        .delete(format!("{}/api/keys/{id}", urls[0]))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let returned = Instant::now();
    // Each replica polled on its own until it refuses (or 3 s pass).
    let polls: Vec<_> = urls
        .iter()
        .map(|url| {
            let (http, url, secret) = (http.clone(), url.clone(), secret.clone());
            tokio::spawn(async move {
                while returned.elapsed() < Duration::from_secs(3) {
                    if models(&http, &url, &secret).await == 401 {
                        return Some(returned.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                None
            })
        })
        .collect();
    let mut refused_after = Vec::new();
    for poll in polls {
        refused_after.push(poll.await.unwrap());
    }
    eprintln!(
        "revocation (DELETE took {:.1} ms) refused on the replicas after {:?}",
        (returned - sent).as_secs_f64() * 1e3,
        refused_after
    );
    for (i, after) in refused_after.iter().enumerate() {
        let after = after.unwrap_or_else(|| panic!("replica {i} still accepts the revoked key"));
        assert!(
            after < Duration::from_secs(1),
            "replica {i} refused the revoked key only after {after:?}"
        );
    }
}

/// Reads of the GET command Redis has served so far.
async fn redis_gets(client: &fred::prelude::Client) -> u64 {
    use fred::prelude::*;
    let info: String = client
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_keys_shares_a_few_redis_reads() {
    use fred::prelude::*;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let gws = replicas(&redis, &mock, 1).await;
    let url = gws[0].0.url.clone();
    let http = reqwest::Client::new();
    let probe = Client::new(Config::from_url(&redis.url()).unwrap(), None, None, None);
    probe.init().await.unwrap();

    const REQUESTS: usize = 400;
    let before = redis_gets(&probe).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..REQUESTS / 50 {
                statuses.push(models(&http, &url, &stranger_secret()).await);
            }
            statuses
        }));
    }
    for t in tasks {
        for status in t.await.unwrap() {
            assert_eq!(status, 401);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let gets = redis_gets(&probe).await - before;
    // One read per 100 ms at most for the unknown keys, plus the read every second.
    let allowed = (elapsed * 11.0).ceil() as u64 + 3;
    eprintln!(
        "{REQUESTS} unknown keys in {elapsed:.2} s took {gets} reads of the key version (allowed {allowed})"
    );
    assert!(
        gets <= allowed,
        "{gets} reads for {REQUESTS} unknown keys in {elapsed:.2} s"
    );
}

/// How many clients listen for key changes, once it is `want` (or what it was after 8 s).
async fn listeners(redis: &RedisServer, want: i64) -> i64 {
    use fred::prelude::*;
    let mut last = -1;
    for _ in 0..80 {
        let probe = Client::new(Config::from_url(&redis.url()).unwrap(), None, None, None);
        if probe.init().await.is_ok() {
            let counts: Vec<(String, i64)> = probe
                .pubsub_numsub("llmb:{llmb}:keys:changed")
                .await
                .unwrap();
            let _ = probe.quit().await;
            last = counts.first().map_or(0, |(_, n)| *n);
            if last == want {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_listen_for_key_changes_again_after_redis_comes_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let mock = MockUpstream::start().await;
    let gws = replicas(&redis, &mock, 2).await;
    assert_eq!(listeners(&redis, 2).await, 2);
    // A new redis-server process knows no subscriptions: each replica subscribes again.
    redis.restart();
    assert_eq!(listeners(&redis, 2).await, 2, "after a Redis restart");
    // A replica started while Redis is down listens once it is up.
    redis.stop();
    let late = replicas(&redis, &mock, 1).await;
    redis.restart();
    assert_eq!(
        listeners(&redis, 3).await,
        3,
        "with a replica started while Redis was down"
    );
    drop((gws, late));
}

#[tokio::test]
async fn limits_let_requests_through_while_redis_is_away() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let gw = TestGateway::start_with("", |env| {
        env.insert("REDIS_URL".into(), url);
        env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
    })
    .await;
    let resp = gw
        .post("/api/keys")
        .bearer_auth(MASTER)
        .json(&json!({"name": "resilient", "rpm": 1000}))
        .send()
        .await
        .unwrap();
    let secret = resp.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(chat(&gw.http, &gw.url, &secret).await, 200);
    redis.stop();
    // The key is known locally and the limit cannot be checked: served, not refused.
    assert_eq!(chat(&gw.http, &gw.url, &secret).await, 200);
    // An unknown key cannot be looked up: refused, after a bounded wait.
    let sent = Instant::now();
    assert_eq!(chat(&gw.http, &gw.url, &stranger_secret()).await, 401);
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}
