//! The API tester: builds a chat request, sends it through the gateway's own
//! `/v1/chat/completions` from the browser, shows the reply as it streams in with its timings,
//! tokens and cost, and gives the same request as curl and Python.

#[cfg(feature = "hydrate")]
mod fetch;
mod form;
// The run logic is driven from the browser; the server compiles it for its tests.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
mod run;
mod view;

use leptos::prelude::*;

use crate::app::components::status::{ErrorNote, Loading};
use crate::app::i18n::use_i18n;
use crate::reports::TesterSetup;

#[server(prefix = "/console/fn")]
pub async fn get_tester_setup() -> Result<TesterSetup, ServerFnError> {
    crate::app::backend::require_admin().await?;
    use crate::app::backend;
    use crate::reports::TesterModel;
    let state = backend::state();
    let prices = backend::prices(&state);
    let models = state
        .gateway()
        .models()
        .into_iter()
        .map(|m| TesterModel {
            price: prices.iter().find(|p| p.id == m.id).cloned(),
            id: m.id,
            provider: m.owned_by,
        })
        .collect();
    let headers: axum::http::HeaderMap = leptos_axum::extract().await?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.config().server.listen.to_string());
    Ok(TesterSetup {
        models,
        prices,
        origin: format!("http://{host}"),
    })
}

#[component]
pub fn Tester() -> impl IntoView {
    let i18n = use_i18n();
    let setup = Resource::new(|| (), |_| get_tester_setup());
    view! {
        <section class="page tester">
            <div class="page-head">
                <h1>{move || i18n.t("API tester")}</h1>
            </div>
            <Suspense fallback=|| view! { <Loading/> }>
                {move || {
                    setup
                        .get()
                        .map(|r| match r {
                            Ok(setup) => view! { <view::TesterView setup/> }.into_any(),
                            Err(e) => view! { <ErrorNote what="Cannot load the models: {}" error=e/> }.into_any(),
                        })
                }}
            </Suspense>
        </section>
    }
}
