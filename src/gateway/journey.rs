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
//! Each phase is a short method of `Journey`, the request on its way; [`Gateway::serve`] runs
//! them in order. An [`Endpoint`] supplies only what differs: what it peeks, how an attempt
//! encodes and starts its reply, how the reply is relayed, and the shape of its errors.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::cache::{Caching, HEADER_CACHE, Outcome};
use super::failover::Failover;
use super::record::{Recording, estimate_tokens};
use super::upstream::Failure;
use super::{Gateway, reply_headers};
use crate::config::RoutingConfig;
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
    /// What tells apart replies to the same body in different modes, for the cache (an API whose
    /// mode is in its URL, not its body).
    fn cache_mode(&self) -> &'static str {
        ""
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

    /// How the request arrived, when not as one HTTP request (the request log shows it).
    fn transport(&self) -> &'static str {
        ""
    }

    /// An error in the endpoint's shape (OpenAI's unless the endpoint says otherwise).
    fn error(&self, error: ApiError) -> Response {
        error.into_response()
    }
}

impl Gateway {
    /// Runs one request through its journey, step by step; a step that ends the request early
    /// (a refusal, a cache hit) gives the reply.
    pub async fn serve<E: Endpoint>(
        &self,
        endpoint: &E,
        headers: &HeaderMap,
        body: Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Response {
        let mut journey = Journey::identify(self, endpoint, headers);
        let response = match journey.run(&body, admission).await {
            Ok(response) | Err(response) => response,
        };
        journey.mark(response)
    }
}

/// One request on its way: what its steps share. The cache step is in `cache/step.rs`.
pub(super) struct Journey<'a, E> {
    pub(super) gateway: &'a Gateway,
    endpoint: &'a E,
    pub(super) headers: &'a HeaderMap,
    pub(super) request_id: String,
    pub(super) started: Instant,
    /// Time spent waiting for upstreams, to tell the gateway's own time apart.
    upstream_time: Duration,
    /// What the cache did, for the reply's header.
    pub(super) cached: Option<Outcome>,
}

/// A step's early end: the reply to send now.
pub(super) type Early = Response;

// An early reply is moved once, to the client: boxing it would cost an allocation per refusal
// and per cache hit for nothing.
#[allow(clippy::result_large_err)]
impl<'a, E: Endpoint> Journey<'a, E> {
    /// identify: the request id and the clock.
    fn identify(gateway: &'a Gateway, endpoint: &'a E, headers: &'a HeaderMap) -> Self {
        Journey {
            gateway,
            endpoint,
            headers,
            request_id: gateway.request_id(headers),
            started: Instant::now(),
            upstream_time: Duration::ZERO,
            cached: None,
        }
    }

    async fn run(
        &mut self,
        body: &Bytes,
        admission: Option<Arc<Admission>>,
    ) -> Result<Response, Early> {
        let peek = self.peek(body)?;
        let mut recording = self.admit(&peek, admission)?;
        let fill = self.cache(&peek, body, &mut recording).await?;
        let plan = self.plan(&peek, &mut recording)?;
        let (reply, candidate, slot, attempts) =
            self.attempt(&peek, body, &plan, &mut recording).await?;
        Ok(self.relay(&peek, reply, (candidate, slot, attempts), recording, fill))
    }

    /// The error in the endpoint's shape, with the gateway's headers.
    fn refuse(&self, e: ApiError, deployment: Option<&Deployment>, attempts: u32) -> Response {
        let overhead = self.started.elapsed().saturating_sub(self.upstream_time);
        let mut response = self.endpoint.error(e);
        reply_headers(
            response.headers_mut(),
            &self.request_id,
            deployment,
            attempts,
            overhead,
        );
        response
    }

    /// A refusal after the request was recorded.
    pub(super) fn fail(&self, recording: &mut Option<Recording>, e: ApiError) -> Response {
        if let Some(recording) = recording.take() {
            recording.fail(&e);
        }
        self.refuse(e, None, 0)
    }

    /// peek: the few fields the gateway reads.
    fn peek(&self, body: &[u8]) -> Result<E::Peek, Early> {
        self.endpoint
            .peek(body)
            .map_err(|e| self.refuse(e, None, 0))
    }

    /// record and admit: the record starts; the model, the caller's key and the endpoint's own
    /// rules are checked.
    fn admit(
        &self,
        peek: &E::Peek,
        admission: Option<Arc<Admission>>,
    ) -> Result<Option<Recording>, Early> {
        let model = peek.model();
        let mut recording = Recording::start(
            self.gateway.stats.clone(),
            self.gateway.catalogue.clone(),
            &self.request_id,
            peek.stream(),
        );
        recording.record.api = E::NAME.to_string();
        recording.record.transport = self.endpoint.transport().to_string();
        recording.record.session_id = session_id(self.headers);
        let admitted = self
            .gateway
            .record_model(&mut recording, model)
            .and_then(|()| {
                recording.span = crate::telemetry::request_span(E::NAME, model, self.headers);
                recording.admit(admission)
            });
        let mut recording = Some(recording);
        match admitted.and_then(|()| peek.check()) {
            Ok(()) => Ok(recording),
            Err(e) => Err(self.fail(&mut recording, e)),
        }
    }

    /// plan: the deployments that serve the model, in the order the routing prefers.
    fn plan(
        &self,
        peek: &E::Peek,
        recording: &mut Option<Recording>,
    ) -> Result<Vec<Candidate>, Early> {
        self.gateway
            .plan(peek.model())
            .map_err(|e| self.fail(recording, e))
    }

    /// attempt: each deployment the failover hands out, until one starts its reply.
    async fn attempt<'p>(
        &mut self,
        peek: &E::Peek,
        body: &Bytes,
        plan: &'p [Candidate],
        recording: &mut Option<Recording>,
    ) -> Result<(E::Started, &'p Candidate, Slot, u32), Early>
    where
        'a: 'p,
    {
        let gateway = self.gateway;
        let config: &'p RoutingConfig = &gateway.routing.config;
        let mut failover = Failover::new(plan, config, estimate_tokens(body.len()));
        let span = &recording.as_ref().expect("the request is recorded").span;
        while let Some((candidate, slot)) = failover.next().await {
            let waiting = Instant::now();
            let deployment = &candidate.deployment;
            let attempt_span = crate::telemetry::attempt_span(
                span,
                E::NAME,
                &candidate.model,
                &deployment.provider.name,
                &deployment.id,
            );
            let attempt = Attempt {
                candidate,
                peek,
                body,
                request_id: &self.request_id,
                span: &attempt_span,
            };
            let result = self.endpoint.attempt(gateway, attempt).await;
            self.upstream_time += waiting.elapsed();
            match result {
                Ok(reply) => {
                    failover.succeeded(candidate);
                    return Ok((reply, candidate, slot, failover.attempts));
                }
                Err(failure) => {
                    if failover.failed(candidate, failure) {
                        let opened = deployment.opened_circuit();
                        gateway
                            .stats
                            .alerts()
                            .circuit_opened(&opened, &config.circuit);
                    }
                }
            }
        }
        let exhausted = failover.exhausted();
        let mut r = recording.take().expect("the request is recorded");
        if let Some(d) = &exhausted.deployment {
            r.record.provider = d.provider.name.clone();
            r.record.deployment = d.id.clone();
        }
        r.record.attempts = exhausted.attempts;
        r.fail(&exhausted.error);
        let deployment = exhausted.deployment.as_deref();
        Err(self.refuse(exhausted.error, deployment, exhausted.attempts))
    }

    /// relay and reply: the reply goes to the client as it arrives (into the cache too, when it
    /// ends well), with the gateway's headers.
    fn relay(
        &self,
        peek: &E::Peek,
        reply: E::Started,
        (candidate, slot, attempts): (&Candidate, Slot, u32),
        recording: Option<Recording>,
        fill: Option<super::cache::Fill>,
    ) -> Response {
        let deployment = &candidate.deployment;
        let mut recording = recording.expect("the request is recorded");
        recording.unlisted = !self.gateway.is_listed(peek.model(), true);
        let r = &mut recording.record;
        r.provider = deployment.provider.name.clone();
        r.deployment = deployment.id.clone();
        r.attempts = attempts;
        let overhead = self.started.elapsed().saturating_sub(self.upstream_time);
        crate::stats::metrics::observe_overhead(overhead.as_secs_f64());
        let mut response = self.endpoint.relay(reply, recording, slot, candidate, peek);
        if let Some(fill) = fill
            && response.status() == axum::http::StatusCode::OK
        {
            let body = std::mem::take(response.body_mut());
            *response.body_mut() = fill.wrap(body, peek.stream(), peek.include_usage());
        }
        reply_headers(
            response.headers_mut(),
            &self.request_id,
            Some(deployment),
            attempts,
            overhead,
        );
        response
    }

    /// What the cache did, on whatever reply the request gets.
    fn mark(&self, mut response: Response) -> Response {
        if let Some(outcome) = self.cached {
            response
                .headers_mut()
                .insert(HEADER_CACHE, outcome.header());
        }
        response
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
