//! Requests-per-minute and tokens-per-minute limits, as token buckets kept in the GCRA form: one
//! "theoretical arrival time" per bucket, so a check is one read and one write.
//!
//! A bucket allows a burst of its whole per-minute allowance and refills evenly over the minute.
//! A request needs one request slot and, when the scope has a token limit, at least one token
//! left; the tokens it really used are taken when it finishes (a large reply can leave the bucket
//! in debt, which later requests wait out).
//!
//! Embedded: the buckets live in memory. Redis: each scope's two buckets share a hash tag
//! (`llmb:{llmb:rl:<scope>}:r` / `:t`, one slot, Cluster-safe) and one script checks and takes
//! atomically with Redis's clock, so every replica enforces one global limit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use fred::prelude::*;
use fred::types::scripts::Script;

const PERIOD_MS: f64 = 60_000.0;

/// Checks and takes one request (ARGV: rpm, tpm; 0 = no limit). Returns allowed (0/1), the
/// request bucket's and the token bucket's fill in ms after the call, and the wait in ms if refused.
const CHECK_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local period = 60000
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local r_tat, r_new, t_tat = now, now, now
local wait = 0
if rpm > 0 then
  r_tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
  r_new = r_tat + period / rpm
  wait = math.max(wait, r_new - now - period)
end
if tpm > 0 then
  t_tat = math.max(tonumber(redis.call('GET', KEYS[2]) or now), now)
  wait = math.max(wait, t_tat + period / tpm - now - period)
end
if wait > 0 then
  return {0, math.ceil(r_tat - now), math.ceil(t_tat - now), math.ceil(wait)}
end
if rpm > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', r_new), 'PX', math.ceil(r_new - now) + 1000)
end
return {1, math.ceil(r_new - now), math.ceil(t_tat - now), 0}
"#;

/// Takes used tokens from a token bucket (ARGV: tpm, tokens).
const DEBIT_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
tat = tat + 60000 / tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
return 1
"#;

/// One scope's limits: `key:<id>` or `ip:<address>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub scope: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

/// Where a bucket stands after a check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
    /// Set when the request is refused: how long to wait.
    pub retry_after_ms: Option<u64>,
}

impl Verdict {
    fn new(rule: &Rule, r_fill_ms: f64, t_fill_ms: f64, wait_ms: f64) -> Verdict {
        let window = |limit: u64, fill: f64| {
            let fill = fill.max(0.0);
            let per = PERIOD_MS / limit as f64;
            Window {
                limit,
                remaining: ((PERIOD_MS - fill) / per).floor().clamp(0.0, limit as f64) as u64,
                reset_ms: fill.ceil() as u64,
            }
        };
        Verdict {
            requests: rule.rpm.map(|l| window(l, r_fill_ms)),
            tokens: rule.tpm.map(|l| window(l, t_fill_ms)),
            retry_after_ms: (wait_ms > 0.0).then(|| wait_ms.ceil() as u64),
        }
    }

    fn allow_all() -> Verdict {
        Verdict {
            requests: None,
            tokens: None,
            retry_after_ms: None,
        }
    }
}

pub enum Limiter {
    Memory(Mutex<HashMap<String, [f64; 2]>>),
    Redis {
        client: Client,
        check: Script,
        debit: Script,
        /// Scopes refused until a time (ms): answered locally, without asking Redis again.
        blocked: Mutex<HashMap<String, (f64, Verdict)>>,
        last_warning_ms: AtomicU64,
    },
}

fn bucket_keys(scope: &str) -> [String; 2] {
    [
        format!("llmb:{{llmb:rl:{scope}}}:r"),
        format!("llmb:{{llmb:rl:{scope}}}:t"),
    ]
}

impl Limiter {
    pub fn new(redis: Option<Client>) -> Limiter {
        match redis {
            None => Limiter::Memory(Mutex::new(HashMap::new())),
            Some(client) => Limiter::Redis {
                client,
                check: Script::from_lua(CHECK_SCRIPT),
                debit: Script::from_lua(DEBIT_SCRIPT),
                blocked: Mutex::new(HashMap::new()),
                last_warning_ms: AtomicU64::new(0),
            },
        }
    }

    /// Checks the rule and, if it allows the request, takes one request from it.
    pub async fn check(&self, rule: &Rule) -> Verdict {
        let rpm = rule.rpm.unwrap_or(0);
        let tpm = rule.tpm.unwrap_or(0);
        if rpm == 0 && tpm == 0 {
            return Verdict::allow_all();
        }
        match self {
            Limiter::Memory(buckets) => {
                let now = crate::clock::now_ms_f64();
                let mut buckets = buckets.lock().unwrap();
                let [r_tat, t_tat] = buckets.entry(rule.scope.clone()).or_insert([now, now]);
                let r_start = r_tat.max(now);
                let t_start = t_tat.max(now);
                let mut wait: f64 = 0.0;
                let mut r_new = now;
                if rpm > 0 {
                    r_new = r_start + PERIOD_MS / rpm as f64;
                    wait = wait.max(r_new - now - PERIOD_MS);
                }
                if tpm > 0 {
                    wait = wait.max(t_start + PERIOD_MS / tpm as f64 - now - PERIOD_MS);
                }
                if wait > 0.0 {
                    return Verdict::new(rule, r_start - now, t_start - now, wait);
                }
                if rpm > 0 {
                    *r_tat = r_new;
                }
                Verdict::new(rule, r_new - now, t_start - now, 0.0)
            }
            Limiter::Redis {
                client,
                check,
                blocked,
                last_warning_ms,
                ..
            } => {
                let now = crate::clock::now_ms_f64();
                if let Some((until, verdict)) = blocked.lock().unwrap().get(&rule.scope)
                    && *until > now
                {
                    let mut v = verdict.clone();
                    v.retry_after_ms = Some((until - now).ceil() as u64);
                    return v;
                }
                let keys: Vec<String> = bucket_keys(&rule.scope).into();
                let args: Vec<String> = vec![rpm.to_string(), tpm.to_string()];
                let reply: Result<Vec<i64>, _> =
                    check.evalsha_with_reload(client, keys, args).await;
                match reply {
                    Ok(v) if v.len() == 4 => {
                        let verdict = Verdict::new(rule, v[1] as f64, v[2] as f64, v[3] as f64);
                        let mut blocked = blocked.lock().unwrap();
                        if let Some(wait) = verdict.retry_after_ms {
                            blocked
                                .insert(rule.scope.clone(), (now + wait as f64, verdict.clone()));
                        } else if !blocked.is_empty() {
                            blocked.retain(|_, (until, _)| *until > now);
                        }
                        verdict
                    }
                    other => {
                        // Redis is unreachable: serve rather than refuse everyone, and say so.
                        let last = last_warning_ms.load(Ordering::Relaxed);
                        if now as u64 > last + 10_000 {
                            last_warning_ms.store(now as u64, Ordering::Relaxed);
                            let reason = match other {
                                Err(e) => e.details().to_string(),
                                Ok(v) => format!("unexpected reply {v:?}"),
                            };
                            tracing::warn!(error = %reason, "rate limits cannot be checked in Redis; requests are let through");
                        }
                        Verdict::allow_all()
                    }
                }
            }
        }
    }

    /// Takes the tokens a finished request used. Redis: in the background.
    pub fn debit(&self, scope: &str, tpm: u64, tokens: u64) {
        if tpm == 0 || tokens == 0 {
            return;
        }
        match self {
            Limiter::Memory(buckets) => {
                let now = crate::clock::now_ms_f64();
                let mut buckets = buckets.lock().unwrap();
                let entry = buckets.entry(scope.to_string()).or_insert([now, now]);
                entry[1] = entry[1].max(now) + PERIOD_MS / tpm as f64 * tokens as f64;
            }
            Limiter::Redis { client, debit, .. } => {
                let client = client.clone();
                let script = debit.clone();
                let key = bucket_keys(scope)[1].clone();
                tokio::spawn(async move {
                    let r: Result<i64, _> = script
                        .evalsha_with_reload(
                            &client,
                            vec![key],
                            vec![tpm.to_string(), tokens.to_string()],
                        )
                        .await;
                    if let Err(e) = r {
                        tracing::warn!(error = %e.details(), "cannot take used tokens from a rate limit in Redis");
                    }
                });
            }
        }
    }

    /// Forgets full buckets (embedded), so that one-off clients do not pile up.
    pub fn sweep(&self) {
        if let Limiter::Memory(buckets) = self {
            let now = crate::clock::now_ms_f64();
            buckets
                .lock()
                .unwrap()
                .retain(|_, [r, t]| *r > now || *t > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rpm: Option<u64>, tpm: Option<u64>) -> Rule {
        Rule {
            scope: "key:test".into(),
            rpm,
            tpm,
        }
    }

    #[tokio::test]
    async fn a_burst_of_the_whole_allowance_then_refusal_with_the_wait() {
        let limiter = Limiter::new(None);
        let r = rule(Some(10), None);
        for i in 0..10 {
            let v = limiter.check(&r).await;
            assert_eq!(v.retry_after_ms, None, "request {i}");
            assert_eq!(v.requests.unwrap().remaining, 9 - i);
        }
        let v = limiter.check(&r).await;
        let wait = v.retry_after_ms.expect("the 11th is refused");
        assert!(
            (5_900..=6_000).contains(&wait),
            "one slot refills in 6 s, got {wait} ms"
        );
        assert_eq!(v.requests.unwrap().remaining, 0);
    }

    #[tokio::test]
    async fn used_tokens_put_the_bucket_in_debt() {
        let limiter = Limiter::new(None);
        let r = rule(None, Some(1_000));
        assert_eq!(limiter.check(&r).await.retry_after_ms, None);
        limiter.debit(&r.scope, 1_000, 1_500);
        let v = limiter.check(&r).await;
        let wait = v.retry_after_ms.expect("in debt");
        // 500 tokens over the allowance, plus one token, at 1000 tokens/min.
        assert!((30_000..=30_100).contains(&wait), "got {wait} ms");
        assert_eq!(v.tokens.unwrap().remaining, 0);
    }
}
