//! Stats: every request leaves a [`RequestRecord`]; records go through a bounded channel to an
//! aggregator that folds them into per-minute and per-hour counters and writes them to the store
//! in batches. The request path never waits for the store: when the channel is full the record is
//! dropped and counted.

mod aggregator;
pub mod counters;
pub(crate) mod embedded;
pub mod metrics;
mod redis;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use self::aggregator::{Msg, aggregate};
pub use self::counters::Counters;
pub use self::embedded::EmbeddedStore;
pub use self::redis::RedisStore;
use crate::config::Config;
use crate::domain::RequestRecord;
use crate::reports::{Overview, SeriesPoint, StoreHealth, UsageRow};

const CHANNEL_CAPACITY: usize = 65_536;
/// How many per-minute and per-hour buckets are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub minutes: u64,
    pub hours: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            minutes: 25 * 60,
            hours: 30 * 24,
        }
    }
}

impl Retention {
    pub fn from_config(config: &crate::config::StoreConfig) -> Retention {
        Retention {
            minutes: config.minute_retention.as_secs() / 60,
            hours: config.hour_retention.as_secs() / 3600,
        }
    }
}

/// The window a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Hour,
    Day,
    Week,
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "1h" => Some(Window::Hour),
            "24h" | "1d" => Some(Window::Day),
            "7d" => Some(Window::Week),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
        }
    }

    /// The buckets it spans: per-minute for an hour, per-hour otherwise.
    fn buckets(self, now_ms: u64) -> (Granularity, std::ops::RangeInclusive<u64>) {
        let minute = now_ms / 60_000;
        let hour = minute / 60;
        match self {
            Window::Hour => (Granularity::Minute, minute - 59..=minute),
            Window::Day => (Granularity::Hour, hour - 23..=hour),
            Window::Week => (Granularity::Hour, hour - 167..=hour),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Minute,
    Hour,
}

impl Granularity {
    pub fn seconds(self) -> u64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3600,
        }
    }
}

/// A dimension's key, `kind:value` (built without the formatting machinery: this runs per request).
fn dim(kind: &str, value: &str) -> String {
    let mut key = String::with_capacity(kind.len() + value.len());
    key.push_str(kind);
    key.push_str(value);
    key
}

/// What one flush adds: counters per (granularity, bucket, dimension), and the new log entries.
#[derive(Debug, Default)]
pub struct Delta {
    /// foldhash: hashing these keys with the default SipHash was half the cost of adding a record.
    pub counters: HashMap<(Granularity, u64, String), Counters, foldhash::fast::RandomState>,
    /// The batch's newest records, oldest first: no more than the request log keeps, since older
    /// ones would be trimmed off it at once (a busy second holds tens of thousands of requests).
    pub recent: VecDeque<RequestRecord>,
    /// How many requests the batch counts, logged or not.
    pub records: u64,
}

impl Delta {
    /// Counts a request, and keeps it for the request log among the newest `log_cap`.
    pub fn add(&mut self, r: RequestRecord, log_cap: usize) {
        let minute = r.time_ms / 60_000;
        let dims = {
            let deployment = r.deployment_label();
            [
                Some("total".to_string()),
                Some(dim("provider:", &r.provider)),
                Some(dim("model:", r.model_label())),
                Some(dim("deployment:", &deployment)),
                Some(dim("key:", r.client_key.as_deref().unwrap_or("-"))),
                r.team.as_deref().map(|t| dim("team:", t)),
                r.user.as_deref().map(|u| dim("user:", u)),
            ]
        };
        for dim in dims.into_iter().flatten() {
            self.counters
                .entry((Granularity::Minute, minute, dim.clone()))
                .or_default()
                .add_record(&r);
            self.counters
                .entry((Granularity::Hour, minute / 60, dim))
                .or_default()
                .add_record(&r);
        }
        self.records += 1;
        if log_cap == 0 {
            return;
        }
        if self.recent.len() >= log_cap {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty() && self.records == 0
    }
}

/// Where stats live.
pub enum Store {
    Embedded(EmbeddedStore),
    Redis(RedisStore),
}

impl Store {
    pub async fn open(config: &Config) -> Result<Store, String> {
        match &config.store.redis_url {
            Some(url) => Ok(Store::Redis(
                RedisStore::connect(
                    url.expose(),
                    config.store.recent_requests,
                    Retention::from_config(&config.store),
                )
                .await?,
            )),
            None => Ok(Store::Embedded(EmbeddedStore::open(
                &config.server.data_dir,
                config.store.recent_requests,
                Retention::from_config(&config.store),
            )?)),
        }
    }

    /// How many requests the request log keeps.
    fn log_cap(&self) -> usize {
        match self {
            Store::Embedded(s) => s.recent_cap(),
            Store::Redis(s) => s.recent_cap(),
        }
    }

    /// The Redis connection when stats live in Redis.
    pub fn redis(&self) -> Option<&fred::prelude::Client> {
        match self {
            Store::Redis(s) => Some(s.client()),
            Store::Embedded(_) => None,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::Redis(_) => "redis",
        }
    }

    /// Applies a batch once: a batch id the store has already applied is skipped.
    async fn apply(&self, batch_id: &str, delta: &Delta) -> Result<(), String> {
        match self {
            Store::Embedded(s) => s.apply(delta).await,
            Store::Redis(s) => s.apply(batch_id, delta).await,
        }
    }

    async fn counters(
        &self,
        g: Granularity,
        buckets: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<(u64, HashMap<String, Counters>)>, String> {
        match self {
            Store::Embedded(s) => Ok(s.counters(g, buckets)),
            Store::Redis(s) => s.counters(g, buckets).await,
        }
    }

    async fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, String> {
        match self {
            Store::Embedded(s) => Ok(s.recent(limit)),
            Store::Redis(s) => s.recent(limit).await,
        }
    }

    pub async fn health(&self) -> StoreHealth {
        let (reachable, detail) = match self {
            Store::Embedded(s) => s.health(),
            Store::Redis(s) => s.health().await,
        };
        StoreHealth {
            backend: self.backend().into(),
            reachable,
            detail,
        }
    }

    async fn persist(&self) {
        if let Store::Embedded(s) = self {
            s.persist_now().await;
        }
    }
}

/// Filters for the request log.
#[derive(Debug, Clone, Default)]
pub struct RecentFilter {
    pub model: Option<String>,
    pub provider: Option<String>,
    /// `ok`, `error`, or an exact status code.
    pub status: Option<String>,
    /// A client session id (`X-Claude-Code-Session-Id`).
    pub session: Option<String>,
}

impl RecentFilter {
    fn matches(&self, r: &RequestRecord) -> bool {
        self.model.as_ref().is_none_or(|m| &r.model == m)
            && self.provider.as_ref().is_none_or(|p| &r.provider == p)
            && self
                .session
                .as_ref()
                .is_none_or(|s| r.session_id.as_ref() == Some(s))
            && self.status.as_deref().is_none_or(|s| match s {
                "ok" => !r.is_error(),
                "error" => r.is_error(),
                code => code.parse::<u16>().is_ok_and(|c| c == r.status),
            })
    }
}

/// The stats service: the request path's sink and the console's read API.
pub struct Stats {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    store: Arc<Store>,
    recording: std::sync::atomic::AtomicBool,
    /// The alerts finished requests may raise (and the gateway's other alerts go through).
    alerts: crate::alerts::Alerts,
}

impl Stats {
    /// Starts the aggregator; it flushes every `flush_interval`.
    pub fn start(store: Store, flush_interval: Duration) -> Arc<Stats> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let store = Arc::new(store);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(aggregate(
            rx,
            store.clone(),
            flush_interval,
            dropped.clone(),
        ));
        Arc::new(Stats {
            tx,
            dropped,
            store,
            recording: std::sync::atomic::AtomicBool::new(true),
            alerts: crate::alerts::Alerts::start(),
        })
    }

    /// Hands a record to the aggregator without waiting; a full channel drops it and counts the drop.
    pub fn record(&self, record: RequestRecord) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        if self.tx.try_send(Msg::Record(Box::new(record))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `store.stats = false`: requests are not recorded (metrics still are).
    pub fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Relaxed);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes everything recorded so far (tests, shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn alerts(&self) -> &crate::alerts::Alerts {
        &self.alerts
    }

    async fn window_counters(
        &self,
        window: Window,
    ) -> Result<(Granularity, Vec<(u64, HashMap<String, Counters>)>), String> {
        let (g, range) = window.buckets(crate::clock::now_ms());
        Ok((g, self.store.counters(g, range).await?))
    }

    pub async fn overview(&self, window: Window) -> Result<Overview, String> {
        let (_, buckets) = self.window_counters(window).await?;
        let mut total = Counters::default();
        for (_, dims) in &buckets {
            if let Some(c) = dims.get("total") {
                total.merge(c);
            }
        }
        Ok(overview_of(window, &total))
    }

    pub async fn timeseries(&self, window: Window) -> Result<Vec<SeriesPoint>, String> {
        let (g, buckets) = self.window_counters(window).await?;
        let (_, range) = window.buckets(crate::clock::now_ms());
        let by_bucket: HashMap<u64, &HashMap<String, Counters>> =
            buckets.iter().map(|(b, d)| (*b, d)).collect();
        Ok(range
            .map(|b| {
                let c = by_bucket
                    .get(&b)
                    .and_then(|d| d.get("total"))
                    .cloned()
                    .unwrap_or_default();
                SeriesPoint {
                    t: b * g.seconds(),
                    requests: c.requests,
                    errors: c.errors,
                    tokens: c.prompt_tokens + c.completion_tokens,
                    cost_usd: c.cost_usd(),
                    latency_p50_ms: c.latency_percentile(0.5),
                    latency_p95_ms: c.latency_percentile(0.95),
                }
            })
            .collect())
    }

    /// Usage per value of a dimension (`provider`, `model`, `deployment`, `key`), busiest first.
    pub async fn breakdown(
        &self,
        window: Window,
        dimension: &str,
    ) -> Result<Vec<UsageRow>, String> {
        let (_, buckets) = self.window_counters(window).await?;
        let prefix = format!("{dimension}:");
        let mut merged: HashMap<String, Counters> = HashMap::new();
        for (_, dims) in &buckets {
            for (dim, c) in dims {
                if let Some(name) = dim.strip_prefix(&prefix) {
                    merged.entry(name.to_string()).or_default().merge(c);
                }
            }
        }
        let mut rows: Vec<UsageRow> = merged
            .into_iter()
            .map(|(name, c)| UsageRow {
                name,
                requests: c.requests,
                errors: c.errors,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                cost_usd: c.cost_usd(),
                latency_p50_ms: c.latency_percentile(0.5),
                latency_p95_ms: c.latency_percentile(0.95),
                cache_hits: c.cache_hits,
                cache_misses: c.cache_misses,
                saved_usd: c.saved_usd(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(rows)
    }

    pub async fn recent(
        &self,
        limit: usize,
        filter: &RecentFilter,
    ) -> Result<Vec<RequestRecord>, String> {
        let all = self.store.recent(usize::MAX).await?;
        Ok(all
            .into_iter()
            .filter(|r| filter.matches(r))
            .take(limit)
            .collect())
    }
}

fn overview_of(window: Window, c: &Counters) -> Overview {
    Overview {
        window: window.label().into(),
        requests: c.requests,
        errors: c.errors,
        success_rate: if c.requests == 0 {
            1.0
        } else {
            (c.requests - c.errors) as f64 / c.requests as f64
        },
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        cost_usd: c.cost_usd(),
        latency_p50_ms: c.latency_percentile(0.5),
        latency_p95_ms: c.latency_percentile(0.95),
        latency_p99_ms: c.latency_percentile(0.99),
        ttft_p50_ms: c.ttft_percentile(0.5),
        cache_hits: c.cache_hits,
        cache_misses: c.cache_misses,
        saved_tokens: c.saved_tokens,
        saved_usd: c.saved_usd(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn record(id: &str) -> RequestRecord {
        RequestRecord {
            time_ms: crate::clock::now_ms(),
            request_id: id.to_string(),
            status: 200,
            ..Default::default()
        }
    }

    pub(super) fn ids(delta: &Delta) -> Vec<&str> {
        delta.recent.iter().map(|r| r.request_id.as_str()).collect()
    }

    #[test]
    fn a_batch_counts_every_request_and_keeps_only_the_newest_for_the_log() {
        let mut delta = Delta::default();
        for i in 0..10 {
            delta.add(record(&i.to_string()), 3);
        }
        assert_eq!(ids(&delta), ["7", "8", "9"]);
        assert_eq!(delta.records, 10);
        let total = delta
            .counters
            .iter()
            .find(|((g, _, dim), _)| *g == Granularity::Minute && dim == "total")
            .map(|(_, c)| c.requests);
        assert_eq!(total, Some(10));
    }
}
