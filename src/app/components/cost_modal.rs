//! The cost analysis: spend per provider, model and key, the pricing catalogue, and what a traffic
//! volume (the window's or one typed in) would cost on every catalogued model.

use leptos::prelude::*;

use super::icons::{Icon, Svg};
use super::modal::Modal;
use super::status::{ErrorNote, Loading};
use super::usage_table::UsageTable;
use super::window_picker::WindowPicker;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::domain::ModelPrice;
use crate::reports::CostAnalysis;

#[server(prefix = "/console/fn")]
pub async fn get_cost_analysis(window: String) -> Result<CostAnalysis, ServerFnError> {
    use crate::app::backend;
    let state = backend::state();
    let w = backend::window(&window)?;
    let stats = &state.stats;
    let overview = stats.overview(w).await.map_err(backend::store_error)?;
    let (by_provider, by_model, by_key) = futures_util::try_join!(
        stats.breakdown(w, "provider"),
        stats.breakdown(w, "model"),
        stats.breakdown(w, "key"),
    )
    .map_err(backend::store_error)?;
    Ok(CostAnalysis {
        window: w.label().into(),
        prices: backend::prices(&state),
        by_provider,
        by_model,
        by_key,
        prompt_tokens: overview.prompt_tokens,
        completion_tokens: overview.completion_tokens,
        cost_usd: overview.cost_usd,
    })
}

/// Whether the cost analysis is open; provided by the shell.
#[derive(Clone, Copy)]
pub struct CostModalOpen(pub RwSignal<bool>);

/// The button that opens the analysis (dashboard, providers).
#[component]
pub fn CostButton() -> impl IntoView {
    let i18n = use_i18n();
    let open = expect_context::<CostModalOpen>().0;
    view! {
        <button type="button" class="button-secondary" aria-haspopup="dialog" on:click=move |_| open.set(true)>
            <Svg icon=Icon::Cost/>
            {move || i18n.t("Cost analysis")}
        </button>
    }
}

/// Rendered by the shell; shows nothing while closed.
#[component]
pub fn CostModal() -> impl IntoView {
    let open = expect_context::<CostModalOpen>().0;
    view! {
        <Show when=move || open.get()>
            <CostAnalysisDialog on_close=move || open.set(false)/>
        </Show>
    }
}

#[component]
fn CostAnalysisDialog(#[prop(into)] on_close: Callback<()>) -> impl IntoView {
    let i18n = use_i18n();
    let window = RwSignal::new("24h".to_string());
    let analysis = Resource::new(move || window.get(), get_cost_analysis);
    view! {
        <Modal id="cost-modal" class="modal-wide" title=Signal::derive(move || i18n.t("Cost analysis").to_string()) on_close>
            <div class="modal-toolbar">
                <WindowPicker window/>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    analysis
                        .get()
                        .map(|r| match r {
                            Ok(a) => view! { <CostAnalysisView analysis=a/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the cost analysis: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
        </Modal>
    }
}

#[component]
fn CostAnalysisView(analysis: CostAnalysis) -> impl IntoView {
    let i18n = use_i18n();
    let spend = format::usd(analysis.cost_usd);
    view! {
        <p class="lead" data-spend>{move || i18n.f("Spend in the window: {}", &[&spend])}</p>
        <Estimate prices=analysis.prices.clone() prompt=analysis.prompt_tokens completion=analysis.completion_tokens/>
        <div class="spend-grid">
            <section>
                <h3>{move || i18n.t("Spend by provider")}</h3>
                <UsageTable first="Provider" rows=analysis.by_provider name="provider"/>
            </section>
            <section>
                <h3>{move || i18n.t("Spend by model")}</h3>
                <UsageTable first="Model" rows=analysis.by_model name="model"/>
            </section>
            <section>
                <h3>{move || i18n.t("Spend by key")}</h3>
                <UsageTable first="Key" rows=analysis.by_key name="key"/>
            </section>
        </div>
    }
}

/// Embedding models have no output price and do not answer chat requests.
fn is_chat(m: &ModelPrice) -> bool {
    m.output > 0.0
}

fn parse_tokens(raw: &str) -> u64 {
    let cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let lower = raw.trim().to_ascii_lowercase();
    let factor = if lower.ends_with('m') {
        1e6
    } else if lower.ends_with('k') {
        1e3
    } else {
        1.0
    };
    (cleaned.parse::<f64>().unwrap_or(0.0) * factor).round() as u64
}

/// The pricing catalogue with, per model, what the chosen token volume would cost.
#[component]
fn Estimate(prices: Vec<ModelPrice>, prompt: u64, completion: u64) -> impl IntoView {
    let i18n = use_i18n();
    let custom = RwSignal::new(false);
    let prompt_text = RwSignal::new(prompt.to_string());
    let completion_text = RwSignal::new(completion.to_string());
    let volume = move || {
        if custom.get() {
            (
                parse_tokens(&prompt_text.get()),
                parse_tokens(&completion_text.get()),
            )
        } else {
            (prompt, completion)
        }
    };
    let rows = move || {
        let (p, c) = volume();
        let mut rows: Vec<(ModelPrice, Option<f64>)> = prices
            .iter()
            .map(|m| (m.clone(), is_chat(m).then(|| m.cost(p, 0, c))))
            .collect();
        // Chat models cheapest first; embedding models (no output price) cannot serve chat traffic.
        rows.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.0.id.cmp(&b.0.id)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.id.cmp(&b.0.id),
        });
        rows
    };
    let on_volume = move |target: RwSignal<String>, value: String| {
        target.set(value);
        custom.set(true);
    };
    view! {
        <section class="estimate">
            <h3>{move || i18n.t("Estimate")}</h3>
            <p class="muted">{move || i18n.t("What this traffic would cost on each catalogued model, cheapest first.")}</p>
            <fieldset class="estimate-source">
                <legend class="visually-hidden">{move || i18n.t("Estimate")}</legend>
                <label class="check">
                    <input type="radio" name="estimate-source" prop:checked=move || !custom.get() on:change=move |_| custom.set(false)/>
                    {move || i18n.t("Traffic of the window")}
                    {format!(" ({} / {})", format::int(prompt), format::int(completion))}
                </label>
                <label class="check">
                    <input type="radio" name="estimate-source" prop:checked=move || custom.get() on:change=move |_| custom.set(true)/>
                    {move || i18n.t("A token volume")}
                </label>
            </fieldset>
            <div class="form-row">
                <label class="field">
                    <span>{move || i18n.t("Input tokens")}</span>
                    <input
                        type="text"
                        inputmode="numeric"
                        name="estimate-input"
                        prop:value=move || prompt_text.get()
                        on:input=move |ev| on_volume(prompt_text, event_target_value(&ev))
                    />
                </label>
                <label class="field">
                    <span>{move || i18n.t("Output tokens")}</span>
                    <input
                        type="text"
                        inputmode="numeric"
                        name="estimate-output"
                        prop:value=move || completion_text.get()
                        on:input=move |ev| on_volume(completion_text, event_target_value(&ev))
                    />
                </label>
            </div>
            <h3>{move || i18n.t("Pricing catalogue")}</h3>
            <div class="table-wrap">
                <table class="data" data-estimate>
                    <thead>
                        <tr>
                            <th scope="col">{move || i18n.t("Model")}</th>
                            <th scope="col">{move || i18n.t("Provider")}</th>
                            <th scope="col" class="num">{move || i18n.t("Context")}</th>
                            <th scope="col" class="num">{move || i18n.t("Input $/1M")}</th>
                            <th scope="col" class="num">{move || i18n.t("Cached $/1M")}</th>
                            <th scope="col" class="num">{move || i18n.t("Output $/1M")}</th>
                            <th scope="col" class="num">{move || i18n.t("Estimated cost")}</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=rows key=|(m, cost)| (m.id.clone(), cost.map(f64::to_bits)) let:row>
                            <tr data-model=row.0.id.clone()>
                                <th scope="row">{row.0.id.clone()}</th>
                                <td>{row.0.provider.clone()}</td>
                                <td class="num">{format::compact(row.0.context_window as f64)}</td>
                                <td class="num">{format::price(row.0.input)}</td>
                                <td class="num">{format::price(row.0.cached_input)}</td>
                                <td class="num">{format::price(row.0.output)}</td>
                                {match row.1 {
                                    Some(cost) => view! { <td class="num strong" data-cost>{format::usd(cost)}</td> }.into_any(),
                                    None => view! { <td class="num muted">{move || i18n.t("embeddings")}</td> }.into_any(),
                                }}
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::parse_tokens;

    #[test]
    fn token_volumes_accept_separators_and_suffixes() {
        assert_eq!(parse_tokens("1,000,000"), 1_000_000);
        assert_eq!(parse_tokens("2.5M"), 2_500_000);
        assert_eq!(parse_tokens("300k"), 300_000);
        assert_eq!(parse_tokens("abc"), 0);
    }
}
