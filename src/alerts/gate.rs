//! What decides whether an alert goes out, on explicit clocks (milliseconds since the epoch) so
//! that it can be tested: the deduplication of the same alert, the global rate limit, and the
//! error windows that find error spikes.

use std::collections::{HashMap, VecDeque};

/// Alerts remembered for deduplication at most; past it the expired ones go first, then the ones
/// that expire soonest. Subjects come from the configuration (deployments, providers, keys, teams),
/// so this is a bound that should never be reached.
pub const MAX_REMEMBERED: usize = 4096;

/// What becomes of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// The same alert went out and its quiet time is not over.
    Duplicate,
    /// Over `max_per_minute`; `first` when the previous alert was let through (log it once).
    RateLimited {
        first: bool,
    },
}

/// Deduplication and the global rate limit.
#[derive(Debug, Default)]
pub struct Gate {
    /// Dedup key → until when it is quiet.
    quiet: HashMap<String, u64>,
    /// When the alerts of the last minute were let through.
    sent: VecDeque<u64>,
    limited: bool,
}

impl Gate {
    /// Lets the alert known as `key` through unless the same went out and is quiet until after
    /// `now_ms`, or `max_per_minute` went out in the last minute. Only an alert let through is
    /// remembered, quiet until `quiet_until_ms`: a dropped one may go out once the limit allows.
    pub fn admit(
        &mut self,
        key: &str,
        now_ms: u64,
        quiet_until_ms: u64,
        max_per_minute: u32,
    ) -> Verdict {
        if self.quiet.get(key).is_some_and(|until| *until > now_ms) {
            return Verdict::Duplicate;
        }
        while self
            .sent
            .front()
            .is_some_and(|t| now_ms.saturating_sub(*t) >= 60_000)
        {
            self.sent.pop_front();
        }
        if self.sent.len() >= max_per_minute as usize {
            let first = !self.limited;
            self.limited = true;
            return Verdict::RateLimited { first };
        }
        self.limited = false;
        self.sent.push_back(now_ms);
        self.remember(key, now_ms, quiet_until_ms);
        Verdict::Send
    }

    fn remember(&mut self, key: &str, now_ms: u64, until: u64) {
        if self.quiet.len() >= MAX_REMEMBERED && !self.quiet.contains_key(key) {
            self.quiet.retain(|_, t| *t > now_ms);
            if self.quiet.len() >= MAX_REMEMBERED
                && let Some(soonest) = self
                    .quiet
                    .iter()
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, _)| k.clone())
            {
                self.quiet.remove(&soonest);
            }
        }
        self.quiet.insert(key.to_string(), until);
    }

    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.quiet.len()
    }
}

/// Slots per error window: the window slides by a thirtieth of its length.
const SLOTS: usize = 30;

/// Providers counted at most (they come from the configuration; a bound all the same).
pub const MAX_PROVIDERS: usize = 256;

/// Requests and failures per provider over the last window, in [`SLOTS`] slots.
#[derive(Debug)]
pub struct ErrorWindows {
    slot_ms: u64,
    providers: HashMap<String, Window>,
}

#[derive(Debug, Default)]
struct Window {
    /// (slot number, requests, errors)
    slots: [(u64, u32, u32); SLOTS],
    /// An alert was raised and the rate has not gone back under the threshold since.
    raised: bool,
}

/// A provider over its error threshold, newly.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub provider: String,
    pub requests: u64,
    pub errors: u64,
}

impl ErrorWindows {
    pub fn new(window_ms: u64) -> ErrorWindows {
        ErrorWindows {
            slot_ms: (window_ms / SLOTS as u64).max(1),
            providers: HashMap::new(),
        }
    }

    /// A window of another length starts empty.
    pub fn resize(&mut self, window_ms: u64) {
        let slot_ms = (window_ms / SLOTS as u64).max(1);
        if slot_ms != self.slot_ms {
            *self = ErrorWindows::new(window_ms);
        }
    }

    /// Counts one finished request.
    pub fn observe(&mut self, provider: &str, error: bool, now_ms: u64) {
        if !self.providers.contains_key(provider) {
            if self.providers.len() >= MAX_PROVIDERS {
                return;
            }
            self.providers
                .insert(provider.to_string(), Window::default());
        }
        let Some(window) = self.providers.get_mut(provider) else {
            return;
        };
        let slot = now_ms / self.slot_ms;
        let cell = &mut window.slots[(slot % SLOTS as u64) as usize];
        if cell.0 != slot {
            *cell = (slot, 0, 0);
        }
        cell.1 = cell.1.saturating_add(1);
        cell.2 = cell.2.saturating_add(u32::from(error));
    }

    /// The providers whose error rate over the window reached `rate` with at least `min_requests`
    /// requests, each once until its rate falls back under `rate` (or its requests under
    /// `min_requests`). Providers with nothing in the window are forgotten.
    pub fn spikes(&mut self, now_ms: u64, rate: f64, min_requests: u64) -> Vec<Spike> {
        let current = now_ms / self.slot_ms;
        let oldest = current.saturating_sub(SLOTS as u64 - 1);
        let mut spikes = Vec::new();
        self.providers.retain(|provider, window| {
            let (requests, errors) = window
                .slots
                .iter()
                .filter(|(slot, _, _)| (oldest..=current).contains(slot))
                .fold((0u64, 0u64), |(r, e), (_, sr, se)| {
                    (r + u64::from(*sr), e + u64::from(*se))
                });
            let over = requests >= min_requests && errors as f64 >= rate * requests as f64;
            if over && !window.raised {
                spikes.push(Spike {
                    provider: provider.clone(),
                    requests,
                    errors,
                });
            }
            window.raised = over;
            requests > 0
        });
        spikes.sort_by(|a, b| a.provider.cmp(&b.provider));
        spikes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;

    #[test]
    fn the_same_alert_goes_out_once_per_quiet_time() {
        let mut gate = Gate::default();
        let t0 = 1_000_000;
        let quiet = t0 + 10 * MINUTE;
        assert_eq!(gate.admit("circuit:a", t0, quiet, 20), Verdict::Send);
        assert_eq!(
            gate.admit("circuit:a", t0 + 1, quiet, 20),
            Verdict::Duplicate
        );
        assert_eq!(
            gate.admit("circuit:a", t0 + 9 * MINUTE, t0 + 19 * MINUTE, 20),
            Verdict::Duplicate
        );
        // Another subject is another alert.
        assert_eq!(gate.admit("circuit:b", t0 + 2, quiet, 20), Verdict::Send);
        // Quiet time over: it goes out again, and is quiet again from then.
        let t1 = t0 + 10 * MINUTE;
        assert_eq!(
            gate.admit("circuit:a", t1, t1 + 10 * MINUTE, 20),
            Verdict::Send
        );
        assert_eq!(
            gate.admit("circuit:a", t1 + 1, t1 + 10 * MINUTE, 20),
            Verdict::Duplicate
        );
    }

    #[test]
    fn at_most_max_per_minute_and_the_first_drop_is_told() {
        let mut gate = Gate::default();
        let t0 = 5 * MINUTE;
        let verdicts: Vec<Verdict> = (0..6)
            .map(|i| gate.admit(&format!("k{i}"), t0 + i, t0 + MINUTE, 3))
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Send,
                Verdict::Send,
                Verdict::Send,
                Verdict::RateLimited { first: true },
                Verdict::RateLimited { first: false },
                Verdict::RateLimited { first: false },
            ]
        );
        // A dropped alert is not remembered: it goes out when the minute has passed.
        assert_eq!(
            gate.admit("k3", t0 + MINUTE, t0 + 2 * MINUTE, 3),
            Verdict::Send
        );
        assert_eq!(
            gate.admit("k0", t0 + MINUTE + 1, t0 + 2 * MINUTE, 3),
            Verdict::Send
        );
        assert_eq!(
            gate.admit("k4", t0 + MINUTE + 2, t0 + 2 * MINUTE, 3),
            Verdict::Send
        );
        assert_eq!(
            gate.admit("k5", t0 + MINUTE + 3, t0 + 2 * MINUTE, 3),
            Verdict::RateLimited { first: true }
        );
    }

    #[test]
    fn remembered_alerts_are_bounded() {
        let mut gate = Gate::default();
        let t0 = 0;
        for i in 0..MAX_REMEMBERED + 100 {
            let now = t0 + i as u64;
            assert_eq!(
                gate.admit(&format!("k{i}"), now, now + 1_000_000, u32::MAX),
                Verdict::Send
            );
        }
        assert_eq!(gate.remembered(), MAX_REMEMBERED);
        // The newest are still quiet; the oldest were evicted.
        let now = t0 + (MAX_REMEMBERED + 100) as u64;
        let last = format!("k{}", MAX_REMEMBERED + 99);
        assert_eq!(
            gate.admit(&last, now, now + 1, u32::MAX),
            Verdict::Duplicate
        );
        assert_eq!(gate.admit("k0", now, now + 1, u32::MAX), Verdict::Send);
    }

    #[test]
    fn error_spikes_are_raised_once_and_rearm_when_the_rate_falls() {
        let window = 60_000;
        let mut w = ErrorWindows::new(window);
        let t0 = 10 * window;
        // Not enough requests yet.
        for i in 0..4 {
            w.observe("openai", true, t0 + i);
        }
        assert!(w.spikes(t0 + 10, 0.5, 5).is_empty());
        w.observe("openai", false, t0 + 20);
        w.observe("gemini", false, t0 + 20);
        let spikes = w.spikes(t0 + 30, 0.5, 5);
        assert_eq!(
            spikes,
            [Spike {
                provider: "openai".into(),
                requests: 5,
                errors: 4
            }]
        );
        // Still over: not raised again.
        w.observe("openai", true, t0 + 40);
        assert!(w.spikes(t0 + 50, 0.5, 5).is_empty());
        // The window slides past those failures; successes bring the rate down and re-arm it.
        let t1 = t0 + window + 5_000;
        for i in 0..5 {
            w.observe("openai", false, t1 + i);
        }
        assert!(w.spikes(t1 + 10, 0.5, 5).is_empty());
        for i in 0..6 {
            w.observe("openai", true, t1 + 20 + i);
        }
        assert_eq!(w.spikes(t1 + 30, 0.5, 5).len(), 1);
        // A provider with nothing left in the window is forgotten.
        assert!(w.spikes(t1 + 3 * window, 0.5, 5).is_empty());
        assert!(w.providers.is_empty());
    }

    #[test]
    fn error_windows_are_bounded() {
        let mut w = ErrorWindows::new(10_000);
        for i in 0..MAX_PROVIDERS + 10 {
            w.observe(&format!("p{i}"), true, 1);
        }
        assert_eq!(w.providers.len(), MAX_PROVIDERS);
        w.resize(10_000);
        assert_eq!(w.providers.len(), MAX_PROVIDERS);
        w.resize(20_000);
        assert!(w.providers.is_empty());
    }
}
