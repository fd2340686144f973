//! The idle timeout between an upstream's chunks, kept by one timer per reply.
//!
//! A timeout per chunk put a timer into the runtime's wheel and took it out again for every
//! event of every stream. Here the timer is set once and moved only when it fires: if the
//! upstream was heard from since, it is set again for the rest of the allowance.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::{Instant, Sleep};

use super::relay::Upstream;

pub struct Quiet {
    timer: Pin<Box<Sleep>>,
    heard: Instant,
    limit: Duration,
}

impl Quiet {
    pub fn new(limit: Duration) -> Quiet {
        Quiet {
            timer: Box::pin(tokio::time::sleep(limit)),
            heard: Instant::now(),
            limit,
        }
    }

    /// How long the upstream may be silent.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The upstream spoke (an item taken without [`Quiet::next`]).
    pub fn heard(&mut self) {
        self.heard = Instant::now();
    }

    /// The upstream's next item, or `None` once it has been silent for the whole limit.
    pub async fn next(
        &mut self,
        upstream: &mut Upstream,
    ) -> Option<Option<reqwest::Result<Bytes>>> {
        poll_fn(|cx| {
            if let Poll::Ready(item) = upstream.poll_next_unpin(cx) {
                self.heard = Instant::now();
                return Poll::Ready(Some(item));
            }
            while self.timer.as_mut().poll(cx).is_ready() {
                let until = self.heard + self.limit;
                if Instant::now() >= until {
                    return Poll::Ready(None);
                }
                self.timer.as_mut().reset(until);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
