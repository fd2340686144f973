//! The 1h / 24h / 7d switch.

use leptos::prelude::*;

use crate::app::i18n::use_i18n;

pub const WINDOWS: [&str; 3] = ["1h", "24h", "7d"];

#[component]
pub fn WindowPicker(window: RwSignal<String>) -> impl IntoView {
    let i18n = use_i18n();
    view! {
        <div class="segmented" role="group" aria-label=move || i18n.t("Time window")>
            {WINDOWS
                .into_iter()
                .map(|w| {
                    view! {
                        <button
                            type="button"
                            aria-pressed=move || (window.get() == w).to_string()
                            on:click=move |_| window.set(w.to_string())
                        >
                            {w}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}
