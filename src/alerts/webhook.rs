//! An alert's body in each webhook format, and its delivery: one POST with a timeout, retried
//! once after a connection failure, a timeout, a 429 or a 5xx; redirects are not followed.

use std::time::Duration;

use serde_json::json;

use super::Alert;
use crate::config::{Secret, WebhookFormat};

/// How long to wait before the one retry.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The body for a webhook of this format.
pub fn body(alert: &Alert, format: WebhookFormat, gateway: &str) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Slack => json!({"text": slack_text(alert, gateway)}),
        WebhookFormat::Generic => json!({
            "kind": alert.kind.as_str(),
            "severity": alert.severity.as_str(),
            "subject": alert.subject,
            "message": alert.message,
            "value": alert.value,
            "threshold": alert.threshold,
            "gateway": gateway,
            "at": rfc3339(alert.at_ms),
        }),
    };
    serde_json::to_vec(&value).expect("an alert serialises")
}

/// One line of Slack `mrkdwn`: `:rotating_light: *[gateway] Circuit open*: The circuit of …`.
fn slack_text(alert: &Alert, gateway: &str) -> String {
    let icon = match alert.severity {
        super::Severity::Warning => ":warning:",
        super::Severity::Critical => ":rotating_light:",
    };
    format!(
        "{icon} *[{}] {}*: {}",
        slack_escape(gateway),
        alert.title(),
        slack_escape(&alert.message)
    )
}

/// Slack reads `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Posts `body` to the webhook. The error says what went wrong without the URL.
pub async fn deliver(
    http: &reqwest::Client,
    url: &Secret,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAY).await;
        }
        let sent = http
            .post(url.expose())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let status = resp.status();
                last = format!("the webhook answered {}", status.as_u16());
                if !(status.is_server_error() || status.as_u16() == 429) {
                    return Err(last);
                }
            }
            Err(e) => last = describe(&e),
        }
    }
    Err(last)
}

/// A reqwest error in words, never with its URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_body() || e.is_decode() {
        "the reply broke off".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Alert, Severity};
    use super::*;
    use crate::config::AlertKind;

    fn alert() -> Alert {
        Alert {
            kind: AlertKind::Circuit,
            severity: Severity::Critical,
            subject: "deployment <primary>".into(),
            message: "opened <primary> after 3 failures & more".into(),
            value: Some(3.0),
            threshold: Some(3.0),
            at_ms: 1_795_705_200_000,
            dedup: "circuit:primary".into(),
            quiet_until_ms: None,
        }
    }

    #[test]
    fn slack_and_generic_bodies() {
        let slack: serde_json::Value =
            serde_json::from_slice(&body(&alert(), WebhookFormat::Slack, "gw-eu")).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert_eq!(
            text,
            ":rotating_light: *[gw-eu] Circuit open*: opened &lt;primary&gt; after 3 failures &amp; more"
        );
        assert_eq!(slack.as_object().unwrap().len(), 1);
        let generic: serde_json::Value =
            serde_json::from_slice(&body(&alert(), WebhookFormat::Generic, "gw-eu")).unwrap();
        assert_eq!(
            generic,
            json!({
                "kind": "circuit",
                "severity": "critical",
                "subject": "deployment <primary>",
                "message": "opened <primary> after 3 failures & more",
                "value": 3.0,
                "threshold": 3.0,
                "gateway": "gw-eu",
                "at": "2026-11-26T15:00:00Z",
            })
        );
    }
}
