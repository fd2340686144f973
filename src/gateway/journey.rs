//! The request's journey, written once for every endpoint. Its phases, in order:
//!
//! 1. **identify**: the request id (the client's `x-request-id` when sane); the caller was admitted
//!    by the `/v1` layer (key, expiry, budget, rate limits) before the journey starts.
//! 2. **peek**: the few fields the gateway reads from the body; the body itself stays bytes.
//! 3. **record**: the request's record starts; the model name is checked, the trace span opened,
//!    the caller's key checked against the model, and the endpoint's own rules applied.
//! 4. **cache** (with `[cache]` on): a hit is the reply; otherwise the reply is written to the
//!    cache when it ends well, and identical requests in flight wait for it ([`super::cache`]).
//! 5. **plan**: the deployments that serve the model, in the order the routing strategy prefers.
//! 6. **attempt**: for each deployment the failover hands out (skipping open circuits and full
//!    deployments, backing off, within the deadline): encode for its wire format, send, and start
//!    the reply. Anything that fails before the client has seen a byte fails over.
//! 7. **relay**: the reply goes to the client as it arrives; the record is finished when it ends.
//! 8. **reply**: the gateway's headers, or the error in the endpoint's shape.
//!
//! An [`Endpoint`] supplies only what differs: what it peeks, how an attempt encodes and starts its
//! reply, how the reply is relayed, and the shape of its errors.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::cache::{Caching, Consult, HEADER_CACHE, Outcome};
use super::failover::Failover;
use super::record::{Recording, estimate_tokens};
use super::upstream::Failure;
use super::{Gateway, reply_headers};
use crate::error::{ApiError, parse_json};
use crate::governance::Admission;
use crate::providers::dialect::ChatTarget;
use crate::providers::openai_types::StreamOptions;
use crate::routing::limits::Slot;
use crate::routing::{Candidate, Deployment};

/// What the gateway reads from a request's body.
pub trait Peek: Send + Sync {
    /// The model the client asked for.
    fn model(&self) -> &str;
    fn stream(&self) -> bool;
    /// A chat stream's `stream_options.include_usage`.
    fn include_usage(&self) -> bool {
        false
    }
    /// The endpoint's own rules, applied once the request is recorded and admitted.
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The fields the gateway reads from a conversation (chat completions, Messages); the rest of the
/// body stays untouched.
#[derive(Deserialize)]
struct ConversationFields<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    messages: Vec<IgnoredAny>,
}

/// A conversation request, peeked.
pub struct Conversation {
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage` (chat completions).
    pub include_usage: bool,
    no_messages: bool,
}

impl Conversation {
    pub fn peek(body: &[u8]) -> Result<Conversation, ApiError> {
        let fields: ConversationFields = parse_json(body)?;
        Ok(Conversation {
            model: fields.model.into_owned(),
            stream: fields.stream.unwrap_or(false),
            include_usage: fields.stream_options.is_some_and(|o| o.include_usage),
            no_messages: fields.messages.is_empty(),
        })
    }
}

impl Peek for Conversation {
    fn model(&self) -> &str {
        &self.model
    }

    fn stream(&self) -> bool {
        self.stream
    }

    fn include_usage(&self) -> bool {
        self.include_usage
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.no_messages {
            return Err(
                ApiError::invalid_request("`messages` must hold at least one message")
                    .with_param("messages"),
            );
        }
        Ok(())
    }
}

/// One attempt's inputs.
pub struct Attempt<'a, P> {
    pub candidate: &'a Candidate,
    pub peek: &'a P,
    pub body: &'a Bytes,
    pub request_id: &'a str,
    pub span: &'a tracing::Span,
}

impl<'a, P: Peek> Attempt<'a, P> {
    /// Where this attempt's conversation goes, for the wire-format encoders.
    pub fn chat_target(&self, include_usage: bool) -> ChatTarget<'a> {
        ChatTarget {
            base_url: &self.candidate.deployment.base_url,
            model: &self.candidate.model,
            client_model: self.peek.model(),
            stream: self.peek.stream(),
            include_usage,
            request_id: self.request_id,
        }
    }
}

/// An inbound API: what differs from one endpoint to another.
pub trait Endpoint: Sync {
    /// The operation's name in traces (`chat`, `embeddings`).
    const NAME: &'static str;
    /// How the response cache keeps this API's replies.
    const CACHING: Caching = Caching::PerMode;
    type Peek: Peek;
    /// A reply that has started: enough of it is in hand that the attempt cannot fail any more.
    type Started: Send;

    fn peek(&self, body: &[u8]) -> Result<Self::Peek, ApiError>;

    /// Encodes the request for the candidate's wire format, sends it and starts the reply.
    fn attempt(
        &self,
        gateway: &Gateway,
        attempt: Attempt<'_, Self::Peek>,
    ) -> impl Future<Output = Result<Self::Started, Failure>> + Send;

    /// The reply for the client; `recording` (and the deployment's `slot`) are finished when the
    /// reply ends.
    fn relay(
        &self,
        started: Self::Started,
        recording: Recording,
        slot: Slot,
        candidate: &Candidate,
        peek: &Self::Peek,
    ) -> Response;

    /// An error in the endpoint's shape (OpenAI's unless the endpoint says otherwise).
    fn error(&self, error: ApiError) -> Response {
        error.into_response()
    }
}

impl Gateway {
    /// Runs one request through its journey.
    pub async fn serve<E: Endpoint>(
        &self,
        endpoint: &E,
        headers: &HeaderMap,
        body: Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Response {
        // identify
        let request_id = self.request_id(headers);
        let started = Instant::now();
        let refuse = |e: ApiError, deployment: Option<&Deployment>, attempts, overhead| {
            let mut response = endpoint.error(e);
            reply_headers(
                response.headers_mut(),
                &request_id,
                deployment,
                attempts,
                overhead,
            );
            response
        };

        // peek
        let peek = match endpoint.peek(&body) {
            Ok(peek) => peek,
            Err(e) => return refuse(e, None, 0, started.elapsed()),
        };

        // record
        let model = peek.model();
        let mut recording = Recording::start(
            self.stats.clone(),
            self.catalogue.clone(),
            &request_id,
            peek.stream(),
        );
        recording.record.api = E::NAME.to_string();
        recording.record.session_id = session_id(headers);
        let admitted = self.record_model(&mut recording, model).and_then(|()| {
            recording.span = crate::telemetry::request_span(E::NAME, model, headers);
            recording.admit(admission)
        });

        if let Err(e) = admitted.and_then(|()| peek.check()) {
            recording.fail(&e);
            return refuse(e, None, 0, started.elapsed());
        }

        // cache: a hit is the reply; otherwise the reply may be written when it ends well
        let mut fill = None;
        let mut cached = None;
        if let Some(cache) = self.cache.as_ref().filter(|_| E::CACHING != Caching::Off) {
            let resolved = self.aliases.get(model).map_or(model, String::as_str);
            let owner = recording.owner_id();
            let consulted = cache
                .consult(
                    E::CACHING,
                    E::NAME,
                    resolved,
                    owner,
                    headers,
                    &body,
                    (peek.stream(), peek.include_usage()),
                )
                .await;
            match consulted {
                Err(e) => {
                    recording.fail(&e);
                    return refuse(e, None, 0, started.elapsed());
                }
                Ok(Consult::Hit(entry)) => {
                    if let Some(mut response) =
                        super::cache::reply(&entry, E::CACHING, peek.stream(), peek.include_usage())
                    {
                        recording.unlisted = !self.is_listed(model, true);
                        recording.hit(&entry.meta.made);
                        reply_headers(
                            response.headers_mut(),
                            &request_id,
                            None,
                            0,
                            started.elapsed(),
                        );
                        super::cache::hit_headers(response.headers_mut(), &entry);
                        return response;
                    }
                    cached = Some(Outcome::Miss);
                }
                Ok(Consult::Follow(follow)) => {
                    recording.unlisted = !self.is_listed(model, true);
                    let mut response = follow.into_response(recording);
                    reply_headers(
                        response.headers_mut(),
                        &request_id,
                        None,
                        0,
                        started.elapsed(),
                    );
                    response
                        .headers_mut()
                        .insert(HEADER_CACHE, Outcome::Hit.header());
                    return response;
                }
                Ok(Consult::Go { outcome, fill: f }) => {
                    cached = Some(outcome);
                    recording.cache_slot = f.as_ref().map(|f| f.slot());
                    fill = f;
                }
            }
            recording.record.cache = cached.map_or("", Outcome::as_str).to_string();
        }
        let mark = |mut response: Response| {
            if let Some(outcome) = cached {
                response
                    .headers_mut()
                    .insert(HEADER_CACHE, outcome.header());
            }
            response
        };

        // plan
        let plan = match self.plan(model) {
            Ok(plan) => plan,
            Err(e) => {
                recording.fail(&e);
                return mark(refuse(e, None, 0, started.elapsed()));
            }
        };

        // attempt
        // Time spent waiting for upstreams, to tell the gateway's own time apart.
        let mut upstream_time = Duration::ZERO;
        let mut failover = Failover::new(&plan, &self.routing.config, estimate_tokens(body.len()));
        let mut outcome = None;
        while let Some((candidate, slot)) = failover.next().await {
            let waiting = Instant::now();
            let deployment = &candidate.deployment;
            let span = crate::telemetry::attempt_span(
                &recording.span,
                E::NAME,
                &candidate.model,
                &deployment.provider.name,
                &deployment.id,
            );
            let attempt = Attempt {
                candidate,
                peek: &peek,
                body: &body,
                request_id: &request_id,
                span: &span,
            };
            let result = endpoint.attempt(self, attempt).await;
            upstream_time += waiting.elapsed();
            match result {
                Ok(reply) => {
                    failover.succeeded(candidate);
                    outcome = Some((reply, candidate, slot));
                    break;
                }
                Err(failure) => {
                    if failover.failed(candidate, failure) {
                        self.stats.alerts().circuit_opened(
                            &candidate.deployment.opened_circuit(),
                            &self.routing.config.circuit,
                        );
                    }
                }
            }
        }
        let attempts = failover.attempts;
        let Some((reply, candidate, slot)) = outcome else {
            let exhausted = failover.exhausted();
            if let Some(d) = &exhausted.deployment {
                recording.record.provider = d.provider.name.clone();
                recording.record.deployment = d.id.clone();
            }
            recording.record.attempts = exhausted.attempts;
            recording.fail(&exhausted.error);
            let overhead = started.elapsed().saturating_sub(upstream_time);
            return mark(refuse(
                exhausted.error,
                exhausted.deployment.as_deref(),
                exhausted.attempts,
                overhead,
            ));
        };

        // relay
        let deployment = &candidate.deployment;
        recording.unlisted = !self.is_listed(model, true);
        let r = &mut recording.record;
        r.provider = deployment.provider.name.clone();
        r.deployment = deployment.id.clone();
        r.attempts = attempts;
        let overhead = started.elapsed().saturating_sub(upstream_time);
        crate::stats::metrics::observe_overhead(overhead.as_secs_f64());
        let mut response = endpoint.relay(reply, recording, slot, candidate, &peek);
        if let Some(fill) = fill
            && response.status() == axum::http::StatusCode::OK
        {
            let body = std::mem::take(response.body_mut());
            *response.body_mut() = fill.wrap(body, peek.stream(), peek.include_usage());
        }

        // reply
        reply_headers(
            response.headers_mut(),
            &request_id,
            Some(deployment),
            attempts,
            overhead,
        );
        mark(response)
    }
}

/// The client's session id (Claude Code's `X-Claude-Code-Session-Id`), kept only when it is at most
/// 128 visible ASCII characters.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}
