//! A request let in ([`Admission`]: what it settles when it finishes, the rate-limit headers of its
//! reply) or turned away ([`Rejection`]), and OpenAI's `x-ratelimit-*` headers for both.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

use super::keys::VirtualKey;
use super::limiter::{Rule, Window};
use super::{Governance, owner, team_spender};
use crate::alerts::Budget;
use crate::config::TeamConfig;
use crate::domain::RequestRecord;
use crate::error::ApiError;

/// A request let in: what to settle when it finishes, and the rate-limit headers for the reply.
pub struct Admission {
    pub(super) governance: Arc<Governance>,
    pub key: Option<Arc<VirtualKey>>,
    /// The team a JWT caller acts as.
    pub team: Option<Arc<TeamConfig>>,
    /// The user a JWT names.
    pub user: Option<String>,
    /// Who owns what the gateway keeps for this request (its cache entries, its stored response).
    pub owner: owner::Owner,
    pub(super) rules: Vec<Rule>,
    pub(super) requests: Option<Window>,
    pub(super) tokens: Option<Window>,
}

impl Admission {
    pub fn key_id(&self) -> Option<&str> {
        self.key.as_ref().map(|k| k.id.as_str())
    }

    pub fn team_name(&self) -> Option<&str> {
        self.team.as_ref().map(|t| t.name.as_str())
    }

    /// Whether the key (or the team) may use the model (as the client named it).
    pub fn check_model(&self, model: &str) -> Result<(), ApiError> {
        if let Some(t) = &self.team
            && !t.allows_model(model)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                format!(
                    "The team `{}` may not use the model `{model}`; it may use: {}.",
                    t.name,
                    t.models.join(", ")
                ),
            )
            .with_param("model")
            .with_code("model_not_allowed"));
        }
        match &self.key {
            Some(k) if !k.allows_model(model) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                format!(
                    "The API key `{}` ({}) may not use the model `{model}`; it may use: {}.",
                    k.prefix,
                    k.settings.name,
                    k.settings.models.join(", ")
                ),
            )
            .with_param("model")
            .with_code("model_not_allowed")),
            _ => Ok(()),
        }
    }

    /// Counts what the finished request used against the key's budget and the token limits, and
    /// tells `alerts` of a budget threshold it crossed.
    pub fn settle(&self, record: &RequestRecord, alerts: &crate::alerts::Alerts) {
        // A cache hit used no provider tokens.
        let tokens = if record.cache == "hit" {
            0
        } else {
            record.prompt_tokens + record.completion_tokens
        };
        for rule in &self.rules {
            if let Some(tpm) = rule.tpm {
                self.governance.limiter.debit(&rule.scope, tpm, tokens);
            }
        }
        let keys = &self.governance.keys;
        let cost = record.cost_usd;
        if let Some(k) = &self.key {
            keys.charge(&k.id, cost);
            let budget = Budget {
                spender: &k.id,
                usd: k.settings.budget_usd,
                period: k.settings.budget_period,
            };
            let who = || format!("key {} ({})", k.settings.name, k.prefix);
            alerts.budget_charged(budget, cost, who, || keys.spend(&k.id));
        }
        if let Some(t) = &self.team {
            let spender = team_spender(&t.name);
            keys.charge(&spender, cost);
            let budget = Budget {
                spender: &spender,
                usd: t.budget_usd,
                period: t.budget_period,
            };
            let who = || format!("team {}", t.name);
            alerts.budget_charged(budget, cost, who, || keys.spend(&spender));
        }
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        write_rate_headers(headers, self.requests, self.tokens);
    }
}

/// A request turned away, with the headers that tell the client when to come back.
pub struct Rejection {
    pub error: ApiError,
    /// The key it was refused for, if any.
    pub key_id: Option<String>,
    pub retry_after_s: Option<u64>,
    pub(super) requests: Option<Window>,
    pub(super) tokens: Option<Window>,
}

impl Rejection {
    pub(super) fn error(error: ApiError) -> Rejection {
        Rejection {
            error,
            key_id: None,
            retry_after_s: None,
            requests: None,
            tokens: None,
        }
    }

    pub fn into_response(self) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut response = self.error.into_response();
        let headers = response.headers_mut();
        if let Some(s) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        write_rate_headers(headers, self.requests, self.tokens);
        response
    }
}

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

/// OpenAI's `x-ratelimit-*` headers.
fn write_rate_headers(headers: &mut HeaderMap, requests: Option<Window>, tokens: Option<Window>) {
    for (window, names) in [
        (
            requests,
            [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS],
        ),
        (tokens, [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS]),
    ] {
        let Some(w) = window else { continue };
        let [limit, remaining, reset] = names;
        headers.insert(limit, HeaderValue::from(w.limit));
        headers.insert(remaining, HeaderValue::from(w.remaining));
        if let Ok(v) = HeaderValue::from_str(&reset_text(w.reset_ms)) {
            headers.insert(reset, v);
        }
    }
}

/// OpenAI's duration style: `20ms`, `1.5s`, `6m0s`.
fn reset_text(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", ms as f64 / 1e3);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_read_like_openai() {
        assert_eq!(reset_text(20), "20ms");
        assert_eq!(reset_text(1_500), "1.5s");
        assert_eq!(reset_text(6_000), "6s");
        assert_eq!(reset_text(360_000), "6m0s");
    }
}
