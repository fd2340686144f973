//! The console: a shell with navigation and a theme switch, and one module per page.

mod pages;
mod theme;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use pages::dashboard::Dashboard;
use pages::not_found::NotFound;
use pages::system::System;

/// The HTML document around the app (server-side only).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <script>{theme::EARLY_THEME_SCRIPT}</script>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/llm-bridge.css"/>
        <Title text="LLM Bridge"/>
        <Router>
            <div class="layout" data-hydrated=move || hydrated.get().to_string()>
                <header class="topbar">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true">"⇄"</span>
                        " LLM Bridge"
                    </a>
                    <nav class="nav" aria-label="Main">
                        <A href="/" exact=true>"Dashboard"</A>
                        <A href="/system">"System"</A>
                    </nav>
                    <theme::ThemeToggle/>
                </header>
                <main class="content">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=Dashboard/>
                        <Route path=path!("/system") view=System/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}
