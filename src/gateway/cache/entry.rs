//! A cached reply: what the client received (the body, in the client's API) and what it cost.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// How the body is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// A whole JSON reply (a chat completion serves a stream too).
    Whole,
    /// The stream's bytes, replayed as they are.
    Stream,
}

/// Everything about an entry but its body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub form: Form,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub expires_ms: u64,
    #[serde(flatten)]
    pub made: Made,
}

/// Who made the reply and what it cost, as the request's record had it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Made {
    pub provider: String,
    pub deployment: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    pub usage_estimated: bool,
    /// What the reply cost when it was made: what each hit saves.
    pub cost_usd: f64,
}

impl Made {
    pub fn of(r: &crate::domain::RequestRecord) -> Made {
        Made {
            provider: r.provider.clone(),
            deployment: r.deployment.clone(),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cached_tokens: r.cached_tokens,
            cache_write_tokens: r.cache_write_tokens,
            usage_estimated: r.usage_estimated,
            cost_usd: r.cost_usd,
        }
    }

    pub fn usage(&self) -> crate::providers::openai_types::Usage {
        crate::providers::openai_types::Usage::new(
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.reasoning_tokens,
        )
    }
}

#[derive(Debug)]
pub struct Entry {
    pub meta: Meta,
    pub body: Bytes,
}

impl Entry {
    /// Its size in memory, roughly: the body and the metadata.
    pub fn weight(&self) -> usize {
        self.body.len()
            + std::mem::size_of::<Entry>()
            + self.meta.made.provider.len()
            + self.meta.made.deployment.len()
    }

    /// One line of JSON metadata, then the body (Redis's value).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&self.meta).expect("metadata serialises");
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(raw: Bytes) -> Option<Entry> {
        let newline = memchr::memchr(b'\n', &raw)?;
        let meta = serde_json::from_slice(&raw[..newline]).ok()?;
        Some(Entry {
            meta,
            body: raw.slice(newline + 1..),
        })
    }

    /// Seconds since the entry was made (the `age` header).
    pub fn age_seconds(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.meta.created_ms) / 1000
    }
}
