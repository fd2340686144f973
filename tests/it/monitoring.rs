//! `deploy/monitoring/`: promtool accepts the Prometheus configuration and the rules, the rules'
//! unit tests pass and cover every alert, the dashboard's queries parse, the compose profile mounts
//! the files it names, and every metric the rules, their tests and the dashboard name is one a
//! real gateway exports (scraped after traffic that touches every family).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};

const PREFIX: &str = "llm_bridge_";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/monitoring")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files in `dir` whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *{suffix} in {}", dir.display());
    found
}

fn rule_files() -> Vec<PathBuf> {
    files(&monitoring_dir().join("rules"), ".rules.yml")
}

fn rule_test_files() -> Vec<PathBuf> {
    files(&monitoring_dir().join("tests"), ".test.yml")
}

fn dashboard_path() -> PathBuf {
    monitoring_dir().join("grafana/dashboards/llm-bridge.json")
}

/// Runs promtool; panics with its output unless it succeeds. promtool is required: CI installs
/// it (`scripts/setup.sh --test`), and so does `apt-get install prometheus`.
fn promtool(args: &[&str], paths: &[PathBuf]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .args(paths)
        .current_dir(monitoring_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool is required (apt-get install prometheus, or scripts/setup.sh --test): {e}"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {args:?} {paths:?} failed:\n{text}"
    );
    text
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alerting rule: (name, its annotations).
fn alerts() -> Vec<(String, serde_yaml::Mapping)> {
    let mut out = Vec::new();
    for path in rule_files() {
        let doc = yaml(&path);
        for group in doc["groups"].as_sequence().unwrap() {
            for rule in group["rules"].as_sequence().unwrap() {
                if let Some(name) = rule["alert"].as_str() {
                    let annotations = rule["annotations"].as_mapping().cloned();
                    out.push((name.to_string(), annotations.unwrap_or_default()));
                }
            }
        }
    }
    out
}

/// The `expr` of every panel's queries.
fn dashboard_exprs() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&read(&dashboard_path())).unwrap();
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

#[test]
fn promtool_accepts_the_configuration_and_the_rules_and_their_tests_pass() {
    let dir = monitoring_dir();
    let config = dir.join("prometheus.yml");
    promtool(
        &["check", "config", "--syntax-only"],
        std::slice::from_ref(&config),
    );

    // A full check reads the files the configuration names: the rules, and the credentials file
    // compose writes when Prometheus starts (here a copy of the configuration points at a temporary one).
    let scratch = tempfile::tempdir().unwrap();
    let key = scratch.path().join("gateway-key");
    std::fs::write(&key, "").unwrap();
    let text = read(&config);
    assert_eq!(
        text.matches("credentials_file: /prometheus/gateway-key")
            .count(),
        1
    );
    let copied = scratch.path().join("prometheus.yml");
    std::fs::write(
        &copied,
        text.replace(
            "/prometheus/gateway-key",
            key.to_str().expect("a UTF-8 temporary path"),
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.join("rules"), scratch.path().join("rules")).unwrap();
    let checked = promtool(&["check", "config"], &[copied]);
    assert!(
        checked.contains("llm-bridge.rules.yml"),
        "the configuration loads the rules:\n{checked}"
    );

    promtool(&["check", "rules"], &rule_files());
    promtool(&["test", "rules"], &rule_test_files());
}

#[test]
fn every_alert_has_a_runbook_and_tests_that_fire_it_and_not() {
    let alerts = alerts();
    assert!(alerts.len() >= 10, "{alerts:?}");
    for (name, annotations) in &alerts {
        for key in ["summary", "description", "runbook"] {
            let text = annotations
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            assert!(
                text.len() > 20,
                "{name}: annotation `{key}` missing or too short"
            );
        }
    }
    // alertname -> (asserted firing somewhere, asserted silent somewhere)
    let mut covered: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for path in rule_test_files() {
        let doc = yaml(&path);
        for test in doc["tests"].as_sequence().unwrap() {
            for case in test["alert_rule_test"].as_sequence().unwrap() {
                let name = case["alertname"].as_str().unwrap().to_string();
                let fires = case["exp_alerts"]
                    .as_sequence()
                    .is_some_and(|a| !a.is_empty());
                let entry = covered.entry(name).or_default();
                if fires {
                    entry.0 = true;
                } else {
                    entry.1 = true;
                }
            }
        }
    }
    for (name, _) in &alerts {
        let (fires, silent) = covered.get(name).copied().unwrap_or_default();
        assert!(fires, "no rule test expects {name} to fire");
        assert!(silent, "no rule test expects {name} to stay silent");
    }
}

#[test]
fn the_dashboard_queries_parse() {
    // Each query becomes a recording rule with Grafana's variables filled in: promtool parses it.
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 20, "{exprs:?}");
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = e
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
                .replace("$provider", ".*");
            json!({"record": format!("dashboard:query_{i}"), "expr": e})
        })
        .collect();
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("dashboard.rules.yml");
    let doc = json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, doc.to_string()).unwrap();
    promtool(&["check", "rules"], &[file]);

    let dashboard: Value = serde_json::from_str(&read(&dashboard_path())).unwrap();
    assert_eq!(dashboard["uid"], "llm-bridge");
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Requests/s by provider and status",
        "Error ratio by provider",
        "Request duration p50 / p99",
        "Time to first token p50 / p99",
        "Tokens/s by kind",
        "Cost per hour by provider and model",
        "Cache lookups/s by result",
        "USD per hour saved by the cache",
        "Circuit state by deployment",
        "Refusals/s by reason",
        "Budget used",
        "Store reachable",
    ] {
        assert!(
            titles.contains(&wanted),
            "no panel {wanted:?} in {titles:?}"
        );
    }
}

#[test]
fn the_compose_profile_runs_prometheus_and_grafana_on_the_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = yaml(&root.join("docker-compose.yml"));
    let services = &compose["services"];
    assert!(
        services["gateway"]["profiles"].is_null(),
        "the gateway runs without a profile"
    );
    let mut targets = BTreeMap::new();
    for name in ["prometheus", "grafana"] {
        let service = &services[name];
        let profiles: Vec<&str> = service["profiles"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has no profiles"))
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert_eq!(profiles, ["monitoring"], "{name}");
        let image = service["image"].as_str().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            tag.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == 'v'),
            "{name}: pin the image's version, not {image}"
        );
        for volume in service["volumes"].as_sequence().unwrap() {
            let volume = volume.as_str().unwrap();
            let (source, rest) = volume.split_once(':').unwrap();
            let target = rest.split(':').next().unwrap();
            if let Some(relative) = source.strip_prefix("./") {
                assert!(
                    root.join(relative).exists(),
                    "{name} mounts {source}, which does not exist"
                );
                targets.insert(target.to_string(), root.join(relative));
            } else {
                assert!(
                    compose["volumes"]
                        .as_mapping()
                        .unwrap()
                        .contains_key(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
    }

    // Prometheus: the credentials file it reads is the one its entrypoint writes; it scrapes the
    // gateway's service on the port the gateway listens on.
    let prometheus = &services["prometheus"];
    let command = prometheus["command"].as_sequence().unwrap()[0]
        .as_str()
        .unwrap();
    let config = yaml(&monitoring_dir().join("prometheus.yml"));
    let job = &config["scrape_configs"][0];
    assert_eq!(job["job_name"], "llm-bridge");
    let credentials = job["authorization"]["credentials_file"].as_str().unwrap();
    assert!(command.contains(&format!("> {credentials}")), "{command}");
    assert!(command.contains("$$LLM_BRIDGE_MASTER_KEY"), "{command}");
    assert!(
        targets.contains_key("/etc/prometheus/prometheus.yml")
            && targets.contains_key("/etc/prometheus/rules"),
        "{targets:?}"
    );
    let sd = &job["dns_sd_configs"][0];
    assert_eq!(sd["names"][0], "gateway");
    let listen = services["gateway"]["environment"]["LLM_BRIDGE_LISTEN"]
        .as_str()
        .unwrap();
    assert_eq!(
        Some(sd["port"].as_u64().unwrap().to_string().as_str()),
        listen.rsplit(':').next()
    );

    // Grafana: the data source is the compose Prometheus; the dashboards provider reads the
    // directory the dashboard is mounted in.
    let grafana_dir = monitoring_dir().join("grafana/provisioning");
    let datasources = yaml(&grafana_dir.join("datasources/prometheus.yml"));
    assert_eq!(
        datasources["datasources"][0]["url"],
        "http://prometheus:9090"
    );
    let providers = yaml(&grafana_dir.join("dashboards/llm-bridge.yml"));
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let mounted = targets
        .get(path)
        .unwrap_or_else(|| panic!("nothing is mounted at {path}: {targets:?}"));
    assert!(mounted.join("llm-bridge.json").exists());
}

/// The metric names a text mentions: identifiers that start with the gateway's prefix.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(PREFIX) {
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let name: String = text[at..].chars().take_while(|c| is_ident(*c)).collect();
        names.insert(name);
    }
    names
}

/// `# TYPE` lines of a scrape: family name -> type.
fn families(scrape: &str) -> BTreeMap<String, String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_string(), kind.trim().to_string()))
        })
        .collect()
}

/// The names of `wanted` that the scrape does not export: a family of that name, or for
/// `_bucket`, `_sum` and `_count` a histogram (or summary) it belongs to.
fn missing(wanted: &BTreeSet<String>, families: &BTreeMap<String, String>) -> Vec<String> {
    wanted
        .iter()
        .filter(|name| {
            if families.contains_key(name.as_str()) {
                return false;
            }
            let part_of = |suffix: &str, kinds: &[&str]| {
                name.strip_suffix(suffix)
                    .and_then(|base| families.get(base))
                    .is_some_and(|kind| kinds.contains(&kind.as_str()))
            };
            !(part_of("_bucket", &["histogram"])
                || part_of("_sum", &["histogram", "summary"])
                || part_of("_count", &["histogram", "summary"]))
        })
        .cloned()
        .collect()
}

#[test]
fn the_metric_name_check_understands_histograms() {
    let families: BTreeMap<String, String> = [
        ("llm_bridge_a_seconds", "histogram"),
        ("llm_bridge_b_total", "counter"),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_string(), k.to_string()))
    .collect();
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(llm_bridge_a_seconds_bucket{x="llm_bridge_not"}[5m])))
        / rate(llm_bridge_b_total[5m]) + llm_bridge_b_total_count + llm_bridge_c + llm_bridge:recorded + xllm_bridge_d"#,
    );
    assert_eq!(
        names.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "llm_bridge_a_seconds_bucket",
            "llm_bridge_b_total",
            "llm_bridge_b_total_count",
            "llm_bridge_c",
            "llm_bridge_not",
        ]
    );
    assert_eq!(
        missing(&names, &families),
        ["llm_bridge_b_total_count", "llm_bridge_c", "llm_bridge_not"]
    );
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported() {
    let mut wanted = BTreeSet::new();
    for path in rule_files().into_iter().chain(rule_test_files()) {
        wanted.extend(metric_names(&read(&path)));
    }
    let rules_and_tests = wanted.len();
    // The whole dashboard: its panels' queries and its template variables' queries.
    wanted.extend(metric_names(&read(&dashboard_path())));
    assert!(rules_and_tests >= 8 && wanted.len() >= 15, "{wanted:?}");

    // A gateway of its own (the metrics recorder is process-wide): the response cache on, a
    // deployment whose upstream always fails, and a team with a budget.
    let mock = llm_bridge_mock::MockUpstream::start().await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[routing]\nmax_attempts = 1\n\n\
         [[deployments]]\nname = \"broken\"\nmodel = \"broken\"\nprovider = \"openai\"\nupstream_model = \"m-fail500\"\n\n\
         [[teams]]\nname = \"research\"\nbudget_usd = 100.0\nbudget_period = \"day\"\n",
    )
    .unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = vec![
        ("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()),
        ("LLM_BRIDGE_CACHE", "true".to_string()),
        ("LLM_BRIDGE_CONFIG", config.path().to_string_lossy().into()),
    ];
    let wiring = mock_env(&mock);
    env.extend(wiring.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let gw = Running::start(data_dir.path(), &env).await;
    let http = reqwest::Client::new();
    let post = |key: &str, body: Value| {
        http.post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(key)
            .json(&body)
            .send()
    };

    // A success, then the same request again until the response cache answers it.
    let mut hit = false;
    for _ in 0..20 {
        let resp = post(MASTER, hello("gpt-4o-mini")).await.unwrap();
        assert_eq!(resp.status(), 200);
        hit = resp
            .headers()
            .get("x-llm-bridge-cache")
            .is_some_and(|v| v == "hit");
        resp.bytes().await.unwrap();
        if hit {
            break;
        }
    }
    assert!(hit, "a cache hit");
    // A stream (time to first token).
    let mut streamed = hello("gpt-4o-mini");
    streamed["stream"] = json!(true);
    streamed["messages"][0]["content"] = json!("Stream this");
    let resp = post(MASTER, streamed).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap();
    // An upstream error.
    let resp = post(MASTER, hello("broken")).await.unwrap();
    assert_eq!(resp.status(), 502);
    resp.bytes().await.unwrap();
    // A key with a budget it overspends at once, and a key refused by its rate limit.
    let spender = create_key(
        &http,
        &gw.url,
        json!({"name": "spender", "budget_usd": 0.000001, "budget_period": "day"}),
    )
    .await;
    // (Not the cached prompt: a cache hit costs nothing.)
    let mut costly = hello("gpt-4o-mini");
    costly["messages"][0]["content"] = json!("Spend");
    let resp = post(&spender, costly).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap();
    let limited = create_key(&http, &gw.url, json!({"name": "limited", "rpm": 1})).await;
    let mut refused = false;
    for _ in 0..3 {
        let resp = post(&limited, hello("gpt-4o-mini")).await.unwrap();
        refused |= resp.status() == 429;
        resp.bytes().await.unwrap();
    }
    assert!(refused, "the rate limit refused a request");

    // Finished requests reach the metrics when their record is done: scrape until all are there.
    let mut scrape = String::new();
    let mut absent = Vec::new();
    for _ in 0..100 {
        let resp = http
            .get(format!("{}/metrics", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        scrape = resp.text().await.unwrap();
        absent = missing(&wanted, &families(&scrape));
        if absent.is_empty()
            && scrape.contains("reason=\"rate_limit_key\"")
            && key_budget_ratio(&scrape).is_some_and(|r| r >= 1.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        absent.is_empty(),
        "named in deploy/monitoring but not exported: {absent:?}\n{scrape}"
    );
    assert_no_secret(&scrape);

    // Spot checks of the series the alerts read.
    for needle in [
        "llm_bridge_store_up{backend=\"embedded\"} 1",
        "llm_bridge_stats_dropped_records_total 0",
        "llm_bridge_circuit_state{",
        "deployment=\"broken\"",
        "llm_bridge_requests_total{",
        "status=\"502\"",
        "llm_bridge_cache_requests_total{model=\"gpt-4o-mini\",result=\"hit\"}",
        "llm_bridge_budget_used_ratio{scope=\"team\",id=\"research\",period=\"day\"} 0\n",
    ] {
        assert!(scrape.contains(needle), "{needle} missing:\n{scrape}");
    }
    let ratio = key_budget_ratio(&scrape);
    assert!(ratio.is_some_and(|r| r >= 1.0), "{ratio:?}\n{scrape}");
    // Every family has a help text.
    for family in families(&scrape).keys().filter(|f| f.starts_with(PREFIX)) {
        assert!(
            scrape.contains(&format!("# HELP {family} ")),
            "{family} has no # HELP"
        );
    }
}

/// The value of the (only) virtual key's budget series in a scrape.
fn key_budget_ratio(scrape: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with("llm_bridge_budget_used_ratio{scope=\"key\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Creates a virtual key with the master key; returns its secret.
async fn create_key(http: &reqwest::Client, url: &str, settings: Value) -> String {
    crate::support::create_key(http, url, settings).await.1
}
