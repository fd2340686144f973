//! The providers' translators against the mock upstream's replies, event by event.

mod anthropic;
mod gemini;
