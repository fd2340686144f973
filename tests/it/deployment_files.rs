//! No Docker engine runs in CI, so the deployment files are checked against what the gateway reads.

use std::collections::BTreeSet;

fn known() -> BTreeSet<&'static str> {
    llm_bridge::config::known_env_vars().into_iter().collect()
}

#[test]
fn compose_passes_only_variables_the_gateway_reads() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let gateway = &doc["services"]["gateway"];
    let env = gateway["environment"]
        .as_mapping()
        .expect("gateway.environment is a mapping");
    assert!(!env.is_empty());
    let known = known();
    for (key, _) in env {
        let key = key.as_str().unwrap();
        assert!(
            known.contains(key),
            "docker-compose.yml passes {key}, which the gateway does not read"
        );
    }
    assert_eq!(
        env.get("REDIS_URL").and_then(|v| v.as_str()),
        Some("redis://redis:6379")
    );
    assert_eq!(
        gateway["depends_on"]["redis"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(gateway["healthcheck"]["test"].as_sequence().is_some());
    let redis = &doc["services"]["redis"];
    assert!(redis["image"].as_str().unwrap().starts_with("redis:7"));
    let command: Vec<&str> = redis["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        command.windows(2).any(|w| w == ["--appendonly", "yes"]),
        "{command:?}"
    );
    assert!(
        redis["volumes"].as_sequence().unwrap()[0]
            .as_str()
            .unwrap()
            .starts_with("redis-data:")
    );
    assert!(doc["volumes"]["redis-data"].is_null() || doc["volumes"]["redis-data"].is_mapping());
}

#[test]
fn env_example_lists_every_variable_and_nothing_else() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    let listed: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| l.split('=').next().unwrap().trim())
        .collect();
    assert_eq!(listed, known());
}

#[test]
fn the_configuration_reference_documents_every_variable() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    for var in known() {
        assert!(
            readme.contains(&format!("`{var}`")),
            "docs/configuration.md does not document {var}"
        );
    }
}

#[test]
fn dockerfile_runs_as_non_root_with_healthcheck() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert!(text.contains("USER llmbridge"));
    assert!(text.contains("EXPOSE 3000"));
    assert!(text.contains("HEALTHCHECK") && text.contains("/health/live"));
    assert!(text.contains("LLM_BRIDGE_LISTEN=0.0.0.0:3000"));
    assert!(text.contains("cargo leptos build --release"));
    // Every base image is pinned by digest.
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    for from in froms {
        let image = from.split_whitespace().nth(1).unwrap();
        let digest = image.split_once("@sha256:").map(|(_, d)| d);
        assert!(
            digest.is_some_and(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit())),
            "{from}: not pinned by digest"
        );
    }
}
