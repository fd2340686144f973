//! Stats: every request leaves a [`RequestRecord`]; records go through a bounded channel to an
//! aggregator that folds them into per-minute and per-hour counters and writes them to the store
//! in batches. The request path never waits for the store: when the channel is full the record is
//! dropped and counted.

pub mod counters;
pub(crate) mod embedded;
pub mod metrics;
mod redis;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use self::counters::Counters;
pub use self::embedded::EmbeddedStore;
pub use self::redis::RedisStore;
use crate::config::Config;
use crate::shared::{Overview, RequestRecord, SeriesPoint, StoreHealth, UsageRow};

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

enum Msg {
    Record(Box<RequestRecord>),
    Flush(oneshot::Sender<()>),
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

/// How often the embedded store writes its file, at most.
const PERSIST_EVERY: Duration = Duration::from_secs(5);

/// How many unwritten batches are kept while the store is unreachable (one per flush interval).
const MAX_UNSENT_BATCHES: usize = 100_000;

async fn aggregate(
    mut rx: mpsc::Receiver<Msg>,
    store: Arc<Store>,
    every: Duration,
    dropped: Arc<AtomicU64>,
) {
    let log_cap = store.log_cap();
    let mut pending = Delta::default();
    let mut unsent = Unsent::new(dropped, log_cap);
    let mut last_persist = std::time::Instant::now();
    // The embedded store's file is written in a task of its own: a disk slow to sync (seconds,
    // on a busy machine) must not hold back the batches, the request log and the counters.
    let mut persisting: Option<tokio::task::JoinHandle<()>> = None;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Record(r)) => pending.add(*r, log_cap),
                Some(Msg::Flush(done)) => {
                    // Take whatever is already queued before writing.
                    while let Ok(Msg::Record(r)) = rx.try_recv() {
                        pending.add(*r, log_cap);
                    }
                    unsent.push(std::mem::take(&mut pending));
                    unsent.write(&store).await;
                    finish_persisting(&mut persisting).await;
                    store.persist().await;
                    let _ = done.send(());
                }
                None => {
                    unsent.push(pending);
                    unsent.write(&store).await;
                    finish_persisting(&mut persisting).await;
                    store.persist().await;
                    return;
                }
            },
            _ = tick.tick() => {
                unsent.push(std::mem::take(&mut pending));
                unsent.write(&store).await;
                // The embedded store's file is rewritten at most every few seconds (when changed),
                // one write at a time.
                if last_persist.elapsed() >= PERSIST_EVERY
                    && persisting.as_ref().is_none_or(|p| p.is_finished())
                {
                    let store = store.clone();
                    persisting = Some(tokio::spawn(async move { store.persist().await }));
                    last_persist = std::time::Instant::now();
                }
            }
        }
    }
}

/// Waits for the file write in progress, if any.
async fn finish_persisting(persisting: &mut Option<tokio::task::JoinHandle<()>>) {
    if let Some(write) = persisting.take() {
        let _ = write.await;
    }
}

/// Batches not yet written, oldest first. Each keeps its id across retries, so that a batch the
/// store applied although the reply was lost (a connection cut after the write) is not counted twice.
///
/// Redis acknowledges a write before its replicas have it: a master that dies right after a write
/// can take the last batches with it when a replica takes over (Cluster or Sentinel failover). So
/// the batches written in the last [`REPLAY_WINDOW`] are kept, and when a write fails they are
/// queued again in front of the unwritten ones. Their ids make the replay a no-op where the
/// replica already had them.
struct Unsent {
    batches: VecDeque<(String, Delta)>,
    written: VecDeque<(std::time::Instant, String, Delta)>,
    prefix: u64,
    next: u64,
    dropped: Arc<AtomicU64>,
    log_cap: usize,
}

/// How long a written batch is kept for a replay after a failover (replication lag is far shorter).
const REPLAY_WINDOW: Duration = Duration::from_secs(5);

impl Unsent {
    fn new(dropped: Arc<AtomicU64>, log_cap: usize) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(crate::clock::now_ms());
        Unsent {
            batches: Default::default(),
            written: Default::default(),
            prefix: h.finish(),
            next: 0,
            dropped,
            log_cap,
        }
    }

    fn push(&mut self, delta: Delta) {
        if delta.is_empty() {
            return;
        }
        self.next += 1;
        self.batches
            .push_back((format!("{:016x}-{}", self.prefix, self.next), delta));
        if self.batches.len() > MAX_UNSENT_BATCHES
            && let Some((_, lost)) = self.batches.pop_front()
        {
            self.dropped.fetch_add(lost.records, Ordering::Relaxed);
        }
        self.trim_waiting_logs();
    }

    /// While the store is unreachable batches pile up, but only the newest `log_cap` records can
    /// reach the request log: older batches keep their counters and let go of their records.
    fn trim_waiting_logs(&mut self) {
        let mut kept = 0;
        for (_, delta) in self.batches.iter_mut().rev() {
            if kept < self.log_cap {
                kept += delta.recent.len();
            } else if delta.recent.is_empty() {
                break; // the older ones were let go of before
            } else {
                delta.recent = VecDeque::new();
            }
        }
    }

    async fn write(&mut self, store: &Store) {
        let replays = store.redis().is_some();
        while let Some((id, delta)) = self.batches.front() {
            if let Err(e) = store.apply(id, delta).await {
                let replayed = self.written.len();
                while let Some((_, id, delta)) = self.written.pop_back() {
                    self.batches.push_front((id, delta));
                }
                tracing::warn!(error = %e, waiting = self.batches.len(), replayed, "stats store write failed; keeping the batch for the next flush");
                return;
            }
            let Some((id, delta)) = self.batches.pop_front() else {
                break;
            };
            if replays {
                let now = std::time::Instant::now();
                while self
                    .written
                    .front()
                    .is_some_and(|(at, _, _)| now.duration_since(*at) > REPLAY_WINDOW)
                {
                    self.written.pop_front();
                }
                self.written.push_back((now, id, delta));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> RequestRecord {
        RequestRecord {
            time_ms: crate::clock::now_ms(),
            request_id: id.to_string(),
            status: 200,
            ..Default::default()
        }
    }

    async fn logged(stats: &Stats) -> Vec<String> {
        let recent = stats.recent(10, &RecentFilter::default()).await.unwrap();
        recent.into_iter().map(|r| r.request_id).collect()
    }

    fn ids(delta: &Delta) -> Vec<&str> {
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

    #[test]
    fn waiting_batches_let_go_of_records_the_log_cannot_keep() {
        let mut unsent = Unsent::new(Arc::new(AtomicU64::new(0)), 3);
        for batch in 0..5 {
            let mut delta = Delta::default();
            for i in 0..2 {
                delta.add(record(&format!("{batch}.{i}")), 3);
            }
            unsent.push(delta);
        }
        let logs: Vec<Vec<&str>> = unsent.batches.iter().map(|(_, d)| ids(d)).collect();
        let empty: Vec<&str> = Vec::new();
        assert_eq!(
            logs,
            [
                empty.clone(),
                empty.clone(),
                empty,
                vec!["3.0", "3.1"],
                vec!["4.0", "4.1"]
            ]
        );
        // Their counters stay: every request is still counted once written.
        assert!(
            unsent
                .batches
                .iter()
                .all(|(_, d)| d.records == 2 && !d.counters.is_empty())
        );
    }

    /// A disk that does not answer (here: the stats file's temporary twin is a FIFO nobody reads,
    /// so opening it blocks) holds back the file only, never the request log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_file_write_does_not_hold_back_the_request_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), 100, Retention::default()).unwrap();
        let fifo = dir.path().join("stats.json.tmp");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let stats = Stats::start(Store::Embedded(store), Duration::from_millis(50));

        stats.record(record("before"));
        // The first write of the file starts after PERSIST_EVERY and blocks on the FIFO.
        tokio::time::sleep(PERSIST_EVERY + Duration::from_millis(500)).await;
        let first = logged(&stats).await;
        stats.record(record("during"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while logged(&stats).await.len() < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let second = logged(&stats).await;

        // Let every write finish so that the runtime can stop: opened for reading and writing, the
        // FIFO has a reader at once, so a writer blocked in opening it (this one, or a later one:
        // syncing a FIFO fails, so the file stays dirty and is written again) goes on into the
        // pipe's buffer. The handle stays open for the rest of the process; once the FIFO is
        // removed, later writes make a plain file.
        let unblock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        std::fs::remove_file(&fifo).unwrap();
        std::mem::forget(unblock);
        assert_eq!(first, ["before"]);
        assert_eq!(second, ["during", "before"]);
    }
}
