//! Relaying the upstream's reply to the client as it arrives: never the whole reply in memory,
//! an idle timeout between chunks, usage picked up on the way, and a stream that always ends
//! with `data: [DONE]` (after an error event if the upstream failed midway).

use std::pin::Pin;

use axum::body::Body;
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};

use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::quiet::Quiet;
use super::record::{Recording, estimate_tokens};
use super::upstream::{Failure, Sent};
use crate::error::ApiError;
use crate::providers::chunks::FromChunks;
use crate::providers::dialect::ChatTranslator;
use crate::providers::openai_types::Usage;
use crate::providers::sse::{self, SseDecoder, SseEvent};
use crate::routing::Candidate;
use crate::routing::limits::Slot;

/// An upstream reply's body, chunk by chunk.
pub type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;
pub type BodyError = hyper::Error;

/// What a streamed reply's client receives, event by event, in the client's API.
pub trait StreamOut: Send + 'static {
    /// One upstream event: appends the client's frames to `out`.
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError>;
    /// The upstream's stream ended: appends what closes the client's stream.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError>;
    fn usage(&self) -> Option<Usage>;
    /// The stream broke off: appends the error as the client's API writes it, and the end.
    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>);
}

/// Chat completions: OpenAI's chunks, `[DONE]` at the end, the error as a chunk-sized event.
impl StreamOut for ChatTranslator {
    fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        ChatTranslator::event(self, &event.data, out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        ChatTranslator::finish(self, out)?;
        out.extend_from_slice(sse::DONE);
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        ChatTranslator::usage(self)
    }

    fn fail(&mut self, error: &ApiError, out: &mut Vec<u8>) {
        sse::write_raw(out, &error.to_json());
        out.extend_from_slice(sse::DONE);
    }
}

/// A chat translator's chunks, turned into another inbound API's stream (`S`).
pub struct ChatTo<S> {
    chat: ChatTranslator,
    pub inbound: S,
    /// The chunk frames of one event, reused.
    frames: Vec<u8>,
}

impl<S: FromChunks> ChatTo<S> {
    pub fn new(chat: ChatTranslator, inbound: S) -> ChatTo<S> {
        ChatTo {
            chat,
            inbound,
            frames: Vec::new(),
        }
    }

    pub fn event(&mut self, event: &SseEvent, out: &mut Vec<u8>) -> Result<(), ApiError> {
        self.frames.clear();
        self.chat.event(&event.data, &mut self.frames)?;
        self.inbound.frames(&self.frames, out)
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ApiError> {
        self.frames.clear();
        self.chat.finish(&mut self.frames)?;
        self.inbound.frames(&self.frames, out)?;
        self.inbound.finish(out);
        Ok(())
    }

    pub fn usage(&self) -> Option<Usage> {
        self.chat.usage()
    }
}

/// How many bytes of translated events one write to the client gathers at most.
const GATHER_BYTES: usize = 64 * 1024;

/// After a yield found no more upstream data, how many events go out without one.
const SPACED_EVENTS_WITHOUT_YIELD: u8 = 7;

/// A streamed reply.
pub struct SseRelay<T> {
    upstream: Upstream,
    decoder: SseDecoder,
    translator: T,
    quiet: Quiet,
    recording: Option<Recording>,
    slot: Option<Slot>,
    upstream_model: String,
    prompt_bytes: usize,
    events: u64,
    done: bool,
    /// The end of the upstream or its error, seen while gathering ready chunks.
    lookahead: Option<Option<Result<Bytes, BodyError>>>,
    /// A failure met after events the client has not been sent yet: reported once they are.
    failed: Option<ApiError>,
    /// Events to send without a yield to look for more, after a yield found nothing: an upstream
    /// whose events arrive spread out in time would otherwise cost an empty poll of the runtime's
    /// reactor (a system call) per event.
    yields_to_skip: u8,
}

impl<T: StreamOut> SseRelay<T> {
    pub fn new(
        (upstream, quiet): (Upstream, Quiet),
        translator: T,
        upstream_model: String,
        prompt_bytes: usize,
    ) -> SseRelay<T> {
        SseRelay {
            upstream,
            decoder: SseDecoder::default(),
            translator,
            quiet,
            recording: None,
            slot: None,
            upstream_model,
            prompt_bytes,
            events: 0,
            done: false,
            lookahead: None,
            failed: None,
            yields_to_skip: 0,
        }
    }

    /// Hands over the request's record and the deployment's slot once the reply has started. A
    /// reply that already ended well in its first piece (a translator that writes everything at
    /// the end) is recorded now.
    pub fn attach(&mut self, recording: Recording, slot: Slot) {
        self.recording = Some(recording);
        self.slot = Some(slot);
        if self.done {
            self.succeed();
        }
    }

    fn succeed(&mut self) {
        let events = self.events;
        let prompt_bytes = self.prompt_bytes;
        if let Some(r) = self.recording.take() {
            r.succeed(
                self.translator.usage(),
                || (estimate_tokens(prompt_bytes), events),
                &self.upstream_model,
            );
        }
    }

    /// The next piece for the client; `Ok(None)` once `[DONE]` has been sent.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        if self.done {
            return Ok(None);
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut out = Vec::new();
        loop {
            loop {
                match self.decoder.next_event() {
                    Ok(Some(event)) => {
                        self.events += 1;
                        if let Err(e) = self.translator.event(&event, &mut out) {
                            return self.failed_after(out, e);
                        }
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
                // Up to a bound: a fast upstream's whole reply must not gather in one write.
                let ready = if out.len() < GATHER_BYTES {
                    self.ready_chunk().await
                } else {
                    None
                };
                match ready {
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
                Some(item) => Some(item),
                None => self.quiet.next(&mut self.upstream).await,
            };
            match item {
                Some(Some(Ok(chunk))) => self.decoder.push(&chunk),
                Some(Some(Err(e))) => {
                    return Err(ApiError::bad_gateway(format!(
                        "the upstream stream broke off: {}",
                        root_cause(&e)
                    )));
                }
                Some(None) => {
                    if let Some(event) = self.decoder.finish()
                        && let Err(e) = self.translator.event(&event, &mut out)
                    {
                        return self.failed_after(out, e);
                    }
                    if let Err(e) = self.translator.finish(&mut out) {
                        return self.failed_after(out, e);
                    }
                    self.done = true;
                    self.succeed();
                    return Ok(Some(Bytes::from(out)));
                }
                None => return Err(self.quiet.error()),
            }
        }
    }

    /// A failure after `out` was translated: once the reply has started, the client gets `out`
    /// first and the error next; before that nothing is sent, so the request can still fail over.
    fn failed_after(&mut self, out: Vec<u8>, e: ApiError) -> Result<Option<Bytes>, ApiError> {
        if out.is_empty() || self.recording.is_none() {
            return Err(e);
        }
        self.failed = Some(e);
        Ok(Some(Bytes::from(out)))
    }

    /// The upstream's next item if it is already there, after one yield to the runtime. While
    /// events arrive spread out in time (a yield found nothing), the yield is skipped for the next
    /// few events; a chunk found ready, or a yield that finds one, brings gathering back.
    async fn ready_chunk(&mut self) -> Option<Option<Result<Bytes, BodyError>>> {
        let mut ready = self.upstream.next().now_or_never();
        if ready.is_none() {
            if self.yields_to_skip > 0 {
                self.yields_to_skip -= 1;
                return None;
            }
            tokio::task::yield_now().await;
            ready = self.upstream.next().now_or_never();
            if ready.is_none() {
                self.yields_to_skip = SPACED_EVENTS_WITHOUT_YIELD;
            }
        } else {
            self.yields_to_skip = 0;
        }
        if ready.is_some() {
            self.quiet.heard();
        }
        ready
    }

    /// Ends the stream after a failure: the error as an event, then `[DONE]`.
    fn fail(&mut self, error: &ApiError) -> Bytes {
        self.done = true;
        if let Some(r) = self.recording.take() {
            r.fail_midway(error);
        }
        let mut out = Vec::new();
        self.translator.fail(error, &mut out);
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
    /// Reads the usage from the reply's last bytes.
    usage_of: fn(&[u8]) -> Option<Usage>,
    quiet: Quiet,
    tail: Vec<u8>,
    total: usize,
    recording: Option<Recording>,
    slot: Option<Slot>,
    upstream_model: String,
    prompt_bytes: usize,
    /// The upstream's reply has ended (while its start was read).
    ended: bool,
}

const TAIL_BYTES: usize = 16 * 1024;
/// A non-stream reply is read this far before it is answered: one that ends within it (most do)
/// is checked to be JSON, so the client gets 502 rather than a 200 it cannot parse.
const CHECKED_BYTES: usize = 64 * 1024;

impl PassthroughBody {
    pub fn new(
        (upstream, quiet): (Upstream, Quiet),
        usage_of: fn(&[u8]) -> Option<Usage>,
        upstream_model: String,
        prompt_bytes: usize,
    ) -> Self {
        PassthroughBody {
            upstream,
            usage_of,
            quiet,
            tail: Vec::new(),
            total: 0,
            recording: None,
            slot: None,
            upstream_model,
            prompt_bytes,
            ended: false,
        }
    }

    pub fn attach(&mut self, recording: Recording, slot: Slot) {
        self.recording = Some(recording);
        self.slot = Some(slot);
    }

    pub async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        if self.ended {
            return self.finish();
        }
        match self.quiet.next(&mut self.upstream).await {
            Some(Some(Ok(chunk))) => {
                self.total += chunk.len();
                self.tail.extend_from_slice(&chunk);
                if self.tail.len() > 2 * TAIL_BYTES {
                    self.tail.drain(..self.tail.len() - TAIL_BYTES);
                }
                Ok(Some(chunk))
            }
            Some(Some(Err(e))) => Err(ApiError::bad_gateway(format!(
                "the upstream reply broke off: {}",
                root_cause(&e)
            ))),
            Some(None) => {
                self.ended = true;
                self.finish()
            }
            None => Err(self.quiet.error()),
        }
    }

    /// The reply has ended: a success if it ends as a JSON object does.
    fn finish(&mut self) -> Result<Option<Bytes>, ApiError> {
        if self.tail.iter().rev().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
            return Err(ApiError::bad_gateway(
                "the upstream reply ended before its JSON did",
            ));
        }
        self.slot = None;
        if let Some(r) = self.recording.take() {
            let (prompt_bytes, total) = (self.prompt_bytes, self.total);
            r.succeed(
                (self.usage_of)(&self.tail),
                || (estimate_tokens(prompt_bytes), estimate_tokens(total)),
                &self.upstream_model,
            );
        }
        Ok(None)
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

/// A reply that has started: the first bytes are in hand, the rest follows.
pub enum Started<T> {
    Stream(Box<SseRelay<T>>, Bytes),
    Passthrough(Box<PassthroughBody>, Bytes),
    Complete(Vec<u8>, Usage),
}

impl<T: StreamOut> Started<T> {
    /// The client's response; the record (and the deployment's slot) finish when the reply ends.
    pub fn into_response(
        self,
        mut recording: Recording,
        slot: Slot,
        upstream_model: &str,
        stream: bool,
    ) -> Response {
        let (mut response, content_type) = match self {
            Started::Stream(mut relay, first) => {
                recording.first_token();
                relay.attach(recording, slot);
                (Response::new(relay.into_body(first)), "text/event-stream")
            }
            Started::Passthrough(mut relay, first) => {
                relay.attach(recording, slot);
                (Response::new(relay.into_body(first)), "application/json")
            }
            Started::Complete(json, usage) => {
                recording.succeed(Some(usage), || (0, 0), upstream_model);
                (Response::new(Body::from(json)), "application/json")
            }
        };
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if stream {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        response
    }
}

/// Starts a streamed reply: its first event must come within the provider's first-byte timeout,
/// so that a stream that fails before the client has seen anything can still fail over.
pub async fn start_stream<T: StreamOut>(
    candidate: &Candidate,
    sent: Sent,
    translator: T,
    prompt_bytes: usize,
) -> Result<Started<T>, Failure> {
    let provider = &candidate.deployment.provider;
    let mut relay = SseRelay::new(
        sent.into_body(),
        translator,
        candidate.model.clone(),
        prompt_bytes,
    );
    relay.quiet.first_within(provider.timeouts.first_byte);
    match relay.next().await {
        Ok(Some(first)) => {
            relay.quiet.answered();
            Ok(Started::Stream(Box::new(relay), first))
        }
        Ok(None) => Err(Failure::from_reply(ApiError::bad_gateway(format!(
            "{}: empty stream",
            provider.display_name
        )))),
        Err(e) => Err(Failure::from_reply(e)),
    }
}

/// Starts a JSON reply forwarded as it arrives; its first bytes must look like JSON.
pub async fn start_passthrough<T>(
    candidate: &Candidate,
    sent: Sent,
    usage_of: fn(&[u8]) -> Option<Usage>,
    prompt_bytes: usize,
) -> Result<Started<T>, Failure> {
    let provider = &candidate.deployment.provider;
    let mut relay = PassthroughBody::new(
        sent.into_body(),
        usage_of,
        candidate.model.clone(),
        prompt_bytes,
    );
    let not_json = || {
        Failure::from_reply(ApiError::bad_gateway(format!(
            "{}: the upstream reply is not JSON",
            provider.display_name
        )))
    };
    let first = match relay.next().await {
        Ok(Some(first)) if first.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') => first,
        Ok(_) => return Err(not_json()),
        Err(e) => return Err(Failure::from_reply(e)),
    };
    // Read on to the end of a small reply, and check it whole.
    let mut head = Vec::new();
    while !relay.ended && head.len() + first.len() < CHECKED_BYTES {
        match relay.next().await {
            Ok(Some(more)) => head.extend_from_slice(&more),
            Ok(None) => {}
            Err(e) => return Err(Failure::from_reply(e)),
        }
    }
    let first = if head.is_empty() {
        first
    } else {
        head.splice(0..0, first.iter().copied());
        Bytes::from(head)
    };
    // The structural walk the relay uses on stream events: one whole object, brackets balanced
    // and strings closed (what a cut-off reply or an error page is not), cheaper than a parse.
    if relay.ended && crate::providers::json_edit::members(&first, |_, _| {}).is_none() {
        return Err(not_json());
    }
    Ok(Started::Passthrough(Box::new(relay), first))
}

pub fn root_cause(e: &dyn std::error::Error) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests;
