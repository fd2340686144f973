//! The Redis store, shared by every gateway replica. All keys carry the `{llmb}` hash tag so that
//! they live in one slot and every multi-key transaction also works on Redis Cluster.
//!
//! Layout: `llmb:{llmb}:m:<minute>` and `llmb:{llmb}:h:<hour>` are hashes of `<dimension>|<field>`
//! counters (see [`Counters::to_fields`]); `llmb:{llmb}:recent` is the request log, newest first.

use std::collections::HashMap;
use std::time::Duration;

use fred::prelude::*;

use super::{Counters, Delta, Granularity, HOUR_RETENTION, MINUTE_RETENTION};
use crate::shared::RequestRecord;

const RECENT_KEY: &str = "llmb:{llmb}:recent";

fn bucket_key(g: Granularity, bucket: u64) -> String {
    match g {
        Granularity::Minute => format!("llmb:{{llmb}}:m:{bucket}"),
        Granularity::Hour => format!("llmb:{{llmb}}:h:{bucket}"),
    }
}

fn retention(g: Granularity) -> i64 {
    match g {
        Granularity::Minute => (MINUTE_RETENTION * 60) as i64,
        Granularity::Hour => (HOUR_RETENTION * 3600) as i64,
    }
}

pub struct RedisStore {
    client: Client,
    recent_cap: usize,
}

impl RedisStore {
    /// Connects, but does not insist: the gateway serves without Redis and catches up when it returns.
    pub async fn connect(url: &str, recent_cap: usize) -> Result<RedisStore, String> {
        let config = Config::from_url(url).map_err(|e| format!("REDIS_URL: {}", e.details()))?;
        let client = Builder::from_config(config)
            .with_config(|c| c.fail_fast = true)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = 1;
                c.tcp = TcpConfig { nodelay: Some(true), ..Default::default() };
            })
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()
            .map_err(|e| format!("REDIS_URL: {}", e.details()))?;
        let _connection_task = client.connect();
        if tokio::time::timeout(Duration::from_secs(3), client.wait_for_connect()).await.is_err() {
            tracing::warn!("Redis is not reachable yet; stats are buffered until it is");
        }
        Ok(RedisStore { client, recent_cap })
    }

    /// Applies a delta in one transaction, so that a failure leaves nothing half-written.
    pub async fn apply(&self, delta: &Delta) -> Result<(), String> {
        let trx = self.client.multi();
        let err = |e: Error| e.details().to_string();
        let mut expiring: HashMap<String, i64> = HashMap::new();
        for ((g, bucket, dim), counters) in &delta.counters {
            let key = bucket_key(*g, *bucket);
            for (field, value) in counters.to_fields() {
                let _: () = trx.hincrby(&key, format!("{dim}|{field}"), value as i64).await.map_err(err)?;
            }
            expiring.insert(key, retention(*g));
        }
        for (key, ttl) in expiring {
            let _: () = trx.expire(key, ttl, None).await.map_err(err)?;
        }
        if !delta.recent.is_empty() {
            let entries: Vec<String> =
                delta.recent.iter().map(|r| serde_json::to_string(r).expect("a record serialises")).collect();
            let _: () = trx.lpush(RECENT_KEY, entries).await.map_err(err)?;
            let _: () = trx.ltrim(RECENT_KEY, 0, self.recent_cap as i64 - 1).await.map_err(err)?;
        }
        let _: Value = trx.exec(true).await.map_err(err)?;
        Ok(())
    }

    pub async fn counters(
        &self,
        g: Granularity,
        buckets: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<(u64, HashMap<String, Counters>)>, String> {
        let pipe = self.client.pipeline();
        let buckets: Vec<u64> = buckets.collect();
        for b in &buckets {
            let _: () = pipe.hgetall(bucket_key(g, *b)).await.map_err(|e| e.details().to_string())?;
        }
        let hashes: Vec<HashMap<String, i64>> = pipe.all().await.map_err(|e| e.details().to_string())?;
        Ok(buckets
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .map(|(b, hash)| {
                let mut dims: HashMap<String, Counters> = HashMap::new();
                for (field, value) in hash {
                    if let Some((dim, f)) = field.split_once('|') {
                        dims.entry(dim.to_string()).or_default().add_field(f, value.max(0) as u64);
                    }
                }
                (b, dims)
            })
            .collect())
    }

    pub async fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, String> {
        let stop = if limit == usize::MAX { -1 } else { limit as i64 - 1 };
        let raw: Vec<String> = self.client.lrange(RECENT_KEY, 0, stop).await.map_err(|e| e.details().to_string())?;
        Ok(raw.iter().filter_map(|s| serde_json::from_str(s).ok()).collect())
    }

    pub async fn health(&self) -> (bool, String) {
        match tokio::time::timeout(Duration::from_secs(1), self.client.ping::<String>(None)).await {
            Ok(Ok(_)) => (true, "connected".into()),
            Ok(Err(e)) => (false, format!("unreachable: {}", e.details())),
            Err(_) => (false, "unreachable: no answer within 1 s".into()),
        }
    }
}
