//! Configuration hot reload: the file changes or SIGHUP arrives, the new configuration is validated
//! and swapped in; a bad one is refused and the old one keeps serving; running requests finish.

use std::time::Duration;

use crate::support::*;
use llm_bridge_mock::MockUpstream;
use serde_json::json;

struct Setup {
    gw: Running,
    file: tempfile::NamedTempFile,
    _dir: tempfile::TempDir,
    _mock: MockUpstream,
    http: reqwest::Client,
}

async fn start(config: &str) -> Setup {
    let mock = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let env = [
        (
            "LLM_BRIDGE_CONFIG",
            file.path().to_string_lossy().to_string(),
        ),
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
        ("RUST_LOG", "info".to_string()),
    ];
    let gw = Running::start(dir.path(), &env).await;
    Setup {
        gw,
        file,
        _dir: dir,
        _mock: mock,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn status(&self, model: &str) -> u16 {
        self.http
            .post(format!("{}/v1/chat/completions", self.gw.url))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn write(&self, config: &str) {
        std::fs::write(self.file.path(), config).unwrap();
    }

    async fn until_log(&self, needle: &str, times: usize) {
        for _ in 0..200 {
            if self.gw.log().matches(needle).count() >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "log never said `{needle}` {times} time(s):\n{}",
            self.gw.log()
        );
    }
}

const FAST: &str = "[models.aliases]\nfast = \"gpt-4o-mini\"\n";
const QUICK: &str = "[models.aliases]\nquick = \"gpt-4o-mini\"\n";

#[tokio::test]
async fn a_changed_file_is_picked_up_and_a_bad_one_refused() {
    let s = start(FAST).await;
    assert_eq!(s.status("fast").await, 200);
    assert_eq!(s.status("quick").await, 404);

    s.write(QUICK);
    s.until_log("configuration reloaded", 1).await;
    assert_eq!(s.status("quick").await, 200);
    assert_eq!(s.status("fast").await, 404);

    // Not TOML, then valid TOML with an invalid value: both refused, with the reason.
    s.write("[models.aliases\nbroken");
    s.until_log("configuration reload refused", 1).await;
    s.write(&format!("{FAST}[limits]\nip_rpm = 0\n"));
    s.until_log("configuration reload refused", 2).await;
    let log = s.gw.log();
    assert!(
        log.contains("limits.ip_rpm"),
        "the reason is logged:\n{log}"
    );
    assert_eq!(
        s.status("quick").await,
        200,
        "the previous configuration keeps serving"
    );

    // Settings read once at start are kept, and the log says so.
    s.write(&format!("{QUICK}[server]\nmax_body_bytes = 5000\n"));
    s.until_log("change only on a restart", 1).await;
    assert_eq!(s.status("quick").await, 200);
}

#[tokio::test]
async fn sighup_reloads_when_watching_is_off() {
    let s = start(&format!("[server]\nwatch_config = false\n{FAST}")).await;
    s.write(&format!("[server]\nwatch_config = false\n{QUICK}"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.status("fast").await, 200, "no reload without the signal");
    s.gw.hangup();
    s.until_log("configuration reloaded", 1).await;
    assert!(s.gw.log().contains("SIGHUP"));
    assert_eq!(s.status("quick").await, 200);
    assert_eq!(s.status("fast").await, 404);
}

#[tokio::test]
async fn a_request_running_across_a_reload_finishes_on_its_configuration() {
    // `slow` models answer after 300 ms.
    let s = start("[models.aliases]\nfast = \"openai/gpt-slow\"\n").await;
    let http = s.http.clone();
    let url = s.gw.url.clone();
    let running = tokio::spawn(async move {
        let resp = http
            .post(format!("{url}/v1/chat/completions"))
            .json(&json!({"model": "fast", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write(QUICK);
    s.gw.hangup();
    s.until_log("configuration reloaded", 1).await;
    assert_eq!(
        s.status("fast").await,
        404,
        "new requests see the new configuration"
    );
    let (status, body) = running.await.unwrap();
    assert_eq!(status, 200);
    sse_chunks(&body);
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let s = start(FAST).await;
    assert_eq!(s.status("fast").await, 200);
    // A half-written file: empty.
    s.write("");
    s.until_log("configuration reload refused", 1).await;
    assert!(s.gw.log().contains("the file is empty"), "{}", s.gw.log());
    assert_eq!(s.status("fast").await, 200, "still serving");
    s.write("# only a comment\n");
    s.until_log("configuration reload refused", 2).await;
    assert_eq!(s.status("fast").await, 200, "still serving");
}

#[tokio::test]
async fn logged_values_cannot_forge_log_lines() {
    let s = start(FAST).await;
    let resp = s
        .http
        .post(format!("{}/api/keys", s.gw.url))
        .json(&json!({"name": "team\nINFO forged: admin logged in\u{1b}[2J"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    s.until_log("virtual key created", 1).await;
    let log = s.gw.log();
    assert!(log.contains("team\\nINFO forged"), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("INFO forged")), "{log}");
    assert!(!log.contains("\u{1b}[2J"), "no raw escape sequences: {log}");
}

/// A directory laid out the way the kubelet mounts a ConfigMap: the file is a link through `..data`
/// into a timestamped directory, and an update renames a new `..data` over the old one.
struct KubeletVolume {
    dir: tempfile::TempDir,
    current: String,
    generation: u32,
}

impl KubeletVolume {
    fn new(config: &str) -> KubeletVolume {
        let dir = tempfile::tempdir().unwrap();
        let mut volume = KubeletVolume {
            dir,
            current: String::new(),
            generation: 0,
        };
        let first = volume.write_generation(config);
        std::os::unix::fs::symlink(&first, volume.dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config.toml", volume.path()).unwrap();
        volume.current = first;
        volume
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("config.toml")
    }

    fn write_generation(&mut self, config: &str) -> String {
        self.generation += 1;
        let name = format!(
            "..2026_12_02_10_00_0{}.00000000{}",
            self.generation, self.generation
        );
        std::fs::create_dir(self.dir.path().join(&name)).unwrap();
        std::fs::write(self.dir.path().join(&name).join("config.toml"), config).unwrap();
        name
    }

    /// The kubelet's atomic update: new directory, `..data_tmp` link to it, renamed over `..data`,
    /// the old directory removed.
    fn update(&mut self, config: &str) {
        let next = self.write_generation(config);
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&next, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.path().join(&self.current)).unwrap();
        self.current = next;
    }
}

#[tokio::test]
async fn a_configmap_update_swapped_in_by_the_kubelet_is_picked_up_every_time() {
    let mock = MockUpstream::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut volume = KubeletVolume::new(FAST);
    let env = [
        (
            "LLM_BRIDGE_CONFIG",
            volume.path().to_string_lossy().to_string(),
        ),
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
        ("RUST_LOG", "info".to_string()),
    ];
    let gw = Running::start(data.path(), &env).await;
    assert_eq!(status_at(&gw, "fast").await, 200);
    assert_eq!(status_at(&gw, "quick").await, 404);

    let generations = [
        (QUICK, "quick", "fast"),
        (
            "[models.aliases]\nswift = \"gpt-4o-mini\"\n",
            "swift",
            "quick",
        ),
        (FAST, "fast", "swift"),
    ];
    for (n, (config, serves, gone)) in generations.into_iter().enumerate() {
        volume.update(config);
        let gw = &gw;
        poll_until(
            &format!("`{serves}` after update {}", n + 1),
            move || async move { (status_at(gw, serves).await == 200).then_some(()) },
        )
        .await;
        assert_eq!(
            status_at(gw, gone).await,
            404,
            "update {}:\n{}",
            n + 1,
            gw.log()
        );
    }
    let log = gw.log();
    assert!(
        !log.contains("configuration reload refused"),
        "every update was read whole:\n{log}"
    );
}

/// A chat request's status from a gateway started with [`Running::start`].
async fn status_at(gw: &Running, model: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&hello(model))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_file_linked_from_another_directory_is_watched_where_it_lives() {
    let mock = MockUpstream::start().await;
    let data = tempfile::tempdir().unwrap();
    let named = tempfile::tempdir().unwrap();
    let real = tempfile::tempdir().unwrap();
    let target = real.path().join("gateway.toml");
    std::fs::write(&target, FAST).unwrap();
    let link = named.path().join("config.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let env = [
        ("LLM_BRIDGE_CONFIG", link.to_string_lossy().to_string()),
        ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
        ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
    ];
    let gw = Running::start(data.path(), &env).await;
    assert_eq!(status_at(&gw, "fast").await, 200);
    std::fs::write(&target, QUICK).unwrap();
    let gw = &gw;
    poll_until("the edited target", move || async move {
        (status_at(gw, "quick").await == 200).then_some(())
    })
    .await;
    assert_eq!(status_at(gw, "fast").await, 404);
}
