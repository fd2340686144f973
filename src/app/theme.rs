//! Light and dark themes: the choice is kept in localStorage and applied before the first paint.

use leptos::prelude::*;

/// Runs before the page paints so a dark-theme user never sees a light flash.
pub const EARLY_THEME_SCRIPT: &str = "try{var t=localStorage.getItem('llmb-theme')||(matchMedia('(prefers-color-scheme: dark)').matches?'dark':'light');document.documentElement.dataset.theme=t}catch(e){}";

#[component]
pub fn ThemeToggle() -> impl IntoView {
    let dark = RwSignal::new(false);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(root) = document().document_element() {
            dark.set(root.get_attribute("data-theme").as_deref() == Some("dark"));
        }
    });
    let toggle = move |_| {
        let next = !dark.get_untracked();
        dark.set(next);
        #[cfg(feature = "hydrate")]
        {
            let name = if next { "dark" } else { "light" };
            if let Some(root) = document().document_element() {
                let _ = root.set_attribute("data-theme", name);
            }
            if let Ok(Some(storage)) = window().local_storage() {
                let _ = storage.set_item("llmb-theme", name);
            }
        }
    };
    view! {
        <button
            class="theme-toggle"
            type="button"
            on:click=toggle
            aria-pressed=move || dark.get().to_string()
            aria-label=move || if dark.get() { "Switch to light theme" } else { "Switch to dark theme" }
        >
            {move || if dark.get() { "☀ Light" } else { "☾ Dark" }}
        </button>
    }
}
