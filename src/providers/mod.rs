//! What the gateway knows about each upstream API: one file (or folder) per provider, the wire
//! formats and their translation, the price catalogue. Nothing here reads the configuration; the
//! runtime view of the configured providers is `routing::providers`.
//!
//! Providers that speak OpenAI's dialect share [`openai_compatible`] and declare only their quirks;
//! [`gemini`] and [`anthropic`] translate to their native APIs. Adding a provider is one file plus
//! one line in [`BUILTIN`].

pub mod anthropic;
pub mod carried;
pub mod catalogue;
pub mod chunks;
pub mod deepseek;
pub mod dialect;
pub mod gemini;
pub mod json_edit;
pub mod moonshot;
pub mod openai;
pub mod openai_compatible;
pub mod openai_types;
pub mod qwen;
pub mod spec;
pub mod sse;
pub mod translate;

use spec::ProviderSpec;

/// Every built-in provider, in the order the console lists them.
pub static BUILTIN: &[&ProviderSpec] = &[
    &openai::SPEC,
    &gemini::SPEC,
    &anthropic::SPEC,
    &deepseek::SPEC,
    &qwen::SPEC,
    &moonshot::SPEC,
];
