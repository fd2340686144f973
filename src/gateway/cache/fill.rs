//! Writing a reply to the cache as it goes to the client: its bytes are gathered (up to the
//! entry cap) and written when the reply has ended well, that is when the request's record says
//! it succeeded and the body ended without error. A reply cut short, failed midway, too large or
//! abandoned by its client is never written. The gathered bytes are the flight's [`Live`] reply,
//! which identical streaming requests follow as it arrives.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures_util::Stream;

use super::entry::{Entry, Form, Made, Meta};
use super::flight::{FlightGuard, Live, Started};
use super::key::Key;
use super::{Cache, Caching, chat};

/// Set by the request's record when the reply succeeded.
pub type Slot = Arc<OnceLock<Made>>;

pub struct Fill {
    cache: Arc<Cache>,
    key: Key,
    ttl: Duration,
    caching: Caching,
    /// Held until the entry is written (or given up), so that identical requests wait for it.
    flight: Option<FlightGuard>,
    slot: Slot,
}

impl Fill {
    pub(super) fn new(
        cache: Arc<Cache>,
        key: Key,
        ttl: Duration,
        caching: Caching,
        flight: Option<FlightGuard>,
    ) -> Fill {
        Fill {
            cache,
            key,
            ttl,
            caching,
            flight,
            slot: Arc::default(),
        }
    }

    /// Where the request's record says the reply succeeded.
    pub fn slot(&self) -> Slot {
        self.slot.clone()
    }

    /// The client's body, gathered on its way out.
    pub fn wrap(self, body: Body, stream: bool, include_usage: bool) -> Body {
        let cap = self.cache.config.max_entry_bytes;
        // A stream gathered into a whole reply is some times larger than the reply.
        let cap = if stream && self.caching == Caching::Chat {
            cap * 4
        } else {
            cap
        };
        let live = Live::new(self.cache.gathering.clone());
        if let Some(flight) = &self.flight {
            flight.started(Started {
                live: live.clone(),
                stream,
                include_usage,
                slot: self.slot.clone(),
            });
        }
        Body::from_stream(Tee {
            inner: body.into_data_stream(),
            gathering: Some(Gathering {
                fill: Some(self),
                live,
                cap,
                stream,
            }),
        })
    }
}

struct Gathering {
    /// Taken when the reply is written.
    fill: Option<Fill>,
    live: Arc<Live>,
    cap: usize,
    stream: bool,
}

impl Gathering {
    fn push(self, chunk: &Bytes) -> Option<Gathering> {
        self.live.push(chunk, self.cap).then_some(self)
    }

    /// The reply ended: written if it succeeded.
    fn finish(mut self) {
        let Some(fill) = self.fill.take() else { return };
        let Some(made) = fill.slot.get().cloned() else {
            self.live.end(false);
            return;
        };
        let body = self
            .live
            .with_bytes(|bytes| match (fill.caching, self.stream) {
                (Caching::Chat, true) => chat::stream_to_whole(bytes, &made.usage()),
                _ => Some(bytes.to_vec()),
            });
        let Some(body) = body.filter(|b| b.len() <= fill.cache.config.max_entry_bytes) else {
            self.live.end(false);
            return;
        };
        let form = if self.stream && fill.caching != Caching::Chat {
            Form::Stream
        } else {
            Form::Whole
        };
        let now = crate::clock::now_ms();
        let entry = Entry {
            meta: Meta {
                form,
                created_ms: now,
                expires_ms: now + fill.ttl.as_millis() as u64,
                made,
            },
            body: Bytes::from(body),
        };
        fill.cache.put(fill.key, entry);
        // Once the entry is in memory: the requests waiting for it find it.
        self.live.end(true);
        drop(fill.flight);
    }
}

impl Drop for Gathering {
    fn drop(&mut self) {
        // Not written (cut, failed, too large or abandoned): followers stop following.
        if self.fill.is_some() {
            self.live.end(false);
        }
    }
}

/// The client's body, passed on unchanged while its bytes are gathered.
struct Tee {
    inner: BodyDataStream,
    gathering: Option<Gathering>,
}

impl Drop for Tee {
    /// The client went away before the reply ended. Requests following the reply as it arrives
    /// must not break with it: the rest of the upstream reply is read for them (and written to
    /// the cache if it ends well), bounded as any reply is by the relay's timeouts.
    fn drop(&mut self) {
        let Some(gathering) = self.gathering.take() else {
            return;
        };
        if !gathering.live.is_followed() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = std::mem::replace(&mut self.inner, Body::empty().into_data_stream());
        runtime.spawn(async move {
            let mut rest = Tee {
                inner,
                gathering: Some(gathering),
            };
            while futures_util::StreamExt::next(&mut rest).await.is_some() {}
        });
    }
}

impl Stream for Tee {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = std::task::ready!(Pin::new(&mut self.inner).poll_next(cx));
        match &item {
            Some(Ok(chunk)) => self.gathering = self.gathering.take().and_then(|g| g.push(chunk)),
            Some(Err(_)) => self.gathering = None,
            None => {
                if let Some(g) = self.gathering.take() {
                    g.finish();
                }
            }
        }
        Poll::Ready(item)
    }
}
