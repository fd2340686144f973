//! Keys: virtual keys with their limits, spend and last-day traffic; create, rotate and revoke.
//! A secret is shown once, right after it is made; the list never holds one.
//! The page (`mod.rs`), its server functions, the create form and the key table each have a file.

mod form;
mod server;
mod table;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::components::icons::{Icon, Svg};
use crate::app::components::status::{ErrorNote, Loading};
use crate::app::i18n::use_i18n;
use crate::domain::{CreatedKey, KeyInfo, KeySettings};
use crate::reports::UsageRow;

use self::form::CreateForm;
use self::server::{create_key, get_keys, revoke_key, rotate_key};
use self::table::{ConfirmDialog, KeyAction, KeyTable};

/// A listed key with its traffic over the last 24 hours.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    pub info: KeyInfo,
    pub last_day: UsageRow,
    /// Past its expiry by the server's clock.
    pub expired: bool,
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
            if crate::app::clipboard::copy(_text).await {
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
