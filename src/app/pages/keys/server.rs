//! The Keys page's server functions: list, create, rotate and revoke, on the same key ring as `/api/keys`.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::domain::{CreatedKey, KeySettings};

use super::KeyRow;

#[server(prefix = "/console/fn", endpoint = "get_keys")]
pub async fn get_keys() -> Result<Vec<KeyRow>, ServerFnError> {
    crate::app::backend::require_admin().await?;
    use crate::app::backend;
    let state = backend::state();
    let usage = state
        .stats
        .breakdown(backend::window("24h")?, "key")
        .await
        .map_err(backend::store_error)?;
    let now_s = crate::clock::now_s();
    Ok(state
        .governance
        .keys
        .list()
        .into_iter()
        .map(|info| KeyRow {
            last_day: usage
                .iter()
                .find(|r| r.name == info.id)
                .cloned()
                .unwrap_or_default(),
            expired: info.settings.expires_at.is_some_and(|t| t <= now_s),
            info,
        })
        .collect())
}

#[server(prefix = "/console/fn", endpoint = "create_key", input = Json)]
pub async fn create_key(settings: KeySettings) -> Result<CreatedKey, ServerFnError> {
    crate::app::backend::require_admin().await?;
    let state = crate::app::backend::state();
    state
        .governance
        .check_key_team(&settings)
        .await
        .map_err(|e| crate::app::backend::refused(axum::http::StatusCode::BAD_REQUEST, e))?;
    let created = state
        .governance
        .keys
        .create(settings)
        .await
        .map_err(key_store_error)?;
    tracing::info!(key_id = %created.info.id, name = %created.info.settings.name, "virtual key created in the console");
    Ok(created)
}

#[server(prefix = "/console/fn")]
pub async fn rotate_key(id: String) -> Result<CreatedKey, ServerFnError> {
    crate::app::backend::require_admin().await?;
    let state = crate::app::backend::state();
    let rotated = state
        .governance
        .keys
        .rotate(&id)
        .await
        .map_err(key_store_error)?
        .ok_or_else(|| no_such_key(&id))?;
    tracing::info!(key_id = %id, "virtual key rotated in the console");
    Ok(rotated)
}

#[server(prefix = "/console/fn")]
pub async fn revoke_key(id: String) -> Result<(), ServerFnError> {
    crate::app::backend::require_admin().await?;
    let state = crate::app::backend::state();
    if !state
        .governance
        .keys
        .revoke(&id)
        .await
        .map_err(key_store_error)?
    {
        return Err(no_such_key(&id));
    }
    tracing::info!(key_id = %id, "virtual key revoked in the console");
    Ok(())
}

/// Validation messages (they start with a backtick) go to the user as they are.
#[cfg(feature = "ssr")]
fn key_store_error(e: String) -> ServerFnError {
    if e.starts_with('`') {
        ServerFnError::new(e)
    } else {
        ServerFnError::new(format!("the key store is unavailable: {e}"))
    }
}

#[cfg(feature = "ssr")]
fn no_such_key(id: &str) -> ServerFnError {
    ServerFnError::new(format!("there is no key `{id}` (revoked already?)"))
}
