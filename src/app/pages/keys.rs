//! Keys: virtual keys with their limits, spend and last-day traffic; create, rotate and revoke.
//! A secret is shown once, right after it is made; the list never holds one.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::app::components::icons::{Icon, Svg};
use crate::app::components::modal::Modal;
use crate::app::components::status::{ErrorNote, Loading};
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::shared::{BudgetPeriod, CreatedKey, KeyInfo, KeySettings, UsageRow};

/// A listed key with its traffic over the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    pub info: KeyInfo,
    pub last_day: UsageRow,
    /// Past its expiry by the server's clock.
    pub expired: bool,
}

#[server(prefix = "/console/fn")]
pub async fn get_keys() -> Result<Vec<KeyRow>, ServerFnError> {
    use crate::app::backend;
    let state = backend::state();
    let usage = state
        .stats
        .breakdown(backend::window("24h")?, "key")
        .await
        .map_err(backend::store_error)?;
    let now_s = crate::stats::now_ms() / 1000;
    Ok(state
        .governance
        .keys
        .list()
        .into_iter()
        .map(|info| KeyRow {
            last_day: usage
                .iter()
                .find(|r| r.name == info.id)
                .cloned()
                .unwrap_or_default(),
            expired: info.settings.expires_at.is_some_and(|t| t <= now_s),
            info,
        })
        .collect())
}

#[server(prefix = "/console/fn", input = Json)]
pub async fn create_key(settings: KeySettings) -> Result<CreatedKey, ServerFnError> {
    let state = crate::app::backend::state();
    let created = state
        .governance
        .keys
        .create(settings)
        .await
        .map_err(key_store_error)?;
    tracing::info!(key_id = %created.info.id, name = %created.info.settings.name, "virtual key created in the console");
    Ok(created)
}

#[server(prefix = "/console/fn")]
pub async fn rotate_key(id: String) -> Result<CreatedKey, ServerFnError> {
    let state = crate::app::backend::state();
    let rotated = state
        .governance
        .keys
        .rotate(&id)
        .await
        .map_err(key_store_error)?
        .ok_or_else(|| no_such_key(&id))?;
    tracing::info!(key_id = %id, "virtual key rotated in the console");
    Ok(rotated)
}

#[server(prefix = "/console/fn")]
pub async fn revoke_key(id: String) -> Result<(), ServerFnError> {
    let state = crate::app::backend::state();
    if !state
        .governance
        .keys
        .revoke(&id)
        .await
        .map_err(key_store_error)?
    {
        return Err(no_such_key(&id));
    }
    tracing::info!(key_id = %id, "virtual key revoked in the console");
    Ok(())
}

/// Validation messages (they start with a backtick) go to the user as they are.
#[cfg(feature = "ssr")]
fn key_store_error(e: String) -> ServerFnError {
    if e.starts_with('`') {
        ServerFnError::new(e)
    } else {
        ServerFnError::new(format!("the key store is unavailable: {e}"))
    }
}

#[cfg(feature = "ssr")]
fn no_such_key(id: &str) -> ServerFnError {
    ServerFnError::new(format!("there is no key `{id}` (revoked already?)"))
}

/// A server function that failed, with the English template that says what failed.
#[derive(Clone)]
struct Failure {
    what: &'static str,
    error: ServerFnError,
}

/// Where the page shows what an action did: a new secret, a failure, and a fresh list.
#[derive(Clone, Copy)]
struct Feedback {
    reload: RwSignal<u64>,
    secret: RwSignal<Option<CreatedKey>>,
    failure: RwSignal<Option<Failure>>,
}

impl Feedback {
    /// Shows the outcome and reloads the list; true when the action worked.
    fn settle(self, what: &'static str, result: Result<Option<CreatedKey>, ServerFnError>) -> bool {
        let worked = match result {
            Ok(created) => {
                if created.is_some() {
                    self.secret.set(created);
                }
                self.failure.set(None);
                true
            }
            Err(error) => {
                self.failure.set(Some(Failure { what, error }));
                false
            }
        };
        self.reload.update(|n| *n += 1);
        worked
    }

    /// A revoked key's secret is of no more use: stop showing it.
    fn forget_secret_of(self, id: &str) {
        if self
            .secret
            .with_untracked(|s| s.as_ref().is_some_and(|s| s.info.id == id))
        {
            self.secret.set(None);
        }
    }
}

#[component]
pub fn Keys() -> impl IntoView {
    let i18n = use_i18n();
    let feedback = Feedback {
        reload: RwSignal::new(0),
        secret: RwSignal::new(None),
        failure: RwSignal::new(None),
    };
    let keys = Resource::new(move || feedback.reload.get(), |_| get_keys());
    let create = Action::new(move |settings: &KeySettings| {
        let settings = settings.clone();
        async move {
            let result = create_key(settings).await.map(Some);
            feedback.settle("Cannot create the key: {}", result)
        }
    });
    let rotate = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let result = rotate_key(id).await.map(Some);
            feedback.settle("Cannot rotate the key: {}", result)
        }
    });
    let revoke = Action::new(move |id: &String| {
        let id = id.clone();
        async move {
            let result = revoke_key(id.clone()).await;
            if result.is_ok() {
                feedback.forget_secret_of(&id);
            }
            feedback.settle("Cannot revoke the key: {}", result.map(|()| None))
        }
    });
    let busy = Signal::derive(move || rotate.pending().get() || revoke.pending().get());
    let confirming = RwSignal::new(None::<(KeyAction, KeyInfo)>);
    view! {
        <section class="page">
            <div class="page-head">
                <h1>{move || i18n.t("Keys")}</h1>
            </div>
            <p class="muted">
                {move || i18n.t("Give each client its own key, with the models it may use, rate limits, a budget and an expiry. A secret is shown once, when its key is created or rotated.")}
            </p>
            {move || {
                feedback
                    .secret
                    .get()
                    .map(|created| view! { <SecretBox created on_dismiss=move || feedback.secret.set(None)/> })
            }}
            {move || feedback.failure.get().map(|f| view! { <ErrorNote what=f.what error=f.error/> })}
            <CreateForm create/>
            <h2>{move || i18n.t("Existing keys")}</h2>
            <Transition fallback=|| view! { <Loading/> }>
                {move || {
                    keys.get()
                        .map(|result| match result {
                            Ok(rows) => view! {
                                <KeyTable
                                    rows
                                    busy
                                    on_rotate=move |key| confirming.set(Some((KeyAction::Rotate, key)))
                                    on_revoke=move |key| confirming.set(Some((KeyAction::Revoke, key)))
                                />
                            }
                                .into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the keys: {}" error=e/> }.into_any(),
                        })
                }}
            </Transition>
            {move || {
                confirming
                    .get()
                    .map(|(action, key)| {
                        let id = key.id.clone();
                        view! {
                            <ConfirmDialog
                                action
                                key
                                on_confirm=move || {
                                    match action {
                                        KeyAction::Rotate => rotate.dispatch(id.clone()),
                                        KeyAction::Revoke => revoke.dispatch(id.clone()),
                                    };
                                    confirming.set(None);
                                }
                                on_close=move || confirming.set(None)
                            />
                        }
                    })
            }}
        </section>
    }
}

#[component]
fn SecretBox(created: CreatedKey, #[prop(into)] on_dismiss: Callback<()>) -> impl IntoView {
    let i18n = use_i18n();
    let copied = RwSignal::new(false);
    let name = created.info.settings.name.clone();
    let secret = created.key.clone();
    let copy = move |_| {
        let _text = secret.clone();
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            if write_clipboard(_text).await {
                copied.set(true);
                set_timeout(
                    move || copied.set(false),
                    std::time::Duration::from_millis(1500),
                );
            }
        });
    };
    let region = NodeRef::<leptos::html::Section>::new();
    Effect::new(move |_| {
        if let Some(el) = region.get() {
            let _ = el.focus();
        }
    });
    view! {
        <section class="secret-box" data-secret aria-labelledby="secret-title" tabindex="-1" node_ref=region>
            <h2 id="secret-title">{move || i18n.f("The secret of “{}”", &[&name])}</h2>
            <p class="secret-warning">
                <strong>{move || i18n.t("Copy it now: it will not be shown again.")}</strong>
            </p>
            <div class="secret-line">
                <code class="secret-value" data-testid="secret">{created.key}</code>
                <button type="button" on:click=copy>
                    <Svg icon=Icon::Copy/>
                    {move || if copied.get() { i18n.t("Copied") } else { i18n.t("Copy") }}
                </button>
            </div>
            <button type="button" class="button-quiet" on:click=move |_| on_dismiss.run(())>
                {move || i18n.t("I have stored it")}
            </button>
        </section>
    }
}

/// Copies text to the clipboard; true when it worked.
#[cfg(feature = "hydrate")]
async fn write_clipboard(text: String) -> bool {
    let promise = window().navigator().clipboard().write_text(&text);
    wasm_bindgen_futures::JsFuture::from(promise).await.is_ok()
}

/// The create form's fields, as typed.
#[derive(Clone, Copy)]
struct Draft {
    name: RwSignal<String>,
    models: RwSignal<String>,
    rpm: RwSignal<String>,
    tpm: RwSignal<String>,
    budget: RwSignal<String>,
    period: RwSignal<BudgetPeriod>,
    expires: RwSignal<String>,
}

impl Draft {
    fn new() -> Draft {
        Draft {
            name: RwSignal::new(String::new()),
            models: RwSignal::new(String::new()),
            rpm: RwSignal::new(String::new()),
            tpm: RwSignal::new(String::new()),
            budget: RwSignal::new(String::new()),
            period: RwSignal::new(BudgetPeriod::default()),
            expires: RwSignal::new(String::new()),
        }
    }

    fn clear(self) {
        for field in [
            self.name,
            self.models,
            self.rpm,
            self.tpm,
            self.budget,
            self.expires,
        ] {
            field.set(String::new());
        }
        self.period.set(BudgetPeriod::default());
    }

    /// The settings to send, or the English message for the first field that does not parse.
    fn settings(self) -> Result<KeySettings, &'static str> {
        Ok(KeySettings {
            name: self.name.get_untracked().trim().to_string(),
            models: models_list(&self.models.get_untracked()),
            rpm: per_minute(&self.rpm.get_untracked())
                .ok_or("Requests/min must be a whole number of at least 1.")?,
            tpm: per_minute(&self.tpm.get_untracked())
                .ok_or("Tokens/min must be a whole number of at least 1.")?,
            budget_usd: budget(&self.budget.get_untracked())
                .ok_or("The budget must be an amount in USD, 0 or more.")?,
            budget_period: self.period.get_untracked(),
            expires_at: expiry(&self.expires.get_untracked())
                .ok_or("The expiry must be a date (YYYY-MM-DD).")?,
        })
    }
}

/// `"a, b,,c "` → `["a", "b", "c"]`; empty means every model.
fn models_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Empty: no limit (`Some(None)`); not a whole number of at least 1: `None`.
fn per_minute(raw: &str) -> Option<Option<u64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    raw.parse().ok().filter(|n| *n >= 1).map(Some)
}

/// Empty: no budget (`Some(None)`); not a finite amount of 0 or more: `None`.
fn budget(raw: &str) -> Option<Option<f64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    raw.parse::<f64>()
        .ok()
        .filter(|b| b.is_finite() && *b >= 0.0)
        .map(Some)
}

/// `YYYY-MM-DD` → Unix seconds at the start of that day (UTC); empty: never (`Some(None)`).
fn expiry(raw: &str) -> Option<Option<u64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    let mut parts = raw.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let seconds = crate::calendar::days_from_civil(y, m, d) * 86_400;
    u64::try_from(seconds).ok().map(Some)
}

#[component]
fn CreateForm(create: Action<KeySettings, bool>) -> impl IntoView {
    let i18n = use_i18n();
    let draft = Draft::new();
    let invalid = RwSignal::new(None::<&'static str>);
    Effect::new(move |_| {
        if create.value().get() == Some(true) {
            draft.clear();
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match draft.settings() {
            Ok(settings) => {
                invalid.set(None);
                create.dispatch(settings);
            }
            Err(message) => invalid.set(Some(message)),
        }
    };
    let pending = create.pending();
    view! {
        <form class="panel key-form" data-testid="create-key" aria-labelledby="create-key-title" on:submit=submit>
            <h2 id="create-key-title">{move || i18n.t("Create a key")}</h2>
            <div class="form-row">
                <label class="field">
                    <span>{move || i18n.t("Name")}</span>
                    <input type="text" name="name" required maxlength="100" autocomplete="off" bind:value=draft.name/>
                </label>
                <div class="field field-wide">
                    <label for="key-models">{move || i18n.t("Models")}</label>
                    <input
                        id="key-models"
                        type="text"
                        name="models"
                        autocomplete="off"
                        placeholder=move || i18n.t("all")
                        aria-describedby="models-hint"
                        bind:value=draft.models
                    />
                    <small id="models-hint" class="muted">
                        {move || i18n.t("Comma-separated; empty allows every model.")}
                    </small>
                </div>
            </div>
            <div class="form-row">
                <NumberField label="Requests/min" name="rpm" min="1" step="1" value=draft.rpm/>
                <NumberField label="Tokens/min" name="tpm" min="1" step="1" value=draft.tpm/>
                <NumberField label="Budget (USD)" name="budget" min="0" step="0.01" value=draft.budget/>
                <PeriodSelect period=draft.period/>
                <label class="field">
                    <span>{move || i18n.t("Expires on (UTC)")}</span>
                    <input type="date" name="expires" bind:value=draft.expires/>
                </label>
            </div>
            {move || invalid.get().map(|message| view! { <p class="error-note" role="alert">{move || i18n.t(message)}</p> })}
            <div class="actions">
                <button type="submit" class="button-primary" disabled=move || pending.get()>
                    <Svg icon=Icon::Plus/>
                    {move || if pending.get() { i18n.t("Creating…") } else { i18n.t("Create key") }}
                </button>
                <span class="muted small">{move || i18n.t("Empty limits mean no limit.")}</span>
            </div>
        </form>
    }
}

#[component]
fn NumberField(
    label: &'static str,
    name: &'static str,
    min: &'static str,
    step: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <label class="field">
            <span>{move || i18n.t(label)}</span>
            <input type="number" name=name min=min step=step inputmode="decimal" bind:value=value/>
        </label>
    }
}

#[component]
fn PeriodSelect(period: RwSignal<BudgetPeriod>) -> impl IntoView {
    let i18n = use_i18n();
    let options = [
        (BudgetPeriod::Day, "day", "Per day (UTC)"),
        (BudgetPeriod::Month, "month", "Per month (UTC)"),
    ];
    view! {
        <label class="field">
            <span>{move || i18n.t("Budget period")}</span>
            <select
                name="budget_period"
                on:change=move |ev| {
                    period.set(if event_target_value(&ev) == "day" { BudgetPeriod::Day } else { BudgetPeriod::Month })
                }
            >
                {options
                    .into_iter()
                    .map(|(p, value, text)| view! {
                        <option value=value selected=move || period.get() == p>{move || i18n.t(text)}</option>
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn KeyTable(
    rows: Vec<KeyRow>,
    busy: Signal<bool>,
    #[prop(into)] on_rotate: Callback<KeyInfo>,
    #[prop(into)] on_revoke: Callback<KeyInfo>,
) -> impl IntoView {
    let i18n = use_i18n();
    if rows.is_empty() {
        return view! {
            <p class="muted empty" data-testid="no-keys">
                {move || i18n.t("No virtual keys yet: create one above.")}
            </p>
        }
        .into_any();
    }
    let headers: [(&str, bool); 12] = [
        ("Name", false),
        ("Prefix", false),
        ("Models", false),
        ("RPM", true),
        ("TPM", true),
        ("Budget", true),
        ("Spend today / month", true),
        ("Requests (24h)", true),
        ("Tokens (24h)", true),
        ("Cost (24h)", true),
        ("Expires (UTC)", false),
        ("Created (UTC)", false),
    ];
    view! {
        <div class="table-wrap keys-wrap">
            <table class="data keys">
                <thead>
                    <tr>
                        {headers
                            .into_iter()
                            .map(|(label, num)| view! { <th scope="col" class:num=num>{move || i18n.t(label)}</th> })
                            .collect_view()}
                        <th scope="col"><span class="visually-hidden">{move || i18n.t("Actions")}</span></th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|row| view! { <KeyLine row busy on_rotate on_revoke/> })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// Unix seconds → `YYYY-MM-DD HH:MM` (UTC).
fn minute(t: u64) -> String {
    let mut text = format::timestamp(t * 1000);
    text.truncate(16);
    text
}

/// A budget as typed: cents when it has no finer part.
fn dollars(v: f64) -> String {
    let cents = v * 100.0;
    if (cents - cents.round()).abs() < 1e-6 {
        format!("${v:.2}")
    } else {
        format::usd(v)
    }
}

fn limit(n: Option<u64>) -> String {
    n.map_or_else(|| "—".into(), format::int)
}

#[component]
fn KeyLine(
    row: KeyRow,
    busy: Signal<bool>,
    on_rotate: Callback<KeyInfo>,
    on_revoke: Callback<KeyInfo>,
) -> impl IntoView {
    let i18n = use_i18n();
    let KeyRow {
        info,
        last_day,
        expired,
    } = row;
    let s = &info.settings;
    let models = (!s.models.is_empty()).then(|| s.models.join(", "));
    let budget = s.budget_usd.map(|b| (dollars(b), s.budget_period));
    let spend = format!(
        "{} / {}",
        format::usd(info.spend_today_usd),
        format::usd(info.spend_month_usd)
    );
    let tokens = format::compact((last_day.prompt_tokens + last_day.completion_tokens) as f64);
    let expires = s.expires_at.map(minute);
    let name = s.name.clone();
    let (rotated, revoked) = (info.clone(), info.clone());
    view! {
        <tr data-key=info.id.clone() class:row-expired=expired>
            <th scope="row" class="key-name">{name.clone()}</th>
            <td><code>{info.prefix.clone()}</code></td>
            <td class="key-models">
                {match models {
                    Some(list) => list.into_any(),
                    None => view! { <span class="muted">{move || i18n.t("all")}</span> }.into_any(),
                }}
            </td>
            <td class="num" data-col="rpm">{limit(s.rpm)}</td>
            <td class="num" data-col="tpm">{limit(s.tpm)}</td>
            <td class="num" data-col="budget">
                {move || match &budget {
                    Some((usd, BudgetPeriod::Day)) => i18n.f("{} / day", &[usd.as_str()]),
                    Some((usd, BudgetPeriod::Month)) => i18n.f("{} / month", &[usd.as_str()]),
                    None => "—".into(),
                }}
            </td>
            <td class="num" data-col="spend">{spend}</td>
            <td class="num" data-col="requests">{format::int(last_day.requests)}</td>
            <td class="num" data-col="tokens">{tokens}</td>
            <td class="num" data-col="cost">{format::usd(last_day.cost_usd)}</td>
            <td data-col="expires">
                {expires.unwrap_or_else(|| "—".into())}
                {expired.then(|| view! { " " <span class="badge off">{move || i18n.t("expired")}</span> })}
            </td>
            <td data-col="created">{minute(info.created_at)}</td>
            <td>
                <div class="row-actions">
                <button type="button" disabled=move || busy.get() on:click=move |_| on_rotate.run(rotated.clone())>
                    <Svg icon=Icon::Refresh/>
                    {move || i18n.t("Rotate")}
                    <span class="visually-hidden">{format!(" — {name}")}</span>
                </button>
                <button
                    type="button"
                    class="button-danger"
                    aria-haspopup="dialog"
                    disabled=move || busy.get()
                    on:click=move |_| on_revoke.run(revoked.clone())
                >
                    <Svg icon=Icon::Trash/>
                    {move || i18n.t("Revoke")}
                    <span class="visually-hidden">{format!(" — {}", info.settings.name)}</span>
                </button>
                </div>
            </td>
        </tr>
    }
}

/// What a key's buttons ask to confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAction {
    Rotate,
    Revoke,
}

#[component]
fn ConfirmDialog(
    action: KeyAction,
    key: KeyInfo,
    #[prop(into)] on_confirm: Callback<()>,
    #[prop(into)] on_close: Callback<()>,
) -> impl IntoView {
    let i18n = use_i18n();
    let name = key.settings.name.clone();
    let (title, warning, label, class, icon) = match action {
        KeyAction::Rotate => (
            "Rotate “{}”?",
            "The current secret stops working at once; clients need the new one, which is shown once.",
            "Rotate",
            "button-danger",
            Icon::Refresh,
        ),
        KeyAction::Revoke => (
            "Revoke “{}”?",
            "Clients using this key are refused from now on. This cannot be undone.",
            "Revoke",
            "button-danger",
            Icon::Trash,
        ),
    };
    let id = match action {
        KeyAction::Rotate => "rotate-key",
        KeyAction::Revoke => "revoke-key",
    };
    view! {
        <Modal id title=Signal::derive(move || i18n.f(title, &[&name])) on_close>
            <p>{move || i18n.t(warning)}</p>
            <p class="muted small"><code>{key.prefix}</code></p>
            <div class="actions">
                <button type="button" class=class on:click=move |_| on_confirm.run(())>
                    <Svg icon/>
                    {move || i18n.t(label)}
                </button>
                <button type="button" on:click=move |_| on_close.run(())>{move || i18n.t("Cancel")}</button>
            </div>
        </Modal>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_parse() {
        assert_eq!(
            models_list(" gpt-4o-mini, ,claude-sonnet-4-5 "),
            ["gpt-4o-mini", "claude-sonnet-4-5"]
        );
        assert!(models_list("  ").is_empty());
        assert_eq!(per_minute(""), Some(None));
        assert_eq!(per_minute(" 60 "), Some(Some(60)));
        assert_eq!(per_minute("0"), None);
        assert_eq!(per_minute("1.5"), None);
        assert_eq!(budget("2.50"), Some(Some(2.5)));
        assert_eq!(budget("-1"), None);
        assert_eq!(budget(""), Some(None));
    }

    #[test]
    fn expiry_is_the_start_of_the_day_in_utc() {
        assert_eq!(expiry(""), Some(None));
        assert_eq!(expiry("1970-01-01"), Some(Some(0)));
        assert_eq!(expiry("2026-01-01"), Some(Some(1_767_225_600)));
        assert_eq!(expiry("2024-02-29"), Some(Some(1_709_164_800)));
        assert_eq!(expiry("2024-13-01"), None);
        assert_eq!(expiry("soon"), None);
        assert_eq!(minute(1_767_225_600), "2026-01-01 00:00");
        assert_eq!(dollars(2.5), "$2.50");
        assert_eq!(dollars(0.29), "$0.29");
        assert_eq!(dollars(0.125), "$0.1250");
    }
}
