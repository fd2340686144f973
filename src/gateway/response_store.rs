//! The responses `POST /v1/responses` keeps (`store`), for `GET`/`DELETE /v1/responses/{id}` and
//! `previous_response_id`. Each entry is the response object and the conversation that led to it
//! (input and output items), so that the next turn can go to any provider. Each belongs to the
//! caller that created it ([`Owner`]). Entries live in memory as their JSON, the bytes counted
//! against the cap being the bytes held (a byte cap, oldest out first, a TTL) and, with Redis configured, in Redis too (`SET … EX`), so
//! every replica finds them. Writes to Redis happen off the request path; with Redis, Redis is
//! the truth (a response deleted on another replica is gone here too), and the memory copy only
//! serves while its write to Redis is on its way or when Redis cannot be reached.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ResponsesConfig;
use crate::governance::owner::Owner;

/// How long a Redis read or write may take before the gateway goes on without it.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// What an entry costs beside its JSON: its id twice (the map and the order), the map's slot, the
/// entry's fields and the allocations' headers.
const ENTRY_OVERHEAD: usize = 160;

/// A kept response, as it is written (to memory and Redis) and read back.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredResponse {
    /// The owner id of the caller that created it ([`Owner`]); only that caller (and the
    /// administrator) may read, continue or delete it.
    pub owner: String,
    /// The response object, as the client received it.
    pub response: Value,
    /// The conversation: every input item of every turn, and the output items, in order.
    pub items: Vec<Value>,
}

/// A stored response's JSON, written without building the [`StoredResponse`]: `items` is the
/// conversation before the output, already written as the members of a JSON array.
pub fn stored_json(owner: &str, response: &Value, items: &[u8], output: &[Value]) -> Vec<u8> {
    let mut json = Vec::with_capacity(items.len() + 256);
    json.extend_from_slice(b"{\"owner\":");
    serde_json::to_writer(&mut json, owner).expect("a string serialises");
    json.extend_from_slice(b",\"response\":");
    serde_json::to_writer(&mut json, response).expect("a JSON value serialises");
    json.extend_from_slice(b",\"items\":[");
    json.extend_from_slice(items);
    let mut first = items.is_empty();
    for item in output {
        if !first {
            json.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut json, item).expect("a JSON value serialises");
    }
    json.extend_from_slice(b"]}");
    json
}

/// Appends `items` to `out` as members of a JSON array (with a comma after earlier ones).
pub fn write_items(out: &mut Vec<u8>, items: &[Value]) {
    for item in items {
        if !out.is_empty() {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, item).expect("a JSON value serialises");
    }
}

/// An entry in memory: its JSON as written to Redis (what it costs is what is counted).
struct Entry {
    json: Bytes,
    /// Which `put` wrote it: an older id in `order` for a replaced entry is passed over.
    seq: u64,
    expires: Instant,
    /// Its write to Redis has landed (always true without Redis).
    synced: Arc<AtomicBool>,
}

impl Entry {
    fn cost(&self, id: &str) -> usize {
        self.json.len() + 2 * id.len() + ENTRY_OVERHEAD
    }
}

#[derive(Default)]
struct Local {
    entries: HashMap<String, Entry>,
    /// Ids with the `seq` of their `put`, oldest first. Entries replaced or deleted since leave
    /// stale pairs here, passed over when they come to the front and dropped when they outnumber
    /// the live ones.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    next_seq: u64,
}

impl Local {
    fn remove(&mut self, id: &str) -> bool {
        match self.entries.remove(id) {
            Some(e) => {
                self.bytes -= e.cost(id);
                true
            }
            None => false,
        }
    }

    /// Drops the stale pairs of `order` once they are more than the live ones: each pair is
    /// looked at a bounded number of times, whatever the pattern of puts and deletes.
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.entries.len() + 64 {
            return;
        }
        let entries = &self.entries;
        self.order
            .retain(|(id, seq)| entries.get(id).is_some_and(|e| e.seq == *seq));
    }
}

pub struct ResponseStore {
    /// What it keeps: `resp` (responses, ids `resp_…`) or `reasoning` ([`super::kept_reasoning`],
    /// ids `call_…`). Its Redis keys are `llmb:<namespace>:<id>`.
    namespace: &'static str,
    local: Mutex<Local>,
    redis: Option<Client>,
    ttl: Duration,
    max_bytes: usize,
    max_entry_bytes: usize,
}

/// An id the response store can hold: `resp_` and at most 64 letters and digits. Anything else
/// is unknown.
pub fn valid_id(id: &str) -> bool {
    valid_in(id, "resp_")
}

fn valid_in(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

impl ResponseStore {
    pub fn new(config: &ResponsesConfig, redis: Option<Client>) -> ResponseStore {
        ResponseStore::in_namespace("resp", config, redis)
    }

    /// A store of its own kind of entries, with the same caps and TTL.
    pub fn in_namespace(
        namespace: &'static str,
        config: &ResponsesConfig,
        redis: Option<Client>,
    ) -> ResponseStore {
        ResponseStore {
            namespace,
            local: Mutex::new(Local::default()),
            redis,
            ttl: config.ttl,
            max_bytes: config.max_bytes,
            max_entry_bytes: config.max_entry_bytes,
        }
    }

    fn valid(&self, id: &str) -> bool {
        match self.namespace {
            "resp" => valid_id(id),
            _ => valid_in(id, "call_"),
        }
    }

    fn redis_key(&self, id: &str) -> String {
        format!("llmb:{}:{id}", self.namespace)
    }

    /// The largest stored response (with its conversation), in bytes of JSON.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_entry_bytes
    }

    /// Keeps a response; too large ones are not kept (and a warning says so).
    pub fn put(&self, id: &str, stored: &StoredResponse) {
        self.put_json(
            id,
            serde_json::to_vec(stored).expect("a stored response serialises"),
        );
    }

    /// Keeps a response written as a [`StoredResponse`]'s JSON.
    pub fn put_json(&self, id: &str, json: Vec<u8>) {
        if !self.valid(id) {
            return;
        }
        if json.len() > self.max_entry_bytes {
            tracing::warn!(
                bytes = json.len(),
                limit = self.max_entry_bytes,
                "a response is larger than responses.max_entry_bytes: not stored"
            );
            return;
        }
        let json = Bytes::from(json);
        let synced = Arc::new(AtomicBool::new(self.redis.is_none()));
        self.keep(id, json.clone(), synced.clone());
        if let Some(redis) = self.redis.clone() {
            let (key, ttl) = (self.redis_key(id), self.ttl.as_secs().max(1) as i64);
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

    /// Puts an entry in memory, then lets the oldest go while over the byte cap and the expired
    /// ones at the front go. Every step is O(1) (amortised): the lock is held briefly.
    fn keep(&self, id: &str, json: Bytes, synced: Arc<AtomicBool>) {
        let mut local = self.local.lock().expect("response store lock");
        let seq = local.next_seq;
        local.next_seq += 1;
        local.remove(id);
        let entry = Entry {
            json,
            seq,
            expires: Instant::now() + self.ttl,
            synced,
        };
        local.bytes += entry.cost(id);
        local.entries.insert(id.to_string(), entry);
        local.order.push_back((id.to_string(), seq));
        let now = Instant::now();
        while let Some((oldest, seq)) = local.order.front() {
            let live = local.entries.get(oldest).filter(|e| e.seq == *seq);
            let Some(entry) = live else {
                // Replaced or deleted since: a stale pair.
                local.order.pop_front();
                continue;
            };
            if local.bytes <= self.max_bytes && entry.expires > now {
                break;
            }
            let (oldest, _) = local.order.pop_front().expect("the front was just read");
            local.remove(&oldest);
        }
        local.compact();
    }

    /// A kept response, if `owner` may use it: from Redis when configured (the memory copy only
    /// while its write is on its way, or when Redis cannot be reached), else from memory. Another
    /// caller's response is not found, exactly as an unknown id.
    pub async fn get(&self, id: &str, owner: &Owner) -> Option<StoredResponse> {
        let json = self.json(id).await?;
        let stored: StoredResponse = match serde_json::from_slice(&json) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "a stored response cannot be read");
                return None;
            }
        };
        owner.may_use(&stored.owner).then_some(stored)
    }

    async fn json(&self, id: &str) -> Option<Bytes> {
        if !self.valid(id) {
            return None;
        }
        let local = {
            let local = self.local.lock().expect("response store lock");
            local
                .entries
                .get(id)
                .filter(|e| e.expires > Instant::now())
                .map(|e| (e.json.clone(), e.synced.load(Ordering::Acquire)))
        };
        let Some(redis) = &self.redis else {
            return local.map(|(json, _)| json);
        };
        let read = redis.get::<Option<Bytes>, _>(self.redis_key(id));
        match tokio::time::timeout(REDIS_TIMEOUT, read).await {
            Ok(Ok(Some(json))) => Some(json),
            // Not in Redis: deleted or expired, unless this replica's write has not landed yet.
            Ok(Ok(None)) => local.filter(|(_, synced)| !synced).map(|(json, _)| json),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read a stored response from Redis");
                local.map(|(json, _)| json)
            }
            Err(_) => {
                tracing::warn!("reading a stored response from Redis timed out");
                local.map(|(json, _)| json)
            }
        }
    }

    /// Forgets a response if `owner` may use it; whether it did.
    pub async fn delete(&self, id: &str, owner: &Owner) -> bool {
        if self.get(id, owner).await.is_none() {
            return false;
        }
        let removed = self.local.lock().expect("response store lock").remove(id);
        let Some(redis) = &self.redis else {
            return removed;
        };
        match tokio::time::timeout(REDIS_TIMEOUT, redis.del::<i64, _>(self.redis_key(id))).await {
            Ok(Ok(n)) => removed || n > 0,
            _ => removed,
        }
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.local.lock().expect("response store lock").bytes
    }

    /// (entries, ids in the eviction order) held in memory.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let local = self.local.lock().expect("response store lock");
        (local.entries.len(), local.order.len())
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
            owner: "master".into(),
            response: json!({"text": text}),
            items: vec![],
        }
    }

    fn master() -> Owner {
        Owner::master()
    }

    #[tokio::test]
    async fn oldest_entries_go_first_when_full() {
        let s = store(2000);
        for i in 0..10 {
            s.put(&format!("resp_{i}"), &entry(&"x".repeat(40)));
        }
        assert!(s.bytes() <= 2000, "{} bytes held", s.bytes());
        assert!(s.get("resp_0", &master()).await.is_none());
        assert!(s.get("resp_9", &master()).await.is_some());
    }

    #[tokio::test]
    async fn replacing_an_entry_counts_it_once() {
        let s = store(10_000);
        s.put("resp_a", &entry("one"));
        let one = s.bytes();
        s.put("resp_a", &entry("two"));
        assert_eq!(s.bytes(), one);
        let got = s.get("resp_a", &master()).await.unwrap();
        assert_eq!(got.response["text"], "two");
        assert!(s.delete("resp_a", &master()).await);
        assert_eq!(s.bytes(), 0);
        assert!(!s.delete("resp_a", &master()).await);
    }

    #[tokio::test]
    async fn odd_ids_and_large_entries_are_not_kept() {
        let s = store(10_000);
        s.put("resp_../x", &entry("a"));
        s.put("resp_big", &entry(&"x".repeat(2000)));
        assert_eq!(s.bytes(), 0);
        assert!(s.get("resp_../x", &master()).await.is_none());
    }

    #[tokio::test]
    async fn written_json_reads_back_as_the_conversation() {
        let s = store(10_000);
        let mut items = Vec::new();
        write_items(&mut items, &[json!({"role": "user", "content": "a"})]);
        write_items(&mut items, &[json!({"role": "user", "content": "b"})]);
        let output = [json!({"type": "message", "content": "c"})];
        s.put_json(
            "resp_w",
            stored_json("key:k1", &json!({"id": "resp_w"}), &items, &output),
        );
        s.put_json("resp_e", stored_json("key:k1", &json!({}), b"", &output));
        let got = s.get("resp_w", &master()).await.unwrap();
        assert_eq!(got.owner, "key:k1");
        let texts: Vec<_> = got.items.iter().map(|i| i["content"].clone()).collect();
        assert_eq!(texts, [json!("a"), json!("b"), json!("c")]);
        assert_eq!(s.get("resp_e", &master()).await.unwrap().items.len(), 1);
    }

    /// Many puts and deletes keep the eviction order bounded by the live entries, and a put
    /// after them costs no walk over the deleted ones.
    #[tokio::test]
    async fn deletes_and_replacements_leave_no_growing_order() {
        let s = store(1 << 30);
        for i in 0..50_000 {
            s.put(&format!("resp_{i}"), &entry("x"));
        }
        for i in 0..50_000 {
            assert!(s.delete(&format!("resp_{i}"), &master()).await);
        }
        for _ in 0..10_000 {
            s.put("resp_again", &entry("y"));
        }
        let (entries, order) = s.counts();
        assert_eq!(entries, 1);
        assert!(order <= 2 * entries + 64, "{order} ids in the order");
        assert!(s.get("resp_again", &master()).await.is_some());
    }
}
