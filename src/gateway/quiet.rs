//! A reply's timeouts, kept by one timer per reply: the idle timeout between the upstream's
//! chunks, the reply's total timeout, and a stream's first-event timeout.
//!
//! A timeout per chunk put a timer into the runtime's wheel and took it out again for every
//! event of every stream. Here the timer is set once and moved only when it fires: if the
//! upstream was heard from since, it is set again for the rest of the allowance, never past the
//! reply's deadline.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

pub struct Quiet {
    timer: Pin<Box<Sleep>>,
    heard: Instant,
    limit: Duration,
    /// When the whole reply must be in, and the allowance that set it.
    deadline: Option<(Instant, Duration)>,
    /// When the reply's first event must have come, until it has.
    first: Option<(Instant, Duration)>,
}

impl Quiet {
    /// At most `limit` of silence between chunks, however long the reply takes.
    pub fn new(limit: Duration) -> Quiet {
        Quiet {
            timer: Box::pin(tokio::time::sleep(limit)),
            heard: Instant::now(),
            limit,
            deadline: None,
            first: None,
        }
    }

    /// At most `limit` of silence, and the whole reply within `total` of `started`.
    pub fn with_total(limit: Duration, started: Instant, total: Duration) -> Quiet {
        let deadline = started + total;
        let heard = Instant::now();
        Quiet {
            timer: Box::pin(tokio::time::sleep_until((heard + limit).min(deadline))),
            heard,
            limit,
            deadline: Some((deadline, total)),
            first: None,
        }
    }

    /// The first event must come within `limit` from now (a timeout kept by this timer rather
    /// than one around the wait, which was polled at every wake-up of the reply's task).
    pub fn first_within(&mut self, limit: Duration) {
        self.first = Some((Instant::now() + limit, limit));
        let until = self.until();
        self.timer.as_mut().reset(until);
    }

    /// The first event has come.
    pub fn answered(&mut self) {
        self.first = None;
    }

    /// The upstream spoke (an item taken without [`Quiet::next`]).
    pub fn heard(&mut self) {
        self.heard = Instant::now();
    }

    /// The upstream's next item, or `None` once it has been silent for the whole limit or the
    /// reply's deadline has passed ([`Quiet::error`] says which).
    pub async fn next<S, E>(&mut self, upstream: &mut S) -> Option<Option<Result<Bytes, E>>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        poll_fn(|cx| {
            if let Poll::Ready(item) = upstream.poll_next_unpin(cx) {
                self.heard = Instant::now();
                return Poll::Ready(Some(item));
            }
            while self.timer.as_mut().poll(cx).is_ready() {
                let until = self.until();
                if Instant::now() >= until {
                    return Poll::Ready(None);
                }
                self.timer.as_mut().reset(until);
            }
            Poll::Pending
        })
        .await
    }

    fn until(&self) -> Instant {
        [self.deadline, self.first]
            .into_iter()
            .flatten()
            .fold(self.heard + self.limit, |until, (at, _)| until.min(at))
    }

    /// The client's error once [`Quiet::next`] gave up.
    pub fn error(&self) -> ApiError {
        let now = Instant::now();
        if let Some((at, limit)) = self.first
            && now >= at
        {
            return ApiError::gateway_timeout(format!("no first token within {limit:?}"));
        }
        match self.deadline {
            Some((deadline, total)) if now >= deadline => {
                ApiError::gateway_timeout(format!("the upstream reply took longer than {total:?}"))
            }
            _ => {
                ApiError::gateway_timeout(format!("the upstream sent nothing for {:?}", self.limit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::gateway::relay::Upstream;

    /// A stream that sends an item every `every`, `n` times, then stalls.
    fn ticking(every: Duration, n: usize) -> Upstream {
        Box::pin(
            futures_util::stream::iter(0..n)
                .then(move |_| async move {
                    tokio::time::sleep(every).await;
                    Ok(Bytes::from_static(b"x"))
                })
                .chain(futures_util::stream::pending()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn steady_chunks_never_time_out_and_silence_does_after_the_limit() {
        let mut upstream = ticking(Duration::from_millis(700), 10);
        let mut quiet = Quiet::new(Duration::from_secs(1));
        // 10 chunks 0.7 s apart: 7 s in all, far past the 1 s limit, never 1 s of silence.
        for _ in 0..10 {
            assert!(matches!(quiet.next(&mut upstream).await, Some(Some(Ok(_)))));
        }
        let silent_from = Instant::now();
        assert!(quiet.next(&mut upstream).await.is_none());
        assert_eq!(silent_from.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_taken_elsewhere_counts_as_heard() {
        let mut upstream = ticking(Duration::from_millis(10), 0);
        let mut quiet = Quiet::new(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(900)).await;
        quiet.heard();
        let from = Instant::now();
        assert!(quiet.next(&mut upstream).await.is_none());
        assert_eq!(from.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_reply_still_ends_at_its_deadline() {
        let mut upstream = ticking(Duration::from_millis(700), 100);
        let start = Instant::now();
        let mut quiet = Quiet::with_total(Duration::from_secs(1), start, Duration::from_secs(5));
        let mut chunks = 0;
        while let Some(item) = quiet.next(&mut upstream).await {
            assert!(item.unwrap().is_ok());
            chunks += 1;
        }
        assert_eq!(chunks, 7, "0.7 s apart: seven within 5 s");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(quiet.error().message.contains("took longer than 5s"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_event_has_its_own_limit_until_it_comes() {
        // Chunks come every 0.7 s, under the 1 s idle limit, but the first takes too long.
        let mut upstream = ticking(Duration::from_millis(700), 10);
        let mut quiet = Quiet::new(Duration::from_secs(1));
        quiet.first_within(Duration::from_millis(500));
        let from = Instant::now();
        assert!(quiet.next(&mut upstream).await.is_none());
        assert_eq!(from.elapsed(), Duration::from_millis(500));
        assert!(
            quiet
                .error()
                .message
                .contains("no first token within 500ms")
        );

        let mut upstream = ticking(Duration::from_millis(400), 10);
        let mut quiet = Quiet::new(Duration::from_secs(1));
        quiet.first_within(Duration::from_millis(500));
        assert!(quiet.next(&mut upstream).await.is_some());
        quiet.answered();
        // 0.4 s between chunks from here on: the first event's limit no longer applies.
        for _ in 0..5 {
            assert!(matches!(quiet.next(&mut upstream).await, Some(Some(Ok(_)))));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn silence_before_the_deadline_is_reported_as_silence() {
        let mut upstream = ticking(Duration::from_millis(10), 1);
        let mut quiet = Quiet::with_total(
            Duration::from_secs(1),
            Instant::now(),
            Duration::from_secs(60),
        );
        assert!(quiet.next(&mut upstream).await.is_some());
        assert!(quiet.next(&mut upstream).await.is_none());
        assert!(quiet.error().message.contains("sent nothing for 1s"));
    }
}
