//! LLM Bridge: an OpenAI-compatible gateway in front of many LLM providers, with a web console.
//!
//! The request's journey is visible in the module tree:
//! [`api`] receives it → [`gateway`] resolves the model and relays it → [`providers`] encode it for
//! the upstream and decode the reply → [`stats`] records usage and cost. [`app`] is the console.

#![recursion_limit = "256"]
// The server has no unsafe code. (The browser build's only unsafe code is wasm-bindgen's generated
// entry point.)
#![cfg_attr(feature = "ssr", forbid(unsafe_code))]

pub mod app;
pub mod calendar;
pub mod clock;
pub mod domain;
pub mod reports;

#[cfg(feature = "ssr")]
pub mod alerts;
#[cfg(feature = "ssr")]
pub mod api;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod endpoints;
#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod gateway;
#[cfg(feature = "ssr")]
pub mod governance;
#[cfg(feature = "ssr")]
pub mod headers;
#[cfg(feature = "ssr")]
pub mod providers;
#[cfg(feature = "ssr")]
pub mod reload;
#[cfg(feature = "ssr")]
pub mod routing;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod stats;
#[cfg(feature = "ssr")]
pub mod telemetry;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
