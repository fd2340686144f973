//! System: version, uptime, the store and its health, and the effective configuration (secrets masked).

use leptos::prelude::*;

use crate::shared::HealthReport;

#[server(prefix = "/console/fn")]
pub async fn get_system() -> Result<(HealthReport, String), ServerFnError> {
    let state = expect_context::<crate::state::AppState>();
    Ok((state.health().await, state.config.to_masked_toml()))
}

#[component]
pub fn System() -> impl IntoView {
    let system = Resource::new(|| (), |_| get_system());
    view! {
        <section class="page">
            <h1>"System"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    system
                        .get()
                        .map(|result| match result {
                            Ok((health, config)) => view! { <SystemView health config/> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}

#[component]
fn SystemView(health: HealthReport, config: String) -> impl IntoView {
    let store_state = if health.store.reachable {
        "reachable"
    } else {
        "unreachable"
    };
    view! {
        <dl class="facts">
            <dt>"Status"</dt>
            <dd data-fact="status">{health.status.clone()}</dd>
            <dt>"Version"</dt>
            <dd data-fact="version">{health.version.clone()}</dd>
            <dt>"Uptime"</dt>
            <dd>{format!("{} s", health.uptime_seconds)}</dd>
            <dt>"Store"</dt>
            <dd data-fact="store">{format!("{} ({store_state}: {})", health.store.backend, health.store.detail)}</dd>
        </dl>
        <h2>"Providers"</h2>
        <ul class="provider-list">
            {health
                .providers
                .into_iter()
                .map(|p| {
                    let state = if p.enabled { "enabled".to_string() } else { format!("set {} to enable", p.enable_with) };
                    view! {
                        <li data-provider=p.name.clone()>
                            <strong>{p.display_name}</strong>
                            " — "
                            {state}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
        <h2>"Effective configuration"</h2>
        <pre class="config">{config}</pre>
    }
}
