//! The list of keys: one line per key with its limits, spend and traffic, and the dialog that
//! confirms rotating or revoking one.

use leptos::prelude::*;

use crate::app::components::icons::{Icon, Svg};
use crate::app::components::modal::Modal;
use crate::app::format;
use crate::app::i18n::use_i18n;
use crate::domain::{BudgetPeriod, KeyInfo};

use super::KeyRow;

#[component]
pub(super) fn KeyTable(
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
pub(super) enum KeyAction {
    Rotate,
    Revoke,
}

#[component]
pub(super) fn ConfirmDialog(
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
    fn times_and_budgets_read_as_typed() {
        assert_eq!(minute(1_767_225_600), "2026-01-01 00:00");
        assert_eq!(dollars(2.5), "$2.50");
        assert_eq!(dollars(0.29), "$0.29");
        assert_eq!(dollars(0.125), "$0.1250");
    }
}
