//! Requests: the recent request log with filters (kept in the URL) and one record's details.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::app::components::modal::Modal;
use crate::app::components::status::{ErrorNote, Loading};
use crate::app::components::use_refresh;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::domain::RequestRecord;
use crate::reports::RequestLog;

#[cfg(feature = "ssr")]
const SHOWN: usize = 200;
/// How far back the filters look for model and provider names to offer.
#[cfg(feature = "ssr")]
const OPTIONS_SCAN: usize = 1000;

#[server(prefix = "/console/fn")]
pub async fn get_requests(
    model: Option<String>,
    provider: Option<String>,
    status: Option<String>,
) -> Result<RequestLog, ServerFnError> {
    use crate::app::backend;
    use crate::stats::RecentFilter;
    let state = backend::state();
    let stats = &state.stats;
    let filter = RecentFilter {
        model,
        provider,
        status,
        ..RecentFilter::default()
    };
    let everything = RecentFilter::default();
    let (records, all) = futures_util::try_join!(
        stats.recent(SHOWN, &filter),
        stats.recent(OPTIONS_SCAN, &everything),
    )
    .map_err(backend::store_error)?;
    let mut models: Vec<String> = all.iter().map(|r| r.model.clone()).collect();
    let mut providers: Vec<String> = state
        .gateway()
        .providers
        .statuses()
        .iter()
        .map(|s| s.name.clone())
        .chain(all.iter().map(|r| r.provider.clone()))
        .filter(|p| !p.is_empty())
        .collect();
    for list in [&mut models, &mut providers] {
        list.sort();
        list.dedup();
    }
    Ok(RequestLog {
        records,
        models,
        providers,
    })
}

/// The filters, read from and written to the query string.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    model: Option<String>,
    provider: Option<String>,
    status: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        let parts: Vec<String> = [
            ("model", &self.model),
            ("provider", &self.provider),
            ("status", &self.status),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
        if parts.is_empty() {
            "/requests".into()
        } else {
            format!("/requests?{}", parts.join("&"))
        }
    }
}

/// Percent-encodes a query value (model names may hold `/`, `:` or spaces).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn Requests() -> impl IntoView {
    let i18n = use_i18n();
    let query = use_query_map();
    let filters = Memo::new(move |_| {
        let q = query.get();
        let pick = |k: &str| q.get(k).filter(|v| !v.is_empty());
        Filters {
            model: pick("model"),
            provider: pick("provider"),
            status: pick("status"),
        }
    });
    let refresh = use_refresh();
    let log = Resource::new(
        move || (filters.get(), refresh.get()),
        |(f, _)| get_requests(f.model, f.provider, f.status),
    );
    let selected = RwSignal::new(None::<RequestRecord>);
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("Requests")}</h1>
                <span class="live muted">{move || i18n.t("Live · refreshes every 5 s")}</span>
            </div>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    log.get()
                        .map(|result| match result {
                            Ok(log) => view! { <LogView log filters=filters.get_untracked() selected/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the request log: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
            {move || selected.get().map(|record| view! { <RecordDialog record on_close=move || selected.set(None)/> })}
        </section>
    }
}

#[component]
fn FilterSelect(
    label: &'static str,
    name: &'static str,
    options: Vec<(String, &'static str)>,
    value: Option<String>,
    on_pick: impl Fn(Option<String>) + 'static,
) -> impl IntoView {
    let i18n = use_i18n();
    let current = value.clone().unwrap_or_default();
    view! {
        <label class="field">
            <span>{move || i18n.t(label)}</span>
            <select
                name=name
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    on_pick(if v.is_empty() { None } else { Some(v) })
                }
            >
                <option value="" selected=value.is_none()>{move || i18n.t("All")}</option>
                {options
                    .into_iter()
                    .map(|(v, text)| {
                        let selected = v == current;
                        let shown = if text.is_empty() { v.clone() } else { String::new() };
                        view! {
                            <option value=v selected=selected>
                                {move || if text.is_empty() { shown.clone() } else { i18n.t(text).to_string() }}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn LogView(
    log: RequestLog,
    filters: Filters,
    selected: RwSignal<Option<RequestRecord>>,
) -> impl IntoView {
    let i18n = use_i18n();
    let navigate = use_navigate();
    let go = move |f: Filters| navigate(&f.query(), Default::default());
    let (go_model, go_provider, go_status, go_clear) = (go.clone(), go.clone(), go.clone(), go);
    let (f_model, f_provider, f_status) = (filters.clone(), filters.clone(), filters.clone());
    let count = log.records.len().to_string();
    let count_attr = count.clone();
    let records = log.records;
    view! {
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <FilterSelect
                label="Model"
                name="model"
                options=log.models.into_iter().map(|m| (m, "")).collect()
                value=filters.model.clone()
                on_pick=move |v| go_model(Filters { model: v, ..f_model.clone() })
            />
            <FilterSelect
                label="Provider"
                name="provider"
                options=log.providers.into_iter().map(|p| (p, "")).collect()
                value=filters.provider.clone()
                on_pick=move |v| go_provider(Filters { provider: v, ..f_provider.clone() })
            />
            <FilterSelect
                label="Status"
                name="status"
                options=vec![("ok".to_string(), "ok"), ("error".to_string(), "error")]
                value=filters.status.clone()
                on_pick=move |v| go_status(Filters { status: v, ..f_status.clone() })
            />
            <button type="button" on:click=move |_| go_clear(Filters::default()) disabled=filters == Filters::default()>
                {move || i18n.t("Clear filters")}
            </button>
        </form>
        <p class="muted small" data-count=count_attr>{move || i18n.f("{} requests shown (newest first)", &[&count])}</p>
        {if records.is_empty() {
            view! { <p class="muted empty">{move || i18n.t("No request matches these filters.")}</p> }.into_any()
        } else {
            view! { <LogTable records selected/> }.into_any()
        }}
    }
}

#[component]
fn LogTable(
    records: Vec<RequestRecord>,
    selected: RwSignal<Option<RequestRecord>>,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="table-wrap">
            <table class="data log">
                <thead>
                    <tr>
                        <th scope="col">{move || i18n.t("Time (UTC)")}</th>
                        <th scope="col">{move || i18n.t("Model")}</th>
                        <th scope="col">{move || i18n.t("Provider")}</th>
                        <th scope="col">{move || i18n.t("API")}</th>
                        <th scope="col" class="num">{move || i18n.t("Status")}</th>
                        <th scope="col" class="num">{move || i18n.t("Latency")}</th>
                        <th scope="col" class="num">{move || i18n.t("TTFT")}</th>
                        <th scope="col" class="num">{move || i18n.t("Tokens in / out")}</th>
                        <th scope="col" class="num">{move || i18n.t("Cost")}</th>
                    </tr>
                </thead>
                <tbody>
                    {records
                        .into_iter()
                        .map(|r| {
                            let error = r.is_error();
                            let record = r.clone();
                            view! {
                                <tr class:row-error=error data-request=r.request_id.clone()>
                                    <td>
                                        <button type="button" class="link-button mono" on:click=move |_| selected.set(Some(record.clone()))>
                                            {format::timestamp(r.time_ms)}
                                        </button>
                                    </td>
                                    <td>{r.model.clone()} {r.stream.then_some(" ⇢")}</td>
                                    <td>{r.provider.clone()}</td>
                                    <td data-api>{api_label(&r.api, &r.transport)}</td>
                                    <td class="num"><span class=if error { "badge off" } else { "badge ok" }>{r.status}</span></td>
                                    <td class="num">{format::ms(r.latency_ms)}</td>
                                    <td class="num">{r.ttft_ms.map(format::ms).unwrap_or_else(|| "—".into())}</td>
                                    <td class="num">{format!("{} / {}", format::int(r.prompt_tokens), format::int(r.completion_tokens))}</td>
                                    <td class="num">
                                        {format::usd(r.cost_usd)}
                                        {(r.cache == "hit").then(|| view! { " " <span class="badge ok" data-cache-hit title=format!("saved {}", format::usd(r.saved_usd))>{move || i18n.t("Cache")}</span> })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RecordDialog(record: RequestRecord, #[prop(into)] on_close: Callback<()>) -> impl IntoView {
    let i18n = use_i18n();
    let id = record.request_id.clone();
    let yes_no = move |b: bool| if b { "yes" } else { "no" };
    let rows: Vec<(&'static str, String)> = vec![
        ("time", format!("{} UTC", format::timestamp(record.time_ms))),
        ("request_id", record.request_id.clone()),
        ("model", record.model.clone()),
        ("provider", record.provider.clone()),
        ("deployment", record.deployment.clone()),
        (
            "client_key",
            record.client_key.clone().unwrap_or_else(|| "—".into()),
        ),
        ("team", record.team.clone().unwrap_or_else(|| "—".into())),
        ("user", record.user.clone().unwrap_or_else(|| "—".into())),
        ("status", record.status.to_string()),
        (
            "error_class",
            record.error_class.clone().unwrap_or_else(|| "—".into()),
        ),
        ("attempts", record.attempts.to_string()),
        ("api", or_dash(&record.api)),
        ("transport", transport_label(&record.transport).into()),
        (
            "session",
            record.session_id.clone().unwrap_or_else(|| "—".into()),
        ),
        ("stream", yes_no(record.stream).into()),
        ("latency", format::ms(record.latency_ms)),
        (
            "ttft",
            record.ttft_ms.map(format::ms).unwrap_or_else(|| "—".into()),
        ),
        ("prompt_tokens", format::int(record.prompt_tokens)),
        ("cached_tokens", format::int(record.cached_tokens)),
        ("completion_tokens", format::int(record.completion_tokens)),
        ("reasoning_tokens", format::int(record.reasoning_tokens)),
        ("usage_estimated", yes_no(record.usage_estimated).into()),
        ("cost", format::usd(record.cost_usd)),
        ("cache", or_dash(&record.cache)),
        ("saved", format::usd(record.saved_usd)),
    ];
    let json = serde_json::to_string_pretty(&record).unwrap_or_default();
    view! {
        <Modal id="request-details" title=Signal::derive(move || i18n.f("Request {}", &[&id])) on_close>
            <dl class="facts" data-record>
                {rows.into_iter().map(|(k, v)| view! {
                    <dt>{k}</dt>
                    <dd data-field=k>{v}</dd>
                }).collect_view()}
            </dl>
            <details class="raw">
                <summary>{move || i18n.t("Raw JSON")}</summary>
                <pre class="code">{json}</pre>
            </details>
        </Modal>
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "—".into()
    } else {
        text.to_string()
    }
}

/// The inbound API and, when it did not come as one HTTP request, how it came (`responses · ws`).
fn api_label(api: &str, transport: &str) -> String {
    match transport {
        "" => api.to_string(),
        "websocket" => format!("{api} · ws"),
        other => format!("{api} · {other}"),
    }
}

fn transport_label(transport: &str) -> &str {
    if transport.is_empty() {
        "http"
    } else {
        transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let f = Filters {
            model: Some("gemini/gemini-2.5-flash".into()),
            provider: None,
            status: Some("error".into()),
        };
        assert_eq!(
            f.query(),
            "/requests?model=gemini%2Fgemini-2.5-flash&status=error"
        );
        assert_eq!(Filters::default().query(), "/requests");
    }
}
