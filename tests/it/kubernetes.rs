//! The Kubernetes manifests (`deploy/kubernetes`): every overlay renders with `kubectl kustomize`,
//! and every port, probe path, environment variable and setting in them is one the gateway really
//! serves or reads. No cluster runs in CI: the rendered manifests are checked against the binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

use crate::support::*;
use llm_bridge::config::{CliOverrides, Config};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");
const SECRET: &str = "llm-bridge-secrets";
const GATEWAY: &str = "llm-bridge";
/// Resident memory after the benchmark's load.
const LOADED_RSS: u64 = 34 << 20;

/// The overlays, each a directory under `overlays/`.
fn overlays() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{ROOT}/overlays"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    names
}

/// `kubectl kustomize` of a directory under `deploy/kubernetes`, one value per document.
fn render(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", &format!("{ROOT}/{dir}")])
        .output()
        .unwrap_or_else(|e| panic!("kubectl is needed to render the manifests: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], |s| s.as_slice())
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| (str_of(k).to_string(), str_of(v).to_string()))
        .collect()
}

/// Whether every label of `selector` is on `pod` (and the selector is not empty).
fn selects(selector: &Value, pod: &BTreeMap<String, String>) -> bool {
    let selector = labels(selector);
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// `64Mi`, `1Gi`, `512Ki` or plain bytes.
fn bytes(quantity: &str) -> u64 {
    for (suffix, unit) in [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)] {
        if let Some(n) = quantity.strip_suffix(suffix) {
            return n.parse::<u64>().unwrap() * unit;
        }
    }
    quantity.parse().unwrap()
}

/// What the image sets up, read from the Dockerfile: its user's id and its `ENV` values.
struct Image {
    uid: i64,
    env: HashMap<String, String>,
}

fn image() -> Image {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let uid = words
        .windows(2)
        .find(|w| w[0] == "--uid")
        .map(|w| w[1].parse().unwrap())
        .expect("the Dockerfile's user has a fixed numeric id (useradd --uid)");
    let mut env = HashMap::new();
    let mut in_env = false;
    for line in text.lines() {
        let line = line.trim();
        let rest = match line.strip_prefix("ENV ") {
            Some(rest) => rest,
            None if in_env => line,
            None => continue,
        };
        in_env = rest.ends_with('\\');
        for pair in rest.trim_end_matches('\\').split_whitespace() {
            if let Some((k, v)) = pair.split_once('=') {
                env.insert(k.to_string(), v.to_string());
            }
        }
    }
    Image { uid, env }
}

struct Rendered {
    overlay: String,
    docs: Vec<Value>,
}

impl Rendered {
    fn new(overlay: &str) -> Rendered {
        Rendered {
            overlay: overlay.to_string(),
            docs: render(&format!("overlays/{overlay}")),
        }
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", self.overlay))
    }

    fn deployment(&self) -> &Value {
        self.get("Deployment", GATEWAY)
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn pod_labels(&self) -> BTreeMap<String, String> {
        labels(&self.deployment()["spec"]["template"]["metadata"]["labels"])
    }

    fn container(&self) -> &Value {
        seq(&self.pod()["containers"])
            .iter()
            .find(|c| c["name"] == GATEWAY)
            .unwrap_or_else(|| panic!("{}: no container {GATEWAY}", self.overlay))
    }

    fn env(&self) -> &[Value] {
        seq(&self.container()["env"])
    }

    /// The environment variables given as literal values.
    fn literal_env(&self) -> HashMap<String, String> {
        self.env()
            .iter()
            .filter_map(|e| {
                Some((
                    str_of(&e["name"]).to_string(),
                    e["value"].as_str()?.to_string(),
                ))
            })
            .collect()
    }

    /// The container port named `http`.
    fn http_port(&self) -> i64 {
        seq(&self.container()["ports"])
            .iter()
            .find(|p| p["name"] == "http")
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("{}: no container port named http", self.overlay))
    }

    /// A probe's or Service's port: a number, or the name of one of the container's ports.
    fn resolve_port(&self, port: &Value) -> i64 {
        if let Some(n) = port.as_i64() {
            return n;
        }
        let name = str_of(port);
        seq(&self.container()["ports"])
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| panic!("{}: port {name} is not a container port", self.overlay))
    }

    /// The volume mounted at the path that holds `path`, and the mount.
    fn volume_holding(&self, path: &Path) -> (&Value, &Value) {
        let mount = seq(&self.container()["volumeMounts"])
            .iter()
            .filter(|m| path.starts_with(str_of(&m["mountPath"])))
            .max_by_key(|m| str_of(&m["mountPath"]).len())
            .unwrap_or_else(|| {
                panic!(
                    "{}: nothing is mounted over {}",
                    self.overlay,
                    path.display()
                )
            });
        let volume = seq(&self.pod()["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("{}: no volume {:?}", self.overlay, mount["name"]));
        (volume, mount)
    }

    /// The mount that holds the configuration file.
    fn config_mount(&self) -> &Value {
        let path = PathBuf::from(&self.literal_env()["LLM_BRIDGE_CONFIG"]);
        self.volume_holding(&path).1
    }

    /// The configuration file the Deployment mounts: the rendered ConfigMap's `config.toml`, at
    /// the path `LLM_BRIDGE_CONFIG` names.
    fn config_toml(&self) -> String {
        let path = PathBuf::from(&self.literal_env()["LLM_BRIDGE_CONFIG"]);
        let (volume, mount) = self.volume_holding(&path);
        assert!(
            mount["subPath"].is_null(),
            "{}: a ConfigMap mounted with subPath is never updated in the pod",
            self.overlay
        );
        let name = str_of(&volume["configMap"]["name"]);
        assert_eq!(
            name, "llm-bridge-config",
            "{}: the ConfigMap's name carries no hash, so that an update reaches running pods",
            self.overlay
        );
        let key = path
            .strip_prefix(str_of(&mount["mountPath"]))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        str_of(&self.get("ConfigMap", name)["data"][key.as_str()]).to_string()
    }

    /// The configuration the gateway loads in the pod: the ConfigMap's file and the literal
    /// environment (secrets are not in the manifests).
    fn config(&self) -> (Config, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, self.config_toml()).unwrap();
        let mut env = self.literal_env();
        env.insert(
            "LLM_BRIDGE_CONFIG".into(),
            file.to_string_lossy().into_owned(),
        );
        let (config, _) = Config::load(&CliOverrides::default(), &env).unwrap_or_else(|e| {
            panic!(
                "{}: the gateway refuses the configuration: {e}",
                self.overlay
            )
        });
        (config, dir)
    }
}

#[test]
fn the_base_and_every_overlay_render() {
    let base = render("base");
    assert!(base.iter().any(|d| d["kind"] == "Deployment"));
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        for kind in [
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ConfigMap",
        ] {
            assert!(!r.all(kind).is_empty(), "{overlay}: no {kind}");
        }
        assert!(
            r.all("Secret").is_empty(),
            "{overlay}: secrets are created by hand, never rendered from the repository"
        );
    }
}

#[test]
fn every_variable_is_one_the_gateway_reads() {
    let known: BTreeSet<&str> = llm_bridge::config::known_env_vars().into_iter().collect();
    let mut secret_keys = BTreeSet::new();
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let mut seen = BTreeSet::new();
        for e in r.env() {
            let name = str_of(&e["name"]);
            assert!(
                known.contains(name),
                "{overlay}: {name} is not read by the gateway"
            );
            assert!(seen.insert(name), "{overlay}: {name} is set twice");
            let secret = &e["valueFrom"]["secretKeyRef"];
            if secret.is_mapping() {
                let key = str_of(&secret["key"]);
                assert_eq!(secret["name"], SECRET, "{overlay}: {name}");
                assert!(
                    known.contains(key),
                    "{overlay}: secret key {key} is not a variable"
                );
                assert_eq!(
                    key, name,
                    "{overlay}: each Secret key is named after its variable"
                );
                secret_keys.insert(key.to_string());
            } else {
                assert!(
                    e["value"].is_string(),
                    "{overlay}: {name} is a literal value or comes from {SECRET}"
                );
            }
        }
        for from in seq(&r.container()["envFrom"]) {
            let map = &from["configMapRef"]["name"];
            assert!(
                map.is_string(),
                "{overlay}: envFrom a Secret passes keys nobody can check; list them under env"
            );
            let data = r.get("ConfigMap", str_of(map))["data"]
                .as_mapping()
                .unwrap();
            for (key, _) in data {
                assert!(
                    known.contains(str_of(key)),
                    "{overlay}: envFrom key {key:?}"
                );
            }
        }
        let master = r
            .env()
            .iter()
            .find(|e| e["name"] == "LLM_BRIDGE_MASTER_KEY")
            .expect("the master key is set");
        assert!(
            master["valueFrom"]["secretKeyRef"].is_mapping(),
            "{overlay}: the master key comes from the Secret"
        );
        assert!(
            master["valueFrom"]["secretKeyRef"]["optional"] != true,
            "{overlay}: a gateway listening on the pod network does not start without its master key"
        );
    }

    // The example Secret names exactly the keys the overlays read, and nothing else.
    let example = std::fs::read_to_string(format!("{ROOT}/base/secret.example.env")).unwrap();
    let listed: BTreeSet<String> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.split_once('=').unwrap();
            assert!(value.is_empty(), "secret.example.env holds no secret: {l}");
            key.to_string()
        })
        .collect();
    assert_eq!(listed, secret_keys);
}

#[test]
fn the_paths_match_the_image_and_only_mounts_are_written() {
    let image = image();
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let env = r.literal_env();
        for var in ["LLM_BRIDGE_SITE_ROOT", "LLM_BRIDGE_DATA_DIR"] {
            assert_eq!(env.get(var), image.env.get(var), "{overlay}: {var}");
        }
        let (config, _dir) = r.config();
        // With a read-only root filesystem, the data directory must be a writable volume.
        let (volume, mount) = r.volume_holding(&config.server.data_dir);
        assert!(volume["emptyDir"].is_mapping(), "{overlay}: {volume:?}");
        assert!(mount["readOnly"] != true, "{overlay}: {mount:?}");
        assert!(
            !config
                .server
                .data_dir
                .starts_with(str_of(&r.config_mount()["mountPath"])),
            "{overlay}"
        );
        // The image the manifests name is the one the Dockerfile builds.
        assert!(str_of(&r.container()["image"]).starts_with("llm-bridge"));
    }
}

#[test]
fn ports_and_timings_agree_with_the_configuration() {
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let (config, _dir) = r.config();
        let listen = config.server.listen;
        assert!(
            listen.ip().is_unspecified(),
            "{overlay}: the gateway listens on {listen}, out of the kubelet's and Service's reach"
        );
        assert_eq!(i64::from(listen.port()), r.http_port(), "{overlay}");

        // The Service sends traffic to that port, and to the gateway's pods only.
        let service = r.get("Service", GATEWAY);
        let pods = r.pod_labels();
        assert!(selects(&service["spec"]["selector"], &pods), "{overlay}");
        for port in seq(&service["spec"]["ports"]) {
            assert_eq!(
                r.resolve_port(&port["targetPort"]),
                r.http_port(),
                "{overlay}"
            );
        }
        for other in r.all("StatefulSet") {
            let labels = labels(&other["spec"]["template"]["metadata"]["labels"]);
            assert!(!selects(&service["spec"]["selector"], &labels), "{overlay}");
        }

        // Every probe asks the gateway's port.
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &r.container()[probe]["httpGet"];
            assert!(get.is_mapping(), "{overlay}: {probe} is an HTTP GET");
            assert_eq!(
                r.resolve_port(&get["port"]),
                r.http_port(),
                "{overlay}: {probe}"
            );
        }
        assert_eq!(
            r.container()["readinessProbe"]["httpGet"]["path"],
            "/health/ready"
        );
        assert_eq!(
            r.container()["livenessProbe"]["httpGet"]["path"],
            "/health/live"
        );

        // SIGTERM comes after the preStop pause; the drain must end before the kubelet's SIGKILL.
        let pause = match seq(&r.container()["lifecycle"]["preStop"]["exec"]["command"]) {
            [sleep, secs] if sleep == "sleep" => str_of(secs).parse::<u64>().unwrap(),
            [] => 0,
            other => panic!("{overlay}: preStop {other:?}"),
        };
        let grace = r.pod()["terminationGracePeriodSeconds"].as_u64().unwrap();
        let drain = config.server.drain_timeout.as_secs();
        assert!(
            grace > pause + drain,
            "{overlay}: grace {grace}s, preStop {pause}s, drain {drain}s"
        );

        // The memory limit holds the loaded process and the in-memory stores at their caps.
        let resources = &r.container()["resources"];
        let limit = bytes(str_of(&resources["limits"]["memory"]));
        let request = bytes(str_of(&resources["requests"]["memory"]));
        // `[cache]` reloads: it may be switched on without a restart.
        let stores = (config.responses.max_bytes + config.cache.max_bytes) as u64;
        assert!(
            limit >= LOADED_RSS + stores,
            "{overlay}: memory limit {limit}"
        );
        assert!(request >= LOADED_RSS && request <= limit, "{overlay}");
        assert!(resources["requests"]["cpu"].is_string(), "{overlay}");
    }
}

#[test]
fn pods_run_unprivileged_on_a_read_only_root() {
    let image = image();
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        assert_eq!(
            r.pod()["securityContext"]["runAsUser"].as_i64(),
            Some(image.uid)
        );
        let templates = r
            .all("Deployment")
            .into_iter()
            .chain(r.all("StatefulSet"))
            .map(|w| {
                (
                    str_of(&w["metadata"]["name"]),
                    &w["spec"]["template"]["spec"],
                )
            });
        for (name, pod) in templates {
            let at = format!("{overlay}: {name}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{at}");
            assert_eq!(pod["enableServiceLinks"], false, "{at}");
            let sc = &pod["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true, "{at}");
            assert!(sc["runAsUser"].as_i64().is_some_and(|u| u > 0), "{at}");
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{at}");
            for c in seq(&pod["containers"]) {
                let sc = &c["securityContext"];
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(sc["capabilities"]["drop"], Value::from(vec!["ALL"]), "{at}");
                assert!(sc["privileged"] != true, "{at}");
                assert!(c["resources"]["limits"]["memory"].is_string(), "{at}");
            }
        }
    }
}

#[test]
fn the_autoscaler_and_the_disruption_budget_cover_the_gateway() {
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let pods = r.pod_labels();
        assert!(
            selects(&r.deployment()["spec"]["selector"]["matchLabels"], &pods),
            "{overlay}"
        );
        assert!(
            r.deployment()["spec"]["replicas"].is_null(),
            "{overlay}: the HPA owns the replica count; applying the manifests must not reset it"
        );

        let hpa = r.get("HorizontalPodAutoscaler", GATEWAY);
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        let target = &hpa["spec"]["scaleTargetRef"];
        assert_eq!(target["kind"], "Deployment");
        assert_eq!(target["name"], GATEWAY);
        let metric = &seq(&hpa["spec"]["metrics"])[0];
        assert_eq!(metric["resource"]["name"], "cpu");
        let min = hpa["spec"]["minReplicas"].as_u64().unwrap();
        assert!(
            min >= 2,
            "{overlay}: one pod alone cannot be drained without an outage"
        );
        assert!(hpa["spec"]["maxReplicas"].as_u64().unwrap() > min);

        let pdb = r.get("PodDisruptionBudget", GATEWAY);
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert!(
            selects(&pdb["spec"]["selector"]["matchLabels"], &pods),
            "{overlay}"
        );
        for other in r.all("StatefulSet") {
            let labels = labels(&other["spec"]["template"]["metadata"]["labels"]);
            assert!(
                !selects(&pdb["spec"]["selector"]["matchLabels"], &labels),
                "{overlay}"
            );
        }
        let available = pdb["spec"]["minAvailable"].as_u64().unwrap();
        assert!(
            available < min,
            "{overlay}: the budget leaves room to evict a pod"
        );
    }
}

#[test]
fn redis_url_names_a_redis_the_overlay_provides_or_the_secret() {
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let url = r
            .env()
            .iter()
            .find(|e| e["name"] == "REDIS_URL")
            .unwrap_or_else(|| panic!("{overlay}: replicas share their state through Redis"));
        if url["valueFrom"]["secretKeyRef"].is_mapping() {
            assert!(
                url["valueFrom"]["secretKeyRef"]["optional"] != true,
                "{overlay}"
            );
            assert!(r.all("StatefulSet").is_empty(), "{overlay}");
            continue;
        }
        let (host, port) = str_of(&url["value"])
            .strip_prefix("redis://")
            .and_then(|rest| rest.split_once(':'))
            .unwrap_or_else(|| panic!("{overlay}: REDIS_URL {:?}", url["value"]));
        let port: i64 = port.trim_end_matches('/').parse().unwrap();
        let service = r.get("Service", host);
        let set = r
            .all("StatefulSet")
            .into_iter()
            .find(|s| s["spec"]["serviceName"] == host)
            .unwrap_or_else(|| panic!("{overlay}: no StatefulSet behind Service {host}"));
        let pod = &set["spec"]["template"]["spec"];
        let pod_labels = labels(&set["spec"]["template"]["metadata"]["labels"]);
        assert!(
            selects(&service["spec"]["selector"], &pod_labels),
            "{overlay}"
        );
        assert_eq!(service["spec"]["clusterIP"], "None", "{overlay}: headless");
        let service_port = seq(&service["spec"]["ports"])
            .iter()
            .find(|p| p["port"].as_i64() == Some(port))
            .unwrap_or_else(|| panic!("{overlay}: Service {host} has no port {port}"));
        let redis = &seq(&pod["containers"])[0];
        let container_port = seq(&redis["ports"])
            .iter()
            .find(|p| {
                p["name"] == service_port["targetPort"]
                    || p["containerPort"] == service_port["targetPort"]
            })
            .unwrap_or_else(|| panic!("{overlay}: the Service's targetPort is not Redis's"));
        assert_eq!(
            container_port["containerPort"].as_i64(),
            Some(6379),
            "{overlay}"
        );

        // Persistent and append-only, on a claim mounted where Redis writes.
        let args: Vec<&str> = seq(&redis["args"]).iter().map(str_of).collect();
        assert!(
            args.windows(2).any(|w| w == ["--appendonly", "yes"]),
            "{args:?}"
        );
        let dir = args
            .windows(2)
            .find(|w| w[0] == "--dir")
            .map(|w| w[1])
            .expect("--dir");
        let claim = str_of(&seq(&set["spec"]["volumeClaimTemplates"])[0]["metadata"]["name"]);
        assert!(
            seq(&redis["volumeMounts"])
                .iter()
                .any(|m| m["name"] == claim && m["mountPath"] == dir),
            "{overlay}: Redis writes {dir} on the claim {claim}"
        );

        // Only the gateway may connect.
        for policy in r.all("NetworkPolicy") {
            assert!(selects(
                &policy["spec"]["podSelector"]["matchLabels"],
                &pod_labels
            ));
            for rule in seq(&policy["spec"]["ingress"]) {
                for from in seq(&rule["from"]) {
                    assert!(selects(
                        &from["podSelector"]["matchLabels"],
                        &r.pod_labels()
                    ));
                }
            }
        }
    }
}

/// The real binary, with the environment and the configuration file the Deployment gives it,
/// answers every probe with 200 (and without credentials, like the kubelet), master key set.
#[tokio::test]
async fn the_gateway_answers_every_probe() {
    let redis = RedisServer::start();
    for overlay in overlays() {
        let r = Rendered::new(&overlay);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, r.config_toml()).unwrap();
        let literal = r.literal_env();
        // The listen address and the paths are the test's own; Redis is a local one.
        let mut env: Vec<(&str, String)> = literal
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "LLM_BRIDGE_CONFIG"
                        | "LLM_BRIDGE_LISTEN"
                        | "LLM_BRIDGE_DATA_DIR"
                        | "LLM_BRIDGE_SITE_ROOT"
                        | "REDIS_URL"
                )
            })
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        env.push(("LLM_BRIDGE_CONFIG", file.to_string_lossy().into_owned()));
        env.push(("LLM_BRIDGE_MASTER_KEY", MASTER.to_string()));
        if let Some(redis) = &redis {
            env.push(("REDIS_URL", redis.url()));
        }
        let gw = Running::start(dir.path(), &env).await;
        let http = reqwest::Client::new();
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let get = &r.container()[probe]["httpGet"];
            let path = str_of(&get["path"]);
            let resp = http.get(format!("{}{path}", gw.url)).send().await.unwrap();
            assert_eq!(
                resp.status(),
                200,
                "{overlay}: {probe} {path}\n{}",
                gw.log()
            );
        }
        if redis.is_some() {
            let ready: serde_json::Value = http
                .get(format!("{}/health/ready", gw.url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ready["store"], "redis", "{overlay}: {ready}");
        }
    }
}
