//! The responses `POST /v1/responses` keeps (`store`), for `GET`/`DELETE /v1/responses/{id}` and
//! `previous_response_id`. Each entry is the response object and the conversation that led to it
//! (input and output items), so that the next turn can go to any provider. Entries live in memory
//! (a byte cap, oldest out first, a TTL) and, with Redis configured, in Redis too (`SET … EX`), so
//! every replica finds them. Writes to Redis happen off the request path; with Redis, Redis is
//! the truth (a response deleted on another replica is gone here too), and the memory copy only
//! serves while its write to Redis is on its way or when Redis cannot be reached.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ResponsesConfig;

/// How long a Redis read or write may take before the gateway goes on without it.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// A kept response.
#[derive(Serialize, Deserialize)]
pub struct StoredResponse {
    /// The virtual key that created it (empty for the master key); only it may read it.
    pub owner: String,
    /// The response object, as the client received it.
    pub response: Value,
    /// The conversation: every input item of every turn, and the output items, in order.
    pub items: Vec<Value>,
}

impl StoredResponse {
    /// Whether the caller with virtual key `key` may read it (`None`: the master key, all).
    pub fn readable_by(&self, key: Option<&str>) -> bool {
        key.is_none_or(|key| key == self.owner)
    }
}

struct Entry {
    stored: Arc<StoredResponse>,
    bytes: usize,
    expires: Instant,
    /// Its write to Redis has landed (always true without Redis).
    synced: Arc<AtomicBool>,
}

#[derive(Default)]
struct Local {
    entries: HashMap<String, Entry>,
    /// Ids in the order they were stored (an id may appear again after being replaced).
    order: VecDeque<String>,
    bytes: usize,
}

pub struct ResponseStore {
    local: Mutex<Local>,
    redis: Option<Client>,
    ttl: Duration,
    max_bytes: usize,
    max_entry_bytes: usize,
}

/// An id the store can hold: `resp_` and at most 64 letters and digits. Anything else is unknown.
pub fn valid_id(id: &str) -> bool {
    id.strip_prefix("resp_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn redis_key(id: &str) -> String {
    format!("llmb:resp:{id}")
}

impl ResponseStore {
    pub fn new(config: &ResponsesConfig, redis: Option<Client>) -> ResponseStore {
        ResponseStore {
            local: Mutex::new(Local::default()),
            redis,
            ttl: config.ttl,
            max_bytes: config.max_bytes,
            max_entry_bytes: config.max_entry_bytes,
        }
    }

    /// Keeps a response; too large ones are not kept (and a warning says so).
    pub fn put(&self, id: &str, stored: StoredResponse) {
        if !valid_id(id) {
            return;
        }
        let json = serde_json::to_vec(&stored).expect("a stored response serialises");
        if json.len() > self.max_entry_bytes {
            tracing::warn!(
                bytes = json.len(),
                limit = self.max_entry_bytes,
                "a response is larger than responses.max_entry_bytes: not stored"
            );
            return;
        }
        let synced = Arc::new(AtomicBool::new(self.redis.is_none()));
        self.keep(id, Arc::new(stored), json.len(), synced.clone());
        if let Some(redis) = self.redis.clone() {
            let (key, ttl) = (redis_key(id), self.ttl.as_secs().max(1) as i64);
            tokio::spawn(async move {
                let set = redis.set::<(), _, _>(key, json, Some(Expiration::EX(ttl)), None, false);
                match tokio::time::timeout(REDIS_TIMEOUT, set).await {
                    Ok(Ok(())) => synced.store(true, Ordering::Release),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot store a response in Redis"),
                    Err(_) => tracing::warn!("storing a response in Redis timed out"),
                }
            });
        }
    }

    fn keep(&self, id: &str, stored: Arc<StoredResponse>, bytes: usize, synced: Arc<AtomicBool>) {
        let mut local = self.local.lock().expect("response store lock");
        let entry = Entry {
            stored,
            bytes,
            expires: Instant::now() + self.ttl,
            synced,
        };
        if let Some(old) = local.entries.insert(id.to_string(), entry) {
            local.bytes -= old.bytes;
        }
        local.bytes += bytes;
        local.order.push_back(id.to_string());
        let now = Instant::now();
        while let Some(oldest) = local.order.front().cloned() {
            let expired = local.entries.get(&oldest).is_none_or(|e| e.expires <= now);
            if local.bytes <= self.max_bytes && !expired {
                break;
            }
            local.order.pop_front();
            // The id may have been stored again since: only its latest entry counts.
            if local.order.contains(&oldest) && !expired {
                continue;
            }
            if let Some(e) = local.entries.remove(&oldest) {
                local.bytes -= e.bytes;
            }
        }
    }

    /// A kept response: from Redis when configured (the memory copy only while its write is on
    /// its way, or when Redis cannot be reached), else from memory.
    pub async fn get(&self, id: &str) -> Option<Arc<StoredResponse>> {
        if !valid_id(id) {
            return None;
        }
        let local = {
            let local = self.local.lock().expect("response store lock");
            local
                .entries
                .get(id)
                .filter(|e| e.expires > Instant::now())
                .map(|e| (e.stored.clone(), e.synced.load(Ordering::Acquire)))
        };
        let Some(redis) = &self.redis else {
            return local.map(|(stored, _)| stored);
        };
        let read = redis.get::<Option<Vec<u8>>, _>(redis_key(id));
        match tokio::time::timeout(REDIS_TIMEOUT, read).await {
            Ok(Ok(Some(json))) => match serde_json::from_slice(&json) {
                Ok(stored) => Some(Arc::new(stored)),
                Err(_) => local.map(|(stored, _)| stored),
            },
            // Not in Redis: deleted or expired, unless this replica's write has not landed yet.
            Ok(Ok(None)) => local
                .filter(|(_, synced)| !synced)
                .map(|(stored, _)| stored),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read a stored response from Redis");
                local.map(|(stored, _)| stored)
            }
            Err(_) => {
                tracing::warn!("reading a stored response from Redis timed out");
                local.map(|(stored, _)| stored)
            }
        }
    }

    /// Forgets a response; whether it was kept.
    pub async fn delete(&self, id: &str) -> bool {
        if !valid_id(id) {
            return false;
        }
        let removed = {
            let mut local = self.local.lock().expect("response store lock");
            let removed = local.entries.remove(id);
            if let Some(e) = &removed {
                local.bytes -= e.bytes;
            }
            removed.is_some()
        };
        let Some(redis) = &self.redis else {
            return removed;
        };
        match tokio::time::timeout(REDIS_TIMEOUT, redis.del::<i64, _>(redis_key(id))).await {
            Ok(Ok(n)) => removed || n > 0,
            _ => removed,
        }
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.local.lock().expect("response store lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(max_bytes: usize) -> ResponseStore {
        let config = ResponsesConfig {
            max_bytes,
            max_entry_bytes: 1024,
            ..ResponsesConfig::default()
        };
        ResponseStore::new(&config, None)
    }

    fn entry(text: &str) -> StoredResponse {
        StoredResponse {
            owner: String::new(),
            response: json!({"text": text}),
            items: vec![],
        }
    }

    #[tokio::test]
    async fn oldest_entries_go_first_when_full() {
        let s = store(200);
        for i in 0..10 {
            s.put(&format!("resp_{i}"), entry(&"x".repeat(40)));
        }
        assert!(s.bytes() <= 200, "{} bytes held", s.bytes());
        assert!(s.get("resp_0").await.is_none());
        assert!(s.get("resp_9").await.is_some());
    }

    #[tokio::test]
    async fn replacing_an_entry_counts_it_once() {
        let s = store(10_000);
        s.put("resp_a", entry("one"));
        let one = s.bytes();
        s.put("resp_a", entry("two"));
        assert_eq!(s.bytes(), one);
        assert_eq!(s.get("resp_a").await.unwrap().response["text"], "two");
        assert!(s.delete("resp_a").await);
        assert_eq!(s.bytes(), 0);
        assert!(!s.delete("resp_a").await);
    }

    #[tokio::test]
    async fn odd_ids_and_large_entries_are_not_kept() {
        let s = store(10_000);
        s.put("resp_../x", entry("a"));
        s.put("resp_big", entry(&"x".repeat(2000)));
        assert_eq!(s.bytes(), 0);
        assert!(s.get("resp_../x").await.is_none());
    }
}
