//! Providers: one card per provider, busiest first, with a details dialog (models, prices, errors).

use leptos::prelude::*;

use crate::app::components::cost_modal::CostButton;
use crate::app::components::modal::Modal;
use crate::app::components::status::{ErrorNote, Loading};
use crate::app::components::use_refresh;
use crate::app::components::window_picker::WindowPicker;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::reports::{ProviderDetails, ProviderSummary};

#[cfg(feature = "ssr")]
const RECENT_ERRORS: usize = 20;

#[server(prefix = "/console/fn")]
pub async fn get_providers(window: String) -> Result<Vec<ProviderSummary>, ServerFnError> {
    use crate::app::backend;
    use crate::reports::UsageRow;
    use crate::stats::Window;
    let state = backend::state();
    let w = backend::window(&window)?;
    let (in_window, last_hour) = futures_util::try_join!(
        state.stats.breakdown(w, "provider"),
        state.stats.breakdown(Window::Hour, "provider"),
    )
    .map_err(backend::store_error)?;
    let gateway = state.gateway();
    let catalogue = gateway.catalogue.all();
    let mut cards: Vec<ProviderSummary> = state
        .gateway()
        .providers
        .statuses()
        .iter()
        .map(|s| {
            let usage = in_window
                .iter()
                .find(|r| r.name == s.name)
                .cloned()
                .unwrap_or_else(|| UsageRow {
                    name: s.name.clone(),
                    ..UsageRow::default()
                });
            let extra = state
                .gateway()
                .providers
                .get(&s.name)
                .map_or(0, |p| p.extra_models.len());
            ProviderSummary {
                name: s.name.clone(),
                display_name: s.display_name.clone(),
                enabled: s.enabled,
                enable_with: s.enable_with.clone(),
                usage,
                requests_last_hour: last_hour
                    .iter()
                    .find(|r| r.name == s.name)
                    .map_or(0, |r| r.requests),
                model_count: catalogue.iter().filter(|m| m.provider == s.name).count() + extra,
            }
        })
        .collect();
    sort_by_usage(&mut cards);
    Ok(cards)
}

/// Busiest in the window first, then the last hour's traffic, then configured ones, then by name.
#[cfg(feature = "ssr")]
fn sort_by_usage(cards: &mut [ProviderSummary]) {
    cards.sort_by(|a, b| {
        b.usage
            .requests
            .cmp(&a.usage.requests)
            .then(b.requests_last_hour.cmp(&a.requests_last_hour))
            .then(b.enabled.cmp(&a.enabled))
            .then_with(|| a.name.cmp(&b.name))
    });
}

#[server(prefix = "/console/fn")]
pub async fn get_provider_details(name: String) -> Result<ProviderDetails, ServerFnError> {
    use crate::app::backend;
    use crate::stats::RecentFilter;
    let state = backend::state();
    let gateway = state.gateway();
    let providers = &gateway.providers;
    let status = providers
        .status(&name)
        .ok_or_else(|| ServerFnError::new(format!("there is no provider `{name}`")))?;
    let enabled = providers.get(&name);
    let filter = RecentFilter {
        provider: Some(name.clone()),
        status: Some("error".into()),
        ..RecentFilter::default()
    };
    let errors = state
        .stats
        .recent(RECENT_ERRORS, &filter)
        .await
        .map_err(backend::store_error)?;
    Ok(ProviderDetails {
        name: status.name.clone(),
        display_name: status.display_name.clone(),
        enabled: status.enabled,
        enable_with: status.enable_with.clone(),
        base_url: enabled.map(|p| p.base_url.clone()),
        models: backend::prices(&state)
            .into_iter()
            .filter(|m| m.provider == name)
            .collect(),
        extra_models: enabled.map(|p| p.extra_models.clone()).unwrap_or_default(),
        errors,
    })
}

#[component]
pub fn Providers() -> impl IntoView {
    let i18n = use_i18n();
    let window = RwSignal::new("1h".to_string());
    let refresh = use_refresh();
    let cards = Resource::new(
        move || (window.get(), refresh.get()),
        |(w, _)| get_providers(w),
    );
    let selected = RwSignal::new(None::<String>);
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("Providers")}</h1>
                <div class="page-tools">
                    <WindowPicker window/>
                    <CostButton/>
                </div>
            </div>
            <p class="muted">
                {move || i18n.t("Sorted by requests in the window; 🔥 the busiest in the last hour, ✨ traffic in the last hour.")}
            </p>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    cards
                        .get()
                        .map(|result| match result {
                            Ok(list) => view! { <ProviderGrid cards=list window=window.get_untracked() selected/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the providers: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
            {move || selected.get().map(|name| view! { <DetailsDialog name on_close=move || selected.set(None)/> })}
        </section>
    }
}

#[component]
fn ProviderGrid(
    cards: Vec<ProviderSummary>,
    window: String,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let hottest = cards
        .iter()
        .filter(|c| c.requests_last_hour > 0)
        .max_by(|a, b| {
            a.requests_last_hour
                .cmp(&b.requests_last_hour)
                .then_with(|| b.name.cmp(&a.name))
        })
        .map(|c| c.name.clone());
    view! {
        <div class="provider-grid">
            {cards
                .into_iter()
                .enumerate()
                .map(|(rank, card)| {
                    let hot = hottest.as_deref() == Some(card.name.as_str());
                    view! { <ProviderCard card rank hot window=window.clone() selected/> }
                })
                .collect_view()}
        </div>
    }
}

#[component]
fn ProviderCard(
    card: ProviderSummary,
    rank: usize,
    hot: bool,
    window: String,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let active = card.requests_last_hour > 0;
    let u = &card.usage;
    let error_rate = if u.requests == 0 {
        0.0
    } else {
        u.errors as f64 / u.requests as f64
    };
    let per_minute = card.requests_last_hour as f64 / 60.0;
    let facts = [
        ("Requests/min (1h)", format!("{per_minute:.2}"), "rpm"),
        ("Requests ({})", format::int(u.requests), "requests"),
        (
            "Latency p50 / p95",
            format!(
                "{} / {}",
                format::ms(u.latency_p50_ms),
                format::ms(u.latency_p95_ms)
            ),
            "latency",
        ),
        ("Error rate", format::percent(error_rate), "error-rate"),
        (
            "Tokens in / out",
            format!(
                "{} / {}",
                format::compact(u.prompt_tokens as f64),
                format::compact(u.completion_tokens as f64)
            ),
            "tokens",
        ),
        ("Cost", format::usd(u.cost_usd), "cost"),
    ];
    let name = card.name.clone();
    let enable_with = card.enable_with.clone();
    let model_count = card.model_count.to_string();
    view! {
        <article
            class="provider-card"
            class:disabled=!card.enabled
            data-provider=card.name.clone()
            data-rank=rank
            aria-labelledby=format!("provider-{}", card.name)
        >
            <header class="card-head">
                <h2 id=format!("provider-{}", card.name)>{card.display_name.clone()}</h2>
                <div class="badges">
                    {hot.then(|| view! { <span class="badge hot" data-badge="hot">"🔥 " {move || i18n.t("Hot")}</span> })}
                    {active.then(|| view! { <span class="badge active" data-badge="active">"✨ " {move || i18n.t("Active")}</span> })}
                    {if card.enabled {
                        view! { <span class="badge ok">{move || i18n.t("Configured")}</span> }.into_any()
                    } else {
                        view! { <span class="badge off">{move || i18n.t("Not configured")}</span> }.into_any()
                    }}
                </div>
            </header>
            {(!card.enabled).then(|| {
                let enable_with = enable_with.clone();
                view! { <p class="hint">{move || i18n.f("Set {} to enable it.", &[&enable_with])}</p> }
            })}
            <dl class="card-facts">
                {facts
                    .into_iter()
                    .map(|(label, value, id)| {
                        let window = window.clone();
                        view! {
                            <div data-fact=id>
                                <dt>{move || i18n.f(label, &[&window])}</dt>
                                <dd>{value}</dd>
                            </div>
                        }
                    })
                    .collect_view()}
            </dl>
            <footer class="card-foot">
                <span class="muted">{move || i18n.f("{} models", &[&model_count])}</span>
                <button type="button" aria-haspopup="dialog" on:click=move |_| selected.set(Some(name.clone()))>
                    {move || i18n.t("Details")}
                    <span class="visually-hidden">{format!(" — {}", card.display_name)}</span>
                </button>
            </footer>
        </article>
    }
}

#[component]
fn DetailsDialog(name: String, #[prop(into)] on_close: Callback<()>) -> impl IntoView {
    let details = Resource::new(move || name.clone(), get_provider_details);
    let title = Signal::derive(move || {
        details
            .get()
            .and_then(|r| r.ok())
            .map(|d| d.display_name)
            .unwrap_or_default()
    });
    view! {
        <Modal id="provider-details" class="modal-wide" title on_close>
            <Suspense fallback=|| view! { <Loading/> }>
                {move || {
                    details
                        .get()
                        .map(|r| match r {
                            Ok(d) => view! { <DetailsView details=d/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the providers: {}" error=e/> }.into_any(),
                        })
                }}
            </Suspense>
        </Modal>
    }
}

#[component]
fn DetailsView(details: ProviderDetails) -> impl IntoView {
    let i18n = use_i18n();
    let state = if details.enabled {
        i18n.t("Configured").to_string()
    } else {
        i18n.f("Set {} to enable it.", &[&details.enable_with])
    };
    view! {
        <dl class="facts">
            <dt>{move || i18n.t("Status")}</dt>
            <dd>{state}</dd>
            {details.base_url.map(|url| view! {
                <dt>{move || i18n.t("Base URL")}</dt>
                <dd><code>{url}</code></dd>
            })}
        </dl>
        <h3>{move || i18n.t("Models and prices")}</h3>
        <div class="table-wrap">
            <table class="data" data-provider-models>
                <thead>
                    <tr>
                        <th scope="col">{move || i18n.t("Model")}</th>
                        <th scope="col" class="num">{move || i18n.t("Context")}</th>
                        <th scope="col" class="num">{move || i18n.t("Input $/1M")}</th>
                        <th scope="col" class="num">{move || i18n.t("Cached $/1M")}</th>
                        <th scope="col" class="num">{move || i18n.t("Output $/1M")}</th>
                    </tr>
                </thead>
                <tbody>
                    {details.models.into_iter().map(|m| view! {
                        <tr data-model=m.id.to_string()>
                            <th scope="row">{m.id.clone()}</th>
                            <td class="num">{format::compact(m.context_window as f64)}</td>
                            <td class="num">{format::price(m.input)}</td>
                            <td class="num">{format::price(m.cached_input)}</td>
                            <td class="num">{format::price(m.output)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {(!details.extra_models.is_empty()).then(|| view! {
            <h3>{move || i18n.t("Configured models (no catalogue price)")}</h3>
            <p>{details.extra_models.join(", ")}</p>
        })}
        <h3>{move || i18n.t("Recent errors")}</h3>
        {if details.errors.is_empty() {
            view! { <p class="muted" data-no-errors>{move || i18n.t("No errors recorded.")}</p> }.into_any()
        } else {
            view! {
                <ul class="error-list">
                    {details.errors.into_iter().map(|r| view! {
                        <li>
                            <span class="mono">{format::timestamp(r.time_ms)}</span>
                            " · " <strong>{r.status}</strong>
                            " · " {r.model}
                            " · " {r.error_class.unwrap_or_default()}
                        </li>
                    }).collect_view()}
                </ul>
            }.into_any()
        }}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::UsageRow;

    fn card(name: &str, requests: u64, last_hour: u64, enabled: bool) -> ProviderSummary {
        ProviderSummary {
            name: name.into(),
            enabled,
            usage: UsageRow {
                name: name.into(),
                requests,
                ..UsageRow::default()
            },
            requests_last_hour: last_hour,
            ..ProviderSummary::default()
        }
    }

    #[test]
    fn busiest_first_then_configured_then_name() {
        let mut cards = vec![
            card("qwen", 0, 0, false),
            card("openai", 3, 3, true),
            card("gemini", 9, 1, true),
            card("anthropic", 0, 0, true),
        ];
        sort_by_usage(&mut cards);
        let names: Vec<_> = cards.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gemini", "openai", "anthropic", "qwen"]);
    }
}
