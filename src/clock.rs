//! Wall-clock time: the one place the gateway and the console read it. Durations are measured with
//! `Instant`; this is for timestamps (records, key expiry, sessions, rate-limit windows).

/// Milliseconds since the Unix epoch, with sub-millisecond precision.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms_f64() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Milliseconds since the Unix epoch (the browser's clock in the console).
#[cfg(target_arch = "wasm32")]
pub fn now_ms_f64() -> f64 {
    js_sys::Date::now()
}

/// Whole milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    now_ms_f64() as u64
}

/// Whole seconds since the Unix epoch.
pub fn now_s() -> u64 {
    now_ms() / 1000
}
