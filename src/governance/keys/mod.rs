//! Virtual keys: secrets handed to clients instead of the master key, each with its own models,
//! limits, budget and expiry. Only a hash of each secret is stored.
//!
//! Lookups read an in-memory map (no store round trip on the request path for a known key).
//! Embedded: the keys and the spend live in `keys.json` under the data directory. Redis: in the
//! hash `llmb:{llmb}:keys` plus per-period spend hashes. Every change is announced on the channel
//! `llmb:{llmb}:keys:changed`; each replica listens on a connection of its own and re-reads the
//! keys when a message arrives, and re-reads keys and spend every second in any case. A secret
//! that looks like a virtual key but is not in the map waits for a re-read that started after it
//! arrived (see [`KeyRing::find_fresh`]), so a key works on every replica as soon as its creation
//! returns. How replicas keep each other current is in [`sync`].

mod sync;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self::sync::{FORCED_READ_GAP, Shared, announce, listen};
use crate::calendar::{day_id, month_id};
use crate::domain::{BudgetPeriod, CreatedKey, KeyInfo, KeySettings};
use arc_swap::ArcSwap;
use fred::prelude::*;
use serde::{Deserialize, Serialize};

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
    Redis(Shared),
}

pub struct KeyRing {
    by_hash: ArcSwap<HashMap<blake3::Hash, Arc<VirtualKey>>>,
    spend: Mutex<SpendBook>,
    backend: Backend,
    spend_dirty: AtomicBool,
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
            Some(client) => KeyRing::new(
                Backend::Redis(Shared::new(client)),
                Vec::new(),
                SpendBook::new(),
            ),
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
        let (secret, key) = new_secret(id, crate::clock::now_s(), settings);
        self.save(key.clone()).await?;
        Ok(CreatedKey {
            info: self.info(&key),
            key: secret,
        })
    }

    /// A new secret for the same key; the old one stops working.
    pub async fn rotate(&self, id: &str) -> Result<Option<CreatedKey>, String> {
        self.catch_up().await;
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
        self.catch_up().await;
        if self.get(id).is_none() {
            return Ok(false);
        }
        match &self.backend {
            Backend::File(_) => {
                self.replace(self.all().into_iter().filter(|k| k.id != id).collect());
                self.write_file().await?;
            }
            Backend::Redis(shared) => {
                let client = &shared.client;
                let _: i64 = client.hdel(REDIS_KEYS, id).await.map_err(redis_error)?;
                let version: i64 = client.incr(REDIS_VERSION).await.map_err(redis_error)?;
                {
                    let _map = shared.lock.lock().await;
                    self.replace(self.all().into_iter().filter(|k| k.id != id).collect());
                }
                announce(client, version).await;
            }
        }
        Ok(true)
    }

    async fn save(&self, key: VirtualKey) -> Result<(), String> {
        let with_key = |key: VirtualKey| {
            let mut keys = self.all();
            keys.retain(|k| k.id != key.id);
            keys.push(key);
            keys
        };
        match &self.backend {
            Backend::File(_) => {
                self.replace(with_key(key));
                self.write_file().await
            }
            Backend::Redis(shared) => {
                let client = &shared.client;
                let json = serde_json::to_string(&key).expect("a key serialises");
                let _: i64 = client
                    .hset(REDIS_KEYS, (key.id.as_str(), json))
                    .await
                    .map_err(redis_error)?;
                let version: i64 = client.incr(REDIS_VERSION).await.map_err(redis_error)?;
                {
                    let _map = shared.lock.lock().await;
                    self.replace(with_key(key));
                }
                announce(client, version).await;
                Ok(())
            }
        }
    }

    /// With Redis: reads the keys now, so that a change made on another replica a moment ago is
    /// seen (a failed read leaves the map as it was).
    async fn catch_up(&self) {
        if let Backend::Redis(shared) = &self.backend {
            let _ = self.read_keys(shared).await;
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
        let now = crate::clock::now_s();
        let book = self.spend.lock().unwrap();
        let get = |period: String| {
            book.get(&period)
                .and_then(|p| p.get(id))
                .copied()
                .unwrap_or(0.0)
        };
        (get(day_key(now)), get(month_key(now)))
    }

    /// The keys with a budget (not expired, budget above zero): id, budget in USD and period.
    pub fn budgeted(&self, now_s: u64) -> Vec<(String, f64, BudgetPeriod)> {
        self.by_hash
            .load()
            .values()
            .filter(|k| !k.is_expired(now_s))
            .filter_map(|k| {
                let budget = k.settings.budget_usd.filter(|b| *b > 0.0)?;
                Some((k.id.clone(), budget, k.settings.budget_period))
            })
            .collect()
    }

    /// Adds a finished request's cost. Redis: written in the background, off the request path.
    pub fn charge(&self, id: &str, usd: f64) {
        if usd <= 0.0 {
            return;
        }
        let now = crate::clock::now_s();
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
            Backend::Redis(shared) => {
                let client = shared.client.clone();
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
            Backend::Redis(shared) => {
                let read = match self.read_keys(shared).await {
                    Ok(()) => self.read_spend(&shared.client).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = read {
                    tracing::warn!(error = %e, "cannot refresh virtual keys from Redis; using the last copy");
                }
            }
        }
    }

    async fn read_spend(&self, client: &Client) -> Result<(), String> {
        let now = crate::clock::now_s();
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
                let now = crate::clock::now_s();
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
    /// With Redis, also reads the keys when asked to (unknown secrets, change messages) and listens
    /// for the changes other replicas announce.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        if let Backend::Redis(shared) = &self.backend {
            tokio::spawn(listen(weak.clone(), shared.client.clone_new()));
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let Some(ring) = weak.upgrade() else { return };
                let asked = async {
                    match &ring.backend {
                        Backend::Redis(shared) => shared.wanted.notified().await,
                        Backend::File(_) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => ring.refresh().await,
                    () = asked => {
                        if let Backend::Redis(shared) = &ring.backend
                            && let Err(e) = ring.read_keys(shared).await
                        {
                            tracing::debug!(error = %e, "cannot read virtual keys from Redis");
                        }
                        drop(ring);
                        tokio::time::sleep(FORCED_READ_GAP).await;
                    }
                }
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
        && t <= crate::clock::now_s()
    {
        return Err("`expires_at` is in the past".into());
    }
    s.team = s.team.filter(|t| !t.trim().is_empty());
    if s.team.as_ref().is_some_and(|t| t.len() > 64) {
        return Err("`team` must be a team's name".into());
    }
    Ok(s)
}

fn redis_error(e: fred::error::Error) -> String {
    format!("Redis: {}", e.details())
}
