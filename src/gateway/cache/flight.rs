//! Identical requests in flight: the first goes upstream (the leader); the others wait for the
//! entry its reply writes, or, when they stream a chat reply the way the leader does, follow its
//! stream as it arrives ([`Live`], [`Follow`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;

use super::fill::Slot;
use super::key::Key;
use super::{Cache, sse_headers};
use crate::error::ApiError;
use crate::gateway::record::Recording;
use crate::providers::sse;

/// The most the replies being gathered may hold together (a quarter of the cache's cap): past
/// it, a reply goes to its client without being gathered, so however many large streams are in
/// flight, what the cache holds stays bounded.
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A leader's reply as it goes to its client: the bytes so far, and how it ended.
pub struct Live {
    inner: Mutex<LiveInner>,
    grown: watch::Sender<()>,
    budget: Arc<Budget>,
}

struct LiveInner {
    bytes: Vec<u8>,
    /// `Some(true)`: ended and written to the cache; `Some(false)`: ended otherwise.
    end: Option<bool>,
}

impl Live {
    pub fn new(budget: Arc<Budget>) -> Arc<Live> {
        Arc::new(Live {
            inner: Mutex::new(LiveInner {
                bytes: Vec::new(),
                end: None,
            }),
            grown: watch::Sender::new(()),
            budget,
        })
    }

    /// Appends a chunk unless that makes more than `cap` bytes, or more than the budget of all
    /// replies being gathered (`false` then).
    pub fn push(&self, chunk: &[u8], cap: usize) -> bool {
        let mut inner = self.inner.lock().expect("live lock");
        if inner.bytes.len() + chunk.len() > cap || !self.budget.take(chunk.len()) {
            return false;
        }
        inner.bytes.extend_from_slice(chunk);
        drop(inner);
        self.grown.send_replace(());
        true
    }

    /// Runs `f` on the bytes so far.
    pub fn with_bytes<T>(&self, f: impl FnOnce(&[u8]) -> T) -> T {
        f(&self.inner.lock().expect("live lock").bytes)
    }

    /// Whether a request follows this reply as it arrives.
    pub fn is_followed(&self) -> bool {
        self.grown.receiver_count() > 0
    }

    pub fn end(&self, written: bool) {
        let mut inner = self.inner.lock().expect("live lock");
        if inner.end.is_none() {
            inner.end = Some(written);
        }
        drop(inner);
        self.grown.send_replace(());
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let held = self.inner.get_mut().map_or(0, |inner| inner.bytes.len());
        self.budget.give_back(held);
    }
}

/// The leader's reply has started.
#[derive(Clone)]
pub struct Started {
    pub live: Arc<Live>,
    pub stream: bool,
    pub include_usage: bool,
    /// Where the leader's record says what the reply cost.
    pub slot: Slot,
}

/// A flight's phase, as its followers see it: `None` until the leader's reply starts; closed
/// when the leader is done.
pub type Phase = watch::Receiver<Option<Started>>;

pub enum Joined {
    Leader(FlightGuard),
    Follower(Phase),
}

impl Cache {
    pub(super) fn join(self: &Arc<Self>, key: Key) -> Joined {
        let mut flights = self.flights.lock().expect("flights lock");
        if let Some(phase) = flights.get(&key) {
            return Joined::Follower(phase.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key, rx);
        Joined::Leader(FlightGuard {
            cache: self.clone(),
            key,
            tx: Some(tx),
        })
    }
}

/// Held by the leader until its entry is written (or given up): dropping it lets the followers
/// go on.
pub struct FlightGuard {
    cache: Arc<Cache>,
    key: Key,
    tx: Option<watch::Sender<Option<Started>>>,
}

impl FlightGuard {
    pub fn started(&self, started: Started) {
        if let Some(tx) = &self.tx {
            tx.send_replace(Some(started));
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let tx = self.tx.take().expect("dropped once");
        let mut flights = self.cache.flights.lock().expect("flights lock");
        if flights
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&tx.subscribe()))
        {
            flights.remove(&self.key);
        }
        drop(flights);
        // Dropping the sender wakes every follower.
        drop(tx);
    }
}

/// Waits (at most `wait`) until the leader's reply starts in a shape the follower can follow,
/// or the leader is done (`None`).
pub async fn started_or_done(
    phase: &mut Phase,
    wait: Duration,
    follows: impl Fn(&Started) -> bool,
) -> Option<Started> {
    let waiting = async {
        loop {
            if let Some(started) = phase.borrow_and_update().as_ref().filter(|s| follows(s)) {
                return Some(started.clone());
            }
            phase.changed().await.ok()?;
        }
    };
    tokio::time::timeout(wait, waiting).await.ok().flatten()
}

/// A follower streaming the leader's chat reply as it arrives; recorded as a hit when the leader's
/// reply was written, as failed midway otherwise.
pub struct Follow {
    pub started: Started,
    /// The longest wait for the leader's next bytes.
    pub idle: Duration,
}

struct Following {
    live: Arc<Live>,
    grown: watch::Receiver<()>,
    slot: Slot,
    idle: Duration,
    offset: usize,
    recording: Option<Recording>,
    finished: bool,
}

impl Follow {
    pub fn into_response(self, recording: Recording) -> Response {
        let following = Following {
            grown: self.started.live.grown.subscribe(),
            live: self.started.live,
            slot: self.started.slot,
            idle: self.idle,
            offset: 0,
            recording: Some(recording),
            finished: false,
        };
        let body = futures_util::stream::unfold(following, |mut f| async move {
            f.next()
                .await
                .map(|bytes| (Ok::<_, std::convert::Infallible>(bytes), f))
        });
        let mut response = Response::new(Body::from_stream(body));
        sse_headers(response.headers_mut());
        response
    }
}

impl Following {
    async fn next(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            let (chunk, end, closed) = {
                let inner = self.live.inner.lock().expect("live lock");
                let rest = &inner.bytes[self.offset.min(inner.bytes.len())..];
                let closed = inner.bytes.ends_with(sse::DONE);
                (
                    (!rest.is_empty()).then(|| Bytes::copy_from_slice(rest)),
                    inner.end,
                    closed,
                )
            };
            if let Some(chunk) = chunk {
                self.offset += chunk.len();
                return Some(chunk);
            }
            let recording = self.recording.take();
            match end {
                Some(true) => {
                    self.finished = true;
                    if let (Some(r), Some(made)) = (recording, self.slot.get()) {
                        r.hit(made);
                    }
                    return None;
                }
                Some(false) => return self.broke_off(recording, closed),
                None => self.recording = recording,
            }
            match tokio::time::timeout(self.idle, self.grown.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    let recording = self.recording.take();
                    return self.broke_off(recording, false);
                }
            }
        }
    }

    /// The leader's reply ended without being written: the stream ends with an error event and
    /// `[DONE]` unless the leader's own already closed it.
    fn broke_off(&mut self, recording: Option<Recording>, closed: bool) -> Option<Bytes> {
        self.finished = true;
        let error =
            ApiError::bad_gateway("the shared upstream reply this request followed broke off");
        if let Some(r) = recording {
            r.fail_midway(&error);
        } else {
            return None;
        }
        if closed {
            return None;
        }
        let mut out = Vec::new();
        sse::write_raw(&mut out, &error.to_json());
        out.extend_from_slice(sse::DONE);
        Some(Bytes::from(out))
    }
}
