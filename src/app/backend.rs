//! What the console's server functions share (server only).

use leptos::prelude::*;

use crate::domain::ModelPrice;
use crate::state::AppState;
use crate::stats::Window;

pub fn state() -> AppState {
    expect_context::<AppState>()
}

/// Refuses a server function to anyone but an admin (a viewer's console session), with 403.
pub async fn require_admin() -> Result<(), ServerFnError> {
    use crate::governance::{Caller, Role};
    let caller = leptos_axum::extract::<axum::Extension<Caller>>()
        .await
        .map(|c| c.0)
        .unwrap_or(Caller::Anonymous);
    match caller {
        Caller::Session(Role::Viewer) => Err(refused(
            axum::http::StatusCode::FORBIDDEN,
            "This needs an admin; your role is viewer.",
        )),
        _ => Ok(()),
    }
}

/// A server function's refusal, answered with `status` (rather than the 500 every error gets
/// otherwise).
pub fn refused(status: axum::http::StatusCode, message: impl Into<String>) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(message.into())
}

pub fn window(raw: &str) -> Result<Window, ServerFnError> {
    Window::parse(raw)
        .ok_or_else(|| ServerFnError::new(format!("`{raw}` is not one of 1h, 24h, 7d")))
}

/// A stats read failed: say which part is down.
pub fn store_error(e: String) -> ServerFnError {
    ServerFnError::new(format!("the stats store is unavailable: {e}"))
}

pub fn prices(state: &AppState) -> Vec<ModelPrice> {
    state.gateway().catalogue.all().to_vec()
}
