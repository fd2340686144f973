//! The Redis store, shared by every gateway replica. All keys carry the `{llmb}` hash tag so that
//! they live in one slot and the multi-key script also works on Redis Cluster.
//!
//! Layout: `llmb:{llmb}:m:<minute>` and `llmb:{llmb}:h:<hour>` are hashes of `<dimension>|<field>`
//! counters (see [`Counters::to_fields`]); `llmb:{llmb}:recent` is the request log, newest first.

use std::collections::HashMap;
use std::time::Duration;

use fred::prelude::*;

use super::{Counters, Delta, Granularity, Retention};
use crate::domain::RequestRecord;

const RECENT_KEY: &str = "llmb:{llmb}:recent";

/// How long Redis remembers that a batch was applied.
const BATCH_MEMORY_SECONDS: u64 = 7 * 24 * 3600;

/// Applies one batch: marks its id (and does nothing if it was already marked), pushes the log
/// entries, then adds every counter. KEYS: batch marker, request log, bucket hashes. ARGV: marker
/// TTL, log length, number of log entries, the entries, then per bucket: field count, TTL, pairs.
const APPLY_SCRIPT: &str = r#"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local cap = tonumber(ARGV[2])
local entries = tonumber(ARGV[3])
local i = 4
for _ = 1, entries do
  redis.call('LPUSH', KEYS[2], ARGV[i])
  i = i + 1
end
if entries > 0 then redis.call('LTRIM', KEYS[2], 0, cap - 1) end
for k = 3, #KEYS do
  local fields = tonumber(ARGV[i])
  local ttl = ARGV[i + 1]
  i = i + 2
  for _ = 1, fields do
    redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call('EXPIRE', KEYS[k], ttl)
end
return 1
"#;

fn bucket_key(g: Granularity, bucket: u64) -> String {
    match g {
        Granularity::Minute => format!("llmb:{{llmb}}:m:{bucket}"),
        Granularity::Hour => format!("llmb:{{llmb}}:h:{bucket}"),
    }
}

fn retention(g: Granularity, r: Retention) -> i64 {
    match g {
        Granularity::Minute => (r.minutes * 60) as i64,
        Granularity::Hour => (r.hours * 3600) as i64,
    }
}

pub struct RedisStore {
    client: Client,
    recent_cap: usize,
    retention: Retention,
}

impl RedisStore {
    /// Connects, but does not insist: the gateway serves without Redis and catches up when it returns.
    pub async fn connect(
        url: &str,
        recent_cap: usize,
        retention: Retention,
    ) -> Result<RedisStore, String> {
        let config = Config::from_url(url).map_err(|e| format!("REDIS_URL: {}", e.details()))?;
        let client = Builder::from_config(config)
            .with_config(|c| c.fail_fast = true)
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(2);
                c.internal_command_timeout = Duration::from_secs(2);
                c.max_command_attempts = 1;
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..Default::default()
                };
            })
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()
            .map_err(|e| format!("REDIS_URL: {}", e.details()))?;
        let _connection_task = client.connect();
        if tokio::time::timeout(Duration::from_secs(3), client.wait_for_connect())
            .await
            .is_err()
        {
            tracing::warn!("Redis is not reachable yet; stats are buffered until it is");
        }
        Ok(RedisStore {
            client,
            recent_cap,
            retention,
        })
    }

    /// The connection, shared with the key ring and the rate limiter.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn recent_cap(&self) -> usize {
        self.recent_cap
    }

    /// Applies a batch atomically and at most once (see [`APPLY_SCRIPT`]).
    pub async fn apply(&self, batch_id: &str, delta: &Delta) -> Result<(), String> {
        let mut by_key: HashMap<String, (i64, Vec<(String, u64)>)> = HashMap::new();
        for ((g, bucket, dim), counters) in &delta.counters {
            let entry = by_key
                .entry(bucket_key(*g, *bucket))
                .or_insert_with(|| (retention(*g, self.retention), Vec::new()));
            entry.1.extend(
                counters
                    .to_fields()
                    .into_iter()
                    .map(|(f, v)| (format!("{dim}|{f}"), v)),
            );
        }
        let mut keys = vec![
            format!("llmb:{{llmb}}:batch:{batch_id}"),
            RECENT_KEY.to_string(),
        ];
        let mut args: Vec<String> = vec![
            BATCH_MEMORY_SECONDS.to_string(),
            self.recent_cap.to_string(),
            delta.recent.len().to_string(),
        ];
        args.extend(
            delta
                .recent
                .iter()
                .map(|r| serde_json::to_string(r).expect("a record serialises")),
        );
        for (key, (ttl, fields)) in by_key {
            keys.push(key);
            args.push(fields.len().to_string());
            args.push(ttl.to_string());
            for (field, value) in fields {
                args.push(field);
                args.push(value.to_string());
            }
        }
        let _: i64 = self
            .client
            .eval(APPLY_SCRIPT, keys, args)
            .await
            .map_err(|e| e.details().to_string())?;
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
            let _: () = pipe
                .hgetall(bucket_key(g, *b))
                .await
                .map_err(|e| e.details().to_string())?;
        }
        let hashes: Vec<HashMap<String, i64>> =
            pipe.all().await.map_err(|e| e.details().to_string())?;
        Ok(buckets
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .map(|(b, hash)| {
                let mut dims: HashMap<String, Counters> = HashMap::new();
                for (field, value) in hash {
                    if let Some((dim, f)) = field.split_once('|') {
                        dims.entry(dim.to_string())
                            .or_default()
                            .add_field(f, value.max(0) as u64);
                    }
                }
                (b, dims)
            })
            .collect())
    }

    pub async fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, String> {
        let stop = if limit == usize::MAX {
            -1
        } else {
            limit as i64 - 1
        };
        let raw: Vec<String> = self
            .client
            .lrange(RECENT_KEY, 0, stop)
            .await
            .map_err(|e| e.details().to_string())?;
        Ok(raw
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect())
    }

    pub async fn health(&self) -> (bool, String) {
        match tokio::time::timeout(Duration::from_secs(1), self.client.ping::<String>(None)).await {
            Ok(Ok(_)) => (true, "connected".into()),
            Ok(Err(e)) => (false, format!("unreachable: {}", e.details())),
            Err(_) => (false, "unreachable: no answer within 1 s".into()),
        }
    }
}
