//! Configuration hot reload: on SIGHUP, and when the config file changes (unless
//! `server.watch_config = false`). The new configuration is loaded and validated and a gateway is
//! built from it; only then is it swapped in. A bad file is refused with the reason logged and the
//! running configuration keeps serving. Requests already running finish on the configuration they
//! started with.
//!
//! Reloaded: providers, models and aliases, pricing, routing, deployments, per-address limits.
//! The listen address, store, master key, CORS and size limits are read once: changing them needs a
//! restart (the gateway logs which ones it kept).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::env::ProcessEnv;
use crate::config::{CliOverrides, Config};
use crate::gateway::Gateway;
use crate::state::AppState;

/// Changes arriving closer together than this are read once.
const SETTLE: Duration = Duration::from_millis(200);

/// Starts listening for SIGHUP and, when there is a config file to watch, for changes to it.
pub fn spawn(state: AppState, cli: CliOverrides, file: Option<PathBuf>) {
    let (tx, mut rx) = mpsc::channel::<&'static str>(16);
    let hangup = tx.clone();
    tokio::spawn(async move {
        let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while signal.recv().await.is_some() {
            let _ = hangup.send("SIGHUP").await;
        }
    });
    let watcher = match &file {
        Some(path) if state.config().server.watch_config => watch(path, tx),
        _ => None,
    };
    tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(mut trigger) = rx.recv().await {
            // Editors write a file in several steps: wait until it settles.
            while let Ok(Some(next)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                trigger = next;
            }
            reload(&state, &cli, trigger);
        }
    });
}

/// The symlink a Kubernetes volume (ConfigMap, Secret, projected) swaps to publish new content:
/// `config.toml -> ..data/config.toml`, `..data -> ..2026_01_02_03_04_05.123/`.
const KUBELET_DATA: &str = "..data";

/// Watches the directory the file is named in, as configured and not resolved, for changes to the
/// file or to a kubelet's `..data` link. Editors often replace the file rather than write it, and a
/// kubelet publishes a new ConfigMap by renaming a new `..data` link over the old one and deleting
/// the directory the old one led to, so a watch on the resolved file would go with it. When the
/// file is a link into another directory, that directory is watched for the target as well.
fn watch(path: &Path, tx: mpsc::Sender<&'static str>) -> Option<notify::RecommendedWatcher> {
    let name = path.file_name()?.to_os_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watched = vec![(dir.clone(), vec![name, KUBELET_DATA.into()])];
    if let (Ok(target), Ok(real_dir)) = (std::fs::canonicalize(path), std::fs::canonicalize(&dir))
        && let (Some(target_dir), Some(target_name)) = (target.parent(), target.file_name())
        && !target_dir.starts_with(&real_dir)
    {
        watched.push((target_dir.to_path_buf(), vec![target_name.to_os_string()]));
    }
    let names: Vec<std::ffi::OsString> = watched.iter().flat_map(|(_, n)| n.clone()).collect();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event
            .paths
            .iter()
            .filter_map(|p| p.file_name())
            .any(|n| names.iter().any(|name| name == n));
        if relevant {
            let _ = tx.try_send("file change");
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
            return None;
        }
    };
    for (i, (dir, _)) in watched.iter().enumerate() {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config file's directory; reload with SIGHUP");
            if i == 0 {
                return None;
            }
        }
    }
    Some(watcher)
}

/// Loads, validates and swaps in the configuration; on any problem keeps the running one.
pub fn reload(state: &AppState, cli: &CliOverrides, trigger: &str) {
    let mut config = match Config::load(cli, &ProcessEnv) {
        Ok((_, Some(file))) if is_blank(&file) => {
            tracing::error!(trigger, file = %file.display(), "configuration reload refused: the file is empty (half-written?); the previous configuration keeps serving");
            return;
        }
        Ok((config, _)) => config,
        Err(e) => {
            tracing::error!(trigger, error = %e, "configuration reload refused; the previous configuration keeps serving");
            return;
        }
    };
    let running = state.config();
    let kept = keep_restart_only(&running, &mut config);
    if !kept.is_empty() {
        tracing::warn!(trigger, sections = ?kept, "these settings change only on a restart; kept the running values");
    }
    let gateway = match Gateway::new(&config, state.stats.clone()) {
        Ok(mut g) => {
            // The cache's entries outlive a reload that leaves `[cache]` as it was.
            if config.cache == running.cache {
                g.cache = state.gateway().cache.clone();
            }
            Arc::new(g)
        }
        Err(e) => {
            tracing::error!(trigger, error = %e, "configuration reload refused; the previous configuration keeps serving");
            return;
        }
    };
    let serving = state.gateway().providers.enabled().len();
    if serving > 0 && gateway.providers.enabled().is_empty() {
        tracing::error!(
            trigger,
            "configuration reload refused: it would disable every provider that is serving now; the previous configuration keeps serving"
        );
        return;
    }
    state.governance.set_limits(config.limits.clone());
    state.governance.set_teams(&config.teams);
    state.stats.alerts().configure(&config.alerts);
    state.replace(config, gateway);
    tracing::info!(trigger, "configuration reloaded");
}

/// Whether the file holds nothing but whitespace and comments.
fn is_blank(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| {
        text.lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    })
}

/// Puts back the settings that are read once at start, naming those that differed.
fn keep_restart_only(running: &Config, new: &mut Config) -> Vec<&'static str> {
    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    // Secrets serialise masked: compare them in the clear, in memory only.
    let secret = |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.expose().to_string());
    let mut kept = Vec::new();
    if json(&running.server) != json(&new.server) {
        kept.push("server");
    }
    if json(&running.store) != json(&new.store)
        || secret(&running.store.redis_url) != secret(&new.store.redis_url)
    {
        kept.push("store");
    }
    if secret(&running.auth.master_key) != secret(&new.auth.master_key) {
        kept.push("auth");
    }
    if json(&running.log) != json(&new.log) {
        kept.push("log");
    }
    new.server = running.server.clone();
    new.store = running.store.clone();
    new.auth = running.auth.clone();
    new.log = running.log.clone();
    kept
}
