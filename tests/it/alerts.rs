//! Alerts to people (`[alerts]`) posted to a local webhook receiver by a real gateway against the
//! mock upstream: a circuit opening (Slack's format, once per dedup window), budget thresholds
//! (the generic format, once each), an error spike, the rate limit, a webhook that is down or
//! slow (requests are not slowed, the deliveries count as failed), and the webhook's URL (with a
//! token in its path) kept out of logs, replies and the printed configuration.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use serde_json::{Value, json};

use crate::support::*;

/// The webhook's token, as Slack puts it in the URL's path.
const TOKEN: &str = "xoxb-alert-token-5f3a9c1e7b2d";

/// What the receiver got: path and JSON body, in order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on an ephemeral port; it answers 200 after `delay`.
struct Receiver {
    url: String,
    received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        Self::slow(Duration::ZERO).await
    }

    async fn slow(delay: Duration) -> Receiver {
        let received = Received::default();
        let app = axum::Router::new()
            .fallback(
                |State((received, delay)): State<(Received, Duration)>, req: Request| async move {
                    let path = req.uri().path().to_string();
                    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                        .await
                        .unwrap();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    received.lock().unwrap().push((path, body));
                    tokio::time::sleep(delay).await;
                    "ok"
                },
            )
            .with_state((received.clone(), delay));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            received,
            task,
        }
    }

    /// A Slack-like webhook URL with [`TOKEN`] in its path.
    fn hook(&self) -> String {
        format!("{}/services/T0001/B0002/{TOKEN}", self.url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let received = self.received.clone();
        wait_until(&format!("{n} alerts"), move || {
            received.lock().unwrap().len() >= n
        })
        .await;
        self.bodies()
    }
}

fn deployment(name: &str, model: &str, upstream: &str) -> String {
    format!(
        "[[deployments]]\nname = \"{name}\"\nmodel = \"{model}\"\nprovider = \"openai\"\nupstream_model = \"{upstream}\"\n"
    )
}

fn webhook(url: &str, format: &str, events: &str) -> String {
    format!("[[alerts.webhooks]]\nurl = \"{url}\"\nformat = \"{format}\"\nevents = {events}\n")
}

/// A loopback URL nothing listens on.
fn nobody_listening() -> String {
    format!("http://127.0.0.1:{}/hooks/{TOKEN}", free_port())
}

#[tokio::test]
async fn a_circuit_opening_sends_one_slack_message_naming_the_deployment() {
    let receiver = Receiver::start().await;
    let toml = format!(
        "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 2\ncooldown = \"200ms\"\n[alerts]\ndedup_window = \"10m\"\n{}{}",
        webhook(&receiver.hook(), "slack", "[\"circuit\"]"),
        deployment("flaky-primary", "pool", "m-fail500"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    for _ in 0..2 {
        assert_eq!(gw.chat(hello("pool")).await.status(), 502);
    }
    let bodies = receiver.wait_for(1).await;
    let (path, body) = receiver.received.lock().unwrap()[0].clone();
    assert_eq!(path, format!("/services/T0001/B0002/{TOKEN}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Circuit open") && text.contains("`flaky-primary`"),
        "{text}"
    );
    assert!(text.contains("openai") && text.contains("2 consecutive failures"));
    assert_no_secret(text);
    assert!(!text.contains(TOKEN));

    // It opens again (a failed trial after the cooldown, twice): within the dedup window nothing
    // more is sent.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(gw.chat(hello("pool")).await.status(), 502);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.bodies(), bodies);
    let tally = gw.state.stats.alerts().tally();
    assert_eq!((tally.sent, tally.failed, tally.dropped), (1, 0, 0));
}

#[tokio::test]
async fn a_key_budget_crossing_80_then_100_percent_sends_two_generic_alerts() {
    let receiver = Receiver::start().await;
    // Each request costs exactly $10: 20 completion tokens at $500,000 per million.
    let toml = format!(
        "[pricing.\"gpt-4o-mini\"]\nprovider = \"openai\"\ninput = 0.0\noutput = 500000.0\n[alerts]\ngateway = \"gw-test\"\n{}",
        webhook(&receiver.hook(), "generic", "[\"budget\", \"circuit\"]"),
    );
    let gw = TestGateway::start_locked(&toml).await;
    let created: Value = gw
        .post("/api/keys")
        .bearer_auth(MASTER)
        .json(&json!({"name": "frugal", "budget_usd": 25.0, "budget_period": "day"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    let prefix = created["prefix"].as_str().unwrap().to_string();
    let chat = || {
        gw.post("/v1/chat/completions")
            .bearer_auth(&secret)
            .json(&hello("gpt-4o-mini"))
            .send()
    };
    let spent = |n: f64| {
        let gw = &gw;
        let id = created["id"].as_str().unwrap().to_string();
        async move {
            poll_until("the spend", || {
                let id = id.clone();
                async move {
                    let key: Value = gw
                        .get(&format!("/api/keys/{id}"))
                        .bearer_auth(MASTER)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    (key["spend_today_usd"].as_f64() >= Some(n)).then_some(())
                }
            })
            .await
        }
    };
    // $10 (40%): nothing; $20 (80%): one alert; $30 (120%): one more.
    assert_eq!(chat().await.unwrap().status(), 200);
    spent(10.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.bodies().is_empty(), "{:?}", receiver.bodies());
    assert_eq!(chat().await.unwrap().status(), 200);
    let first = receiver.wait_for(1).await;
    assert_eq!(chat().await.unwrap().status(), 200);
    let both = receiver.wait_for(2).await;
    assert_eq!(both[0], first[0]);
    // Spent: refused, and no alert again.
    assert_eq!(chat().await.unwrap().status(), 429);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for (body, (threshold, severity)) in bodies.iter().zip([(0.8, "warning"), (1.0, "critical")]) {
        let fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "at",
                "gateway",
                "kind",
                "message",
                "severity",
                "subject",
                "threshold",
                "value"
            ],
            "{body}"
        );
        assert_eq!(body["kind"], "budget");
        assert_eq!(body["severity"], severity);
        assert_eq!(body["threshold"], threshold);
        assert_eq!(body["gateway"], "gw-test");
        let subject = body["subject"].as_str().unwrap();
        assert_eq!(subject, format!("key frugal ({prefix})"));
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("daily budget of $25.00"), "{message}");
        assert!(!message.contains(&secret) && !body.to_string().contains(TOKEN));
        humantime::parse_rfc3339(body["at"].as_str().unwrap()).unwrap();
    }
    assert_eq!(bodies[0]["value"], 0.8);
    assert_eq!(bodies[1]["value"], 1.2);
}

#[tokio::test]
async fn an_error_spike_is_told_once() {
    let receiver = Receiver::start().await;
    let toml = format!(
        "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 1000\nerror_ratio = 1.0\nmin_requests = 1000\n[alerts]\nerror_rate = 0.5\nerror_window = \"10s\"\nerror_min_requests = 4\n{}{}{}",
        webhook(&receiver.hook(), "generic", "[\"errors\"]"),
        deployment("bad", "broken", "m-fail500"),
        deployment("good", "fine", "m-good"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    // 4 successes, then failures: 1 of 5, 2 of 6, 3 of 7 stay under half; nothing is told.
    for model in ["fine", "fine", "fine", "fine", "broken", "broken", "broken"] {
        gw.chat(hello(model)).await.bytes().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(receiver.bodies().is_empty());
    // 4 of 8: the rate reaches half.
    assert_eq!(gw.chat(hello("broken")).await.status(), 502);
    let bodies = receiver.wait_for(1).await;
    let body = &bodies[0];
    assert_eq!(body["kind"], "errors");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["subject"], "provider openai");
    assert_eq!(body["threshold"], 0.5);
    assert_eq!(body["value"], 0.5);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("4 of 8 requests failed"), "{message}");
    // Still failing: not told again.
    for _ in 0..5 {
        assert_eq!(gw.chat(hello("broken")).await.status(), 502);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.bodies().len(), 1);
}

#[tokio::test]
async fn the_rate_limit_caps_the_alerts_sent() {
    let receiver = Receiver::start().await;
    let mut toml = format!(
        "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 1\n[alerts]\nmax_per_minute = 2\n{}",
        webhook(&receiver.hook(), "slack", "[\"circuit\"]"),
    );
    for i in 0..5 {
        toml.push_str(&deployment(
            &format!("d{i}"),
            &format!("pool-{i}"),
            "m-fail500",
        ));
    }
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    for i in 0..5 {
        assert_eq!(gw.chat(hello(&format!("pool-{i}"))).await.status(), 502);
    }
    let alerts = gw.state.stats.alerts().clone();
    wait_until("five circuit alerts handled", move || {
        let t = alerts.tally();
        t.sent + t.dropped >= 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.bodies().len(), 2, "{:?}", receiver.bodies());
    let tally = gw.state.stats.alerts().tally();
    assert_eq!((tally.sent, tally.dropped), (2, 3));
    let metrics = gw
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("llm_bridge_alerts_total{")
                && l.contains("kind=\"circuit\"")
                && l.contains("outcome=\"dropped\"")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_or_slow_does_not_slow_requests() {
    let slow = Receiver::slow(Duration::from_secs(10)).await;
    let toml = format!(
        "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 1\n[alerts]\ntimeout = \"300ms\"\n{}{}{}{}",
        webhook(&slow.hook(), "slack", "[\"circuit\"]"),
        webhook(&nobody_listening(), "generic", "[\"circuit\"]"),
        deployment("bad", "broken", "m-fail500"),
        deployment("good", "fine", "m-good"),
    );
    let gw = TestGateway::start_with(&toml, |_| {}).await;
    // Warm up the connection pool.
    assert_eq!(gw.chat(hello("fine")).await.status(), 200);
    let started = Instant::now();
    assert_eq!(gw.chat(hello("broken")).await.status(), 502);
    let failing = started.elapsed();
    // While both deliveries are in trouble, requests are as fast as ever.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(gw.chat(hello("fine")).await.status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        failing < Duration::from_millis(500) && slowest < Duration::from_millis(500),
        "the request that opened the circuit took {failing:?}, the slowest after it {slowest:?}"
    );
    assert!(!slow.bodies().is_empty(), "the slow webhook was called");
    let alerts = gw.state.stats.alerts().clone();
    wait_until("both deliveries failed", move || alerts.tally().failed == 2).await;
    let tally = gw.state.stats.alerts().tally();
    assert_eq!((tally.sent, tally.failed, tally.dropped), (0, 2, 0));
}

#[tokio::test]
async fn the_webhook_url_never_shows_and_alerts_follow_a_reload() {
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let receiver = Receiver::start().await;
    let down = nobody_listening();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let write = |events: &str| {
        let text = format!(
            "[routing]\nmax_attempts = 1\n[routing.circuit]\nconsecutive_failures = 1\ncooldown = \"100ms\"\n[alerts]\ntimeout = \"300ms\"\n{}{}{}",
            webhook(&receiver.hook(), "slack", events),
            webhook(&down, "generic", events),
            deployment("bad", "broken", "m-fail500"),
        );
        std::fs::write(&config, text).unwrap();
    };
    write("[\"budget\"]");
    let mut env: Vec<(&str, String)> = mock_env(&mock)
        .into_iter()
        .map(|(k, v)| (&*Box::leak(k.into_boxed_str()), v))
        .collect();
    env.push(("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()));
    env.push(("RUST_LOG", "debug".to_string()));
    env.push(("LLM_BRIDGE_CONFIG", config.display().to_string()));
    let gw = Running::start(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let fail = || async {
        let resp = http
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(MASTER)
            .json(&hello("broken"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502);
    };
    // The webhooks want budget alerts only: the circuit opening is not sent.
    fail().await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(receiver.bodies().is_empty());

    // Now they want circuits too.
    write("[\"budget\", \"circuit\"]");
    gw.hangup();
    wait_until("the reload", || gw.log().contains("configuration reloaded")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    fail().await;
    let bodies = receiver.wait_for(1).await;
    assert!(bodies[0]["text"].as_str().unwrap().contains("`bad`"));
    wait_until("the failed delivery logged", || {
        gw.log().contains("cannot deliver an alert")
    })
    .await;

    let mut seen = vec![gw.log()];
    for path in [
        "/health",
        "/metrics",
        "/api/requests?limit=100",
        "/api/stats/overview?window=1h",
    ] {
        let resp = http
            .get(format!("{}{path}", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        seen.push(resp.text().await.unwrap());
    }
    let printed = bare_command()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let printed = String::from_utf8_lossy(&printed.stdout).to_string();
    assert!(printed.contains("[[alerts.webhooks]]"), "{printed}");
    seen.push(printed);
    for text in &seen {
        assert!(
            !text.contains(TOKEN),
            "the webhook's token leaked in:\n{text}"
        );
        assert!(
            !text.contains("/services/T0001"),
            "the webhook's path leaked in:\n{text}"
        );
        assert_no_secret(text);
    }
}
