//! Mergeable counters: what every bucket of every series holds. Latencies go into fixed histograms
//! so that percentiles over any set of buckets (or replicas) are exact merges, not averages of averages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::RequestRecord;

/// Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended.
pub const LATENCY_BOUNDS_MS: [f64; 30] = [
    0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0,
    500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 7500.0, 10000.0, 15000.0, 20000.0,
    30000.0, 60000.0, 120000.0,
];
pub const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    /// Cost in billionths of a USD (a cheap request costs a few millionths), so that Redis can add it atomically as an integer.
    pub cost_nano_usd: u64,
    /// Response cache hits and misses.
    #[serde(default)]
    pub cache_hits: u64,
    #[serde(default)]
    pub cache_misses: u64,
    /// Tokens and cost (billionths of a USD) the cache's hits saved.
    #[serde(default)]
    pub saved_tokens: u64,
    #[serde(default)]
    pub saved_nano_usd: u64,
    /// Errors by class.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_classes: BTreeMap<String, u64>,
    /// Latency histogram: bucket index → count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency: BTreeMap<u8, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ttft: BTreeMap<u8, u64>,
}

pub fn bucket_of(ms: f64) -> u8 {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&b| ms <= b)
        .unwrap_or(LATENCY_BOUNDS_MS.len()) as u8
}

impl Counters {
    pub fn add_record(&mut self, r: &RequestRecord) {
        self.requests += 1;
        if r.is_error() {
            self.errors += 1;
            let class = r.error_class.clone().unwrap_or_else(|| "other".into());
            *self.error_classes.entry(class).or_default() += 1;
        }
        match r.cache.as_str() {
            // A hit used no provider tokens: what it would have used is saved.
            "hit" => {
                self.cache_hits += 1;
                self.saved_tokens += r.prompt_tokens + r.completion_tokens;
                self.saved_nano_usd += (r.saved_usd * 1e9).round() as u64;
            }
            "miss" => self.cache_misses += 1,
            _ => {}
        }
        if r.cache != "hit" {
            self.prompt_tokens += r.prompt_tokens;
            self.completion_tokens += r.completion_tokens;
            self.reasoning_tokens += r.reasoning_tokens;
            self.cached_tokens += r.cached_tokens;
        }
        self.cost_nano_usd += (r.cost_usd * 1e9).round() as u64;
        *self.latency.entry(bucket_of(r.latency_ms)).or_default() += 1;
        if let Some(t) = r.ttft_ms {
            *self.ttft.entry(bucket_of(t)).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Counters) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cached_tokens += other.cached_tokens;
        self.cost_nano_usd += other.cost_nano_usd;
        self.cache_hits += other.cache_hits;
        self.cache_misses += other.cache_misses;
        self.saved_tokens += other.saved_tokens;
        self.saved_nano_usd += other.saved_nano_usd;
        for (k, v) in &other.error_classes {
            *self.error_classes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.latency {
            *self.latency.entry(*k).or_default() += v;
        }
        for (k, v) in &other.ttft {
            *self.ttft.entry(*k).or_default() += v;
        }
    }

    pub fn cost_usd(&self) -> f64 {
        self.cost_nano_usd as f64 / 1e9
    }

    pub fn saved_usd(&self) -> f64 {
        self.saved_nano_usd as f64 / 1e9
    }

    pub fn latency_percentile(&self, q: f64) -> f64 {
        percentile(&self.latency, q)
    }

    pub fn ttft_percentile(&self, q: f64) -> f64 {
        percentile(&self.ttft, q)
    }

    /// Field/value pairs as Redis hash increments: `requests`, `lat:5`, `err:timeout`, …
    pub fn to_fields(&self) -> Vec<(String, u64)> {
        let mut out = vec![
            ("requests".to_string(), self.requests),
            ("errors".to_string(), self.errors),
            ("prompt_tokens".to_string(), self.prompt_tokens),
            ("completion_tokens".to_string(), self.completion_tokens),
            ("reasoning_tokens".to_string(), self.reasoning_tokens),
            ("cached_tokens".to_string(), self.cached_tokens),
            ("cost_nano_usd".to_string(), self.cost_nano_usd),
            ("cache_hits".to_string(), self.cache_hits),
            ("cache_misses".to_string(), self.cache_misses),
            ("saved_tokens".to_string(), self.saved_tokens),
            ("saved_nano_usd".to_string(), self.saved_nano_usd),
        ];
        out.retain(|(_, v)| *v > 0);
        out.extend(
            self.error_classes
                .iter()
                .map(|(k, v)| (format!("err:{k}"), *v)),
        );
        out.extend(self.latency.iter().map(|(k, v)| (format!("lat:{k}"), *v)));
        out.extend(self.ttft.iter().map(|(k, v)| (format!("ttft:{k}"), *v)));
        out
    }

    /// The inverse of [`Counters::to_fields`]; unknown fields are ignored.
    pub fn add_field(&mut self, field: &str, value: u64) {
        match field {
            "requests" => self.requests += value,
            "errors" => self.errors += value,
            "prompt_tokens" => self.prompt_tokens += value,
            "completion_tokens" => self.completion_tokens += value,
            "reasoning_tokens" => self.reasoning_tokens += value,
            "cached_tokens" => self.cached_tokens += value,
            "cost_nano_usd" => self.cost_nano_usd += value,
            "cache_hits" => self.cache_hits += value,
            "cache_misses" => self.cache_misses += value,
            "saved_tokens" => self.saved_tokens += value,
            "saved_nano_usd" => self.saved_nano_usd += value,
            f => {
                if let Some(c) = f.strip_prefix("err:") {
                    *self.error_classes.entry(c.to_string()).or_default() += value;
                } else if let Some(b) = f.strip_prefix("lat:").and_then(|b| b.parse().ok()) {
                    *self.latency.entry(b).or_default() += value;
                } else if let Some(b) = f.strip_prefix("ttft:").and_then(|b| b.parse().ok()) {
                    *self.ttft.entry(b).or_default() += value;
                }
            }
        }
    }
}

/// The upper bound of the bucket holding the q-quantile (the open bucket reports its lower bound).
fn percentile(hist: &BTreeMap<u8, u64>, q: f64) -> f64 {
    let total: u64 = hist.values().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (&bucket, &count) in hist {
        seen += count;
        if seen >= rank {
            let i = bucket as usize;
            return LATENCY_BOUNDS_MS
                .get(i)
                .copied()
                .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1]);
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(latency_ms: f64, status: u16) -> RequestRecord {
        RequestRecord {
            latency_ms,
            status,
            prompt_tokens: 10,
            completion_tokens: 5,
            cost_usd: 0.0015,
            ..Default::default()
        }
    }

    #[test]
    fn percentiles_merge_exactly() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        for _ in 0..90 {
            a.add_record(&rec(4.0, 200));
        }
        for _ in 0..10 {
            b.add_record(&rec(400.0, 500));
        }
        a.merge(&b);
        assert_eq!(a.requests, 100);
        assert_eq!(a.errors, 10);
        assert_eq!(a.latency_percentile(0.5), 5.0);
        assert_eq!(a.latency_percentile(0.95), 500.0);
        assert_eq!(a.cost_nano_usd, 150_000_000);
    }

    #[test]
    fn fields_round_trip() {
        let mut a = Counters::default();
        let mut r = rec(12.0, 504);
        r.error_class = Some("timeout".into());
        r.ttft_ms = Some(3.0);
        a.add_record(&r);
        let mut hit = rec(1.0, 200);
        hit.cache = "hit".into();
        hit.saved_usd = 0.002;
        a.add_record(&hit);
        let mut miss = rec(1.0, 200);
        miss.cache = "miss".into();
        a.add_record(&miss);
        assert_eq!(
            (
                a.cache_hits,
                a.cache_misses,
                a.saved_tokens,
                a.saved_nano_usd
            ),
            (1, 1, 15, 2_000_000)
        );
        assert_eq!(a.prompt_tokens, 20, "a hit's tokens are saved, not used");
        let mut b = Counters::default();
        for (f, v) in a.to_fields() {
            b.add_field(&f, v);
        }
        assert_eq!(a, b);
    }
}
