//! The tester's page: the request form on one side, the response on the other.

use leptos::prelude::*;

use super::form::{FormState, Turn};
use super::run::RunState;
use crate::app::components::icons::{Icon, Svg};
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::domain::ModelPrice;
use crate::reports::{TesterModel, TesterSetup};

const PREFERRED_MODEL: &str = "gpt-4o-mini";

/// The models grouped by provider, in the order the gateway lists them.
fn grouped(models: &[TesterModel]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for m in models {
        match groups.iter_mut().find(|(p, _)| *p == m.provider) {
            Some((_, ids)) => ids.push(m.id.clone()),
            None => groups.push((m.provider.clone(), vec![m.id.clone()])),
        }
    }
    groups
}

/// The price for a run: the requested model's, else the model the reply names.
fn price_for<'a>(
    prices: &'a [ModelPrice],
    requested: &str,
    replied: Option<&str>,
) -> Option<&'a ModelPrice> {
    let find = |id: &str| {
        let bare = id.rsplit('/').next().unwrap_or(id);
        prices.iter().find(|p| p.id == id || p.id == bare)
    };
    find(requested).or_else(|| replied.and_then(find))
}

#[component]
pub fn TesterView(setup: TesterSetup) -> impl IntoView {
    let i18n = use_i18n();
    let ids: Vec<String> = setup.models.iter().map(|m| m.id.clone()).collect();
    let default_model = ids
        .iter()
        .find(|id| *id == PREFERRED_MODEL)
        .or(ids.first())
        .cloned()
        .unwrap_or_default();
    let initial = FormState {
        model: default_model.clone(),
        ..FormState::default()
    };
    let form = RwSignal::new(initial.clone());
    let run = RwSignal::new(RunState::default());
    let origin = RwSignal::new(setup.origin.clone());
    let restored = RwSignal::new(false);

    // Restore the saved form once hydrated, then save every change.
    let known = ids.clone();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(saved) = super::fetch::load_form()
                .and_then(|json| serde_json::from_str::<FormState>(&json).ok())
            {
                let fallback = form.with_untracked(|f| f.model.clone());
                form.set(FormState {
                    model: if known.contains(&saved.model) {
                        saved.model.clone()
                    } else {
                        fallback
                    },
                    ..saved
                });
            }
            if let Some(o) = super::fetch::origin() {
                origin.set(o);
            }
        }
        let _ = &known;
        restored.set(true);
    });
    Effect::new(move |_| {
        let state = form.get();
        if restored.get_untracked() {
            #[cfg(feature = "hydrate")]
            super::fetch::save_form(&serde_json::to_string(&state).unwrap_or_default());
        }
        let _ = state;
    });

    let send = move || {
        #[cfg(feature = "hydrate")]
        if !run.with_untracked(|r| r.running) {
            let (path, body) = form.with_untracked(|f| (f.path(), f.body().to_string()));
            run.set(RunState::start(crate::clock::now_ms_f64()));
            super::fetch::start(path, body, run);
        }
    };
    let stop = move |_| {
        #[cfg(feature = "hydrate")]
        super::fetch::stop();
    };
    let reset = move |_| {
        form.set(FormState {
            model: default_model.clone(),
            ..FormState::default()
        })
    };

    let no_models = setup.models.is_empty();
    view! {
        {no_models.then(|| view! {
            <p class="error-note" role="alert">{move || i18n.t("No provider is configured, so there is no model to try.")}</p>
        })}
        <div class="tester-grid">
            <form
                class="panel tester-form"
                aria-label=move || i18n.t("Request")
                on:submit=move |ev| {
                    ev.prevent_default();
                    send();
                }
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                        ev.prevent_default();
                        send();
                    }
                }
            >
                <h2>{move || i18n.t("Request")}</h2>
                <ModelPicker groups=grouped(&setup.models) form initial=initial.model.clone()/>
                <label class="field">
                    <span>{move || i18n.t("System prompt")}</span>
                    <textarea
                        name="system"
                        rows="2"
                        prop:value=move || form.with(|f| f.system.clone())
                        on:input=move |ev| form.update(|f| f.system = event_target_value(&ev))
                    >
                        {initial.system.clone()}
                    </textarea>
                </label>
                <Conversation form/>
                <Settings form initial=initial.clone()/>
                <div class="actions">
                    <button type="submit" class="button-primary" disabled=move || run.with(|r| r.running) || no_models>
                        <Svg icon=Icon::Send/>
                        {move || if run.with(|r| r.running) { i18n.t("Sending…") } else { i18n.t("Send") }}
                    </button>
                    <button type="button" on:click=stop disabled=move || !run.with(|r| r.running)>
                        {move || i18n.t("Stop")}
                    </button>
                    <button type="button" class="button-quiet" on:click=reset>
                        <Svg icon=Icon::Refresh/>
                        {move || i18n.t("Reset the form")}
                    </button>
                </div>
                <p class="muted small">{move || i18n.t("Form saved in this browser.")} " · Ctrl+Enter"</p>
            </form>
            <ResponsePanel run form prices=setup.prices origin/>
        </div>
    }
}

#[component]
fn ModelPicker(
    groups: Vec<(String, Vec<String>)>,
    form: RwSignal<FormState>,
    initial: String,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <label class="field">
            <span>{move || i18n.t("Model")}</span>
            <select
                name="model"
                prop:value=move || form.with(|f| f.model.clone())
                on:change=move |ev| form.update(|f| f.model = event_target_value(&ev))
            >
                {groups
                    .into_iter()
                    .map(|(provider, ids)| {
                        let initial = initial.clone();
                        view! {
                            <optgroup label=provider>
                                {ids
                                    .into_iter()
                                    .map(|id| {
                                        let selected = id == initial;
                                        let value = id.clone();
                                        view! { <option value=value selected=selected>{id}</option> }
                                    })
                                    .collect_view()}
                            </optgroup>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn Conversation(form: RwSignal<FormState>) -> impl IntoView {
    let i18n = use_i18n();
    let count = move || form.with(|f| f.turns.len());
    let role =
        move |i: usize| form.with(|f| f.turns.get(i).map(|t| t.role.clone()).unwrap_or_default());
    let content = move |i: usize| {
        form.with(|f| {
            f.turns
                .get(i)
                .map(|t| t.content.clone())
                .unwrap_or_default()
        })
    };
    let add = move |_| {
        form.update(|f| {
            let next = if f.turns.last().is_some_and(|t| t.role == "user") {
                "assistant"
            } else {
                "user"
            };
            f.turns.push(Turn {
                role: next.into(),
                content: String::new(),
            });
        })
    };
    view! {
        <fieldset class="turns">
            <legend>{move || i18n.t("Conversation")}</legend>
            <For each=move || 0..count() key=|i| *i let:i>
                <div class="turn" data-turn=i>
                    <label class="field role">
                        <span>{move || i18n.t("Role")}</span>
                        <select
                            name=format!("role-{i}")
                            prop:value=move || role(i)
                            on:change=move |ev| {
                                form.update(|f| if let Some(t) = f.turns.get_mut(i) { t.role = event_target_value(&ev) })
                            }
                        >
                            <option value="user" selected=role(i) == "user">{move || i18n.t("user")}</option>
                            <option value="assistant" selected=role(i) == "assistant">{move || i18n.t("assistant")}</option>
                        </select>
                    </label>
                    <div class="field grow">
                        <label for=format!("message-{i}")>{move || i18n.f("Message {}", &[&(i + 1).to_string()])}</label>
                        <textarea
                            id=format!("message-{i}")
                            name=format!("message-{i}")
                            rows="3"
                            prop:value=move || content(i)
                            on:input=move |ev| {
                                form.update(|f| if let Some(t) = f.turns.get_mut(i) { t.content = event_target_value(&ev) })
                            }
                        >
                            {content(i)}
                        </textarea>
                    </div>
                    <button
                        type="button"
                        class="icon-button"
                        aria-label=move || i18n.f("Remove message {}", &[&(i + 1).to_string()])
                        title=move || i18n.t("Remove")
                        disabled=move || count() <= 1
                        on:click=move |_| form.update(|f| { if f.turns.len() > 1 && i < f.turns.len() { f.turns.remove(i); } })
                    >
                        <Svg icon=Icon::Trash/>
                    </button>
                </div>
            </For>
            <button type="button" on:click=add>
                <Svg icon=Icon::Plus/>
                {move || i18n.t("Add a turn")}
            </button>
        </fieldset>
    }
}

#[component]
fn Settings(form: RwSignal<FormState>, initial: FormState) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="form-row">
            <label class="field">
                <span>{move || i18n.t("API")}</span>
                <select
                    name="api"
                    prop:value=move || form.with(|f| f.api.clone())
                    on:change=move |ev| form.update(|f| f.api = event_target_value(&ev))
                >
                    {super::form::APIS
                        .iter()
                        .map(|(value, label, _)| {
                            view! {
                                <option value=*value selected=initial.api == *value>
                                    {move || i18n.t(label)}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="field">
                <span>
                    {move || i18n.t("Temperature")} ": "
                    <output>{move || form.with(|f| f.temperature.clone())}</output>
                </span>
                <input
                    type="range"
                    name="temperature"
                    min="0"
                    max="2"
                    step="0.1"
                    value=initial.temperature.clone()
                    prop:value=move || form.with(|f| f.temperature.clone())
                    on:input=move |ev| form.update(|f| f.temperature = event_target_value(&ev))
                />
            </label>
            <label class="field">
                <span>{move || i18n.t("Max tokens")}</span>
                <input
                    type="number"
                    name="max_tokens"
                    min="1"
                    inputmode="numeric"
                    value=initial.max_tokens.clone()
                    prop:value=move || form.with(|f| f.max_tokens.clone())
                    on:input=move |ev| form.update(|f| f.max_tokens = event_target_value(&ev))
                />
            </label>
            <label class="check">
                <input
                    type="checkbox"
                    name="stream"
                    checked=initial.stream
                    prop:checked=move || form.with(|f| f.stream)
                    on:change=move |ev| form.update(|f| f.stream = event_target_checked(&ev))
                />
                {move || i18n.t("Stream the reply")}
            </label>
        </div>
    }
}

#[component]
fn ResponsePanel(
    run: RwSignal<RunState>,
    form: RwSignal<FormState>,
    prices: Vec<ModelPrice>,
    origin: RwSignal<String>,
) -> impl IntoView {
    let i18n = use_i18n();
    let cost = move || {
        run.with(|r| {
            let usage = r.usage?;
            let model = form.with(|f| f.model.clone());
            let price = price_for(&prices, &model, r.response_model.as_deref())?;
            Some(price.cost(usage.prompt, usage.cached, usage.completion))
        })
    };
    let metric = move |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let keep_reply = move |_| {
        let reply = run.with_untracked(|r| r.reply.clone());
        form.update(|f| {
            f.turns.push(Turn {
                role: "assistant".into(),
                content: reply,
            });
            f.turns.push(Turn::user(""));
        });
    };
    view! {
        <section class="panel tester-response" aria-labelledby="response-title">
            <h2 id="response-title">{move || i18n.t("Response")}</h2>
            <dl class="run-metrics">
                <div>
                    <dt>{move || i18n.t("Time to first token")}</dt>
                    <dd data-run="ttft">{move || metric(run.with(|r| r.ttft_ms.map(format::ms)))}</dd>
                </div>
                <div>
                    <dt>{move || i18n.t("Total time")}</dt>
                    <dd data-run="total">{move || metric(run.with(|r| r.total_ms.map(format::ms)))}</dd>
                </div>
                <div>
                    <dt>{move || i18n.t("Tokens in / out")}</dt>
                    <dd data-run="tokens">
                        {move || metric(run.with(|r| r.usage.map(|u| format!("{} / {}", format::int(u.prompt), format::int(u.completion)))))}
                    </dd>
                </div>
                <div>
                    <dt>{move || i18n.t("Cost")}</dt>
                    <dd data-run="cost">
                        {move || match (cost(), run.with(|r| r.usage.is_some())) {
                            (Some(c), _) => format::usd(c),
                            (None, true) => i18n.t("unpriced").to_string(),
                            (None, false) => "—".to_string(),
                        }}
                    </dd>
                </div>
                <div>
                    <dt>{move || i18n.t("Chunks")}</dt>
                    <dd data-run="chunks">{move || run.with(|r| r.chunks)}</dd>
                </div>
                <div>
                    <dt>"HTTP"</dt>
                    <dd data-run="status">{move || metric(run.with(|r| r.status.map(|s| s.to_string())))}</dd>
                </div>
            </dl>
            {move || run.with(|r| r.error.clone()).map(|e| view! { <p class="error-note" role="alert" data-run="error">{e}</p> })}
            {move || {
                let thinking = run.with(|r| r.reasoning.clone());
                (!thinking.is_empty()).then(|| view! {
                    <details class="reasoning"><summary>{i18n.t("Reasoning")}</summary><p>{thinking}</p></details>
                })
            }}
            <div class="reply" data-run="reply" aria-live="polite" aria-busy=move || run.with(|r| r.running).to_string()>
                {move || {
                    let reply = run.with(|r| r.reply.clone());
                    if reply.is_empty() && !run.with(|r| r.running) {
                        view! { <span class="muted">{i18n.t("The reply appears here.")}</span> }.into_any()
                    } else {
                        view! { <span>{reply}</span> }.into_any()
                    }
                }}
                {move || run.with(|r| r.running).then(|| view! { <span class="cursor" aria-hidden="true"></span> })}
            </div>
            <div class="actions">
                <button type="button" class="button-quiet" on:click=keep_reply disabled=move || run.with(|r| r.running || r.reply.is_empty())>
                    <Svg icon=Icon::Plus/>
                    {move || i18n.t("Add the reply to the conversation")}
                </button>
            </div>
            <CodeTabs run form origin/>
        </section>
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Curl,
    Python,
    Raw,
}

#[component]
fn CodeTabs(
    run: RwSignal<RunState>,
    form: RwSignal<FormState>,
    origin: RwSignal<String>,
) -> impl IntoView {
    let i18n = use_i18n();
    let tab = RwSignal::new(Tab::Curl);
    let copied = RwSignal::new(false);
    let text = move || match tab.get() {
        Tab::Curl => form.with(|f| f.curl(&origin.get())),
        Tab::Python => form.with(|f| f.python(&origin.get())),
        Tab::Raw => run.with(|r| r.raw_text()),
    };
    let copy = move |_| {
        let _value = text();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if crate::app::clipboard::copy(_value).await {
                copied.set(true);
                set_timeout(
                    move || copied.set(false),
                    std::time::Duration::from_millis(1500),
                );
            }
        });
    };
    let tabs = [
        (Tab::Curl, "curl"),
        (Tab::Python, "Python"),
        (Tab::Raw, "Raw JSON"),
    ];
    view! {
        <div class="code-tabs">
            <div class="code-head">
                <div class="segmented" role="group" aria-label=move || i18n.t("Code")>
                    {tabs
                        .into_iter()
                        .map(|(t, label)| view! {
                            <button type="button" data-tab=label aria-pressed=move || (tab.get() == t).to_string() on:click=move |_| tab.set(t)>
                                {move || i18n.t(label)}
                            </button>
                        })
                        .collect_view()}
                </div>
                <button type="button" class="button-quiet" on:click=copy>
                    <Svg icon=Icon::Copy/>
                    {move || if copied.get() { i18n.t("Copied") } else { i18n.t("Copy") }}
                </button>
            </div>
            <pre class="code" data-code tabindex="0">{text}</pre>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_prefixes_and_replies() {
        let prices = vec![ModelPrice {
            id: "deepseek-chat".into(),
            ..ModelPrice::default()
        }];
        assert!(price_for(&prices, "deepseek/deepseek-chat", None).is_some());
        assert!(price_for(&prices, "fast", Some("deepseek-chat")).is_some());
        assert!(price_for(&prices, "fast", None).is_none());
    }

    #[test]
    fn models_group_by_provider_in_order() {
        let m = |id: &str, p: &str| TesterModel {
            id: id.into(),
            provider: p.into(),
            price: None,
        };
        let groups = grouped(&[m("a", "openai"), m("b", "gemini"), m("c", "openai")]);
        assert_eq!(
            groups[0],
            ("openai".to_string(), vec!["a".to_string(), "c".to_string()])
        );
        assert_eq!(groups[1].0, "gemini");
    }
}
