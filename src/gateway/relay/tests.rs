use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::providers::openai_compatible::PassthroughStream;

fn relay(body: &'static str) -> SseRelay<ChatTranslator> {
    let upstream: Upstream = Box::pin(futures_util::stream::iter([Ok(Bytes::from(body))]));
    SseRelay::new(
        (upstream, Quiet::new(Duration::from_secs(5))),
        ChatTranslator::OpenAi(PassthroughStream::new(true)),
        "m".into(),
        0,
    )
}

const GOOD_THEN_GARBLED: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"kept\"}}]}\n\ndata: {\"choices\":[{\"ind\n\n";

#[tokio::test]
async fn events_before_a_failure_in_the_same_read_reach_the_client_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::config::Config::default();
    config.server.data_dir = dir.path().into();
    let store = crate::stats::Store::open(&config).await.unwrap();
    let stats = crate::stats::Stats::start(store, Duration::from_secs(1));
    let mut r = relay(GOOD_THEN_GARBLED);
    r.recording = Some(Recording::start(
        stats,
        Arc::new(crate::providers::catalogue::Catalogue::builtin()),
        "req",
        true,
    ));
    let first = r.next().await.unwrap().expect("the good event");
    assert!(String::from_utf8_lossy(&first).contains("kept"));
    assert!(r.next().await.is_err(), "then the failure");
}

#[tokio::test]
async fn before_the_reply_starts_a_failure_leaves_nothing_sent_to_fail_over() {
    let mut r = relay(GOOD_THEN_GARBLED);
    assert!(r.next().await.is_err());
}

#[tokio::test]
async fn a_fast_upstream_is_relayed_in_bounded_writes() {
    const EVENT: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word\"}}]}\n\n";
    let events = (0..20_000).map(|_| Ok(Bytes::from_static(EVENT.as_bytes())));
    let done = std::iter::once(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
    let upstream: Upstream = Box::pin(futures_util::stream::iter(events.chain(done)));
    let mut r = SseRelay::new(
        (upstream, Quiet::new(Duration::from_secs(5))),
        ChatTranslator::OpenAi(PassthroughStream::new(true)),
        "m".into(),
        0,
    );
    let (mut writes, mut largest) = (0, 0);
    while let Some(bytes) = r.next().await.unwrap() {
        writes += 1;
        largest = largest.max(bytes.len());
    }
    assert!(writes > 10, "{writes} writes");
    assert!(largest < GATHER_BYTES + 1024, "a write of {largest} bytes");
}

/// An upstream whose chunks arrive after the given gaps; a zero gap is a chunk the connection
/// has read but hands over only once it has been polled for nothing and run again.
struct Scripted {
    gaps: std::collections::VecDeque<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    polled: bool,
    empty_polls: Arc<AtomicUsize>,
}

impl Scripted {
    /// The relay and the count of its empty polls of the upstream.
    fn relay(
        gaps: impl IntoIterator<Item = Duration>,
    ) -> (SseRelay<ChatTranslator>, Arc<AtomicUsize>) {
        let empty_polls = Arc::new(AtomicUsize::new(0));
        let upstream = Scripted {
            gaps: gaps.into_iter().collect(),
            timer: None,
            polled: false,
            empty_polls: empty_polls.clone(),
        };
        let relay = SseRelay::new(
            (Box::pin(upstream), Quiet::new(Duration::from_secs(5))),
            ChatTranslator::OpenAi(PassthroughStream::new(true)),
            "m".into(),
            0,
        );
        (relay, empty_polls)
    }
}

impl Stream for Scripted {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let Some(&gap) = self.gaps.front() else {
            return std::task::Poll::Ready(None);
        };
        let arrived = if gap.is_zero() {
            std::mem::replace(&mut self.polled, true)
        } else {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(gap)));
            timer.as_mut().poll(cx).is_ready()
        };
        if !arrived {
            self.empty_polls.fetch_add(1, Ordering::Relaxed);
            if gap.is_zero() {
                cx.waker().wake_by_ref();
            }
            return std::task::Poll::Pending;
        }
        self.gaps.pop_front();
        (self.timer, self.polled) = (None, false);
        let chunk: &'static [u8] = if self.gaps.is_empty() {
            b"data: [DONE]\n\n"
        } else {
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w\"}}]}\n\n"
        };
        std::task::Poll::Ready(Some(Ok(Bytes::from_static(chunk))))
    }
}

#[tokio::test(start_paused = true)]
async fn events_spread_out_in_time_go_out_without_a_yield_each() {
    let events = 40;
    let (mut r, empty_polls) = Scripted::relay(vec![Duration::from_millis(10); events + 1]);
    let mut writes = 0;
    while r.next().await.unwrap().is_some() {
        writes += 1;
    }
    assert_eq!(writes, events + 1, "one write per event, then [DONE]");
    // Waiting for an event finds nothing once, and so does the look for a second one; a
    // yield before every write would make that three per event.
    let empty = empty_polls.load(Ordering::Relaxed);
    assert!(
        empty < events * 5 / 2,
        "{empty} empty polls for {events} events"
    );
}

#[tokio::test(start_paused = true)]
async fn a_burst_after_spaced_events_is_gathered_again() {
    let burst = 1_000;
    let gaps = [Duration::from_millis(10); 2]
        .into_iter()
        .chain(std::iter::repeat_n(Duration::ZERO, burst));
    let (mut r, _) = Scripted::relay(gaps);
    let mut writes = 0;
    while r.next().await.unwrap().is_some() {
        writes += 1;
    }
    assert!(
        writes < 30,
        "{writes} writes for {burst} events that came at once"
    );
}
