//! A modal dialog: focus moves into it, Escape or the close button or a click outside closes it.

use leptos::prelude::*;

use super::icons::{Icon, Svg};
use crate::app::i18n::use_i18n;

#[component]
pub fn Modal(
    /// The heading, also the dialog's accessible name.
    #[prop(into)]
    title: Signal<String>,
    #[prop(into)] on_close: Callback<()>,
    /// Unique on the page: names the heading the dialog is labelled by.
    id: &'static str,
    /// A class for the dialog box (size variants).
    #[prop(optional)]
    class: &'static str,
    children: Children,
) -> impl IntoView {
    let i18n = use_i18n();
    let dialog = NodeRef::<leptos::html::Div>::new();
    let title_id = format!("{id}-title");
    let labelled_by = title_id.clone();
    Effect::new(move |_| {
        if let Some(el) = dialog.get() {
            let _ = el.focus();
        }
    });
    view! {
        <div
            class="modal-backdrop"
            on:click=move |ev| {
                if ev.target() == ev.current_target() {
                    on_close.run(());
                }
            }
        >
            <div
                id=id
                class=format!("modal {class}")
                role="dialog"
                aria-modal="true"
                aria-labelledby=labelled_by
                tabindex="-1"
                node_ref=dialog
                on:keydown=move |ev| {
                    if ev.key() == "Escape" {
                        ev.stop_propagation();
                        on_close.run(());
                    }
                }
            >
                <div class="modal-head">
                    <h2 id=title_id>{move || title.get()}</h2>
                    <button
                        type="button"
                        class="icon-button"
                        aria-label=move || i18n.t("Close")
                        on:click=move |_| on_close.run(())
                    >
                        <Svg icon=Icon::Close/>
                    </button>
                </div>
                <div class="modal-body">{children()}</div>
            </div>
        </div>
    }
}
