use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn defaults_without_file_or_env() {
    let (config, file) = Config::load(&CliOverrides::default(), &env(&[])).unwrap();
    assert!(file.is_none());
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(config.server.data_dir, std::path::PathBuf::from("./data"));
    assert!(config.store.redis_url.is_none());
    assert_eq!(config.server.max_body_bytes, 10 * 1024 * 1024);
}

#[test]
fn file_then_env_then_cli() {
    let file = write(
        "[server]\nlisten = \"127.0.0.1:4000\"\ndata_dir = \"/from/file\"\n[store]\nredis_url = \"redis://file:6379\"\n",
    );
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let (config, _) = Config::load(&cli, &env(&[])).unwrap();
    assert_eq!(config.server.listen.port(), 4000);

    let vars = env(&[
        ("LLM_BRIDGE_LISTEN", "127.0.0.1:5000"),
        ("LLM_BRIDGE_DATA_DIR", "/from/env"),
    ]);
    let (config, _) = Config::load(&cli, &vars).unwrap();
    assert_eq!(config.server.listen.port(), 5000);
    assert_eq!(
        config.server.data_dir,
        std::path::PathBuf::from("/from/env")
    );
    assert_eq!(
        config.store.redis_url.as_ref().unwrap().expose(),
        "redis://file:6379"
    );

    let cli = CliOverrides {
        listen: Some("127.0.0.1:6000".into()),
        redis_url: Some("redis://cli:1".into()),
        ..cli
    };
    let (config, _) = Config::load(&cli, &vars).unwrap();
    assert_eq!(config.server.listen.port(), 6000);
    assert_eq!(config.store.redis_url.unwrap().expose(), "redis://cli:1");
}

#[test]
fn config_file_from_env_var() {
    let file = write("[server]\nlisten = \"127.0.0.1:4100\"\n");
    let vars = env(&[("LLM_BRIDGE_CONFIG", file.path().to_str().unwrap())]);
    let (config, path) = Config::load(&CliOverrides::default(), &vars).unwrap();
    assert_eq!(config.server.listen.port(), 4100);
    assert_eq!(path.unwrap(), file.path());
}

#[test]
fn bad_file_names_file_key_and_reason() {
    let file = write("[server]\nlisten = \"not-an-address\"\n");
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let err = Config::load(&cli, &env(&[])).unwrap_err().to_string();
    assert!(err.contains(file.path().to_str().unwrap()), "{err}");
    assert!(err.contains("listen"), "{err}");
    assert!(err.contains("invalid socket address"), "{err}");

    let file = write("[server]\nlisten_port = 1\n");
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let err = Config::load(&cli, &env(&[])).unwrap_err().to_string();
    assert!(err.contains("unknown field `listen_port`"), "{err}");

    let file = write("[providers.openaii]\napi_key = \"x\"\n");
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let err = Config::load(&cli, &env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("providers.openaii") && err.contains("unknown provider"),
        "{err}"
    );
}

#[test]
fn bad_env_names_the_variable() {
    let err = Config::load(
        &CliOverrides::default(),
        &env(&[("LLM_BRIDGE_LISTEN", "nope")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("environment variable LLM_BRIDGE_LISTEN"),
        "{err}"
    );
    let err = Config::load(&CliOverrides::default(), &env(&[("REDIS_URL", "http://x")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("store.redis_url"), "{err}");
    let err = Config::load(
        &CliOverrides::default(),
        &env(&[("LLM_BRIDGE_DRAIN_TIMEOUT", "soon")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("LLM_BRIDGE_DRAIN_TIMEOUT"), "{err}");
}

#[test]
fn provider_env_and_regions() {
    let vars = env(&[
        ("DASHSCOPE_API_KEY", "dk-secret"),
        ("QWEN_REGION", "intl"),
        ("OPENAI_API_KEY", "sk-secret"),
    ]);
    let (config, _) = Config::load(&CliOverrides::default(), &vars).unwrap();
    assert_eq!(
        config
            .providers
            .get("qwen")
            .unwrap()
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "dk-secret"
    );
    assert_eq!(
        config.providers.get("qwen").unwrap().region.as_deref(),
        Some("intl")
    );
    let err = Config::load(
        &CliOverrides::default(),
        &env(&[("QWEN_API_KEY", "k"), ("QWEN_REGION", "mars")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("providers.qwen.region") && err.contains("mars"),
        "{err}"
    );
}

#[test]
fn masked_output_hides_every_secret() {
    let file = write(
        "[store]\nredis_url = \"redis://:hunter2@host:6379\"\n[[providers.custom]]\nname = \"ollama\"\nbase_url = \"http://127.0.0.1:11434/v1\"\napi_key = \"custom-secret\"\nmodels = [\"llama3.2\"]\n",
    );
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let (config, _) = Config::load(&cli, &env(&[("ANTHROPIC_API_KEY", "sk-ant-secret")])).unwrap();
    let masked = config.to_masked_toml();
    for secret in ["hunter2", "custom-secret", "sk-ant-secret"] {
        assert!(!masked.contains(secret), "{secret} leaked in:\n{masked}");
    }
    assert!(
        masked.contains("llama3.2") && masked.contains("[providers.anthropic]"),
        "{masked}"
    );
    assert!(!format!("{config:?}").contains("sk-ant-secret"));
    // The masked rendering is itself a loadable configuration file.
    Config::from_toml(&masked).unwrap();
}

#[test]
fn retention_and_stats_switch() {
    let (config, _) = Config::load(
        &CliOverrides::default(),
        &env(&[("LLM_BRIDGE_STATS", "off")]),
    )
    .unwrap();
    assert!(!config.store.stats);
    let file = write("[store]\nminute_retention = \"48h\"\nhour_retention = \"90days\"\n");
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let (config, _) = Config::load(&cli, &env(&[])).unwrap();
    let r = crate::stats::Retention::from_config(&config.store);
    assert_eq!((r.minutes, r.hours), (48 * 60, 90 * 24));
    let file = write("[store]\nminute_retention = \"10m\"\n");
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    let err = Config::load(&cli, &env(&[])).unwrap_err().to_string();
    assert!(err.contains("store.minute_retention"), "{err}");
    let err = Config::load(
        &CliOverrides::default(),
        &env(&[("LLM_BRIDGE_STATS", "maybe")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("LLM_BRIDGE_STATS"), "{err}");
}

#[test]
fn jwt_issuers_and_teams_are_checked() {
    let load = |text: &str| {
        let file = write(text);
        let cli = CliOverrides {
            config_file: Some(file.path().into()),
            ..Default::default()
        };
        Config::load(&cli, &env(&[])).map(|(c, _)| c)
    };
    let config = load(
        "[auth.jwt]\n[[auth.jwt.issuers]]\nissuer = \"https://idp.example.com\"\naudiences = [\"urn:gw\"]\n\n[[teams]]\nname = \"research\"\nrpm = 10\n",
    )
    .unwrap();
    assert!(config.auth.jwt.is_enabled());
    assert_eq!(config.auth.jwt.team_claim, "team");
    assert_eq!(config.teams[0].rpm, Some(10));
    assert!(config.to_masked_toml().contains("[[teams]]"));

    for (text, key) in [
        (
            "[[auth.jwt.issuers]]\nissuer = \"idp.example.com\"\naudiences = [\"a\"]\n",
            "auth.jwt.issuers[0].issuer",
        ),
        (
            "[[auth.jwt.issuers]]\nissuer = \"https://idp.example.com\"\naudiences = []\n",
            "auth.jwt.issuers[0].audiences",
        ),
        ("[[teams]]\nname = \"a b\"\n", "teams[0].name"),
        (
            "[[teams]]\nname = \"a\"\n[[teams]]\nname = \"a\"\n",
            "teams[1].name",
        ),
        ("[[teams]]\nname = \"a\"\ntpm = 0\n", "teams[0].tpm"),
    ] {
        let err = load(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}
