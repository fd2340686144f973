//! Shared by the integration tests: a gateway wired to the mock upstream, served over real HTTP on
//! an ephemeral port, and private redis-server processes.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_llm-bridge");
use std::time::Duration;

use llm_bridge::config::{CliOverrides, Config};
use llm_bridge::state::AppState;
use llm_bridge_mock::MockUpstream;

/// The master key of the gateways started with [`TestGateway::start_locked`].
pub const MASTER: &str = "mk-test-master-key-0123456789";

/// The smallest chat request for `model`.
pub fn hello(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]})
}

pub const OPENAI_KEY: &str = "sk-test-openai-0123456789";
pub const GEMINI_KEY: &str = "gm-test-gemini-0123456789";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";
pub const DEEPSEEK_KEY: &str = "sk-test-deepseek-0123456789";
pub const QWEN_KEY: &str = "sk-test-qwen-0123456789";
pub const MOONSHOT_KEY: &str = "sk-test-moonshot-0123456789";
pub const ALL_KEYS: [&str; 6] = [
    OPENAI_KEY,
    GEMINI_KEY,
    ANTHROPIC_KEY,
    DEEPSEEK_KEY,
    QWEN_KEY,
    MOONSHOT_KEY,
];

pub struct TestGateway {
    pub url: String,
    pub state: AppState,
    pub mock: MockUpstream,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Environment for a gateway whose every provider points at the mock.
pub fn mock_env(mock: &MockUpstream) -> HashMap<String, String> {
    let keys = [
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("GEMINI_API_KEY", GEMINI_KEY),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("DEEPSEEK_API_KEY", DEEPSEEK_KEY),
        ("QWEN_API_KEY", QWEN_KEY),
        ("MOONSHOT_API_KEY", MOONSHOT_KEY),
        ("LLM_BRIDGE_STATS_FLUSH_INTERVAL", "50ms"),
    ];
    let urls = llm_bridge_mock::wiring(&mock.url());
    assert_eq!(urls.len(), ALL_KEYS.len(), "a base URL per provider");
    keys.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(urls.into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect()
}

impl TestGateway {
    /// A gateway with every provider on the mock.
    pub async fn start() -> TestGateway {
        Self::start_with("", |_| {}).await
    }

    /// A gateway with every provider on the mock, locked with [`MASTER`].
    pub async fn start_locked(toml: &str) -> TestGateway {
        Self::start_with(toml, |env| {
            env.insert("LLM_BRIDGE_MASTER_KEY".into(), MASTER.into());
        })
        .await
    }

    /// `toml` is a config file's text; `tweak` edits the environment before loading.
    pub async fn start_with(
        toml: &str,
        tweak: impl FnOnce(&mut HashMap<String, String>),
    ) -> TestGateway {
        let mock = MockUpstream::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut env = mock_env(&mock);
        env.insert(
            "LLM_BRIDGE_DATA_DIR".into(),
            data_dir.path().to_string_lossy().into(),
        );
        tweak(&mut env);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        let cli = CliOverrides {
            config_file: Some(file.path().into()),
            ..Default::default()
        };
        let (config, _) = Config::load(&cli, &env).expect("test configuration is valid");
        Self::serve(config, mock, data_dir).await
    }

    pub async fn serve(
        config: Config,
        mock: MockUpstream,
        data_dir: tempfile::TempDir,
    ) -> TestGateway {
        Self::serve_at(config, mock, data_dir, "127.0.0.1:0").await
    }

    /// Serves on the given address (a free port chosen beforehand, when the URL must be known
    /// before the gateway starts).
    pub async fn serve_at(
        config: Config,
        mock: MockUpstream,
        data_dir: tempfile::TempDir,
        addr: &str,
    ) -> TestGateway {
        let state = llm_bridge::server::build_state(config)
            .await
            .expect("gateway state");
        let app = llm_bridge::server::router(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let limits =
            llm_bridge::server::connections::ConnectionLimits::from_config(&state.config().server);
        let task = tokio::spawn(llm_bridge::server::connections::serve(
            listener,
            app,
            limits,
            std::future::pending(),
            Duration::ZERO,
        ));
        TestGateway {
            url: format!("http://{addr}"),
            state,
            mock,
            http: reqwest::Client::new(),
            data_dir,
            task,
        }
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    /// A GET with the master key; the reply's text.
    pub async fn master_text(&self, path: &str) -> String {
        let resp = self.get(path).bearer_auth(MASTER).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// A GET with the master key whose reply is JSON, as a value.
    pub async fn master_json(&self, path: &str) -> serde_json::Value {
        let resp = self.get(path).bearer_auth(MASTER).send().await.unwrap();
        resp.json().await.unwrap()
    }

    /// A GET whose reply is JSON, as a value.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// The model ids `GET /v1/models` lists for this key or token.
    pub async fn model_ids(&self, key: &str) -> Vec<String> {
        let models: serde_json::Value = self
            .get("/v1/models")
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

/// The error `Config::load` gives for a configuration file with this text (no environment).
pub fn config_error(text: &str) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    let cli = CliOverrides {
        config_file: Some(file.path().into()),
        ..Default::default()
    };
    Config::load(&cli, &HashMap::new())
        .expect_err("the configuration is refused")
        .to_string()
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_string)
        .collect()
}

/// The JSON chunks of an SSE body; panics unless it ends with exactly one `[DONE]`.
/// The events of a stream with named events (Messages, Responses): (name, data); each event's
/// `type` must be its name.
pub fn sse_events(text: &str) -> Vec<(String, serde_json::Value)> {
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let value: serde_json::Value =
                serde_json::from_str(&data).expect("every event is JSON");
            assert_eq!(
                value["type"],
                name.as_str(),
                "the event name matches its type"
            );
            (name, value)
        })
        .collect()
}

pub fn sse_chunks(body: &str) -> Vec<serde_json::Value> {
    let payloads = sse_payloads(body);
    assert_eq!(
        payloads.last().map(String::as_str),
        Some("[DONE]"),
        "stream must end with [DONE]: {body}"
    );
    assert_eq!(
        payloads.iter().filter(|p| *p == "[DONE]").count(),
        1,
        "exactly one [DONE]: {body}"
    );
    payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).expect("chunk is JSON"))
        .collect()
}

pub fn assert_no_secret(text: &str) {
    for key in ALL_KEYS {
        assert!(!text.contains(key), "secret {key} leaked in: {text}");
    }
}

/// A private redis-server on a free port, stopped on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Append-only persistence directory, so that a restart keeps the data.
    dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// Starts one, or returns None (skipping loudly) when redis-server is missing outside CI.
    pub fn start() -> Option<RedisServer> {
        Self::start_inner(None)
    }

    /// One that persists every write (appendfsync always), for restart tests.
    pub fn start_persistent() -> Option<RedisServer> {
        Self::start_inner(Some(tempfile::tempdir().unwrap()))
    }

    fn start_inner(dir: Option<tempfile::TempDir>) -> Option<RedisServer> {
        let port = free_port();
        let mut server = RedisServer {
            port,
            child: None,
            dir,
        };
        if !server.spawn() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("redis-server is required when CI=true but could not be started");
            }
            eprintln!("SKIPPED: redis-server is not installed; Redis-backed test not run");
            return None;
        }
        Some(server)
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ]);
        match &self.dir {
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir.path()),
            None => cmd.args(["--appendonly", "no"]),
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk).
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server restart");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 25 ms until it gives a value (5 s at most), and returns it.
pub async fn poll_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = f().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub async fn wait_until<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The `llm-bridge` binary, started with a clean environment; its log goes to a file.
pub fn bare_command() -> Command {
    let mut cmd = Command::new(BIN);
    // Nothing from the developer's environment leaks into these runs.
    for var in llm_bridge::config::known_env_vars() {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

pub struct Running {
    pub child: Child,
    pub url: String,
    log_file: tempfile::NamedTempFile,
}

impl Running {
    pub async fn start(data_dir: &std::path::Path, extra_env: &[(&str, String)]) -> Running {
        // A listen address in `extra_env` wins (a URL the test had to know beforehand).
        let listen = extra_env
            .iter()
            .find(|(k, _)| *k == "LLM_BRIDGE_LISTEN")
            .map_or_else(|| format!("127.0.0.1:{}", free_port()), |(_, v)| v.clone());
        let log_file = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = bare_command();
        cmd.env("LLM_BRIDGE_LISTEN", &listen)
            .env("LLM_BRIDGE_DATA_DIR", data_dir)
            .env("LLM_BRIDGE_STATS_FLUSH_INTERVAL", "50ms")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file.reopen().unwrap()));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start llm-bridge");
        let url = format!("http://{listen}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{url}/health/live"))
                .send()
                .await
                .is_ok()
            {
                return Running {
                    child,
                    url,
                    log_file,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = child_kill(child);
        let log = std::fs::read_to_string(log_file.path()).unwrap_or_default();
        panic!("llm-bridge did not start; its log:\n{log}");
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub async fn wait_exit(mut self) -> (std::process::ExitStatus, String) {
        for _ in 0..400 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let _ = self.child.kill();
        panic!("llm-bridge did not exit after SIGTERM");
    }
}

impl Running {
    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file.path()).unwrap_or_default()
    }

    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn child_kill(mut child: Child) -> std::io::Result<std::process::ExitStatus> {
    child.kill()?;
    child.wait()
}

/// Creates a virtual key with `settings` through `/api/keys` (master key); its id and secret.
pub async fn create_key(
    http: &reqwest::Client,
    url: &str,
    settings: serde_json::Value,
) -> (String, String) {
    let resp = http
        .post(format!("{url}/api/keys"))
        .bearer_auth(MASTER)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let v: serde_json::Value = resp.json().await.unwrap();
    (
        v["id"].as_str().unwrap().into(),
        v["key"].as_str().unwrap().into(),
    )
}

/// Waits until every gateway answers `key` with `status` on `GET /v1/models`.
pub async fn until_all(http: &reqwest::Client, urls: &[String], key: &str, status: u16) {
    for url in urls {
        let mut last = 0;
        for _ in 0..100 {
            last = http
                .get(format!("{url}/v1/models"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            if last == status {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(last, status, "{url} did not pick up the key change");
    }
}
