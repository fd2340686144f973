//! The request's journey ([`journey`]): identify → peek → record → plan the deployments → attempt
//! them in turn (failover, back-off, deadline) → relay the reply as it arrives → record usage and
//! cost. Each inbound API is an [`journey::Endpoint`] ([`chat`], [`embeddings`]).
//!
//! The `/v1` handlers and the console's server functions share one [`Gateway`].

pub mod cache;
pub mod failover;
pub mod http_client;
pub mod journey;
pub use crate::headers::header_text;
mod quiet;
pub mod record;
pub mod relay;
pub mod response_store;
pub mod route;
pub mod upstream;
pub mod whole;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::Config;
use crate::providers::catalogue::Catalogue;
use crate::routing::Providers;
use crate::routing::{Deployment, Routing};
use crate::stats::Stats;

pub const HEADER_PROVIDER: HeaderName = HeaderName::from_static("x-llm-bridge-provider");
pub const HEADER_DEPLOYMENT: HeaderName = HeaderName::from_static("x-llm-bridge-deployment");
pub const HEADER_ATTEMPTS: HeaderName = HeaderName::from_static("x-llm-bridge-attempts");
pub const HEADER_OVERHEAD: HeaderName = HeaderName::from_static("x-llm-bridge-overhead-ms");
pub const HEADER_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Gateway {
    pub providers: Providers,
    pub routing: Routing,
    pub catalogue: Arc<Catalogue>,
    pub aliases: BTreeMap<String, String>,
    pub stats: Arc<Stats>,
    /// The response cache, when `[cache]` is enabled.
    pub cache: Option<Arc<cache::Cache>>,
    http: http_client::Client,
    urls: upstream::ParsedUrls,
    request_ids: RequestIds,
    answered_models: route::AnsweredModels,
}

impl Gateway {
    pub fn new(config: &Config, stats: Arc<Stats>) -> Result<Gateway, String> {
        let http = http_client::Client::new(
            config.server.connect_timeout,
            http_client::proxies_from_env(),
        )?;
        let providers = Providers::from_config(config);
        Ok(Gateway {
            routing: Routing::new(config, &providers),
            providers,
            catalogue: Arc::new(Catalogue::with_overrides(&config.pricing)),
            aliases: config.models.aliases.clone(),
            cache: config.cache.enabled.then(|| {
                Arc::new(cache::Cache::new(
                    &config.cache,
                    stats.store().redis().cloned(),
                    config.server.total_timeout,
                ))
            }),
            stats,
            http,
            urls: Default::default(),
            request_ids: RequestIds::new(),
            answered_models: Default::default(),
        })
    }

    /// The client's `x-request-id` when it is sane, otherwise a new one.
    pub fn request_id(&self, headers: &HeaderMap) -> String {
        headers
            .get(&HEADER_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| self.request_ids.next(), str::to_string)
    }
}

/// Unique, cheap request ids: a per-process random prefix and a counter.
struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(crate::clock::now_ms_f64().to_bits());
        RequestIds {
            prefix: h.finish(),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        format!(
            "req_{:016x}{:08x}",
            self.prefix,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Sets the headers every reply carries.
pub fn reply_headers(
    headers: &mut HeaderMap,
    request_id: &str,
    deployment: Option<&Deployment>,
    attempts: u32,
    overhead: Duration,
) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HEADER_REQUEST_ID, v);
    }
    if let Some(d) = deployment {
        let (provider, id) = d.header_values();
        headers.insert(HEADER_PROVIDER, provider.clone());
        headers.insert(HEADER_DEPLOYMENT, id.clone());
    }
    if attempts > 0 {
        headers.insert(HEADER_ATTEMPTS, HeaderValue::from(attempts));
    }
    headers.insert(HEADER_OVERHEAD, milliseconds(overhead));
}

/// A duration in milliseconds with three decimals (`0.042`), written without the float formatter.
fn milliseconds(d: Duration) -> HeaderValue {
    let us = d.as_micros().min(u64::MAX as u128) as u64;
    let mut text = (us / 1000).to_string();
    let frac = us % 1000;
    text.push('.');
    text.push(char::from(b'0' + (frac / 100) as u8));
    text.push(char::from(b'0' + (frac / 10 % 10) as u8));
    text.push(char::from(b'0' + (frac % 10) as u8));
    HeaderValue::from_str(&text).expect("digits and a dot are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_written_in_milliseconds_with_three_decimals() {
        assert_eq!(milliseconds(Duration::from_micros(42)), "0.042");
        assert_eq!(milliseconds(Duration::from_micros(1_500)), "1.500");
        assert_eq!(milliseconds(Duration::from_nanos(123_456_789)), "123.456");
        assert_eq!(milliseconds(Duration::ZERO), "0.000");
    }
}
