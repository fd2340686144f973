//! The console: a shell with navigation, theme and language switches, and one module per page.

#[cfg(feature = "ssr")]
mod backend;
#[cfg(feature = "hydrate")]
mod clipboard;
mod components;
mod format;
mod i18n;
mod pages;
mod theme;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use components::cost_modal::{CostModal, CostModalOpen};
use components::icons::{Icon, Svg};
use pages::dashboard::Dashboard;
use pages::keys::Keys;
use pages::not_found::NotFound;
use pages::providers::Providers;
use pages::requests::Requests;
use pages::system::System;
use pages::teams::Teams;
use pages::tester::Tester;

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

const NAV: [(&str, &str, Icon); 7] = [
    ("/", "Dashboard", Icon::Dashboard),
    ("/providers", "Providers", Icon::Providers),
    ("/tester", "API tester", Icon::Tester),
    ("/requests", "Requests", Icon::Requests),
    ("/keys", "Keys", Icon::Keys),
    ("/teams", "Teams", Icon::Teams),
    ("/system", "System", Icon::System),
];

/// Whether the gateway runs without a master key.
#[server(prefix = "/console/fn")]
pub async fn gateway_is_open() -> Result<bool, ServerFnError> {
    // The app is also rendered once without state, to list its routes: no panic there.
    let state = use_context::<crate::state::AppState>()
        .ok_or_else(|| ServerFnError::new("no gateway state"))?;
    Ok(state.auth.is_open())
}

/// A lasting banner while the gateway has no master key; a log-out button once it has one.
#[component]
fn OpenGatewayWarning() -> impl IntoView {
    let i18n = expect_context::<i18n::I18n>();
    let open = Resource::new(|| (), |_| gateway_is_open());
    view! {
        <Suspense fallback=|| ()>
            {move || {
                open.get()
                    .map(|open| match open {
                        Ok(true) => {
                            view! {
                                <div class="banner banner-warning" role="status" data-open-gateway="true">
                                    {move || {
                                        i18n.t(
                                            "This gateway is open: anyone who can reach it can use its provider keys. Set LLM_BRIDGE_MASTER_KEY to require a key.",
                                        )
                                    }}
                                </div>
                            }
                                .into_any()
                        }
                        Ok(false) => {
                            view! {
                                <form class="banner banner-session" method="post" action="/logout">
                                    <button type="submit">{move || i18n.t("Log out")}</button>
                                </form>
                            }
                                .into_any()
                        }
                        Err(_) => ().into_any(),
                    })
            }}
        </Suspense>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let i18n = i18n::provide_i18n();
    provide_context(CostModalOpen(RwSignal::new(false)));
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="leptos" href="/pkg/llm-bridge.css"/>
        <Title text="LLM Bridge"/>
        <Router>
            <div class="layout" data-hydrated=move || hydrated.get().to_string()>
                <a class="skip-link" href="#main">"Skip to content"</a>
                <header class="topbar">
                    <a class="brand" href="/">
                        <span class="brand-mark" aria-hidden="true">"⇄"</span>
                        " LLM Bridge"
                    </a>
                    <nav class="nav" aria-label=move || i18n.t("Main")>
                        {NAV
                            .into_iter()
                            .map(|(href, label, icon)| {
                                view! {
                                    <A href=href exact=true>
                                        <Svg icon/>
                                        <span>{move || i18n.t(label)}</span>
                                    </A>
                                }
                            })
                            .collect_view()}
                    </nav>
                    <div class="topbar-tools">
                        <i18n::LangSwitch/>
                        <theme::ThemeToggle/>
                    </div>
                </header>
                <OpenGatewayWarning/>
                <main class="content" id="main" tabindex="-1">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=Dashboard/>
                        <Route path=path!("/providers") view=Providers/>
                        <Route path=path!("/tester") view=Tester/>
                        <Route path=path!("/requests") view=Requests/>
                        <Route path=path!("/keys") view=Keys/>
                        <Route path=path!("/teams") view=Teams/>
                        <Route path=path!("/system") view=System/>
                    </Routes>
                </main>
                <CostModal/>
            </div>
        </Router>
    }
}
