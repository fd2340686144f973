//! Per-deployment limits — requests per minute, tokens per minute, concurrent requests — so that the
//! router does not push a key past what its provider allows. Counted per gateway process.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Limits {
    rpm: Option<u32>,
    tpm: Option<u64>,
    max_concurrent: Option<u32>,
    in_flight: Arc<AtomicU32>,
    /// Start of the current one-minute window, requests and tokens in it.
    window: Mutex<(Instant, u32, u64)>,
}

/// Holds a concurrency slot until dropped.
#[derive(Debug)]
pub struct Slot {
    in_flight: Arc<AtomicU32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limits {
    pub fn new(rpm: Option<u32>, tpm: Option<u64>, max_concurrent: Option<u32>) -> Limits {
        Limits {
            rpm,
            tpm,
            max_concurrent,
            in_flight: Arc::default(),
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.max_concurrent.is_some()
    }

    /// Takes a slot for a request of about `tokens` tokens, or says no.
    pub fn try_acquire(&self, now: Instant, tokens: u64) -> Option<Slot> {
        if let Some(max) = self.max_concurrent {
            let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
            if taken >= max {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
        } else {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        let slot = Slot {
            in_flight: self.in_flight.clone(),
        };
        if self.rpm.is_none() && self.tpm.is_none() {
            return Some(slot);
        }
        let mut w = self.window.lock().unwrap();
        if now.duration_since(w.0) >= Duration::from_secs(60) {
            *w = (now, 0, 0);
        }
        if self.rpm.is_some_and(|rpm| w.1 >= rpm)
            || self.tpm.is_some_and(|tpm| w.2 + tokens > tpm && w.2 > 0)
        {
            return None;
        }
        w.1 += 1;
        w.2 += tokens;
        Some(slot)
    }

    /// Adds what the reply used beyond the estimate.
    pub fn add_tokens(&self, tokens: u64) {
        if self.tpm.is_some() {
            self.window.lock().unwrap().2 += tokens;
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_and_concurrency() {
        let l = Limits::new(Some(2), None, Some(1));
        let now = Instant::now();
        let a = l.try_acquire(now, 0).unwrap();
        assert!(l.try_acquire(now, 0).is_none(), "one at a time");
        drop(a);
        let b = l.try_acquire(now, 0).unwrap();
        drop(b);
        assert!(l.try_acquire(now, 0).is_none(), "two per minute");
        assert!(l.try_acquire(now + Duration::from_secs(60), 0).is_some());
    }

    #[test]
    fn tpm() {
        let l = Limits::new(None, Some(100), None);
        let now = Instant::now();
        assert!(l.try_acquire(now, 80).is_some());
        assert!(l.try_acquire(now, 30).is_none());
        assert!(l.try_acquire(now, 20).is_some());
    }
}
