use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, EnvSource, Secret};

/// `[alerts]`: messages to people, posted to webhooks, when a budget passes a threshold, a
/// deployment's circuit opens or a provider's errors spike. Nothing is sent without a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where alerts go: `[[alerts.webhooks]]`. `LLM_BRIDGE_ALERTS_WEBHOOK` adds a Slack-compatible
    /// one that receives every alert.
    pub webhooks: Vec<WebhookConfig>,
    /// Fractions of a virtual key's or team's budget whose crossing is told, once per budget period.
    pub budget_thresholds: Vec<f64>,
    /// A provider's share of failed requests over `error_window` that makes an error spike.
    pub error_rate: f64,
    #[serde(with = "humantime_serde")]
    pub error_window: Duration,
    /// Requests a provider must have served in the window before its error rate counts.
    pub error_min_requests: u64,
    /// The same alert (kind and subject) is sent once per window; budget thresholds once per
    /// budget period.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// Alerts sent per minute at most, all webhooks and kinds together; the rest are dropped and
    /// counted.
    pub max_per_minute: u32,
    /// How long one webhook call may take (one retry after a failure).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How messages name this gateway.
    pub gateway: String,
}

/// `[[alerts.webhooks]]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The webhook's URL. It often carries a token (Slack's do): it is never logged or shown.
    pub url: Secret,
    /// `slack` (`{"text": …}`, for Slack and the many tools that accept its incoming webhooks) or
    /// `generic` (`{"kind", "severity", "subject", "message", "value", "threshold", "gateway", "at"}`).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The kinds of alert it receives: `budget`, `circuit`, `errors` (default: all).
    #[serde(default = "AlertKind::all")]
    pub events: Vec<AlertKind>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookFormat {
    #[default]
    Slack,
    Generic,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A virtual key or a team spent a threshold's share of its budget.
    Budget,
    /// A deployment's circuit opened.
    Circuit,
    /// A provider's error rate went over `error_rate`.
    Errors,
}

impl AlertKind {
    pub const ALL: [AlertKind; 3] = [AlertKind::Budget, AlertKind::Circuit, AlertKind::Errors];

    fn all() -> Vec<AlertKind> {
        Self::ALL.to_vec()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Budget => "budget",
            AlertKind::Circuit => "circuit",
            AlertKind::Errors => "errors",
        }
    }
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhooks: Vec::new(),
            budget_thresholds: vec![0.8, 1.0],
            error_rate: 0.5,
            error_window: Duration::from_secs(60),
            error_min_requests: 20,
            dedup_window: Duration::from_secs(600),
            max_per_minute: 20,
            timeout: Duration::from_secs(5),
            gateway: "llm-bridge".into(),
        }
    }
}

/// Webhooks at most.
const MAX_WEBHOOKS: usize = 16;

impl AlertsConfig {
    pub(super) fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        if let Some(url) = env.var("LLM_BRIDGE_ALERTS_WEBHOOK") {
            self.webhooks.push(WebhookConfig {
                url: Secret::new(url.trim()),
                format: WebhookFormat::Slack,
                events: AlertKind::all(),
            });
        }
        Ok(())
    }

    pub(super) fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            key: format!("alerts.{key}"),
            reason: reason.into(),
        };
        if self.webhooks.len() > MAX_WEBHOOKS {
            return Err(invalid("webhooks".into(), "at most 16 webhooks"));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            // The reason never quotes the URL: it may hold a token.
            if !is_http_url(hook.url.expose()) {
                return Err(invalid(
                    format!("webhooks[{i}].url"),
                    "must be an http:// or https:// URL with a host",
                ));
            }
            if hook.events.is_empty() {
                return Err(invalid(
                    format!("webhooks[{i}].events"),
                    "must name at least one of budget, circuit, errors",
                ));
            }
        }
        if self.budget_thresholds.len() > 8
            || self
                .budget_thresholds
                .iter()
                .any(|t| !t.is_finite() || *t <= 0.0 || *t > 1.0)
        {
            return Err(invalid(
                "budget_thresholds".into(),
                "at most 8 fractions, each in (0, 1]",
            ));
        }
        if !self.error_rate.is_finite() || self.error_rate <= 0.0 || self.error_rate > 1.0 {
            return Err(invalid("error_rate".into(), "must be in (0, 1]"));
        }
        if self.error_window < Duration::from_secs(1)
            || self.error_window > Duration::from_secs(3600)
        {
            return Err(invalid("error_window".into(), "must be between 1s and 1h"));
        }
        if self.error_min_requests == 0 {
            return Err(invalid("error_min_requests".into(), "must be at least 1"));
        }
        if self.dedup_window < Duration::from_secs(1) {
            return Err(invalid("dedup_window".into(), "must be at least 1s"));
        }
        if self.max_per_minute == 0 {
            return Err(invalid("max_per_minute".into(), "must be at least 1"));
        }
        if self.timeout < Duration::from_millis(100) || self.timeout > Duration::from_secs(60) {
            return Err(invalid("timeout".into(), "must be between 100ms and 60s"));
        }
        if self.gateway.is_empty() || self.gateway.chars().count() > 64 {
            return Err(invalid("gateway".into(), "must be 1 to 64 characters"));
        }
        Ok(())
    }

    /// Whether some webhook receives this kind of alert.
    pub fn wants(&self, kind: AlertKind) -> bool {
        self.webhooks.iter().any(|w| w.events.contains(&kind))
    }
}

/// `http(s)://host…`, without spaces.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !url.chars().any(char::is_whitespace)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{CliOverrides, Config};

    const TOKEN: &str = "T0AAA/B0BBB/xoxb-webhook-token-123456";

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let cli = CliOverrides {
            config_file: Some(file.path().into()),
            ..Default::default()
        };
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(&cli, &env)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn alerts_section_defaults_env_and_masking() {
        let config = load(
            &format!(
                "[alerts]\nerror_rate = 0.25\nerror_window = \"30s\"\ndedup_window = \"5m\"\n[[alerts.webhooks]]\nurl = \"https://hooks.example.com/services/{TOKEN}\"\nformat = \"generic\"\nevents = [\"budget\"]\n"
            ),
            &[(
                "LLM_BRIDGE_ALERTS_WEBHOOK",
                "https://hooks.slack.com/services/T1/B2/env-token-abcdef",
            )],
        )
        .unwrap();
        let a = &config.alerts;
        assert_eq!(a.error_rate, 0.25);
        assert_eq!(a.error_window, Duration::from_secs(30));
        assert_eq!(a.dedup_window, Duration::from_secs(300));
        assert_eq!(a.budget_thresholds, vec![0.8, 1.0]);
        assert_eq!(a.max_per_minute, 20);
        assert_eq!(a.webhooks.len(), 2);
        assert_eq!(a.webhooks[0].format, WebhookFormat::Generic);
        assert_eq!(a.webhooks[0].events, vec![AlertKind::Budget]);
        assert_eq!(a.webhooks[1].format, WebhookFormat::Slack);
        assert_eq!(a.webhooks[1].events, AlertKind::ALL.to_vec());
        assert!(a.wants(AlertKind::Circuit));
        let masked = config.to_masked_toml();
        for secret in [TOKEN, "env-token-abcdef", "hooks.example.com"] {
            assert!(!masked.contains(secret), "{secret} in:\n{masked}");
        }
        assert!(!format!("{config:?}").contains(TOKEN));
        assert!(!AlertsConfig::default().wants(AlertKind::Budget));
    }

    #[test]
    fn bad_alerts_name_the_key_and_never_the_url() {
        for (text, key) in [
            (
                "[[alerts.webhooks]]\nurl = \"ftp://x/secret-path-token\"\n",
                "alerts.webhooks[0].url",
            ),
            (
                "[[alerts.webhooks]]\nurl = \"https://x/secret-path-token\"\nevents = []\n",
                "alerts.webhooks[0].events",
            ),
            (
                "[[alerts.webhooks]]\nurl = \"https://x/\"\nformat = \"teams\"\n",
                "format",
            ),
            (
                "[alerts]\nbudget_thresholds = [0.8, 1.5]\n",
                "alerts.budget_thresholds",
            ),
            ("[alerts]\nerror_rate = 0\n", "alerts.error_rate"),
            ("[alerts]\nerror_window = \"10ms\"\n", "alerts.error_window"),
            (
                "[alerts]\nerror_min_requests = 0\n",
                "alerts.error_min_requests",
            ),
            ("[alerts]\nmax_per_minute = 0\n", "alerts.max_per_minute"),
            ("[alerts]\ntimeout = \"5m\"\n", "alerts.timeout"),
            ("[alerts]\nsurprise = 1\n", "surprise"),
        ] {
            let err = load(text, &[]).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
            assert!(!err.contains("secret-path-token"), "{err}");
        }
        let err = load(
            "",
            &[("LLM_BRIDGE_ALERTS_WEBHOOK", "hooks/secret-path-token")],
        )
        .unwrap_err();
        assert!(err.contains("alerts.webhooks[0].url") && !err.contains("secret-path-token"));
    }
}
