//! Stats in a real Redis: replicas aggregate into the same totals, and a Redis outage in the middle
//! of the load loses nothing that reached the aggregator.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use llm_bridge::clock::now_ms;
use llm_bridge::domain::RequestRecord;
use llm_bridge::stats::{RecentFilter, RedisStore, Stats, Store, Window};

async fn stats_on(url: &str) -> Arc<Stats> {
    let store = RedisStore::connect(url, 1000, Default::default())
        .await
        .expect("redis store");
    Stats::start(Store::Redis(store), Duration::from_millis(50))
}

fn record(i: u64, provider: &str, status: u16) -> RequestRecord {
    RequestRecord {
        time_ms: now_ms(),
        request_id: format!("req-{provider}-{i}"),
        model: "gpt-4o-mini".into(),
        provider: provider.into(),
        deployment: provider.into(),
        status,
        error_class: (status >= 400).then(|| "upstream".to_string()),
        attempts: 1,
        latency_ms: 3.0 + (i % 5) as f64,
        ttft_ms: Some(1.0),
        prompt_tokens: 10,
        completion_tokens: 20,
        cost_usd: 0.000_013_5,
        ..Default::default()
    }
}

#[tokio::test]
async fn two_replicas_see_the_same_totals() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = stats_on(&redis.url()).await;
    let b = stats_on(&redis.url()).await;
    for i in 0..40 {
        a.record(record(i, "openai", 200));
    }
    for i in 0..25 {
        b.record(record(i, "gemini", if i < 5 { 502 } else { 200 }));
    }
    a.flush().await;
    b.flush().await;
    for stats in [&a, &b] {
        let o = stats.overview(Window::Hour).await.unwrap();
        assert_eq!(
            (o.requests, o.errors, o.prompt_tokens, o.completion_tokens),
            (65, 5, 650, 1300)
        );
        assert!(
            (o.cost_usd - 65.0 * 0.000_013_5).abs() < 1e-12,
            "{}",
            o.cost_usd
        );
        assert_eq!(o.latency_p50_ms, 5.0);
        let providers = stats.breakdown(Window::Day, "provider").await.unwrap();
        assert_eq!(
            providers
                .iter()
                .map(|r| (r.name.as_str(), r.requests))
                .collect::<Vec<_>>(),
            vec![("openai", 40), ("gemini", 25)]
        );
        let errors = stats
            .recent(
                100,
                &RecentFilter {
                    status: Some("error".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(errors.len(), 5);
    }
    assert!(a.store().health().await.reachable);
}

#[tokio::test]
async fn redis_restart_during_load_loses_nothing() {
    let Some(mut redis) = RedisServer::start_persistent() else {
        return;
    };
    let stats = stats_on(&redis.url()).await;
    for i in 0..50 {
        stats.record(record(i, "openai", 200));
    }
    stats.flush().await;

    redis.stop();
    for i in 50..120 {
        stats.record(record(i, "openai", 200));
    }
    stats.flush().await; // fails: Redis is down; the records stay buffered
    let health = stats.store().health().await;
    assert!(!health.reachable, "{health:?}");
    assert!(stats.overview(Window::Hour).await.is_err());

    redis.restart();
    // The aggregator retries on its own; wait for the buffered records to land.
    let mut total = 0;
    for _ in 0..200 {
        if let Ok(o) = stats.overview(Window::Hour).await {
            total = o.requests;
            if total == 120 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total, 120);
    assert!(stats.store().health().await.reachable);
    assert_eq!(stats.dropped(), 0);
}

/// A master that dies right after acknowledging a write can lose it (replication is asynchronous):
/// modelled here by a Redis that keeps nothing on disk. The batches written just before the
/// failure are written again, and their ids keep the replay from counting anything twice.
#[tokio::test]
async fn batches_written_just_before_an_outage_are_replayed_once() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let stats = stats_on(&redis.url()).await;
    for i in 0..30 {
        stats.record(record(i, "openai", 200));
    }
    stats.flush().await;
    assert_eq!(stats.overview(Window::Hour).await.unwrap().requests, 30);
    // Written twice while Redis is up: the replay of a batch it has is a no-op.
    redis.stop();
    for i in 30..50 {
        stats.record(record(i, "openai", 200));
    }
    stats.flush().await; // fails: both batches are kept
    redis.restart(); // empty: the first batch is gone with the old process
    let mut total = 0;
    for _ in 0..200 {
        if let Ok(o) = stats.overview(Window::Hour).await {
            total = o.requests;
            if total >= 50 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.overview(Window::Hour).await.unwrap().requests, 50);
    assert_eq!(total, 50);

    // A failure that loses nothing: the replayed batches are recognised and skipped.
    let mut persistent = RedisServer::start_persistent().unwrap();
    let stats = stats_on(&persistent.url()).await;
    for i in 0..30 {
        stats.record(record(i, "openai", 200));
    }
    stats.flush().await;
    persistent.stop();
    stats.record(record(30, "openai", 200));
    stats.flush().await;
    persistent.restart();
    let mut total = 0;
    for _ in 0..200 {
        if let Ok(o) = stats.overview(Window::Hour).await {
            total = o.requests;
            if total >= 31 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.overview(Window::Hour).await.unwrap().requests, 31);
    assert_eq!(total, 31);
}

#[tokio::test]
async fn gateway_on_redis_records_requests() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let gw = TestGateway::start_with("", move |env| {
        env.insert("REDIS_URL".into(), url);
    })
    .await;
    let health: serde_json::Value = gw
        .get("/health")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["store"]["backend"], "redis");
    assert_eq!(health["store"]["reachable"], true);
    for _ in 0..3 {
        let r = gw.chat(serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    gw.state.stats.flush().await;
    let overview: serde_json::Value = gw
        .get("/api/stats/overview?window=1h")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview["requests"], 3);
}

/// The Redis the test command started (or the one REDIS_URL named) works as the gateway's store.
#[tokio::test]
async fn the_test_commands_redis_is_usable() {
    let Ok(url) = std::env::var("LLM_BRIDGE_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true needs LLM_BRIDGE_TEST_REDIS_URL (make test sets it)"
        );
        eprintln!("SKIPPED: LLM_BRIDGE_TEST_REDIS_URL is not set (run through `make test`)");
        return;
    };
    let store = RedisStore::connect(&url, 10, Default::default())
        .await
        .unwrap();
    let health = store.health().await;
    assert!(health.0, "{url}: {}", health.1);
}
