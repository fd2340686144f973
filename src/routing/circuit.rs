//! A circuit breaker per deployment: closed → open (cooldown, or the upstream's `Retry-After`) →
//! half-open (one trial request) → closed on success, open again on failure.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::CircuitConfig;

/// Outcomes remembered for the error ratio.
const WINDOW: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    consecutive_failures: u32,
    outcomes: VecDeque<bool>,
    open_until: Option<Instant>,
    trial_in_flight: bool,
    reason: Option<String>,
    /// Opened by an upstream rate limit (a 429 with `Retry-After`) rather than by errors.
    rate_limited: bool,
}

/// Longest failure reason kept (it may quote an upstream's message).
const MAX_REASON: usize = 200;

#[derive(Debug)]
pub struct Circuit {
    config: CircuitConfig,
    inner: Mutex<Inner>,
}

/// What `/health` and the console show.
#[derive(Debug, Clone, Serialize)]
pub struct CircuitReport {
    pub state: CircuitState,
    pub consecutive_failures: u32,
    pub error_ratio: f64,
    /// Seconds until an open circuit lets a trial request through.
    pub retry_in_seconds: Option<f64>,
    pub reason: Option<String>,
}

impl Circuit {
    pub fn new(config: CircuitConfig) -> Circuit {
        Circuit {
            config,
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                consecutive_failures: 0,
                outcomes: VecDeque::with_capacity(WINDOW),
                open_until: None,
                trial_in_flight: false,
                reason: None,
                rate_limited: false,
            }),
        }
    }

    /// Whether a request may be sent now; an open circuit past its cooldown becomes half-open.
    pub fn is_available(&self, now: Instant) -> bool {
        let mut s = self.inner.lock().unwrap();
        match s.state {
            CircuitState::Closed => true,
            CircuitState::HalfOpen => !s.trial_in_flight,
            CircuitState::Open => {
                if s.open_until.is_some_and(|t| now >= t) {
                    s.state = CircuitState::HalfOpen;
                    s.trial_in_flight = false;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Claims the request slot: in half-open state only one trial goes through.
    pub fn try_acquire(&self, now: Instant) -> bool {
        if !self.is_available(now) {
            return false;
        }
        let mut s = self.inner.lock().unwrap();
        if s.state == CircuitState::HalfOpen {
            if s.trial_in_flight {
                return false;
            }
            s.trial_in_flight = true;
        }
        true
    }

    pub fn on_success(&self) {
        let mut s = self.inner.lock().unwrap();
        s.consecutive_failures = 0;
        push(&mut s.outcomes, true);
        if s.state != CircuitState::Closed {
            s.state = CircuitState::Closed;
            s.trial_in_flight = false;
            s.open_until = None;
            s.reason = None;
            s.rate_limited = false;
            s.outcomes.clear();
        }
    }

    /// A failed attempt. `retry_after` (from a 429 or 503) opens the circuit for at least that
    /// long; `rate_limited` says the upstream refused for its rate limit (429).
    pub fn on_failure(
        &self,
        now: Instant,
        reason: &str,
        retry_after: Option<Duration>,
        rate_limited: bool,
    ) {
        let mut s = self.inner.lock().unwrap();
        s.consecutive_failures += 1;
        push(&mut s.outcomes, false);
        let failures = s.outcomes.iter().filter(|ok| !**ok).count();
        let ratio_tripped = s.outcomes.len() >= self.config.min_requests as usize
            && failures as f64 / s.outcomes.len() as f64 >= self.config.error_ratio;
        let trip = retry_after.is_some()
            || s.state == CircuitState::HalfOpen
            || s.consecutive_failures >= self.config.consecutive_failures
            || ratio_tripped;
        if trip {
            let wait =
                retry_after.map_or(self.config.cooldown, |r| r.max(Duration::from_millis(1)));
            s.state = CircuitState::Open;
            s.open_until = Some(now + wait);
            s.trial_in_flight = false;
            s.reason = Some(reason.chars().take(MAX_REASON).collect());
            s.rate_limited = rate_limited && retry_after.is_some();
        }
    }

    /// When an open circuit lets a trial through again (`None` unless open).
    pub fn reopens_at(&self) -> Option<Instant> {
        let s = self.inner.lock().unwrap();
        s.open_until.filter(|_| s.state == CircuitState::Open)
    }

    /// Whether the circuit is open because the upstream rate-limited it.
    pub fn is_rate_limited(&self) -> bool {
        let s = self.inner.lock().unwrap();
        s.state == CircuitState::Open && s.rate_limited
    }

    /// A trial that ended without a verdict (the client went away): let another one through.
    pub fn release_trial(&self) {
        self.inner.lock().unwrap().trial_in_flight = false;
    }

    pub fn report(&self, now: Instant) -> CircuitReport {
        let s = self.inner.lock().unwrap();
        let failures = s.outcomes.iter().filter(|ok| !**ok).count();
        CircuitReport {
            state: s.state,
            consecutive_failures: s.consecutive_failures,
            error_ratio: if s.outcomes.is_empty() {
                0.0
            } else {
                failures as f64 / s.outcomes.len() as f64
            },
            retry_in_seconds: s
                .open_until
                .filter(|_| s.state == CircuitState::Open)
                .map(|t| t.saturating_duration_since(now).as_secs_f64()),
            reason: s.reason.clone(),
        }
    }

    pub fn state(&self) -> CircuitState {
        self.inner.lock().unwrap().state
    }
}

fn push(outcomes: &mut VecDeque<bool>, ok: bool) {
    if outcomes.len() == WINDOW {
        outcomes.pop_front();
    }
    outcomes.push_back(ok);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit() -> Circuit {
        Circuit::new(CircuitConfig {
            consecutive_failures: 3,
            error_ratio: 0.5,
            min_requests: 10,
            cooldown: Duration::from_secs(5),
        })
    }

    #[test]
    fn opens_after_threshold_half_opens_after_cooldown_closes_after_success() {
        let c = circuit();
        let t0 = Instant::now();
        for _ in 0..2 {
            c.on_failure(t0, "500", None, false);
        }
        assert_eq!(c.state(), CircuitState::Closed);
        c.on_failure(t0, "500", None, false);
        assert_eq!(c.state(), CircuitState::Open);
        assert!(!c.try_acquire(t0 + Duration::from_secs(4)));
        // After the cooldown one trial goes through, and only one.
        assert!(c.try_acquire(t0 + Duration::from_secs(5)));
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert!(!c.try_acquire(t0 + Duration::from_secs(5)));
        c.on_success();
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.try_acquire(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn failed_trial_reopens() {
        let c = circuit();
        let t0 = Instant::now();
        for _ in 0..3 {
            c.on_failure(t0, "500", None, false);
        }
        let t1 = t0 + Duration::from_secs(6);
        assert!(c.try_acquire(t1));
        c.on_failure(t1, "500", None, false);
        assert_eq!(c.state(), CircuitState::Open);
        assert!(!c.try_acquire(t1 + Duration::from_secs(1)));
        assert!(c.try_acquire(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn retry_after_opens_for_that_long() {
        let c = circuit();
        let t0 = Instant::now();
        c.on_failure(t0, "429", Some(Duration::from_secs(20)), true);
        assert!(!c.try_acquire(t0 + Duration::from_secs(19)));
        assert!(c.try_acquire(t0 + Duration::from_secs(20)));
        let report = c.report(t0);
        assert_eq!(report.reason.as_deref(), Some("429"));
    }

    #[test]
    fn error_ratio_opens() {
        let c = circuit();
        let t0 = Instant::now();
        // Failures alternate with successes, so the consecutive count never reaches 3.
        for i in 0..11 {
            if i % 2 == 0 {
                c.on_failure(t0, "502", None, false);
            } else {
                c.on_success();
            }
        }
        assert_eq!(c.state(), CircuitState::Open);
    }
}
