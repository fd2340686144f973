//! A table of usage rows (per model, provider or key).

use leptos::prelude::*;

use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::reports::UsageRow;

#[component]
pub fn UsageTable(
    /// English name of the first column (`Model`, `Provider`, `Key`).
    first: &'static str,
    rows: Vec<UsageRow>,
    /// `data-usage` name, for tests and styling.
    name: &'static str,
) -> impl IntoView {
    let i18n = use_i18n();
    if rows.is_empty() {
        return view! { <p class="muted empty">{move || i18n.t("No traffic in this window yet.")}</p> }
            .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="data" data-usage=name>
                <thead>
                    <tr>
                        <th scope="col">{move || i18n.t(first)}</th>
                        <th scope="col" class="num">{move || i18n.t("Requests")}</th>
                        <th scope="col" class="num">{move || i18n.t("Error rate")}</th>
                        <th scope="col" class="num">{move || i18n.t("Tokens")}</th>
                        <th scope="col" class="num">{move || i18n.t("Cost")}</th>
                        <th scope="col" class="num">{move || i18n.t("Latency p50")}</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| {
                            let error_rate = if r.requests == 0 { 0.0 } else { r.errors as f64 / r.requests as f64 };
                            view! {
                                <tr data-name=r.name.clone()>
                                    <th scope="row">{r.name.clone()}</th>
                                    <td class="num">{format::int(r.requests)}</td>
                                    <td class="num">{format::percent(error_rate)}</td>
                                    <td class="num">{format::compact((r.prompt_tokens + r.completion_tokens) as f64)}</td>
                                    <td class="num">{format::usd(r.cost_usd)}</td>
                                    <td class="num">{format::ms(r.latency_p50_ms)}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
