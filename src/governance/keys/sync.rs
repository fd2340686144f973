//! Keeping replicas' key rings current with Redis: every change is announced on a channel each
//! replica listens to, and a secret a replica does not know waits for a read of the keys that
//! started after it arrived, shared with every request waiting at the same time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::prelude::*;
use tokio::sync::{Notify, broadcast, watch};

use super::{Backend, KeyRing, REDIS_KEYS, REDIS_VERSION, SECRET_PREFIX, VirtualKey, redis_error};

/// Carries the new version after every change to the keys.
const REDIS_CHANNEL: &str = "llmb:{llmb}:keys:changed";
/// How long a request with an unknown secret waits for a re-read before it is refused.
const LOOKUP_WAIT: Duration = Duration::from_secs(1);
/// The longest one re-read of the keys (or a subscription) may take.
const REDIS_WAIT: Duration = Duration::from_secs(2);
/// The shortest time between the end of one asked-for re-read and the start of the next.
///
/// It delays a re-read and never skips one: a request waits for a re-read that started after it
/// arrived, so a key whose creation returned before the request is found whenever Redis answers
/// within [`LOOKUP_WAIT`]; the gap only adds up to its length to such a request's wait. Skipping
/// instead (answering from a re-read that finished a moment ago) would refuse a key created just
/// after that re-read. What the gap bounds: however many unknown secrets arrive, each replica
/// issues at most one such re-read at a time and at most 1 / `FORCED_READ_GAP` per second.
pub(super) const FORCED_READ_GAP: Duration = Duration::from_millis(100);

/// The key ring's Redis state.
pub(super) struct Shared {
    pub(super) client: Client,
    /// Held while the keys are read from Redis and while a local change updates the map, so that a
    /// read that started earlier never replaces the map after a later one.
    pub(super) lock: tokio::sync::Mutex<()>,
    /// How many reads of the keys have started; the count taken by a read is its number.
    started: AtomicU64,
    /// The number of the last read that finished, whether it succeeded or not.
    finished: watch::Sender<u64>,
    /// Asks the refresh task for a read; requests made while one is pending count as one.
    pub(super) wanted: Notify,
    /// The Redis key version last loaded (-1: none yet).
    version: AtomicI64,
}

impl Shared {
    pub(super) fn new(client: Client) -> Shared {
        Shared {
            client,
            lock: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            finished: watch::Sender::new(0),
            wanted: Notify::new(),
            version: AtomicI64::new(-1),
        }
    }
}

impl KeyRing {
    /// Like [`KeyRing::find`]; with Redis, a secret that is not in the map waits (at most
    /// [`LOOKUP_WAIT`]) for a read of the keys that started after this call, then is looked up
    /// again. Callers arriving together share one read (see [`FORCED_READ_GAP`]).
    pub async fn find_fresh(&self, secret: &str) -> Option<Arc<VirtualKey>> {
        if let Some(key) = self.find(secret) {
            return Some(key);
        }
        let Backend::Redis(shared) = &self.backend else {
            return None;
        };
        if !looks_like_secret(secret) {
            return None;
        }
        let wanted = shared.started.load(Ordering::SeqCst) + 1;
        let mut finished = shared.finished.subscribe();
        shared.wanted.notify_one();
        let _ = tokio::time::timeout(LOOKUP_WAIT, finished.wait_for(|&n| n >= wanted)).await;
        self.find(secret)
    }

    /// Reads the keys from Redis (only the version when it has not moved) and tells the requests
    /// waiting in [`KeyRing::find_fresh`] that a read has finished.
    pub(super) async fn read_keys(&self, shared: &Shared) -> Result<(), String> {
        let _map = shared.lock.lock().await;
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        let read = async {
            let client = &shared.client;
            let version: Option<i64> = client.get(REDIS_VERSION).await.map_err(redis_error)?;
            let version = version.unwrap_or(0);
            if version != shared.version.load(Ordering::Acquire) {
                let stored: HashMap<String, String> =
                    client.hgetall(REDIS_KEYS).await.map_err(redis_error)?;
                let keys = stored
                    .values()
                    .filter_map(|json| serde_json::from_str::<VirtualKey>(json).ok())
                    .collect();
                self.replace(keys);
                shared.version.store(version, Ordering::Release);
            }
            Ok(())
        };
        let result = tokio::time::timeout(REDIS_WAIT, read)
            .await
            .unwrap_or_else(|_| Err("Redis: no answer in time".to_string()));
        shared.finished.send_replace(number);
        result
    }

    /// Asks the refresh task to read the keys (Redis only).
    pub(super) fn ask_for_read(&self) {
        if let Backend::Redis(shared) = &self.backend {
            shared.wanted.notify_one();
        }
    }
}

/// Tells the other replicas that the keys changed. A failure is only logged: they re-read within
/// a second anyway.
pub(super) async fn announce(client: &Client, version: i64) {
    let sent: Result<Result<i64, fred::error::Error>, tokio::time::error::Elapsed> =
        tokio::time::timeout(REDIS_WAIT, client.publish(REDIS_CHANNEL, version)).await;
    match sent {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e.details(), "cannot announce a virtual key change in Redis")
        }
        Err(_) => {
            tracing::warn!("cannot announce a virtual key change in Redis: no answer in time")
        }
    }
}

/// Listens for announced changes on a connection of its own (`subscriber`, not yet connected) and
/// asks the ring to read the keys for each. After every (re)connection it subscribes again and asks
/// for a read, which picks up changes announced while it was away. Reconnections follow the
/// client's reconnect policy (with its backoff); a failed subscription is retried once a second,
/// and so is the connection when its task has ended (fred does not retry a first connection that
/// fails). Stops when the ring is dropped.
pub(super) async fn listen(ring: Weak<KeyRing>, subscriber: Client) {
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let mut connection = subscriber.connect();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscribed = false;
    loop {
        if connection.is_finished() {
            subscribed = false;
            connection = subscriber.connect();
        }
        if !subscribed {
            subscribed = matches!(
                tokio::time::timeout(REDIS_WAIT, subscriber.subscribe(REDIS_CHANNEL)).await,
                Ok(Ok(()))
            );
            if subscribed && let Some(ring) = ring.upgrade() {
                ring.ask_for_read();
            }
        }
        tokio::select! {
            message = messages.recv() => match message {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(ring) = ring.upgrade() {
                        ring.ask_for_read();
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            reconnected = reconnects.recv() => match reconnected {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => subscribed = false,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {}
        }
        if ring.strong_count() == 0 {
            break;
        }
    }
    let _ = tokio::time::timeout(REDIS_WAIT, subscriber.quit()).await;
}

/// Whether `secret` has the shape of the secrets [`new_secret`] makes.
fn looks_like_secret(secret: &str) -> bool {
    secret
        .strip_prefix(SECRET_PREFIX)
        .is_some_and(|rest| rest.len() == 48 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}
