//! Alerts to people (`[alerts]`): a budget passing a threshold, a deployment's circuit opening, a
//! provider's errors spiking, posted to webhooks in Slack's format or a generic JSON.
//!
//! The request path only hands an alert to a bounded channel ([`Alerts`], `try_send`: it never
//! waits; a full channel drops the alert and counts it) and counts finished requests per provider.
//! A background task deduplicates (the same kind and subject once per `dedup_window`, a budget
//! threshold once per budget period), holds every webhook together to `max_per_minute`, evaluates
//! the error windows every second, and posts each alert to the webhooks that want its kind, each
//! delivery in a task of its own, so a slow or unreachable webhook delays nothing else.
//! The configuration follows reloads.

mod gate;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc};

use self::gate::{ErrorWindows, Gate, Spike, Verdict};
use crate::calendar as period;
use crate::config::{AlertKind, AlertsConfig, CircuitConfig};
use crate::domain::{BudgetPeriod, RequestRecord};

/// Alerts waiting for the background task at most.
const CHANNEL_CAPACITY: usize = 1024;
/// Webhook deliveries in flight at most; past it a delivery fails at once.
const MAX_DELIVERIES: usize = 64;
/// How often the error windows are evaluated.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert, as the webhooks receive it.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// What it is about: `deployment <id>`, `provider <name>`, `key <name> (<prefix>)`, `team <name>`.
    pub subject: String,
    /// A sentence for people, naming the subject.
    pub message: String,
    /// The measure that crossed (a budget's share spent, an error rate, consecutive failures).
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Two alerts with the same key are the same alert.
    dedup: String,
    /// Until when the same alert stays quiet; `None`: `dedup_window` from when it is sent.
    quiet_until_ms: Option<u64>,
}

impl Alert {
    fn title(&self) -> &'static str {
        match self.kind {
            AlertKind::Budget => "Budget threshold",
            AlertKind::Circuit => "Circuit open",
            AlertKind::Errors => "Error spike",
        }
    }
}

/// What happened to the alerts so far: deliveries sent and failed (one per webhook), alerts dropped
/// (over `max_per_minute`, or the channel was full). `/metrics` has the same as
/// `llm_bridge_alerts_total{kind, outcome}`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub failed: u64,
    pub dropped: u64,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl Counts {
    fn count(&self, kind: AlertKind, outcome: &'static str) {
        let counter = match outcome {
            "sent" => &self.sent,
            "failed" => &self.failed,
            _ => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("llm_bridge_alerts_total", "kind" => kind.as_str(), "outcome" => outcome)
            .increment(1);
    }
}

/// The configuration, with what the request path asks of it at hand.
struct Settings {
    config: AlertsConfig,
    /// `config.wants(kind)` for each of [`AlertKind::ALL`].
    wants: [bool; 3],
}

impl Settings {
    fn new(config: AlertsConfig) -> Settings {
        Settings {
            wants: AlertKind::ALL.map(|k| config.wants(k)),
            config,
        }
    }

    fn wants(&self, kind: AlertKind) -> bool {
        self.wants[kind as usize]
    }
}

/// The handle the gateway raises alerts through; cloning it is cheap.
#[derive(Clone)]
pub struct Alerts(Arc<Inner>);

struct Inner {
    tx: mpsc::Sender<Alert>,
    settings: ArcSwap<Settings>,
    errors: Mutex<ErrorWindows>,
    counts: Arc<Counts>,
}

/// A virtual key's or a team's budget, as [`Alerts::budget_charged`] checks it.
pub struct Budget<'a> {
    /// The spend book's entry: a key's id, or `team:<name>`.
    pub spender: &'a str,
    pub usd: Option<f64>,
    pub period: BudgetPeriod,
}

/// A deployment whose circuit has just opened, as its alert tells it.
pub struct OpenedCircuit {
    pub deployment: String,
    pub provider: String,
    pub consecutive_failures: u32,
    /// The upstream rate-limited the deployment (a warning, not a failure).
    pub rate_limited: bool,
    pub reason: Option<String>,
    /// Seconds until a trial request.
    pub retry_in_seconds: Option<f64>,
}

impl Alerts {
    /// Starts the background task; nothing is sent until [`Alerts::configure`] names a webhook.
    pub fn start() -> Alerts {
        let config = AlertsConfig::default();
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let counts = Arc::new(Counts::default());
        let inner = Arc::new(Inner {
            tx,
            errors: Mutex::new(ErrorWindows::new(millis(config.error_window))),
            settings: ArcSwap::from_pointee(Settings::new(config)),
            counts: counts.clone(),
        });
        tokio::spawn(run(Arc::downgrade(&inner), rx, counts));
        Alerts(inner)
    }

    /// The configuration from now on (at start and on every reload).
    pub fn configure(&self, config: &AlertsConfig) {
        self.0
            .errors
            .lock()
            .expect("error windows")
            .resize(millis(config.error_window));
        self.0
            .settings
            .store(Arc::new(Settings::new(config.clone())));
    }

    pub fn tally(&self) -> Tally {
        let c = &self.0.counts;
        Tally {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    fn wants(&self, kind: AlertKind) -> bool {
        self.0.settings.load().wants(kind)
    }

    /// Hands the alert to the background task without waiting.
    fn raise(&self, alert: Alert) {
        let kind = alert.kind;
        if self.0.tx.try_send(alert).is_err() {
            self.0.counts.count(kind, "dropped");
        }
    }

    /// A deployment's circuit has just opened.
    pub fn circuit_opened(&self, opened: &OpenedCircuit, circuit: &CircuitConfig) {
        if !self.wants(AlertKind::Circuit) {
            return;
        }
        let (report, rate_limited) = (opened, opened.rate_limited);
        let failures = report.consecutive_failures;
        let mut message = format!(
            "The circuit of deployment `{}` (provider {}) opened after {failures} consecutive failure{}",
            opened.deployment,
            opened.provider,
            if failures == 1 { "" } else { "s" },
        );
        if rate_limited {
            message.push_str(", rate-limited by the upstream");
        }
        if let Some(reason) = &report.reason {
            message.push_str(": ");
            message.push_str(reason);
        }
        message.push('.');
        if let Some(s) = report.retry_in_seconds {
            message.push_str(&format!(" Next trial in {:.0} s.", s.ceil()));
        }
        self.raise(Alert {
            kind: AlertKind::Circuit,
            severity: if rate_limited {
                Severity::Warning
            } else {
                Severity::Critical
            },
            subject: format!("deployment {}", opened.deployment),
            message,
            value: Some(f64::from(failures)),
            threshold: Some(f64::from(circuit.consecutive_failures)),
            at_ms: crate::clock::now_ms(),
            dedup: format!("circuit:{}", opened.deployment),
            quiet_until_ms: None,
        });
    }

    /// `cost` was just added to the budget's spend; `spend` reads the spend (today, this month)
    /// and `who` names the spender (`key frugal (sk-llmb-1a2b)`), both only when needed. Raises an
    /// alert for the highest threshold the charge crossed.
    pub fn budget_charged(
        &self,
        budget: Budget<'_>,
        cost: f64,
        who: impl FnOnce() -> String,
        spend: impl FnOnce() -> (f64, f64),
    ) {
        let Some(usd) = budget.usd.filter(|b| *b > 0.0) else {
            return;
        };
        if cost <= 0.0 || !cost.is_finite() || !self.wants(AlertKind::Budget) {
            return;
        }
        let monthly = budget.period == BudgetPeriod::Month;
        let (today, month) = spend();
        let after = if monthly { month } else { today };
        let before = after - cost;
        let thresholds = &self.0.settings.load().config.budget_thresholds;
        let Some(threshold) = crossed(thresholds, usd, before, after) else {
            return;
        };
        let now_s = crate::clock::now_s();
        let (period_id, label) = if monthly {
            (format!("m{}", period::month_id(now_s)), "monthly")
        } else {
            (format!("d{}", period::day_id(now_s)), "daily")
        };
        let end_s = period::period_end(now_s, monthly);
        let resets =
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(end_s));
        let subject = who();
        let message = format!(
            "The {subject} has spent ${after:.4} of its {label} budget of ${usd:.2} ({:.0}%, past the {:.0}% threshold); it resets at {resets}.",
            after / usd * 100.0,
            threshold * 100.0,
        );
        self.raise(Alert {
            kind: AlertKind::Budget,
            severity: if threshold >= 1.0 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            subject,
            message,
            value: Some(after / usd),
            threshold: Some(threshold),
            at_ms: now_s * 1000,
            dedup: format!("budget:{}:{period_id}:{threshold}", budget.spender),
            quiet_until_ms: Some(end_s * 1000),
        });
    }

    /// Counts a finished request for its provider's error rate: failures the provider answers
    /// for (5xx, 401/403, 429, timeouts, replies broken off), not the clients' bad requests, nor
    /// requests that never reached a provider.
    pub fn observe(&self, r: &RequestRecord) {
        if r.provider.is_empty() || !self.wants(AlertKind::Errors) {
            return;
        }
        let error = r.status >= 500
            || matches!(r.status, 401 | 403 | 429)
            || (r.status < 400 && r.error_class.is_some());
        self.0.errors.lock().expect("error windows").observe(
            &r.provider,
            error,
            crate::clock::now_ms(),
        );
    }
}

/// The highest of `thresholds` (fractions of `usd`) that spend going from `before` to `after`
/// crossed.
fn crossed(thresholds: &[f64], usd: f64, before: f64, after: f64) -> Option<f64> {
    thresholds
        .iter()
        .copied()
        .filter(|t| before < t * usd && t * usd <= after)
        .max_by(f64::total_cmp)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// The background task: ends when the last [`Alerts`] handle is gone.
async fn run(inner: Weak<Inner>, mut rx: mpsc::Receiver<Alert>, counts: Arc<Counts>) {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("llm-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client for alert webhooks: no alert will be sent");
            return;
        }
    };
    let deliveries = Arc::new(Semaphore::new(MAX_DELIVERIES));
    let mut gate = Gate::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let alerts = tokio::select! {
            alert = rx.recv() => match alert {
                Some(alert) => vec![alert],
                None => return,
            },
            _ = tick.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                let settings = inner.settings.load_full();
                if !settings.wants(AlertKind::Errors) {
                    continue;
                }
                let config = &settings.config;
                let spikes = inner.errors.lock().expect("error windows").spikes(
                    crate::clock::now_ms(),
                    config.error_rate,
                    config.error_min_requests,
                );
                spikes.into_iter().map(|s| error_spike(s, config)).collect()
            }
        };
        let Some(settings) = inner.upgrade().map(|i| i.settings.load_full()) else {
            return;
        };
        for alert in alerts {
            let send = Delivery {
                http: &http,
                deliveries: &deliveries,
                counts: &counts,
            };
            send.dispatch(&mut gate, &settings.config, alert);
        }
    }
}

fn error_spike(spike: Spike, config: &AlertsConfig) -> Alert {
    let rate = spike.errors as f64 / spike.requests as f64;
    Alert {
        kind: AlertKind::Errors,
        severity: Severity::Critical,
        subject: format!("provider {}", spike.provider),
        message: format!(
            "Provider {}: {} of {} requests failed ({:.0}%) in the last {}, over the {:.0}% threshold.",
            spike.provider,
            spike.errors,
            spike.requests,
            rate * 100.0,
            humantime::format_duration(config.error_window),
            config.error_rate * 100.0,
        ),
        value: Some(rate),
        threshold: Some(config.error_rate),
        at_ms: crate::clock::now_ms(),
        dedup: format!("errors:{}", spike.provider),
        quiet_until_ms: None,
    }
}

/// What a delivery needs from the background task.
struct Delivery<'a> {
    http: &'a reqwest::Client,
    deliveries: &'a Arc<Semaphore>,
    counts: &'a Arc<Counts>,
}

impl Delivery<'_> {
    /// Deduplicates, rate-limits, then posts the alert to every webhook that wants its kind.
    fn dispatch(&self, gate: &mut Gate, config: &AlertsConfig, alert: Alert) {
        let hooks: Vec<(usize, &crate::config::WebhookConfig)> = config
            .webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| w.events.contains(&alert.kind))
            .collect();
        if hooks.is_empty() {
            return;
        }
        let now = crate::clock::now_ms();
        let quiet_until = alert
            .quiet_until_ms
            .unwrap_or_else(|| now.saturating_add(millis(config.dedup_window)));
        match gate.admit(&alert.dedup, now, quiet_until, config.max_per_minute) {
            Verdict::Send => {}
            Verdict::Duplicate => {
                tracing::debug!(kind = alert.kind.as_str(), subject = %alert.subject, "alert already sent; not repeated");
                return;
            }
            Verdict::RateLimited { first } => {
                self.counts.count(alert.kind, "dropped");
                if first {
                    tracing::warn!(
                        max_per_minute = config.max_per_minute,
                        "alerts over [alerts] max_per_minute are dropped (counted in llm_bridge_alerts_total{{outcome=\"dropped\"}})"
                    );
                }
                return;
            }
        }
        tracing::info!(kind = alert.kind.as_str(), severity = alert.severity.as_str(), subject = %alert.subject, webhooks = hooks.len(), "alert: {}", alert.message);
        for (index, hook) in hooks {
            let kind = alert.kind;
            let Ok(permit) = self.deliveries.clone().try_acquire_owned() else {
                self.counts.count(kind, "failed");
                tracing::warn!(
                    webhook = index + 1,
                    kind = kind.as_str(),
                    "cannot deliver an alert: too many deliveries in flight"
                );
                continue;
            };
            let body = webhook::body(&alert, hook.format, &config.gateway);
            let (http, url, timeout, counts) = (
                self.http.clone(),
                hook.url.clone(),
                config.timeout,
                self.counts.clone(),
            );
            tokio::spawn(async move {
                let _permit = permit;
                match webhook::deliver(&http, &url, body, timeout).await {
                    Ok(()) => counts.count(kind, "sent"),
                    Err(error) => {
                        counts.count(kind, "failed");
                        tracing::warn!(
                            webhook = index + 1,
                            kind = kind.as_str(),
                            error = %error,
                            "cannot deliver an alert"
                        );
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_budget_threshold_crossed() {
        let t = [0.8, 1.0];
        assert_eq!(crossed(&t, 25.0, 10.0, 19.9), None);
        assert_eq!(crossed(&t, 25.0, 10.0, 20.0), Some(0.8));
        assert_eq!(crossed(&t, 25.0, 20.0, 24.0), None);
        assert_eq!(crossed(&t, 25.0, 20.0, 30.0), Some(1.0));
        // One charge past both: the higher only.
        assert_eq!(crossed(&t, 25.0, 0.0, 40.0), Some(1.0));
        // Already past: nothing more.
        assert_eq!(crossed(&t, 25.0, 30.0, 40.0), None);
        assert_eq!(crossed(&[], 25.0, 0.0, 40.0), None);
    }

    #[tokio::test]
    async fn nothing_is_raised_without_a_webhook_and_a_full_channel_drops() {
        let alerts = Alerts::start();
        let record = RequestRecord {
            provider: "openai".into(),
            status: 500,
            ..Default::default()
        };
        alerts.observe(&record);
        assert!(
            alerts
                .0
                .errors
                .lock()
                .unwrap()
                .spikes(crate::clock::now_ms(), 0.1, 1)
                .is_empty()
        );
        let mut config = AlertsConfig::default();
        config.webhooks.push(crate::config::WebhookConfig {
            url: crate::config::Secret::new("http://127.0.0.1:9/hook"),
            format: crate::config::WebhookFormat::Generic,
            events: vec![AlertKind::Errors],
        });
        alerts.configure(&config);
        alerts.observe(&record);
        assert_eq!(
            alerts
                .0
                .errors
                .lock()
                .unwrap()
                .spikes(crate::clock::now_ms(), 0.1, 1)
                .len(),
            1
        );
        // More alerts than the channel holds, before the task reads any: the rest are dropped.
        let spike = Spike {
            provider: "openai".into(),
            requests: 1,
            errors: 1,
        };
        for _ in 0..CHANNEL_CAPACITY + 5 {
            alerts.raise(error_spike(spike.clone(), &config));
        }
        assert_eq!(alerts.tally().dropped, 5);
    }
}
