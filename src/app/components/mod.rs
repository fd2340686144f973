//! Pieces several pages share.

pub mod chart;
pub mod cost_modal;
pub mod icons;
pub mod modal;
pub mod status;
pub mod usage_table;
pub mod window_picker;

use leptos::prelude::*;

/// How often live pages poll their data.
pub const REFRESH_MS: u64 = 5_000;

/// A counter that ticks every [`REFRESH_MS`] in the browser while the calling component lives;
/// use it as a `Resource` source to refresh without a reload.
pub fn use_refresh() -> RwSignal<u64> {
    let tick = RwSignal::new(0u64);
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    tick
}
