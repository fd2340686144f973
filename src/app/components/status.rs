//! Loading and error states that say what is happening.

use leptos::prelude::*;

use crate::app::i18n::use_i18n;

#[component]
pub fn Loading() -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <p class="muted loading" role="status">
            <span class="spinner" aria-hidden="true"></span>
            {move || i18n.t("Loading…")}
        </p>
    }
}

/// An error with its context: `what` is an English template with one `{}` for the reason.
#[component]
pub fn ErrorNote(what: &'static str, error: ServerFnError) -> impl IntoView {
    let i18n = use_i18n();
    let reason = error.to_string();
    let reason = reason
        .strip_prefix("error running server function: ")
        .unwrap_or(&reason)
        .to_string();
    view! {
        <p class="error-note" role="alert">
            {move || i18n.f(what, &[&reason])}
        </p>
    }
}
