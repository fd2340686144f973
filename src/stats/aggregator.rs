//! The aggregator: the one task that takes the request path's records from the channel, folds
//! them into batches, writes the batches to the store once each (kept and replayed while the store
//! is unreachable or failing over), and has the embedded store's file written.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Delta, Store};
use crate::domain::RequestRecord;

pub(super) enum Msg {
    Record(Box<RequestRecord>),
    Flush(oneshot::Sender<()>),
}

/// How often the embedded store writes its file, at most.
const PERSIST_EVERY: Duration = Duration::from_secs(5);

/// How many unwritten batches are kept while the store is unreachable (one per flush interval).
const MAX_UNSENT_BATCHES: usize = 100_000;

pub(super) async fn aggregate(
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
    use crate::stats::tests::{ids, record};
    use crate::stats::{EmbeddedStore, RecentFilter, Retention, Stats};

    async fn logged(stats: &Stats) -> Vec<String> {
        let recent = stats.recent(10, &RecentFilter::default()).await.unwrap();
        recent.into_iter().map(|r| r.request_id).collect()
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
