//! The dashboard: totals, charts over time and the busiest models and providers of a window,
//! refreshed every few seconds.

use leptos::prelude::*;

use crate::app::components::chart::{LineChart, Series};
use crate::app::components::cost_modal::CostButton;
use crate::app::components::status::{ErrorNote, Loading};
use crate::app::components::usage_table::UsageTable;
use crate::app::components::use_refresh;
use crate::app::components::window_picker::WindowPicker;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::reports::{DashboardData, Overview, SeriesPoint};

#[cfg(feature = "ssr")]
const TOP_ROWS: usize = 8;

#[server(prefix = "/console/fn")]
pub async fn get_dashboard(window: String) -> Result<DashboardData, ServerFnError> {
    use crate::app::backend;
    let state = backend::state();
    let w = backend::window(&window)?;
    let stats = &state.stats;
    let (overview, series, mut top_models, mut top_providers) = futures_util::try_join!(
        stats.overview(w),
        stats.timeseries(w),
        stats.breakdown(w, "model"),
        stats.breakdown(w, "provider"),
    )
    .map_err(backend::store_error)?;
    top_models.truncate(TOP_ROWS);
    top_providers.truncate(TOP_ROWS);
    Ok(DashboardData {
        overview,
        series,
        top_models,
        top_providers,
    })
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let i18n = use_i18n();
    let window = RwSignal::new("1h".to_string());
    let refresh = use_refresh();
    let data = Resource::new(
        move || (window.get(), refresh.get()),
        |(w, _)| get_dashboard(w),
    );
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("Dashboard")}</h1>
                <div class="page-tools">
                    <span class="live muted">{move || i18n.t("Live · refreshes every 5 s")}</span>
                    <WindowPicker window/>
                    <CostButton/>
                </div>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    data.get()
                        .map(|result| match result {
                            Ok(d) => view! { <DashboardView data=d/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the dashboard: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn DashboardView(data: DashboardData) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <Totals overview=data.overview/>
        <Charts series=data.series/>
        <div class="two-col">
            <section>
                <h2>{move || i18n.t("Top models")}</h2>
                <UsageTable first="Model" rows=data.top_models name="model"/>
            </section>
            <section>
                <h2>{move || i18n.t("Top providers")}</h2>
                <UsageTable first="Provider" rows=data.top_providers name="provider"/>
            </section>
        </div>
    }
}

#[component]
fn Totals(overview: Overview) -> impl IntoView {
    let i18n = use_i18n();
    let mut tiles = vec![
        ("Requests", overview.requests.to_string(), "requests"),
        (
            "Success rate",
            format::percent(overview.success_rate),
            "success-rate",
        ),
        (
            "Tokens in",
            format::int(overview.prompt_tokens),
            "prompt-tokens",
        ),
        (
            "Tokens out",
            format::int(overview.completion_tokens),
            "completion-tokens",
        ),
        ("Cost", format::usd(overview.cost_usd), "cost"),
        (
            "Latency p50",
            format::ms(overview.latency_p50_ms),
            "latency-p50",
        ),
        (
            "Latency p95",
            format::ms(overview.latency_p95_ms),
            "latency-p95",
        ),
    ];
    let looked_up = overview.cache_hits + overview.cache_misses;
    if looked_up > 0 {
        let ratio = overview.cache_hits as f64 / looked_up as f64;
        tiles.push(("Cache hit ratio", format::percent(ratio), "cache-hit-ratio"));
        tiles.push((
            "Saved by the cache",
            format::usd(overview.saved_usd),
            "cache-saved",
        ));
    }
    view! {
        <div class="tiles">
            {tiles
                .into_iter()
                .map(|(label, value, id)| {
                    view! {
                        <div class="tile" data-metric=id>
                            <div class="tile-label">{move || i18n.t(label)}</div>
                            <div class="tile-value">{value}</div>
                        </div>
                    }
                })
                .collect_view()}
        </div>
    }
}

fn usd_axis(v: f64) -> String {
    if v <= 0.0 {
        return "$0".into();
    }
    // Two significant digits, however small the amount.
    let decimals = (1 - v.log10().floor() as i32).clamp(2, 9) as usize;
    format!("${v:.decimals$}")
}

#[component]
fn Charts(series: Vec<SeriesPoint>) -> impl IntoView {
    let i18n = use_i18n();
    let hourly = series.len() >= 2 && series[1].t - series[0].t >= 3600;
    let times: Vec<u64> = series.iter().map(|p| p.t).collect();
    let pick = |f: fn(&SeriesPoint) -> f64| series.iter().map(f).collect::<Vec<f64>>();
    let requests = vec![
        Series {
            label: "Requests",
            values: pick(|p| p.requests as f64),
        },
        Series {
            label: "Errors",
            values: pick(|p| p.errors as f64),
        },
    ];
    let latency = vec![
        Series {
            label: "Latency p50",
            values: pick(|p| p.latency_p50_ms),
        },
        Series {
            label: "Latency p95",
            values: pick(|p| p.latency_p95_ms),
        },
    ];
    let tokens = vec![Series {
        label: "Tokens",
        values: pick(|p| p.tokens as f64),
    }];
    let cost = vec![Series {
        label: "Cost",
        values: pick(|p| p.cost_usd),
    }];
    view! {
        <div class="charts">
            <LineChart title="Requests" name="requests" times=times.clone() series=requests format=format::compact hourly/>
            <LineChart title="Latency" name="latency" times=times.clone() series=latency format=format::ms hourly/>
            <LineChart title="Tokens" name="tokens" times=times.clone() series=tokens format=format::compact hourly/>
            <LineChart title="Cost" name="cost" times series=cost format=usd_axis hourly/>
        </div>
        <p class="muted small">{move || i18n.t("Times in UTC")}</p>
    }
}
