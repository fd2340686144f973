//! The form that creates a key, and how its fields are read.

use leptos::prelude::*;

use crate::app::components::icons::{Icon, Svg};
use crate::app::i18n::use_i18n;
use crate::domain::{BudgetPeriod, KeySettings};

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
            // Teams are given to keys through /api/keys.
            team: None,
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
pub(super) fn CreateForm(create: Action<KeySettings, bool>) -> impl IntoView {
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
    }
}
