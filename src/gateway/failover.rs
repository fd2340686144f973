//! The attempt loop's bookkeeping: hands out the plan's deployments in order, skipping open circuits
//! and deployments at their limits, backs off (exponentially, with jitter) before trying them again,
//! and stops at the attempt limit or the deadline.
//!
//! When every deployment's circuit is open, the request is not refused out of hand (Envoy's panic
//! threshold): if upstream rate limits opened them all, the client gets 429 with `Retry-After`;
//! otherwise the deployment whose cooldown ends first is tried anyway. A request counts as at most
//! one failure per deployment, however often it retried there. Callers drive it:
//!
//! ```text
//! while let Some((candidate, slot)) = failover.next().await {
//!     match attempt(candidate).await { Ok(v) => { failover.succeeded(candidate); … } Err(f) => failover.failed(candidate, f)? }
//! }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use backon::BackoffBuilder;

use super::upstream::Failure;
use crate::config::RoutingConfig;
use crate::error::ApiError;
use crate::routing::circuit::CircuitState;
use crate::routing::limits::Slot;
use crate::routing::{Candidate, Deployment};

/// Every attempt failed, or none could be made.
pub struct Exhausted {
    pub error: ApiError,
    pub attempts: u32,
    pub deployment: Option<Arc<Deployment>>,
}

pub struct Failover<'a> {
    plan: &'a [Candidate],
    config: &'a RoutingConfig,
    tokens: u64,
    started: Instant,
    deadline: Instant,
    pub attempts: u32,
    next_index: usize,
    progressed: bool,
    limited: bool,
    attempt_started: Instant,
    last: Option<(ApiError, Arc<Deployment>)>,
    fatal: bool,
    backoff: Option<backon::ExponentialBackoff>,
    /// Deployments (by address) this request has already counted a failure against.
    counted: Vec<usize>,
    /// Deployments whose circuit this request's own failure opened (a failed half-open trial, or
    /// the failure that tripped it). With nothing else left, the request's retries go there: a
    /// circuit protects an upstream from other requests, not from this one's next attempt.
    opened_here: Vec<usize>,
    /// A deployment was tried although its circuit was open.
    panicked: bool,
    /// Every circuit was open because of upstream rate limits: how long until the first reopens.
    rate_limited_for: Option<Duration>,
}

impl<'a> Failover<'a> {
    pub fn new(plan: &'a [Candidate], config: &'a RoutingConfig, tokens: u64) -> Failover<'a> {
        let started = Instant::now();
        Failover {
            plan,
            config,
            tokens,
            started,
            deadline: started + config.total_timeout,
            attempts: 0,
            next_index: 0,
            progressed: false,
            limited: false,
            attempt_started: started,
            last: None,
            fatal: false,
            backoff: None,
            counted: Vec::new(),
            opened_here: Vec::new(),
            panicked: false,
            rate_limited_for: None,
        }
    }

    /// The next deployment to try, with its concurrency slot; `None` when it is time to give up.
    pub async fn next(&mut self) -> Option<(&'a Candidate, Slot)> {
        loop {
            let now = Instant::now();
            if self.fatal || self.attempts >= self.config.max_attempts || now >= self.deadline {
                return None;
            }
            if let Some(candidate) = self.plan.get(self.next_index) {
                self.next_index += 1;
                let deployment = &candidate.deployment;
                if !deployment.circuit.try_acquire(now) {
                    continue;
                }
                let Some(slot) = deployment.limits.try_acquire(now, self.tokens) else {
                    deployment.circuit.release_trial();
                    self.limited = true;
                    continue;
                };
                self.attempts += 1;
                self.progressed = true;
                self.attempt_started = now;
                return Some((candidate, slot));
            }
            // The end of a round through the plan.
            self.next_index = 0;
            if !self.progressed
                && let Some(own) = self.own_retry(now)
            {
                return Some(own);
            }
            if !self.progressed {
                if self.limited && self.started.elapsed() < self.config.limit_wait {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                if self.attempts == 0 && !self.panicked && !self.limited {
                    return self.panic_attempt(now);
                }
                return None;
            }
            self.progressed = false;
            let config = self.config;
            let delay = self
                .backoff
                .get_or_insert_with(|| {
                    backon::ExponentialBuilder::default()
                        .with_min_delay(config.retry_base_delay)
                        .with_max_delay(config.retry_max_delay)
                        .with_jitter()
                        .without_max_times()
                        .build()
                })
                .next()
                .unwrap_or(config.retry_max_delay);
            tokio::time::sleep(delay.min(self.deadline.saturating_duration_since(now))).await;
        }
    }

    /// Nothing else could be tried this round: a deployment whose circuit this request opened
    /// itself (not by a rate limit) takes its next attempt.
    fn own_retry(&mut self, now: Instant) -> Option<(&'a Candidate, Slot)> {
        let candidate = self.plan.iter().find(|c| {
            let address = Arc::as_ptr(&c.deployment) as usize;
            self.opened_here.contains(&address) && !c.deployment.circuit.is_rate_limited()
        })?;
        let slot = candidate.deployment.limits.try_acquire(now, self.tokens)?;
        self.attempts += 1;
        self.progressed = true;
        self.attempt_started = now;
        Some((candidate, slot))
    }

    /// Every circuit is open and nothing was tried: 429 when upstream rate limits opened them all,
    /// otherwise the deployment whose circuit reopens first, tried anyway.
    fn panic_attempt(&mut self, now: Instant) -> Option<(&'a Candidate, Slot)> {
        self.panicked = true;
        let reopening = |c: &Candidate| c.deployment.circuit.reopens_at().unwrap_or(now);
        if !self.plan.is_empty()
            && self
                .plan
                .iter()
                .all(|c| c.deployment.circuit.is_rate_limited())
        {
            let first = self.plan.iter().map(reopening).min().unwrap_or(now);
            self.rate_limited_for = Some(first.saturating_duration_since(now));
            return None;
        }
        let candidate = self.plan.iter().min_by_key(|c| reopening(c))?;
        let slot = candidate.deployment.limits.try_acquire(now, self.tokens)?;
        tracing::debug!(deployment = %candidate.deployment.id, "every circuit is open; trying the one that reopens first");
        self.attempts += 1;
        self.attempt_started = now;
        Some((candidate, slot))
    }

    pub fn succeeded(&mut self, candidate: &Candidate) {
        candidate.deployment.circuit.on_success();
        candidate
            .deployment
            .observe_latency(self.attempt_started.elapsed());
    }

    /// Records a failed attempt; a failure that must not be retried ends the loop. True when this
    /// failure opened the deployment's circuit.
    pub fn failed(&mut self, candidate: &Candidate, failure: Failure) -> bool {
        let deployment = &candidate.deployment;
        tracing::debug!(deployment = %deployment.id, error = %failure.error, retryable = failure.retryable, "attempt failed");
        let rate_limited = failure.error.status == StatusCode::TOO_MANY_REQUESTS;
        let address = Arc::as_ptr(deployment) as usize;
        let mut opened = false;
        if failure.retryable && !self.counted.contains(&address) {
            self.counted.push(address);
            let was_open = deployment.circuit.state() == CircuitState::Open;
            deployment.circuit.on_failure(
                Instant::now(),
                &failure.error.message,
                failure.retry_after,
                rate_limited,
            );
            opened = !was_open && deployment.circuit.state() == CircuitState::Open;
            if opened && !rate_limited {
                self.opened_here.push(address);
            }
        } else {
            deployment.circuit.release_trial();
            self.fatal |= !failure.retryable;
        }
        let mut error = failure.error;
        if let (true, Some(wait)) = (rate_limited, failure.retry_after) {
            error = error.with_retry_after(wait);
        }
        self.last = Some((error, deployment.clone()));
        opened
    }

    /// Why the request could not be served.
    pub fn exhausted(self) -> Exhausted {
        let attempts = self.attempts;
        if let Some((error, deployment)) = self.last {
            return Exhausted {
                error,
                attempts,
                deployment: Some(deployment),
            };
        }
        let error = match self.rate_limited_for {
            Some(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "Every deployment of this model is rate-limited by its upstream; retry in {} s.",
                    wait.as_secs() + 1
                ),
            )
            .with_code("upstream_rate_limited")
            .with_retry_after(wait),
            None if self.limited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Every deployment of this model is at its configured limit; try again shortly.",
            )
            .with_code("deployment_limits"),
            None => unavailable(self.plan),
        };
        Exhausted {
            error,
            attempts,
            deployment: None,
        }
    }
}

/// 503 naming why each deployment is out of rotation.
fn unavailable(plan: &[Candidate]) -> ApiError {
    let now = Instant::now();
    let reasons: Vec<String> = plan
        .iter()
        .map(|c| {
            let r = c.deployment.circuit.report(now);
            let retry = r
                .retry_in_seconds
                .map(|s| format!(", retry in {s:.0} s"))
                .unwrap_or_default();
            let why = r.reason.map(|w| format!(": {w}")).unwrap_or_default();
            format!("{} (circuit {:?}{retry}{why})", c.deployment.id, r.state)
        })
        .collect();
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_error",
        format!("No deployment is available: {}", reasons.join("; ")),
    )
    .with_code("no_deployment_available")
}
