//! System: version, uptime, listen address, the store and its health, the process's memory and
//! CPU time, and the effective configuration (secrets masked).

use leptos::prelude::*;

use crate::app::components::status::{ErrorNote, Loading};
use crate::app::components::use_refresh;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::reports::SystemInfo;

#[server(prefix = "/console/fn")]
pub async fn get_system() -> Result<SystemInfo, ServerFnError> {
    crate::app::backend::require_admin().await?;
    let state = crate::app::backend::state();
    let (memory_rss_bytes, cpu_seconds) = process::usage().await;
    Ok(SystemInfo {
        health: state.health().await,
        listen: state.config().server.listen.to_string(),
        memory_rss_bytes,
        cpu_seconds,
        dropped_records: state.stats.dropped(),
        config_toml: state.config().to_masked_toml(),
    })
}

/// The process's own figures from procfs (Linux); `None` elsewhere.
#[cfg(feature = "ssr")]
mod process {
    /// Clock ticks per second for `/proc/<pid>/stat` times; 100 on every Linux platform we run on.
    const CLOCK_TICKS: f64 = 100.0;

    pub async fn usage() -> (Option<u64>, Option<f64>) {
        let status = tokio::fs::read_to_string("/proc/self/status").await.ok();
        let stat = tokio::fs::read_to_string("/proc/self/stat").await.ok();
        (
            status.as_deref().and_then(rss_bytes),
            stat.as_deref().and_then(cpu_seconds),
        )
    }

    pub fn rss_bytes(status: &str) -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// utime + stime, fields 14 and 15; the command name (field 2) may contain spaces, so count
    /// from the closing parenthesis.
    pub fn cpu_seconds(stat: &str) -> Option<f64> {
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / CLOCK_TICKS)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_procfs_lines() {
            assert_eq!(
                rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\n"),
                Some(2048 * 1024)
            );
            let stat = "42 (llm bridge) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
            assert_eq!(cpu_seconds(stat), Some(3.0));
        }
    }
}

#[component]
pub fn System() -> impl IntoView {
    let i18n = use_i18n();
    let refresh = use_refresh();
    let system = Resource::new(move || refresh.get(), |_| get_system());
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("System")}</h1>
                <span class="live muted">{move || i18n.t("Live · refreshes every 5 s")}</span>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    system
                        .get()
                        .map(|result| match result {
                            Ok(info) => view! { <SystemView info/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the system information: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn SystemView(info: SystemInfo) -> impl IntoView {
    let i18n = use_i18n();
    let health = info.health;
    let reachable = health.store.reachable;
    let store = move || {
        let state = if reachable {
            i18n.t("reachable")
        } else {
            i18n.t("unreachable")
        };
        format!(
            "{} ({state}: {})",
            health.store.backend, health.store.detail
        )
    };
    let memory = info.memory_rss_bytes.map(format::bytes);
    let cpu = info.cpu_seconds.map(|s| format!("{s:.2} s"));
    let unavailable = move || i18n.t("unavailable").to_string();
    let facts: Vec<(&'static str, &'static str, String)> = vec![
        ("Version", "version", health.version.clone()),
        ("Uptime", "uptime", format::duration(health.uptime_seconds)),
        ("Listen address", "listen", info.listen.clone()),
        (
            "Dropped stats records",
            "dropped",
            format::int(info.dropped_records),
        ),
    ];
    view! {
        <div class="system-grid">
            <section class="panel">
                <dl class="facts">
                    <dt>{move || i18n.t("Status")}</dt>
                    <dd data-fact="status">
                        <span class=if health.status == "ok" { "badge ok" } else { "badge off" }>{health.status.clone()}</span>
                    </dd>
                    {facts
                        .into_iter()
                        .map(|(label, id, value)| view! {
                            <dt>{move || i18n.t(label)}</dt>
                            <dd data-fact=id>{value}</dd>
                        })
                        .collect_view()}
                    <dt>{move || i18n.t("Store")}</dt>
                    <dd data-fact="store">{store}</dd>
                    <dt>{move || i18n.t("Memory (RSS)")}</dt>
                    <dd data-fact="memory">{memory.clone().unwrap_or_else(unavailable)}</dd>
                    <dt>{move || i18n.t("CPU time")}</dt>
                    <dd data-fact="cpu">{cpu.clone().unwrap_or_else(unavailable)}</dd>
                </dl>
            </section>
            <section class="panel">
                <h2>{move || i18n.t("Providers")}</h2>
                <ul class="provider-list">
                    {health
                        .providers
                        .into_iter()
                        .map(|p| {
                            let enable_with = p.enable_with.clone();
                            let state = move || {
                                if p.enabled { i18n.t("enabled").to_string() } else { i18n.f("Set {} to enable it.", &[&enable_with]) }
                            };
                            view! {
                                <li data-provider=p.name.clone()>
                                    <span class=if p.enabled { "dot ok" } else { "dot off" } aria-hidden="true"></span>
                                    <strong>{p.display_name}</strong>
                                    " — "
                                    {state}
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </section>
        </div>
        <h2>{move || i18n.t("Effective configuration")}</h2>
        <p class="muted">{move || i18n.t("Secrets are masked.")}</p>
        <pre class="config">{info.config_toml}</pre>
    }
}
