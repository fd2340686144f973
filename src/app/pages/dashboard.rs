//! The dashboard: totals for a chosen window, refreshed every few seconds.

use leptos::prelude::*;

use crate::shared::Overview;

#[server(prefix = "/console/fn")]
pub async fn get_overview(window: String) -> Result<Overview, ServerFnError> {
    let state = expect_context::<crate::state::AppState>();
    let window = crate::stats::Window::parse(&window)
        .ok_or_else(|| ServerFnError::new(format!("unknown window `{window}`")))?;
    state
        .stats
        .overview(window)
        .await
        .map_err(ServerFnError::new)
}

const WINDOWS: [&str; 3] = ["1h", "24h", "7d"];
const REFRESH_MS: u64 = 5_000;

#[component]
pub fn Dashboard() -> impl IntoView {
    let window = RwSignal::new("1h".to_string());
    let refresh = RwSignal::new(0u64);
    let overview = Resource::new(
        move || (window.get(), refresh.get()),
        |(w, _)| get_overview(w),
    );
    Effect::new(move |_| {
        let _ = set_interval_with_handle(
            move || refresh.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        );
    });
    view! {
        <section class="page">
            <div class="page-head">
                <h1>"Dashboard"</h1>
                <div class="segmented" role="group" aria-label="Time window">
                    {WINDOWS
                        .into_iter()
                        .map(|w| {
                            view! {
                                <button
                                    type="button"
                                    aria-pressed=move || (window.get() == w).to_string()
                                    on:click=move |_| window.set(w.to_string())
                                >
                                    {w}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </div>
            <Transition fallback=|| view! { <p class="muted">"Loading totals…"</p> }>
                {move || {
                    overview
                        .get()
                        .map(|result| match result {
                            Ok(o) => view! { <Totals overview=o/> }.into_any(),
                            Err(e) => {
                                view! { <p class="error" role="alert">"Cannot load the totals: " {e.to_string()}</p> }
                                    .into_any()
                            }
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn Totals(overview: Overview) -> impl IntoView {
    let tiles = [
        ("Requests", overview.requests.to_string(), "requests"),
        (
            "Success rate",
            format!("{:.1} %", overview.success_rate * 100.0),
            "success-rate",
        ),
        (
            "Tokens in",
            overview.prompt_tokens.to_string(),
            "prompt-tokens",
        ),
        (
            "Tokens out",
            overview.completion_tokens.to_string(),
            "completion-tokens",
        ),
        ("Cost", format!("${:.4}", overview.cost_usd), "cost"),
        (
            "Latency p50",
            format!("{:.0} ms", overview.latency_p50_ms),
            "latency-p50",
        ),
        (
            "Latency p95",
            format!("{:.0} ms", overview.latency_p95_ms),
            "latency-p95",
        ),
    ];
    view! {
        <div class="tiles">
            {tiles
                .into_iter()
                .map(|(label, value, id)| {
                    view! {
                        <div class="tile" data-metric=id>
                            <div class="tile-label">{label}</div>
                            <div class="tile-value">{value}</div>
                        </div>
                    }
                })
                .collect_view()}
        </div>
    }
}
