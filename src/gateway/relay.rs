//! Relaying the upstream's reply to the client as it arrives: never the whole reply in memory,
//! an idle timeout between chunks, usage picked up on the way, and a stream that always ends
//! with `data: [DONE]` (after an error event if the upstream failed midway).

use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};

use super::record::{Recording, estimate_tokens};
use crate::error::ApiError;
use crate::providers::dialect::ChatTranslator;
use crate::providers::openai_compatible::usage_from_tail;
use crate::providers::sse::{self, SseDecoder};
use crate::routing::limits::Slot;

pub type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streamed chat reply.
pub struct SseRelay {
    upstream: Upstream,
    decoder: SseDecoder,
    translator: ChatTranslator,
    idle: Duration,
    recording: Option<Recording>,
    slot: Option<Slot>,
    upstream_model: String,
    prompt_bytes: usize,
    events: u64,
    done: bool,
    /// The end of the upstream or its error, seen while gathering ready chunks.
    lookahead: Option<Option<reqwest::Result<Bytes>>>,
}

impl SseRelay {
    pub fn new(
        upstream: Upstream,
        translator: ChatTranslator,
        idle: Duration,
        upstream_model: String,
        prompt_bytes: usize,
    ) -> SseRelay {
        SseRelay {
            upstream,
            decoder: SseDecoder::default(),
            translator,
            idle,
            recording: None,
            slot: None,
            upstream_model,
            prompt_bytes,
            events: 0,
            done: false,
            lookahead: None,
        }
    }

    /// Hands over the request's record and the deployment's slot once the reply has started.
    pub fn attach(&mut self, recording: Recording, slot: Slot) {
        self.recording = Some(recording);
        self.slot = Some(slot);
    }

    /// The next piece for the client; `Ok(None)` once `[DONE]` has been sent.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::new();
        loop {
            loop {
                match self.decoder.next_event() {
                    Ok(Some(event)) => {
                        self.events += 1;
                        self.translator.event(&event.data, &mut out)?;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        return Err(ApiError::bad_gateway(
                            "the upstream sent an event larger than 4 MiB",
                        ));
                    }
                }
            }
            if !out.is_empty() {
                // Chunks the upstream connection already holds go out in the same write: one
                // scheduling round lets its task hand them over, without waiting for new data.
                match self.ready_chunk().await {
                    Some(Some(Ok(chunk))) => {
                        self.decoder.push(&chunk);
                        continue;
                    }
                    Some(end_or_error) => self.lookahead = Some(end_or_error),
                    None => {}
                }
                if let Some(r) = self.recording.as_mut() {
                    r.first_token();
                }
                return Ok(Some(Bytes::from(out)));
            }
            let item = match self.lookahead.take() {
                Some(item) => Ok(item),
                None => tokio::time::timeout(self.idle, self.upstream.next()).await,
            };
            match item {
                Ok(Some(Ok(chunk))) => self.decoder.push(&chunk),
                Ok(Some(Err(e))) => {
                    return Err(ApiError::bad_gateway(format!(
                        "the upstream stream broke off: {}",
                        root_cause(&e)
                    )));
                }
                Ok(None) => {
                    if let Some(event) = self.decoder.finish() {
                        self.translator.event(&event.data, &mut out)?;
                    }
                    self.translator.finish(&mut out)?;
                    out.extend_from_slice(sse::DONE);
                    self.done = true;
                    let events = self.events;
                    let prompt_bytes = self.prompt_bytes;
                    if let Some(r) = self.recording.take() {
                        r.succeed(
                            self.translator.usage(),
                            || (estimate_tokens(prompt_bytes), events),
                            &self.upstream_model,
                        );
                    }
                    return Ok(Some(Bytes::from(out)));
                }
                Err(_) => {
                    return Err(ApiError::gateway_timeout(format!(
                        "the upstream sent nothing for {:?}",
                        self.idle
                    )));
                }
            }
        }
    }

    /// The upstream's next item if it is already there (after one yield to the runtime).
    async fn ready_chunk(&mut self) -> Option<Option<reqwest::Result<Bytes>>> {
        if let Some(item) = self.upstream.next().now_or_never() {
            return Some(item);
        }
        tokio::task::yield_now().await;
        self.upstream.next().now_or_never()
    }

    /// Ends the stream after a failure: the error as an event, then `[DONE]`.
    fn fail(&mut self, error: &ApiError) -> Bytes {
        self.done = true;
        if let Some(r) = self.recording.take() {
            r.fail_midway(error);
        }
        let mut out = Vec::new();
        sse::write_raw(&mut out, &error.to_json());
        out.extend_from_slice(sse::DONE);
        Bytes::from(out)
    }

    pub fn into_body(self, first: Bytes) -> Body {
        let rest = futures_util::stream::unfold(self, |mut relay| async move {
            match relay.next().await {
                Ok(Some(bytes)) => Some((Ok::<_, std::convert::Infallible>(bytes), relay)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "stream ended by an upstream failure");
                    let bytes = relay.fail(&e);
                    Some((Ok(bytes), relay))
                }
            }
        });
        Body::from_stream(futures_util::stream::once(async move { Ok(first) }).chain(rest))
    }
}

/// A non-stream OpenAI-dialect reply, forwarded chunk by chunk; usage is read from its tail.
pub struct PassthroughBody {
    upstream: Upstream,
    idle: Duration,
    tail: Vec<u8>,
    total: usize,
    recording: Option<Recording>,
    slot: Option<Slot>,
    upstream_model: String,
    prompt_bytes: usize,
}

const TAIL_BYTES: usize = 16 * 1024;

impl PassthroughBody {
    pub fn new(
        upstream: Upstream,
        idle: Duration,
        upstream_model: String,
        prompt_bytes: usize,
    ) -> Self {
        PassthroughBody {
            upstream,
            idle,
            tail: Vec::new(),
            total: 0,
            recording: None,
            slot: None,
            upstream_model,
            prompt_bytes,
        }
    }

    pub fn attach(&mut self, recording: Recording, slot: Slot) {
        self.recording = Some(recording);
        self.slot = Some(slot);
    }

    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        match tokio::time::timeout(self.idle, self.upstream.next()).await {
            Ok(Some(Ok(chunk))) => {
                self.total += chunk.len();
                self.tail.extend_from_slice(&chunk);
                if self.tail.len() > 2 * TAIL_BYTES {
                    self.tail.drain(..self.tail.len() - TAIL_BYTES);
                }
                Ok(Some(chunk))
            }
            Ok(Some(Err(e))) => Err(ApiError::bad_gateway(format!(
                "the upstream reply broke off: {}",
                root_cause(&e)
            ))),
            Ok(None) => {
                self.slot = None;
                if let Some(r) = self.recording.take() {
                    let (prompt_bytes, total) = (self.prompt_bytes, self.total);
                    r.succeed(
                        usage_from_tail(&self.tail),
                        || (estimate_tokens(prompt_bytes), estimate_tokens(total)),
                        &self.upstream_model,
                    );
                }
                Ok(None)
            }
            Err(_) => Err(ApiError::gateway_timeout(format!(
                "the upstream sent nothing for {:?}",
                self.idle
            ))),
        }
    }

    pub fn into_body(self, first: Bytes) -> Body {
        let rest = futures_util::stream::unfold(self, |mut relay| async move {
            match relay.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), relay)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "reply cut by an upstream failure");
                    if let Some(r) = relay.recording.take() {
                        r.fail_midway(&e);
                    }
                    // Aborting the body tells the client the reply is incomplete.
                    Some((Err(std::io::Error::other(e.message)), relay))
                }
            }
        });
        Body::from_stream(futures_util::stream::once(async move { Ok(first) }).chain(rest))
    }
}

pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
