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

/// Watches the file's directory (editors often replace the file rather than write it).
fn watch(path: &Path, tx: mpsc::Sender<&'static str>) -> Option<notify::RecommendedWatcher> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = target.file_name()?.to_os_string();
    let dir = target.parent()?.to_path_buf();
    let handler = move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) && event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()));
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
    if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
        tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the config file's directory; reload with SIGHUP");
        return None;
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
