//! Replicas on a highly available Redis: a real Redis Cluster (three masters, three replicas) and a
//! real Sentinel group (one master, one replica, three sentinels), each built from local
//! `redis-server` processes. Two gateways share stats, keys and one global limit through it; then
//! the master holding the gateway's data is killed under load. Requests keep succeeding through
//! the failover and the stats afterwards account for every request.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use llm_bridge_mock::MockUpstream;
use serde_json::{Value, json};

/// A port whose cluster bus port (port + 10000) is free too.
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55535 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Node {
    port: u16,
    child: Option<Child>,
}

impl Node {
    fn spawn(port: u16, args: &[String]) -> Node {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Node {
                    port,
                    child: Some(child),
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child_kill(child);
        panic!("redis-server did not start on {port}");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_available() -> bool {
    let ok = Command::new("redis-cli").arg("--version").output().is_ok()
        && Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok();
    if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("redis-server and redis-cli are required when CI=true");
    }
    if !ok {
        eprintln!("SKIPPED: redis-server is not installed; Redis HA test not run");
    }
    ok
}

/// Polls a blocking check every 100 ms until it holds (at most `secs`).
async fn settle(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {secs} s waiting for {what}");
}

/// The high-availability Redis under test.
trait Topology {
    fn url(&self) -> String;
    /// Kills the master that holds the gateway's data; returns its port.
    fn kill_primary(&mut self) -> u16;
    /// True once a new master serves the gateway's data.
    fn recovered(&self, killed: u16) -> bool;
}

struct Cluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (0..6)
            .map(|_| {
                let port = node_port();
                let args: Vec<String> = [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "1000",
                    "--dir",
                    &dir.path().to_string_lossy(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                Node::spawn(port, &args)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes, _dir: dir };
        let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
        settle("the cluster to be ok with six nodes", 30, || {
            ports.iter().all(|p| {
                let info = cli(*p, &["cluster", "info"]);
                info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:6")
            }) && ports
                .iter()
                .filter(|p| cli(**p, &["role"]).starts_with("slave"))
                .all(|p| cli(*p, &["info", "replication"]).contains("master_link_status:up"))
        })
        .await;
        cluster
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .map(|n| n.port)
            .unwrap()
    }

    /// The port of the master serving the slot of the `{llmb}` hash tag, as `port` sees it.
    fn owner(&self, port: u16) -> Option<u16> {
        let slot: u16 = cli(port, &["cluster", "keyslot", "{llmb}"])
            .trim()
            .parse()
            .ok()?;
        cli(port, &["cluster", "nodes"]).lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                return None;
            }
            let serves = fields[8..].iter().any(|range| {
                let mut ends = range.split('-').map(|s| s.parse::<u16>().ok());
                match (ends.next().flatten(), ends.next()) {
                    (Some(a), Some(Some(b))) => (a..=b).contains(&slot),
                    (Some(a), None) => a == slot,
                    _ => false,
                }
            });
            let port = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
            serves.then_some(port)
        })
    }
}

impl Topology for Cluster {
    fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port));
        }
        url
    }

    fn kill_primary(&mut self) -> u16 {
        let owner = self.owner(self.nodes[0].port).expect("a master for {llmb}");
        self.nodes
            .iter_mut()
            .find(|n| n.port == owner)
            .unwrap()
            .kill();
        owner
    }

    fn recovered(&self, killed: u16) -> bool {
        let port = self.live_port();
        cli(port, &["cluster", "info"]).contains("cluster_state:ok")
            && self.owner(port).is_some_and(|p| p != killed)
    }
}

struct Sentinel {
    servers: Vec<Node>,
    sentinels: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    async fn start() -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        // The replica's first sync writes an RDB file: into the test's directory.
        let base = |port: u16| -> Vec<String> {
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.path().to_string_lossy(),
                "--dbfilename",
                &format!("dump-{port}.rdb"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let master_port = free_port();
        let master = Node::spawn(master_port, &base(master_port));
        let replica_port = free_port();
        let mut args = base(replica_port);
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            master_port.to_string(),
        ]);
        let replica = Node::spawn(replica_port, &args);
        settle("the replica to sync", 20, || {
            cli(replica_port, &["info", "replication"]).contains("master_link_status:up")
        })
        .await;
        let sentinels = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.path().join(format!("sentinel-{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor llmb 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds llmb 1000\n\
                         sentinel failover-timeout llmb 5000\n\
                         sentinel parallel-syncs llmb 1\n",
                        dir.path().display()
                    ),
                )
                .unwrap();
                Node::spawn(
                    port,
                    &[conf.to_string_lossy().to_string(), "--sentinel".into()],
                )
            })
            .collect();
        let group = Sentinel {
            servers: vec![master, replica],
            sentinels,
            _dir: dir,
        };
        let ports: Vec<u16> = group.sentinels.iter().map(|n| n.port).collect();
        settle(
            "the sentinels to see each other and the replica",
            30,
            || {
                ports.iter().all(|p| {
                    let info = cli(*p, &["sentinel", "master", "llmb"]);
                    let field = |name: &str| {
                        let lines: Vec<&str> = info.lines().collect();
                        lines
                            .iter()
                            .position(|l| *l == name)
                            .and_then(|i| lines.get(i + 1))
                            .map(|s| s.to_string())
                    };
                    field("num-other-sentinels").as_deref() == Some("2")
                        && field("num-slaves").as_deref() == Some("1")
                })
            },
        )
        .await;
        group
    }

    fn master_port(&self) -> Option<u16> {
        let port = self.sentinels[0].port;
        let out = cli(port, &["sentinel", "get-master-addr-by-name", "llmb"]);
        out.lines().nth(1)?.trim().parse().ok()
    }
}

impl Topology for Sentinel {
    fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName=llmb&node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.sentinels[0].port, self.sentinels[1].port, self.sentinels[2].port
        )
    }

    fn kill_primary(&mut self) -> u16 {
        let port = self.master_port().expect("the sentinels name a master");
        self.servers
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap()
            .kill();
        port
    }

    fn recovered(&self, killed: u16) -> bool {
        self.master_port()
            .is_some_and(|p| p != killed && cli(p, &["role"]).starts_with("master"))
    }
}

async fn gateways(url: &str, mock: &MockUpstream) -> Vec<(Running, tempfile::TempDir)> {
    let mut out = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("REDIS_URL", url.to_string()),
            ("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()),
            ("OPENAI_API_KEY", OPENAI_KEY.to_string()),
            ("OPENAI_BASE_URL", format!("{}/v1", mock.url())),
            ("RUST_LOG", "warn".to_string()),
        ];
        out.push((Running::start(dir.path(), &env).await, dir));
    }
    out
}

async fn chat(http: &reqwest::Client, url: &str, key: &str) -> u16 {
    match http
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&hello("gpt-4o-mini"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

/// Requests recorded in the last hour, as a gateway reads them from Redis.
async fn recorded(http: &reqwest::Client, url: &str) -> Option<u64> {
    let resp = http
        .get(format!("{url}/api/stats/overview?window=1h"))
        .bearer_auth(MASTER)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json::<Value>().await.ok()?["requests"].as_u64()
}

/// Waits until both gateways report `want` requests, or the total stops moving; returns the last.
async fn totals_settle(http: &reqwest::Client, urls: &[String], want: u64) -> u64 {
    let mut last = 0;
    let mut same_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut seen = Vec::new();
        for url in urls {
            seen.push(recorded(http, url).await);
        }
        if let [Some(a), Some(b)] = seen[..] {
            if a == want && b == want {
                return a;
            }
            if a != last {
                last = a;
                same_since = Instant::now();
            } else if same_since.elapsed() > Duration::from_secs(8) {
                return a;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[derive(Default)]
struct Tally {
    slowest_ms: AtomicU64,
    ok: AtomicU64,
    limited: AtomicU64,
    other: AtomicU64,
}

/// The shared behaviour, then a failover of the data's master under load.
async fn share_then_fail_over(name: &str, mut redis: impl Topology) {
    let mock = MockUpstream::start().await;
    let gws = gateways(&redis.url(), &mock).await;
    let urls: Vec<String> = gws.iter().map(|(g, _)| g.url.clone()).collect();
    let http = reqwest::Client::new();

    // Keys and revocations are shared.
    let (id, secret) = create_key(&http, &urls[0], json!({"name": "roaming"})).await;
    until_all(&http, &urls, &secret, 200).await;
    let revoked = http
        .delete(format!("{}/api/keys/{id}", urls[1]))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    until_all(&http, &urls, &secret, 401).await;

    // One global limit: twice the allowance, spread over both gateways.
    const LIMIT: u64 = 200;
    let (_, limited_key) =
        create_key(&http, &urls[1], json!({"name": "limited", "rpm": LIMIT})).await;
    until_all(&http, &urls, &limited_key, 200).await;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for url in &urls {
        for _ in 0..8 {
            let (http, url, key, tally) = (
                http.clone(),
                url.clone(),
                limited_key.clone(),
                tally.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for _ in 0..(2 * LIMIT / 16) {
                    match chat(&http, &url, &key).await {
                        200 => tally.ok.fetch_add(1, Ordering::Relaxed),
                        429 => tally.limited.fetch_add(1, Ordering::Relaxed),
                        _ => tally.other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = LIMIT as f64 * (1.0 + elapsed / 60.0);
    let (ok, limited) = (
        tally.ok.load(Ordering::Relaxed),
        tally.limited.load(Ordering::Relaxed),
    );
    eprintln!(
        "{name}: {ok} admitted, {limited} refused in {elapsed:.2} s; the limit allowed {allowed:.1}"
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);
    assert!(ok >= LIMIT - 2, "{ok} admitted: the limit was not used up");
    assert!(ok as f64 <= allowed + 2.0, "{ok} admitted of {allowed:.1}");

    // Stats totals are exact before the failover: every request above, refused ones included.
    let sent_before = 2 * LIMIT / 16 * 16;
    let before = totals_settle(&http, &urls, sent_before).await;
    assert_eq!(before, sent_before, "{name}: totals before the failover");

    // Steady traffic on both gateways; the data's master dies in the middle of it.
    let (_, key) = create_key(&http, &urls[0], json!({"name": "steady", "rpm": 1_000_000})).await;
    until_all(&http, &urls, &key, 200).await;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for url in &urls {
        for _ in 0..4 {
            let (http, url, key, tally, stop) = (
                http.clone(),
                url.clone(),
                key.clone(),
                tally.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let status = chat(&http, &url, &key).await;
                    tally
                        .slowest_ms
                        .fetch_max(sent.elapsed().as_millis() as u64, Ordering::Relaxed);
                    match status {
                        200 => tally.ok.fetch_add(1, Ordering::Relaxed),
                        _ => tally.other.fetch_add(1, Ordering::Relaxed),
                    };
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = redis.kill_primary();
    let killed_at = Instant::now();
    let during = tally.ok.load(Ordering::Relaxed);
    settle("a new master", 40, || redis.recovered(killed)).await;
    let failover = killed_at.elapsed();
    // Keep going on the new master for a while.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.other.load(Ordering::Relaxed);
    let total = totals_settle(&http, &urls, before + ok + failed).await;
    let counted = total - before;
    let sent = ok + failed;
    eprintln!(
        "{name}: master :{killed} killed after {during} requests; a new master after {:.1} s; \
         {sent} requests sent during the run ({failed} failed, the slowest took {} ms); \
         {counted} counted, {} lost, {} counted twice",
        failover.as_secs_f64(),
        tally.slowest_ms.load(Ordering::Relaxed),
        sent.saturating_sub(counted),
        counted.saturating_sub(sent),
    );
    for (i, (gw, _)) in gws.iter().enumerate() {
        let log = gw.log();
        assert!(!log.contains("panicked"), "{log}");
        eprintln!(
            "{name}: gateway {i} logged {} failed stats writes and {} limit checks let through",
            log.matches("stats store write failed").count(),
            log.matches("rate limits cannot be checked").count()
        );
    }
    assert_eq!(failed, 0, "{name}: requests failed during the failover");
    assert_eq!(counted, sent, "{name}: every request counted exactly once");
    // Keys still work and new ones reach both gateways after the failover.
    let (_, late) = create_key(&http, &urls[1], json!({"name": "after-failover"})).await;
    until_all(&http, &urls, &late, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_shares_state_and_survives_a_master_failover() {
    if !redis_available() {
        return;
    }
    let cluster = Cluster::start().await;
    share_then_fail_over("cluster", cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_shares_state_and_survives_a_master_failover() {
    if !redis_available() {
        return;
    }
    let group = Sentinel::start().await;
    share_then_fail_over("sentinel", group).await;
}
