//! Who may send a `/v1` request, and how much: virtual keys (models, expiry, budgets) and rate
//! limits per key and per client address.
//!
//! Admission happens before the gateway sees the request; the cost and tokens a request used are
//! settled when its record is finished, so budgets and token limits count what really happened.

mod admission;
pub mod identity;
pub mod jwt;
pub mod keys;
pub mod limiter;
pub mod oidc;
pub mod owner;
pub mod teams;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, StatusCode};

pub use self::admission::{Admission, Rejection};
use self::keys::{KeyRing, VirtualKey};
use self::limiter::{Limiter, Rule, Verdict, Window};
use crate::config::{LimitsConfig, TeamConfig};
use crate::domain::BudgetPeriod;
use crate::error::ApiError;

pub use crate::stats::metrics::BudgetUse;

/// Who sent a request, as the authentication layer found out.
#[derive(Clone)]
pub enum Caller {
    /// No master key configured and no virtual key sent.
    Anonymous,
    Master,
    /// Logged in to the console.
    Session(Role),
    Key(Arc<VirtualKey>),
    /// A verified JWT from a trusted identity provider.
    Jwt(Arc<jwt::JwtCaller>),
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything: keys, teams, configuration, the API tester.
    Admin,
    /// Dashboards, providers, the request log and cost analysis.
    Viewer,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

pub struct Governance {
    pub keys: Arc<KeyRing>,
    limiter: Limiter,
    limits: ArcSwap<LimitsConfig>,
    pub teams: Arc<teams::TeamBook>,
}

impl Governance {
    pub async fn open(
        data_dir: &std::path::Path,
        redis: Option<fred::prelude::Client>,
        limits: LimitsConfig,
        teams: &[TeamConfig],
    ) -> Result<Arc<Governance>, String> {
        let keys = Arc::new(KeyRing::open(data_dir, redis.clone()).await?);
        keys.spawn_refresh();
        let teams = teams::TeamBook::open(data_dir, redis.clone(), teams).await?;
        let governance = Arc::new(Governance {
            keys,
            limiter: Limiter::new(redis),
            limits: ArcSwap::from_pointee(limits),
            teams,
        });
        let weak = Arc::downgrade(&governance);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { return };
                g.limiter.sweep();
            }
        });
        Ok(governance)
    }

    /// New limits from a reloaded configuration.
    pub fn set_limits(&self, limits: LimitsConfig) {
        self.limits.store(Arc::new(limits));
    }

    /// The teams from a (re)loaded configuration.
    pub fn set_teams(&self, teams: &[TeamConfig]) {
        self.teams.set_configured(teams);
    }

    pub fn team(&self, name: &str) -> Option<Arc<TeamConfig>> {
        self.teams.get(name)
    }

    /// Refuses a new key naming a team that does not exist: a team created later under that name
    /// would take the key in, with its budget and models. The message starts with the field.
    pub async fn check_key_team(
        &self,
        settings: &crate::domain::KeySettings,
    ) -> Result<(), String> {
        let Some(team) = settings.team.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Ok(());
        };
        match self.teams.get_fresh(team).await {
            Some(_) => Ok(()),
            None => Err(format!(
                "`team`: there is no team `{}`; create it first ([[teams]] in the configuration or POST /api/teams)",
                team.escape_default()
            )),
        }
    }

    /// The team a JWT caller names, or why it may not go on.
    fn team_of(&self, caller: &jwt::JwtCaller) -> Result<Arc<TeamConfig>, Box<Rejection>> {
        let Some(name) = &caller.team else {
            return self.teams.of_member(&caller.user).ok_or_else(|| {
                team_refusal(
                    "The token names no team and no team lists its user; the identity provider must add the team claim."
                        .into(),
                    "team_required",
                )
            });
        };
        self.team(name).ok_or_else(|| {
            team_refusal(
                format!("The team `{name}` is not configured on this gateway."),
                "team_not_found",
            )
        })
    }

    /// The refusal for a spender that has used its budget for the period; `who` names it in the
    /// message (built only then).
    fn budget_refusal(
        &self,
        spender: &str,
        who: impl FnOnce() -> String,
        budget: Option<f64>,
        period: BudgetPeriod,
        now_s: u64,
    ) -> Option<Rejection> {
        let budget = budget?;
        let (today, month) = self.keys.spend(spender);
        let (spent, month_period, label) = match period {
            BudgetPeriod::Day => (today, false, "daily"),
            BudgetPeriod::Month => (month, true, "monthly"),
        };
        if spent < budget {
            return None;
        }
        crate::stats::metrics::observe_refusal("budget");
        let reset = crate::calendar::period_end(now_s, month_period);
        let at = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(reset),
        );
        let mut r = Rejection::error(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                format!(
                    "{} has spent ${spent:.4} of its {label} budget of ${budget:.2}; it resets at {at}.",
                    who()
                ),
            )
            .with_code("budget_exceeded"),
        );
        r.retry_after_s = Some(reset.saturating_sub(now_s).max(1));
        Some(r)
    }

    /// How much of its budget each virtual key and team with one has spent in the current period
    /// (read at scrape time: one entry per budget an admin set, never per client).
    pub fn budget_use(&self) -> Vec<BudgetUse> {
        let now_s = crate::clock::now_s();
        let ratio = |spender: &str, budget: f64, period: BudgetPeriod| {
            let (today, month) = self.keys.spend(spender);
            let spent = match period {
                BudgetPeriod::Day => today,
                BudgetPeriod::Month => month,
            };
            spent / budget
        };
        let keys = self
            .keys
            .budgeted(now_s)
            .into_iter()
            .map(|(id, budget, period)| BudgetUse {
                scope: "key",
                ratio: ratio(&id, budget, period),
                id,
                period,
            });
        let teams = self.teams.list().into_iter().filter_map(|(t, _)| {
            let budget = t.budget_usd.filter(|b| *b > 0.0)?;
            Some(BudgetUse {
                scope: "team",
                ratio: ratio(&team_spender(&t.name), budget, t.budget_period),
                id: t.name.clone(),
                period: t.budget_period,
            })
        });
        keys.chain(teams).collect()
    }

    pub fn limits(&self) -> arc_swap::Guard<Arc<LimitsConfig>> {
        self.limits.load()
    }

    /// The client's address: the peer's, or from `X-Forwarded-For` when the peer is a trusted proxy
    /// (the right-most address that is not itself a trusted proxy).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let limits = self.limits.load();
        if !limits.is_trusted_proxy(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else { break };
            for hop in value.rsplit(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => {
                        client = ip;
                        if !limits.is_trusted_proxy(ip) {
                            return ip;
                        }
                    }
                    Err(_) => return client,
                }
            }
        }
        client
    }

    /// Lets a `/v1` request in, or says why not.
    pub async fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        ip: IpAddr,
    ) -> Result<Admission, Rejection> {
        self.check(caller, ip).await.map_err(|mut r| {
            if let Caller::Key(k) = caller {
                r.key_id = Some(k.id.clone());
            }
            r
        })
    }

    async fn check(self: &Arc<Self>, caller: &Caller, ip: IpAddr) -> Result<Admission, Rejection> {
        let key = match caller {
            Caller::Key(k) => Some(k.clone()),
            _ => None,
        };
        let now_s = crate::clock::now_s();
        if let Some(k) = &key {
            self.check_key(k, now_s).map_err(|r| *r)?;
        }
        let (team, user) = self.team_and_user(caller).map_err(|r| *r)?;
        if let Some(t) = &team
            && let Some(r) = self.budget_refusal(
                &team_spender(&t.name),
                || format!("The team `{}`", t.name),
                t.budget_usd,
                t.budget_period,
                now_s,
            )
        {
            return Err(r);
        }
        let rules = self.rules(key.as_deref(), team.as_deref(), ip);
        let mut admission = Admission {
            governance: self.clone(),
            key,
            team,
            user,
            owner: owner::Owner::of(caller),
            rules: Vec::new(),
            requests: None,
            tokens: None,
        };
        self.check_limits(&rules, &mut admission).await?;
        admission.rules = rules;
        Ok(admission)
    }

    /// A virtual key's expiry and budget.
    fn check_key(&self, k: &VirtualKey, now_s: u64) -> Result<(), Box<Rejection>> {
        if k.is_expired(now_s) {
            return Err(Box::new(Rejection::error(expired(k))));
        }
        let refusal = self.budget_refusal(
            &k.id,
            || format!("The API key `{}` ({})", k.prefix, k.settings.name),
            k.settings.budget_usd,
            k.settings.budget_period,
            now_s,
        );
        refusal.map_or(Ok(()), |r| Err(Box::new(r)))
    }

    /// The team the caller acts as (a JWT's, or a key's), and the user a JWT names.
    fn team_and_user(&self, caller: &Caller) -> Result<TeamAndUser, Box<Rejection>> {
        Ok(match caller {
            Caller::Jwt(jwt) => (Some(self.team_of(jwt)?), Some(jwt.user.clone())),
            Caller::Key(k) => match &k.settings.team {
                Some(name) => (
                    Some(self.team(name).ok_or_else(|| {
                        team_refusal(
                            format!("The key's team `{name}` does not exist (any more)."),
                            "team_not_found",
                        )
                    })?),
                    None,
                ),
                None => (None, None),
            },
            _ => (None, None),
        })
    }

    /// The rate limits that apply: the team's, the key's, the client address's.
    fn rules(&self, key: Option<&VirtualKey>, team: Option<&TeamConfig>, ip: IpAddr) -> Vec<Rule> {
        let limits = self.limits.load();
        let mut rules = Vec::with_capacity(3);
        if let Some(t) = team
            && (t.rpm.is_some() || t.tpm.is_some())
        {
            rules.push(Rule {
                scope: format!("team:{}", t.name),
                rpm: t.rpm,
                tpm: t.tpm,
            });
        }
        if let Some(k) = key
            && (k.settings.rpm.is_some() || k.settings.tpm.is_some())
        {
            rules.push(Rule {
                scope: format!("key:{}", k.id),
                rpm: k.settings.rpm,
                tpm: k.settings.tpm,
            });
        }
        if limits.ip_rpm.is_some() || limits.ip_tpm.is_some() {
            rules.push(Rule {
                scope: format!("ip:{ip}"),
                rpm: limits.ip_rpm,
                tpm: limits.ip_tpm,
            });
        }
        rules
    }

    /// Each rule's window, the tightest kept on the admission; the refusal of the rule that
    /// keeps the caller waiting longest, when one is full.
    async fn check_limits(
        &self,
        rules: &[Rule],
        admission: &mut Admission,
    ) -> Result<(), Rejection> {
        let verdicts: Vec<Verdict> = match rules.len() {
            0 => Vec::new(),
            1 => vec![self.limiter.check(&rules[0]).await],
            _ => futures_util::future::join_all(rules.iter().map(|r| self.limiter.check(r))).await,
        };
        let mut refused: Option<(usize, u64)> = None;
        for (i, v) in verdicts.iter().enumerate() {
            admission.requests = tighter(admission.requests, v.requests);
            admission.tokens = tighter(admission.tokens, v.tokens);
            if let Some(wait) = v.retry_after_ms
                && refused.is_none_or(|(_, w)| wait > w)
            {
                refused = Some((i, wait));
            }
        }
        let Some((i, wait_ms)) = refused else {
            return Ok(());
        };
        let mut r = rate_limited(&rules[i], &verdicts[i], wait_ms);
        r.requests = admission.requests;
        r.tokens = admission.tokens;
        Err(r)
    }
}

/// The team a caller acts as, and the user a JWT names.
type TeamAndUser = (Option<Arc<TeamConfig>>, Option<String>);

/// The refusal of a request over `rule`'s limit (429, with how long to wait).
fn rate_limited(rule: &Rule, verdict: &Verdict, wait_ms: u64) -> Rejection {
    let (who, reason) = if rule.scope.starts_with("key:") {
        ("this API key", "rate_limit_key")
    } else if rule.scope.starts_with("team:") {
        ("your team", "rate_limit_team")
    } else {
        ("your address", "rate_limit_ip")
    };
    crate::stats::metrics::observe_refusal(reason);
    let what = match (verdict.requests, verdict.tokens) {
        (Some(r), _) if r.remaining == 0 => format!("{} requests per minute", r.limit),
        (_, Some(t)) => format!("{} tokens per minute", t.limit),
        (Some(r), None) => format!("{} requests per minute", r.limit),
        (None, None) => "its limit".to_string(),
    };
    let mut r = Rejection::error(
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            format!(
                "Rate limit reached for {who}: {what}. Try again in {:.1}s.",
                wait_ms as f64 / 1e3
            ),
        )
        .with_code("rate_limit_exceeded"),
    );
    r.retry_after_s = Some(wait_ms.div_ceil(1000).max(1));
    r
}

/// The refusal of an expired virtual key (401), counted as such.
pub fn expired(k: &VirtualKey) -> ApiError {
    crate::stats::metrics::observe_refusal("expired");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        format!(
            "The API key `{}` ({}) has expired.",
            k.prefix, k.settings.name
        ),
    )
    .with_code("key_expired")
}

/// A request refused for its team (403), counted as such.
fn team_refusal(message: String, code: &str) -> Box<Rejection> {
    crate::stats::metrics::observe_refusal("team");
    Box::new(Rejection::error(
        ApiError::new(StatusCode::FORBIDDEN, "invalid_request_error", message).with_code(code),
    ))
}

/// The team's entry in the spend book (beside the virtual keys' ids, which never contain `:`).
pub fn team_spender(name: &str) -> String {
    format!("team:{name}")
}

/// The bucket with fewer left wins: that is the one the client runs into first.
fn tighter(a: Option<Window>, b: Option<Window>) -> Option<Window> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.remaining < a.remaining { b } else { a }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_use_covers_keys_and_teams_with_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let team = |name: &str, budget_usd: Option<f64>| TeamConfig {
            name: name.into(),
            members: Vec::new(),
            models: Vec::new(),
            rpm: None,
            tpm: None,
            budget_usd,
            budget_period: BudgetPeriod::Day,
        };
        let teams = [team("research", Some(10.0)), team("free", None)];
        let g = Governance::open(dir.path(), None, LimitsConfig::default(), &teams)
            .await
            .unwrap();
        let settings = |name: &str, budget_usd: Option<f64>| crate::domain::KeySettings {
            name: name.into(),
            budget_usd,
            ..Default::default()
        };
        let capped = g.keys.create(settings("capped", Some(2.0))).await.unwrap();
        g.keys.create(settings("open", None)).await.unwrap();
        g.keys.create(settings("blocked", Some(0.0))).await.unwrap();
        g.keys.charge(&capped.info.id, 1.5);
        g.keys.charge(&team_spender("research"), 12.5);

        let mut uses = g.budget_use();
        uses.sort_by(|a, b| a.scope.cmp(b.scope));
        assert_eq!(
            uses,
            [
                BudgetUse {
                    scope: "key",
                    id: capped.info.id.clone(),
                    period: BudgetPeriod::Month,
                    ratio: 0.75,
                },
                BudgetUse {
                    scope: "team",
                    id: "research".into(),
                    period: BudgetPeriod::Day,
                    ratio: 1.25,
                },
            ]
        );
    }

    #[tokio::test]
    async fn forwarded_for_only_from_trusted_proxies() {
        let dir = tempfile::tempdir().unwrap();
        let limits = LimitsConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let g = Governance::open(dir.path(), None, limits, &[])
            .await
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.7, 10.1.1.1".parse().unwrap());
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(
            g.client_ip(proxy, &headers),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(g.client_ip(stranger, &headers), stranger);
        headers.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(g.client_ip(proxy, &headers), proxy);
    }
}
