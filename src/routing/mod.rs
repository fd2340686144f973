//! Deployments and how one is chosen: balancing strategies, priority tiers, circuit breakers and
//! per-deployment limits. The attempt loop that uses them is `gateway::failover`.

pub mod circuit;
pub mod limits;
pub mod providers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use self::circuit::{Circuit, CircuitReport};
use self::limits::Limits;
pub use self::providers::{Provider, ProviderStatus, Providers, Timeouts};
use crate::config::{Config, RoutingConfig, Secret, Strategy};

/// One way to serve a model: a provider with a key, a base URL, limits and its own health.
#[derive(Debug)]
pub struct Deployment {
    pub id: String,
    pub provider: Arc<Provider>,
    pub base_url: String,
    key: Option<Secret>,
    /// The upstream's model name when the deployment fixes it (explicit deployments).
    pub upstream_model: Option<String>,
    /// The model a resolved deployment was created for (`None` for explicit deployments).
    pub resolved_model: Option<String>,
    pub weight: u32,
    pub priority: u32,
    pub circuit: Circuit,
    pub limits: Limits,
    /// Moving average of the time to the first byte, in microseconds (0: not measured yet).
    latency_us: AtomicU64,
    /// The reply headers naming the provider and the deployment, made on first use.
    header_values: std::sync::OnceLock<(axum::http::HeaderValue, axum::http::HeaderValue)>,
}

impl Deployment {
    /// The values of the reply headers naming the provider and the deployment.
    pub fn header_values(&self) -> &(axum::http::HeaderValue, axum::http::HeaderValue) {
        self.header_values.get_or_init(|| {
            (
                crate::headers::header_text(&self.provider.name),
                crate::headers::header_text(&self.id),
            )
        })
    }

    /// Its circuit as the alert of its opening tells it.
    pub fn opened_circuit(&self) -> crate::alerts::OpenedCircuit {
        let report = self.circuit.report(std::time::Instant::now());
        crate::alerts::OpenedCircuit {
            deployment: self.id.clone(),
            provider: self.provider.name.clone(),
            consecutive_failures: report.consecutive_failures,
            rate_limited: self.circuit.is_rate_limited(),
            reason: report.reason,
            retry_in_seconds: report.retry_in_seconds,
        }
    }

    pub fn api_key(&self) -> Option<&Secret> {
        self.key.as_ref()
    }

    /// Folds one observation into the moving average (weight 1/5 for the newest).
    pub fn observe_latency(&self, latency: Duration) {
        let sample = latency.as_micros().max(1) as u64;
        let _ = self
            .latency_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old * 4 + sample) / 5
                })
            });
    }

    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub fn report(&self, now: Instant) -> DeploymentReport {
        DeploymentReport {
            id: self.id.clone(),
            provider: self.provider.name.clone(),
            circuit: self.circuit.report(now),
            latency_ms: self.latency().map(|l| l.as_secs_f64() * 1e3),
            in_flight: self.limits.in_flight(),
            resolved_model: self.resolved_model.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentReport {
    pub id: String,
    pub provider: String,
    pub circuit: CircuitReport,
    pub latency_ms: Option<f64>,
    pub in_flight: u32,
    #[serde(skip)]
    pub resolved_model: Option<String>,
}

/// A deployment to try, with the model name to send it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub deployment: Arc<Deployment>,
    pub model: String,
}

struct Group {
    deployments: Vec<Arc<Deployment>>,
    strategy: Strategy,
    cursor: AtomicUsize,
}

impl Group {
    fn new(deployments: Vec<Arc<Deployment>>, strategy: Strategy) -> Group {
        Group {
            deployments,
            strategy,
            cursor: AtomicUsize::new(0),
        }
    }

    /// All deployments in the order to try them: priority tiers ascending, the strategy's choice
    /// first within a tier, deployments whose circuit is open last.
    fn ordered(&self, now: Instant) -> Vec<Arc<Deployment>> {
        let mut tiers: Vec<u32> = self.deployments.iter().map(|d| d.priority).collect();
        tiers.sort_unstable();
        tiers.dedup();
        let mut out = Vec::with_capacity(self.deployments.len());
        let mut closed_last = Vec::new();
        for tier in tiers {
            let members: Vec<&Arc<Deployment>> = self
                .deployments
                .iter()
                .filter(|d| d.priority == tier)
                .collect();
            let (open, usable): (Vec<_>, Vec<_>) = members
                .into_iter()
                .partition(|d| !d.circuit.is_available(now));
            out.extend(order(self.strategy, &usable, &self.cursor));
            closed_last.extend(open.into_iter().cloned());
        }
        out.extend(closed_last);
        out
    }
}

/// Orders one tier by strategy.
fn order(
    strategy: Strategy,
    members: &[&Arc<Deployment>],
    cursor: &AtomicUsize,
) -> Vec<Arc<Deployment>> {
    let n = members.len();
    if n <= 1 {
        return members.iter().map(|d| Arc::clone(d)).collect();
    }
    match strategy {
        Strategy::RoundRobin => {
            let start = cursor.fetch_add(1, Ordering::Relaxed) % n;
            (0..n)
                .map(|i| Arc::clone(members[(start + i) % n]))
                .collect()
        }
        Strategy::Weighted => {
            // Weighted sampling without replacement.
            let mut rest: Vec<&Arc<Deployment>> = members.to_vec();
            let mut out = Vec::with_capacity(n);
            while !rest.is_empty() {
                let total: u64 = rest.iter().map(|d| d.weight as u64).sum();
                let mut pick = fastrand::u64(0..total);
                let i = rest
                    .iter()
                    .position(|d| {
                        if pick < d.weight as u64 {
                            true
                        } else {
                            pick -= d.weight as u64;
                            false
                        }
                    })
                    .unwrap_or(0);
                out.push(Arc::clone(rest.remove(i)));
            }
            out
        }
        Strategy::LeastLatency => {
            // Power of two choices on the moving average; unmeasured deployments count as fastest
            // so that each gets measured.
            let key = |d: &Arc<Deployment>| d.latency_us.load(Ordering::Relaxed);
            let a = fastrand::usize(0..n);
            let mut b = fastrand::usize(0..n - 1);
            if b >= a {
                b += 1;
            }
            let first = if key(members[a]) <= key(members[b]) {
                a
            } else {
                b
            };
            let mut rest: Vec<Arc<Deployment>> = members
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, d)| Arc::clone(d))
                .collect();
            rest.sort_by_key(key);
            let mut out = vec![Arc::clone(members[first])];
            out.extend(rest);
            out
        }
    }
}

/// Most per-model deployment groups kept for models resolved through the catalogue or a prefix;
/// past it the least recently used group is dropped (clients may name endless `provider/…` models).
pub const MAX_RESOLVED_GROUPS: usize = 1024;

/// The resolved groups, least recently used evicted first.
#[derive(Default)]
struct ResolvedGroups {
    groups: HashMap<(String, String), (Arc<Group>, u64)>,
    clock: u64,
}

impl ResolvedGroups {
    fn get(&mut self, key: &(String, String)) -> Option<Arc<Group>> {
        self.clock += 1;
        let clock = self.clock;
        self.groups.get_mut(key).map(|(group, used)| {
            *used = clock;
            group.clone()
        })
    }

    /// Keeps `group` unless another request stored one for the key meanwhile (then returns that).
    fn insert(&mut self, key: (String, String), group: Arc<Group>) -> Arc<Group> {
        if let Some(existing) = self.get(&key) {
            return existing;
        }
        if self.groups.len() >= MAX_RESOLVED_GROUPS
            && let Some(oldest) = self
                .groups
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            self.groups.remove(&oldest);
        }
        self.groups.insert(key, (group.clone(), self.clock));
        group
    }
}

/// Every deployment: the explicit `[[deployments]]` grouped by the model name clients use, and for
/// models resolved through the catalogue or a `provider/` prefix, one deployment per provider key
/// and model — so that one failing model does not take its provider's other models out of rotation.
pub struct Routing {
    pub config: RoutingConfig,
    explicit: HashMap<String, Group>,
    providers: HashMap<String, Arc<Provider>>,
    resolved: Mutex<ResolvedGroups>,
}

impl Routing {
    pub fn new(config: &Config, providers: &Providers) -> Routing {
        let routing = config.routing.clone();
        let circuit = || Circuit::new(routing.circuit.clone());
        let provider_map = providers
            .enabled()
            .iter()
            .map(|p| (p.name.clone(), p.clone()))
            .collect();
        let mut explicit: HashMap<String, Vec<Arc<Deployment>>> = HashMap::new();
        for (i, d) in config.deployments.iter().enumerate() {
            // A deployment of a provider without a key of its own needs the provider enabled.
            let provider = if d.api_key.is_some() {
                providers.definition(&d.provider)
            } else {
                providers.get(&d.provider)
            };
            let Some(provider) = provider.cloned() else {
                tracing::warn!(deployment = i, provider = %d.provider, "deployment skipped: its provider has no API key");
                continue;
            };
            let upstream = d.upstream_model.clone().unwrap_or_else(|| d.model.clone());
            let group = explicit.entry(d.model.clone()).or_default();
            let id = d
                .name
                .clone()
                .unwrap_or_else(|| format!("{}/{}#{}", d.provider, upstream, group.len() + 1));
            group.push(Arc::new(Deployment {
                id,
                base_url: d.base_url.clone().map_or_else(
                    || provider.base_url.clone(),
                    |u| u.trim_end_matches('/').to_string(),
                ),
                key: d
                    .api_key
                    .clone()
                    .or_else(|| provider.keys().first().cloned()),
                provider,
                upstream_model: Some(upstream),
                resolved_model: None,
                weight: d.weight,
                priority: d.priority,
                circuit: circuit(),
                limits: Limits::new(d.rpm, d.tpm, d.max_concurrent),
                latency_us: AtomicU64::new(0),
                header_values: Default::default(),
            }));
        }
        let explicit = explicit
            .into_iter()
            .map(|(model, deployments)| {
                let strategy = routing
                    .models
                    .get(&model)
                    .and_then(|m| m.strategy)
                    .unwrap_or(routing.strategy);
                (model, Group::new(deployments, strategy))
            })
            .collect();
        Routing {
            config: routing,
            explicit,
            providers: provider_map,
            resolved: Mutex::default(),
        }
    }

    /// One deployment per key of the provider, for one model.
    fn resolved_group(&self, provider: &Arc<Provider>, model: &str) -> Arc<Group> {
        let key = (provider.name.clone(), model.to_string());
        if let Some(group) = self.resolved.lock().unwrap().get(&key) {
            return group;
        }
        let keys: Vec<Option<Secret>> = if provider.keys().is_empty() {
            vec![None]
        } else {
            provider.keys().iter().cloned().map(Some).collect()
        };
        let many = keys.len() > 1;
        let deployments = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| {
                let name = if many {
                    format!("{}#{}", provider.name, i + 1)
                } else {
                    provider.name.clone()
                };
                Arc::new(Deployment {
                    id: format!("{name}/{model}"),
                    provider: provider.clone(),
                    base_url: provider.base_url.clone(),
                    key,
                    upstream_model: None,
                    resolved_model: Some(model.to_string()),
                    weight: 1,
                    priority: 0,
                    circuit: Circuit::new(self.config.circuit.clone()),
                    limits: Limits::new(None, None, None),
                    latency_us: AtomicU64::new(0),
                    header_values: Default::default(),
                })
            })
            .collect();
        let group = Arc::new(Group::new(deployments, self.config.strategy));
        self.resolved.lock().unwrap().insert(key, group)
    }

    /// Whether clients' `model` names an explicit deployment group.
    pub fn has_group(&self, model: &str) -> bool {
        self.explicit.contains_key(model)
    }

    /// The explicit deployments of a model, in the order to try them.
    pub fn group_candidates(&self, model: &str, now: Instant) -> Option<Vec<Candidate>> {
        self.explicit.get(model).map(|g| {
            g.ordered(now)
                .into_iter()
                .map(|d| Candidate {
                    model: d
                        .upstream_model
                        .clone()
                        .unwrap_or_else(|| model.to_string()),
                    deployment: d,
                })
                .collect()
        })
    }

    /// The deployments of a provider (one per key), for a model resolved to it.
    pub fn provider_candidates(&self, provider: &str, model: &str, now: Instant) -> Vec<Candidate> {
        let Some(provider) = self.providers.get(provider) else {
            return Vec::new();
        };
        let group = self.resolved_group(provider, model);
        group
            .ordered(now)
            .into_iter()
            .map(|d| Candidate {
                deployment: d,
                model: model.to_string(),
            })
            .collect()
    }

    pub fn fallbacks(&self, model: &str) -> &[String] {
        self.config
            .models
            .get(model)
            .map_or(&[], |m| m.fallbacks.as_slice())
    }

    pub fn reports(&self, now: Instant) -> Vec<DeploymentReport> {
        let resolved: Vec<Arc<Group>> = self
            .resolved
            .lock()
            .unwrap()
            .groups
            .values()
            .map(|(g, _)| g.clone())
            .collect();
        let mut out: Vec<DeploymentReport> = resolved
            .iter()
            .map(|g| &**g)
            .chain(self.explicit.values())
            .flat_map(|g| g.deployments.iter().map(|d| d.report(now)))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, weight: u32, priority: u32) -> Arc<Deployment> {
        Arc::new(Deployment {
            id: id.into(),
            provider: Arc::new(Provider::test(id)),
            base_url: String::new(),
            key: None,
            upstream_model: None,
            resolved_model: None,
            weight,
            priority,
            circuit: Circuit::new(Default::default()),
            limits: Limits::new(None, None, None),
            latency_us: AtomicU64::new(0),
            header_values: Default::default(),
        })
    }

    fn firsts(group: &Group, n: usize) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let now = Instant::now();
        for _ in 0..n {
            *counts.entry(group.ordered(now)[0].id.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn weighted_split_follows_weights() {
        let group = Group::new(
            vec![deployment("a", 1, 0), deployment("b", 3, 0)],
            Strategy::Weighted,
        );
        let counts = firsts(&group, 10_000);
        let b = counts["b"] as f64 / 10_000.0;
        assert!((b - 0.75).abs() < 0.05, "{counts:?}");
    }

    #[test]
    fn round_robin_rotates() {
        let group = Group::new(
            vec![
                deployment("a", 1, 0),
                deployment("b", 1, 0),
                deployment("c", 1, 0),
            ],
            Strategy::RoundRobin,
        );
        let counts = firsts(&group, 300);
        assert_eq!(
            counts
                .values()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            [100].into()
        );
    }

    #[test]
    fn lower_tier_only_when_higher_unavailable() {
        let primary = deployment("primary", 1, 0);
        let backup = deployment("backup", 1, 1);
        let group = Group::new(vec![backup.clone(), primary.clone()], Strategy::RoundRobin);
        let now = Instant::now();
        assert_eq!(group.ordered(now)[0].id, "primary");
        primary
            .circuit
            .on_failure(now, "down", Some(Duration::from_secs(60)), false);
        let order: Vec<String> = group.ordered(now).iter().map(|d| d.id.clone()).collect();
        assert_eq!(order, ["backup", "primary"]);
    }

    #[test]
    fn resolved_groups_stay_bounded_and_keep_the_busy_ones() {
        let mut groups = ResolvedGroups::default();
        let key = |i: usize| ("openai".to_string(), format!("m-{i}"));
        let group = || {
            Arc::new(Group::new(
                vec![deployment("d", 1, 0)],
                Strategy::RoundRobin,
            ))
        };
        let busy = groups.insert(key(0), group());
        for i in 1..MAX_RESOLVED_GROUPS * 3 {
            groups.insert(key(i), group());
            // The busy model is used all along.
            assert!(Arc::ptr_eq(&groups.get(&key(0)).expect("kept"), &busy));
        }
        assert_eq!(groups.groups.len(), MAX_RESOLVED_GROUPS);
        assert!(
            groups.get(&key(1)).is_none(),
            "the oldest idle group was evicted"
        );
    }

    #[test]
    fn least_latency_prefers_the_fast_one() {
        let fast = deployment("fast", 1, 0);
        let slow = deployment("slow", 1, 0);
        fast.observe_latency(Duration::from_millis(5));
        slow.observe_latency(Duration::from_millis(300));
        let group = Group::new(vec![fast, slow], Strategy::LeastLatency);
        assert_eq!(firsts(&group, 100)["fast"], 100);
    }
}
