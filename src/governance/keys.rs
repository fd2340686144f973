//! Virtual keys: secrets handed to clients instead of the master key, each with its own models,
//! limits, budget and expiry. Only a hash of each secret is stored.
//!
//! Lookups read an in-memory map (no store round trip on the request path). Embedded: the keys and
//! the spend live in `keys.json` under the data directory. Redis: in the hash `llmb:{llmb}:keys`
//! plus per-period spend hashes; every replica re-reads them each second, so a key created or
//! revoked on one replica works (or stops working) everywhere within about a second.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use fred::prelude::*;
use serde::{Deserialize, Serialize};

use super::period::{day_id, month_id};
use crate::shared::{CreatedKey, KeyInfo, KeySettings};

const FILE_NAME: &str = "keys.json";
const REDIS_KEYS: &str = "llmb:{llmb}:keys";
const REDIS_VERSION: &str = "llmb:{llmb}:keys:version";
/// Spend hashes live a little longer than the period they count.
const SPEND_TTL_SECONDS: i64 = 40 * 24 * 3600;
pub const SECRET_PREFIX: &str = "sk-llmb-";

/// A stored key: its settings and the hash of its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VirtualKey {
    pub id: String,
    pub prefix: String,
    /// blake3 of the secret, hex.
    pub hash: String,
    pub created_at: u64,
    #[serde(flatten)]
    pub settings: KeySettings,
}

impl VirtualKey {
    pub fn allows_model(&self, model: &str) -> bool {
        self.settings.models.is_empty() || self.settings.models.iter().any(|m| m == model)
    }

    pub fn is_expired(&self, now_s: u64) -> bool {
        self.settings.expires_at.is_some_and(|t| t <= now_s)
    }
}

/// Spend in USD per period (`d:<day>` / `m:<month>`) and key id.
type SpendBook = HashMap<String, HashMap<String, f64>>;

#[derive(Default, Serialize, Deserialize)]
struct FileData {
    keys: Vec<VirtualKey>,
    spend: SpendBook,
}

enum Backend {
    File(PathBuf),
    Redis(Client),
}

pub struct KeyRing {
    by_hash: ArcSwap<HashMap<blake3::Hash, Arc<VirtualKey>>>,
    spend: Mutex<SpendBook>,
    backend: Backend,
    spend_dirty: AtomicBool,
    /// The Redis key version last loaded (-1: none yet).
    version: AtomicI64,
}

fn now_s() -> u64 {
    crate::stats::now_ms() / 1000
}

fn day_key(now: u64) -> String {
    format!("d:{}", day_id(now))
}

fn month_key(now: u64) -> String {
    format!("m:{}", month_id(now))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyRing {
    pub async fn open(
        data_dir: &std::path::Path,
        redis: Option<Client>,
    ) -> Result<KeyRing, String> {
        let ring = match redis {
            Some(client) => KeyRing::new(Backend::Redis(client), Vec::new(), SpendBook::new()),
            None => {
                let path = data_dir.join(FILE_NAME);
                let data: FileData = match std::fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{}: unreadable: {e}", path.display()))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileData::default(),
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                };
                KeyRing::new(Backend::File(path), data.keys, data.spend)
            }
        };
        ring.refresh().await;
        Ok(ring)
    }

    fn new(backend: Backend, keys: Vec<VirtualKey>, spend: SpendBook) -> KeyRing {
        let ring = KeyRing {
            by_hash: ArcSwap::from_pointee(HashMap::new()),
            spend: Mutex::new(spend),
            backend,
            spend_dirty: AtomicBool::new(false),
            version: AtomicI64::new(-1),
        };
        ring.replace(keys);
        ring
    }

    fn replace(&self, keys: Vec<VirtualKey>) {
        let map = keys
            .into_iter()
            .filter_map(|k| Some((blake3::Hash::from_hex(&k.hash).ok()?, Arc::new(k))))
            .collect();
        self.by_hash.store(Arc::new(map));
    }

    fn all(&self) -> Vec<VirtualKey> {
        self.by_hash
            .load()
            .values()
            .map(|k| (**k).clone())
            .collect()
    }

    /// The key whose secret this is. Looks up by hash, so the secret is never compared directly.
    pub fn find(&self, secret: &str) -> Option<Arc<VirtualKey>> {
        self.by_hash
            .load()
            .get(&blake3::hash(secret.as_bytes()))
            .cloned()
    }

    pub fn get(&self, id: &str) -> Option<Arc<VirtualKey>> {
        self.by_hash.load().values().find(|k| k.id == id).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.load().is_empty()
    }

    pub async fn create(&self, settings: KeySettings) -> Result<CreatedKey, String> {
        let settings = validate(settings)?;
        let id = format!("key_{}", random_hex(8));
        let (secret, key) = new_secret(id, now_s(), settings);
        self.save(key.clone()).await?;
        Ok(CreatedKey {
            info: self.info(&key),
            key: secret,
        })
    }

    /// A new secret for the same key; the old one stops working.
    pub async fn rotate(&self, id: &str) -> Result<Option<CreatedKey>, String> {
        let Some(old) = self.get(id) else {
            return Ok(None);
        };
        let (secret, key) = new_secret(old.id.clone(), old.created_at, old.settings.clone());
        self.save(key.clone()).await?;
        Ok(Some(CreatedKey {
            info: self.info(&key),
            key: secret,
        }))
    }

    pub async fn revoke(&self, id: &str) -> Result<bool, String> {
        let mut keys = self.all();
        let before = keys.len();
        keys.retain(|k| k.id != id);
        if keys.len() == before {
            return Ok(false);
        }
        match &self.backend {
            Backend::File(_) => {
                self.replace(keys);
                self.write_file().await?;
            }
            Backend::Redis(client) => {
                let _: i64 = client.hdel(REDIS_KEYS, id).await.map_err(redis_error)?;
                let _: i64 = client.incr(REDIS_VERSION).await.map_err(redis_error)?;
                self.replace(keys);
            }
        }
        Ok(true)
    }

    async fn save(&self, key: VirtualKey) -> Result<(), String> {
        let mut keys = self.all();
        keys.retain(|k| k.id != key.id);
        match &self.backend {
            Backend::File(_) => {
                keys.push(key);
                self.replace(keys);
                self.write_file().await
            }
            Backend::Redis(client) => {
                let json = serde_json::to_string(&key).expect("a key serialises");
                let _: i64 = client
                    .hset(REDIS_KEYS, (key.id.as_str(), json))
                    .await
                    .map_err(redis_error)?;
                let _: i64 = client.incr(REDIS_VERSION).await.map_err(redis_error)?;
                keys.push(key);
                self.replace(keys);
                Ok(())
            }
        }
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        let mut keys: Vec<KeyInfo> = self.by_hash.load().values().map(|k| self.info(k)).collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        keys
    }

    pub fn info(&self, key: &VirtualKey) -> KeyInfo {
        let (today, month) = self.spend(&key.id);
        KeyInfo {
            id: key.id.clone(),
            prefix: key.prefix.clone(),
            settings: key.settings.clone(),
            created_at: key.created_at,
            spend_today_usd: today,
            spend_month_usd: month,
        }
    }

    /// Spend today and this month (UTC), as this replica last saw it.
    pub fn spend(&self, id: &str) -> (f64, f64) {
        let now = now_s();
        let book = self.spend.lock().unwrap();
        let get = |period: String| {
            book.get(&period)
                .and_then(|p| p.get(id))
                .copied()
                .unwrap_or(0.0)
        };
        (get(day_key(now)), get(month_key(now)))
    }

    /// Adds a finished request's cost. Redis: written in the background, off the request path.
    pub fn charge(&self, id: &str, usd: f64) {
        if usd <= 0.0 {
            return;
        }
        let now = now_s();
        let periods = [day_key(now), month_key(now)];
        {
            let mut book = self.spend.lock().unwrap();
            for p in &periods {
                *book
                    .entry(p.clone())
                    .or_default()
                    .entry(id.to_string())
                    .or_default() += usd;
            }
        }
        match &self.backend {
            Backend::File(_) => self.spend_dirty.store(true, Ordering::Release),
            Backend::Redis(client) => {
                let client = client.clone();
                let id = id.to_string();
                tokio::spawn(async move {
                    for p in periods {
                        let key = format!("llmb:{{llmb}}:spend:{p}");
                        let added: Result<f64, _> = client.hincrbyfloat(&key, &id, usd).await;
                        let expired: Result<bool, _> =
                            client.expire(&key, SPEND_TTL_SECONDS, None).await;
                        if let Err(e) = added.map(drop).and(expired.map(drop)) {
                            tracing::warn!(error = %e.details(), "cannot record a virtual key's spend in Redis");
                        }
                    }
                });
            }
        }
    }

    /// Re-reads keys and spend from Redis; writes the spend file when it changed (embedded).
    pub async fn refresh(&self) {
        match &self.backend {
            Backend::File(_) => {
                if self.spend_dirty.swap(false, Ordering::AcqRel)
                    && let Err(e) = self.write_file().await
                {
                    tracing::error!(error = %e, "cannot write the keys file");
                    self.spend_dirty.store(true, Ordering::Release);
                }
            }
            Backend::Redis(client) => {
                if let Err(e) = self.refresh_redis(client).await {
                    tracing::warn!(error = %e, "cannot refresh virtual keys from Redis; using the last copy");
                }
            }
        }
    }

    async fn refresh_redis(&self, client: &Client) -> Result<(), String> {
        let version: Option<i64> = client.get(REDIS_VERSION).await.map_err(redis_error)?;
        let version = version.unwrap_or(0);
        if version != self.version.load(Ordering::Acquire) {
            let stored: HashMap<String, String> =
                client.hgetall(REDIS_KEYS).await.map_err(redis_error)?;
            let keys = stored
                .values()
                .filter_map(|json| serde_json::from_str::<VirtualKey>(json).ok())
                .collect();
            self.replace(keys);
            self.version.store(version, Ordering::Release);
        }
        let now = now_s();
        let mut fresh = SpendBook::new();
        for p in [day_key(now), month_key(now)] {
            let spend: HashMap<String, f64> = client
                .hgetall(format!("llmb:{{llmb}}:spend:{p}"))
                .await
                .map_err(redis_error)?;
            fresh.insert(p, spend);
        }
        *self.spend.lock().unwrap() = fresh;
        Ok(())
    }

    async fn write_file(&self) -> Result<(), String> {
        let Backend::File(path) = &self.backend else {
            return Ok(());
        };
        let data = FileData {
            keys: self.all(),
            spend: {
                let now = now_s();
                let keep = [day_key(now), month_key(now)];
                let book = self.spend.lock().unwrap();
                book.iter()
                    .filter(|(p, _)| keep.contains(p))
                    .map(|(p, v)| (p.clone(), v.clone()))
                    .collect()
            },
        };
        let bytes = serde_json::to_vec_pretty(&data).expect("keys serialise");
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            crate::stats::embedded::write_atomically(&path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Keeps the ring current: every second from Redis, or writes the spend file when embedded.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let ring = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(ring) = ring.upgrade() else { return };
                ring.refresh().await;
            }
        });
    }
}

fn new_secret(id: String, created_at: u64, settings: KeySettings) -> (String, VirtualKey) {
    let secret = format!("{SECRET_PREFIX}{}", random_hex(24));
    let key = VirtualKey {
        id,
        prefix: format!("{}…", &secret[..SECRET_PREFIX.len() + 4]),
        hash: blake3::hash(secret.as_bytes()).to_hex().to_string(),
        created_at,
        settings,
    };
    (secret, key)
}

fn validate(mut s: KeySettings) -> Result<KeySettings, String> {
    s.name = s.name.trim().to_string();
    if s.name.is_empty() || s.name.len() > 100 {
        return Err("`name` must be 1 to 100 characters".into());
    }
    s.models.retain(|m| !m.trim().is_empty());
    if s.rpm == Some(0) || s.tpm == Some(0) {
        return Err("`rpm` and `tpm` must be at least 1 (leave them out for no limit)".into());
    }
    if let Some(b) = s.budget_usd
        && !(b.is_finite() && b >= 0.0)
    {
        return Err("`budget_usd` must be a non-negative number".into());
    }
    if let Some(t) = s.expires_at
        && t <= now_s()
    {
        return Err("`expires_at` is in the past".into());
    }
    Ok(s)
}

fn redis_error(e: fred::error::Error) -> String {
    format!("Redis: {}", e.details())
}
