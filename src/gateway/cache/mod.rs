//! The response cache: exact-match entries keyed by the inbound API, the resolved model and the
//! request's canonical body ([`key`]). Entries live in memory ([`memory`]) and, with Redis, in
//! Redis too, shared by every replica; a Redis that cannot be reached is bypassed, never waited
//! on for longer than `cache.redis_timeout`. Identical requests in flight at the same moment are
//! coalesced: the first goes upstream, the others wait for its entry ([`Flights`]). A reply is
//! written once it has ended well ([`fill`]); chat completions are kept whole, so that a stream
//! and a whole reply serve each other ([`chat`]).

pub mod chat;
pub mod entry;
pub mod fill;
pub mod flight;
pub mod key;
pub mod memory;
mod step;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use fred::prelude::*;

use self::entry::{Entry, Form};
pub use self::fill::Fill;
use self::flight::{Follow, Joined, Phase, Started};
use self::key::{Key, KeyInput};
use self::memory::Memory;
use crate::config::{CacheConfig, CacheScope};
use crate::error::ApiError;

pub const HEADER_CACHE: HeaderName = HeaderName::from_static("x-llm-bridge-cache");
pub const HEADER_CACHE_TTL: HeaderName = HeaderName::from_static("x-llm-bridge-cache-ttl");

/// How an inbound API's replies are cached.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Never.
    Off,
    /// A stream and a whole reply are separate entries, each replayed as it was.
    PerMode,
    /// Chat completions: kept whole; a stream is gathered, and replayed from the whole reply.
    Chat,
}

/// What the cache did with a request (`x-llm-bridge-cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Bypass,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }

    pub fn header(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }
}

/// Redis entries stay in memory this long at most, so that a refresh on another replica shows
/// here soon.
const REDIS_MEMORY_COPY: Duration = Duration::from_secs(10);
/// After Redis failed, the cache skips it for this long rather than wait on it for every request.
const REDIS_PAUSE: Duration = Duration::from_secs(2);

pub struct Cache {
    config: CacheConfig,
    memory: Memory,
    redis: Option<Client>,
    /// Unix ms until which Redis is not asked.
    redis_paused_until: AtomicU64,
    flights: Mutex<HashMap<Key, Phase>>,
    /// The bytes of the replies being gathered for an entry, all requests together.
    gathering: Arc<flight::Budget>,
    /// How long a coalesced request waits for the first one's reply.
    coalesce_wait: Duration,
}

/// The request's dealings with the cache, decided before it goes upstream.
pub enum Consult {
    Hit(Arc<Entry>),
    /// An identical streaming request is in flight: follow its reply as it arrives.
    Follow(Follow),
    /// Go upstream; `fill` writes the reply when it ends well.
    Go {
        outcome: Outcome,
        fill: Option<Fill>,
    },
}

/// What the client asked of the cache in its headers.
struct Directives {
    /// `Cache-Control: no-cache`: do not look up (the reply refreshes the entry).
    no_cache: bool,
    /// `Cache-Control: no-store`: do not write.
    no_store: bool,
    ttl: Option<Duration>,
}

impl Cache {
    pub fn new(config: &CacheConfig, redis: Option<Client>, coalesce_wait: Duration) -> Cache {
        Cache {
            config: config.clone(),
            memory: Memory::new(config.max_bytes),
            redis,
            redis_paused_until: AtomicU64::new(0),
            flights: Mutex::new(HashMap::new()),
            gathering: Arc::new(flight::Budget::new(config.max_bytes / 4)),
            coalesce_wait,
        }
    }

    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// (entries, bytes) in memory.
    pub fn size(&self) -> (usize, usize) {
        self.memory.size()
    }

    /// Bytes of replies being gathered for an entry.
    pub fn gathering_bytes(&self) -> usize {
        self.gathering.used()
    }

    /// Looks the request up (waiting for an identical one in flight), or says how to go on.
    #[allow(clippy::too_many_arguments)]
    pub async fn consult(
        self: &Arc<Self>,
        caching: Caching,
        api: &'static str,
        model: &str,
        owner: &str,
        headers: &HeaderMap,
        body: &[u8],
        (stream, include_usage, mode): (bool, bool, &str),
    ) -> Result<Consult, ApiError> {
        let directives = directives(headers, self.config.max_ttl)?;
        let bypass = Consult::Go {
            outcome: Outcome::Bypass,
            fill: None,
        };
        if caching == Caching::Off {
            return Ok(bypass);
        }
        let owner = match self.config.scope {
            CacheScope::PerKey => owner,
            CacheScope::Shared => "",
        };
        let input = KeyInput {
            api,
            model,
            owner,
            variant: &(variant(api, headers) + mode),
            across_modes: caching == Caching::Chat,
            only_deterministic: self.config.only_deterministic,
            multiple_choices: self.config.multiple_choices,
        };
        let Ok(key) = key::key(&input, body) else {
            return Ok(bypass);
        };
        let ttl = directives.ttl.unwrap_or(self.config.ttl);
        let fill = |flight| {
            (!directives.no_store).then(|| Fill::new(self.clone(), key, ttl, caching, flight))
        };
        if directives.no_cache {
            return Ok(Consult::Go {
                outcome: Outcome::Bypass,
                fill: fill(None),
            });
        }
        match self.get(&key).await {
            Lookup::Found(entry) => return Ok(Consult::Hit(entry)),
            Lookup::Unreachable => return Ok(bypass),
            Lookup::Absent => {}
        }
        // Coalesce: the first of identical requests in flight goes upstream; the others follow
        // its chat stream when they stream it the same way, or wait for its entry.
        let follows = |s: &Started| {
            caching == Caching::Chat && stream && s.stream && s.include_usage == include_usage
        };
        let mut waited = false;
        loop {
            match self.join(key) {
                Joined::Leader(guard) => {
                    return Ok(Consult::Go {
                        outcome: Outcome::Miss,
                        fill: fill(Some(guard)),
                    });
                }
                Joined::Follower(mut phase) if !waited => {
                    waited = true;
                    let wait = self.coalesce_wait;
                    if let Some(started) = flight::started_or_done(&mut phase, wait, follows).await
                    {
                        return Ok(Consult::Follow(Follow {
                            started,
                            idle: wait,
                        }));
                    }
                    if let Some(entry) = self.memory.get(&key, crate::clock::now_ms()) {
                        return Ok(Consult::Hit(entry));
                    }
                }
                // The first request's reply was not cached: go upstream alone.
                Joined::Follower(_) => {
                    return Ok(Consult::Go {
                        outcome: Outcome::Miss,
                        fill: fill(None),
                    });
                }
            }
        }
    }

    async fn get(&self, key: &Key) -> Lookup {
        let now = crate::clock::now_ms();
        if let Some(entry) = self.memory.get(key, now) {
            return Lookup::Found(entry);
        }
        let Some(redis) = &self.redis else {
            return Lookup::Absent;
        };
        if self.redis_paused_until.load(Ordering::Relaxed) > now {
            return Lookup::Unreachable;
        }
        let get = redis.get::<Option<Bytes>, _>(redis_key(key));
        match tokio::time::timeout(self.config.redis_timeout, get).await {
            Ok(Ok(Some(raw))) => match Entry::decode(raw) {
                Some(entry) if entry.meta.expires_ms > now => {
                    let entry = Arc::new(entry);
                    let until = entry
                        .meta
                        .expires_ms
                        .min(now + REDIS_MEMORY_COPY.as_millis() as u64);
                    self.memory.put(*key, entry.clone(), until);
                    Lookup::Found(entry)
                }
                _ => Lookup::Absent,
            },
            Ok(Ok(None)) => Lookup::Absent,
            Ok(Err(e)) => {
                self.pause_redis(now);
                tracing::warn!(error = %e, "the cache cannot read Redis: bypassed");
                Lookup::Unreachable
            }
            Err(_) => {
                self.pause_redis(now);
                tracing::warn!("a cache read from Redis timed out: bypassed");
                Lookup::Unreachable
            }
        }
    }

    fn pause_redis(&self, now: u64) {
        self.redis_paused_until
            .store(now + REDIS_PAUSE.as_millis() as u64, Ordering::Relaxed);
    }

    /// Keeps an entry: in memory at once, in Redis off the request path.
    fn put(&self, key: Key, entry: Entry) {
        let entry = Arc::new(entry);
        let now = crate::clock::now_ms();
        let until = match &self.redis {
            Some(_) => entry
                .meta
                .expires_ms
                .min(now + REDIS_MEMORY_COPY.as_millis() as u64),
            None => entry.meta.expires_ms,
        };
        self.memory.put(key, entry.clone(), until);
        if let Some(redis) = self.redis.clone() {
            let ttl_ms = entry.meta.expires_ms.saturating_sub(now).max(1) as i64;
            let timeout = self.config.redis_timeout.max(Duration::from_secs(1));
            tokio::spawn(async move {
                let set = redis.set::<(), _, _>(
                    redis_key(&key),
                    entry.encode(),
                    Some(Expiration::PX(ttl_ms)),
                    None,
                    false,
                );
                match tokio::time::timeout(timeout, set).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot write a cache entry to Redis"),
                    Err(_) => tracing::warn!("writing a cache entry to Redis timed out"),
                }
            });
        }
    }
}

enum Lookup {
    Found(Arc<Entry>),
    Absent,
    Unreachable,
}

/// The request headers that change the reply, as part of the key: what a Messages request
/// forwards to Anthropic (`anthropic-version`, each `anthropic-beta`), newline-separated.
fn variant(api: &str, headers: &HeaderMap) -> String {
    if api != "messages" {
        return String::new();
    }
    let mut variant = String::new();
    for name in ["anthropic-version", "anthropic-beta"] {
        for value in headers.get_all(name) {
            variant.push_str(&String::from_utf8_lossy(value.as_bytes()));
            variant.push('\n');
        }
        variant.push('\n');
    }
    variant
}

fn redis_key(key: &Key) -> String {
    format!("llmb:cache:{}", key::hex(key))
}

fn directives(headers: &HeaderMap, max_ttl: Duration) -> Result<Directives, ApiError> {
    let mut d = Directives {
        no_cache: false,
        no_store: false,
        ttl: None,
    };
    for value in headers.get_all(axum::http::header::CACHE_CONTROL) {
        for part in value.to_str().unwrap_or("").split(',') {
            match part.trim().to_ascii_lowercase().as_str() {
                "no-cache" => d.no_cache = true,
                "no-store" => d.no_store = true,
                _ => {}
            }
        }
    }
    if let Some(v) = headers.get(&HEADER_CACHE_TTL) {
        let max = max_ttl.as_secs();
        let seconds = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|s| (1..=max).contains(s))
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "x-llm-bridge-cache-ttl must be a whole number of seconds from 1 to {max}"
                ))
            })?;
        d.ttl = Some(Duration::from_secs(seconds));
    }
    Ok(d)
}

/// The client's reply from an entry: a whole reply, a stream replayed as it was, or a chat
/// completion replayed as a stream. `None` if the entry cannot serve this request.
pub fn reply(
    entry: &Entry,
    caching: Caching,
    stream: bool,
    include_usage: bool,
) -> Option<Response> {
    use axum::http::header;
    let sse = |body: Body| {
        let mut response = Response::new(body);
        sse_headers(response.headers_mut());
        response
    };
    match (entry.meta.form, stream) {
        (Form::Whole, true) if caching == Caching::Chat => Some(sse(Body::from(
            chat::whole_to_stream(&entry.body, include_usage)?,
        ))),
        (Form::Whole, false) => {
            let mut response = Response::new(Body::from(entry.body.clone()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Some(response)
        }
        (Form::Stream, true) => Some(sse(Body::from(entry.body.clone()))),
        _ => None,
    }
}

/// A hit's headers: `x-llm-bridge-cache: hit`, its `age`, and the provider that made it.
pub fn hit_headers(headers: &mut HeaderMap, entry: &Entry) {
    headers.insert(HEADER_CACHE, Outcome::Hit.header());
    headers.insert(
        axum::http::header::AGE,
        HeaderValue::from(entry.age_seconds(crate::clock::now_ms())),
    );
    if !entry.meta.made.provider.is_empty() {
        headers.insert(
            super::HEADER_PROVIDER,
            super::header_text(&entry.meta.made.provider),
        );
    }
}

/// A stream's headers: its content type, and no caching or buffering on the way.
pub(super) fn sse_headers(h: &mut HeaderMap) {
    use axum::http::header;
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}
