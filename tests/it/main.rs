//! The integration tests, one binary: each module drives the gateway over real HTTP (against the
//! mock upstream, private redis-server processes and the built `llm-bridge` binary).
#![cfg(feature = "ssr")]

mod support;

mod abuse;
mod alerts;
mod auth;
mod build_script;
mod cache;
mod chaos;
mod deployment_files;
mod gateway_openai;
mod gateway_translated;
mod gemini_api;
mod governance;
mod hardening;
mod identity;
mod kubernetes;
mod messages;
mod mock_translation;
mod monitoring;
mod ownership;
mod redis_cluster;
mod redis_governance;
mod redis_store;
mod reload;
mod responses;
mod responses_socket;
mod routing;
mod secrets;
mod server;
mod soak;
mod structure;
mod telemetry;
